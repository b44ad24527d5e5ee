"""Mask R-CNN at laptop scale: Table 2's mask-branch ablations — RoIAlign against RoIPool (2c,
with stride-16 features; 2d, stride 32) and per-class sigmoid masks against a per-pixel softmax
(2b) — measured as mask AP of pasted masks.

Data: the synthetic detection scenes (`sotazoo.data.detection_shapes`) at 128 px with their
instance masks: 1 to 6 objects of four shape classes, 8 to 48 px, occluding each other, on
cluttered backgrounds. Training draws fresh scenes every step from the seed's own stream (the
detection loop's seeds, never the test scenes); the 200 test scenes are the same for every seed.

What is trained and measured: the mask branch alone, on given boxes. Every arm is `maskrcnn_mini`
(ResNet trunk, FPN, the mask head) trained from the same initial weights on the ground-truth
boxes, each coordinate jittered by up to ±10 % of the box's side (fresh every step; fixed for the
test), with two terms of §3's multi-task loss on those RoIs, L_cls + L_mask: the classifier keeps
the shared features aware of the classes, as in the paper, where a softmax mask needs them; the
RPN and the box regression are not used. This isolates what Table 2b-d change — how the RoI's
features are cropped and how masks are scored — from proposal and box quality, which neither
ablation touches in the paper either (their box AP barely moves). Every RoI
is pooled from one pyramid level (`pool_levels`): P4, stride 16, standing in for the paper's C4
features, or P5, stride 32, for Table 2d's C5.

Arms: RoIAlign (2 × 2 samples per bin, averaged, `aligned=False` as the paper) and RoIPool on P4;
the per-pixel softmax over the background and the four classes (RoIAlign, P4); RoIAlign and
RoIPool on P5. Each: Adam at 1e-3, batch 16, `steps` steps. Measured on the test scenes with the
same jittered boxes for every arm and the true labels (score 1 for every box, so that AP depends
on the masks alone): COCO mask AP, AP50 and AP75 (pycocotools, iouType "segm") of the masks pasted
into the image (`method.paste_masks`, "grid") and binarised at 0.5, and the mean mask IoU.

The rules, written before any full run: per seed, the effect of a claim is the method's mask AP
(AP75 for `roialign_vs_roipool_ap75`) minus its ablation's, in points, judged on the sign only:
128 px synthetic shapes on given boxes are not COCO with a full detector.

Budget: 5 arms × 3 seeds = 15 runs in two single-thread workers.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sotazoo.repro import Outcome, judged_claim
from sotazoo.train.detection import IMAGE_SIZE as SIZE  # the detection scenes

DEFAULT_SEEDS = (0, 1, 2)
TEST_SEED = 99_998
ARMS = {  # name: (pooler, pool level, mask activation)
    "align_s16": ("align", 4, "sigmoid"),
    "pool_s16": ("pool", 4, "sigmoid"),
    "softmax_s16": ("align", 4, "softmax"),
    "align_s32": ("align", 5, "sigmoid"),
    "pool_s32": ("pool", 5, "sigmoid"),
}
ARM_LABEL = {
    "align_s16": "RoIAlign, stride 16",
    "pool_s16": "RoIPool, stride 16",
    "softmax_s16": "RoIAlign + softmax, stride 16",
    "align_s32": "RoIAlign, stride 32",
    "pool_s32": "RoIPool, stride 32",
}
SIGN_ONLY = "128 px synthetic shapes, mask branch on given boxes, are not COCO with a full detector"


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    steps: int = 400
    batch_size: int = 16
    lr: float = 1e-3
    jitter: float = 0.1  # each box coordinate moves by up to this fraction of the box's side
    test_scenes: int = 200
    workers: int = 2


QUICK = ReproConfig(steps=2, batch_size=2, test_scenes=4, workers=1)


def scenes(n: int, seed: int) -> dict:
    from sotazoo.data.detection_shapes import make_detection_scenes

    return make_detection_scenes(n, size=SIZE, seed=seed, masks=True)


def jitter_boxes(boxes: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """`boxes` (M, 4) with each coordinate moved by U(−amount, amount) of the box's width (x) or
    height (y), clipped to the image and kept at least one pixel wide and high."""
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    moved = boxes + (torch.rand(boxes.shape, generator=g) * 2 - 1) * amount * wh
    moved = moved.clamp(0, SIZE)
    x1, y1 = moved[:, 0].clamp(max=SIZE - 1), moved[:, 1].clamp(max=SIZE - 1)
    x2, y2 = torch.maximum(moved[:, 2], x1 + 1), torch.maximum(moved[:, 3], y1 + 1)
    return torch.stack([x1, y1, x2, y2], 1)


@lru_cache(maxsize=2)
def test_set(cfg: ReproConfig) -> tuple[dict, list[torch.Tensor]]:
    """The test scenes and their jittered boxes (the same for every arm and seed)."""
    s = scenes(cfg.test_scenes, TEST_SEED)
    g = torch.Generator().manual_seed(TEST_SEED)
    return s, [jitter_boxes(torch.from_numpy(b), cfg.jitter, g) for b in s["boxes"]]


def build(arm: str):
    from sotazoo.papers.mask_rcnn.model import maskrcnn_mini

    pooler, level, activation = ARMS[arm]
    return maskrcnn_mini(pooler=pooler, pool_levels=(level, level), mask_activation=activation)


def normalise(images: np.ndarray) -> torch.Tensor:
    """A batch of [0, 1] scenes as the model takes them (ImageNet mean and std)."""
    from sotazoo.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize

    return torch.from_numpy(normalize(images, IMAGENET_MEAN, IMAGENET_STD))


@torch.no_grad()
def evaluate(model, cfg: ReproConfig) -> dict:
    """Mask AP (pycocotools "segm") and mean mask IoU on the test scenes' jittered boxes."""
    from sotazoo.data.detection_shapes import to_coco
    from sotazoo.metrics.detection import coco_map
    from sotazoo.papers.mask_rcnn.method import paste_masks

    s, boxes = test_set(cfg)
    model.eval()
    dets, ious = [], []
    for i0 in range(0, len(boxes), 50):
        x = normalise(s["images"][i0 : i0 + 50])
        rois = boxes[i0 : i0 + 50]
        labels = torch.from_numpy(np.concatenate(s["labels"][i0 : i0 + 50])) + 1
        logits = model.mask_logits(model.features(x), rois, (SIZE, SIZE))
        probs = model.mask_probs(logits, labels).split([len(r) for r in rois])
        for j, (p, r) in enumerate(zip(probs, rois, strict=True)):
            i = i0 + j
            pasted = (paste_masks(p, r, (SIZE, SIZE)) > 0.5).numpy()
            gt = s["masks"][i]
            inter, union = (pasted & gt).sum((1, 2)), (pasted | gt).sum((1, 2))
            ious.extend((inter / np.maximum(union, 1)).tolist())
            dets.append({"image_id": i, "boxes": r.numpy(), "scores": np.ones(len(r)),
                         "labels": s["labels"][i], "masks": pasted})  # fmt: skip
    ap = coco_map(to_coco(s), dets, iou_type="segm")
    return {"mask_ap": 100 * ap["map"], "mask_ap50": 100 * ap["ap50"],
            "mask_ap75": 100 * ap["ap75"], "mask_iou": 100 * statistics.fmean(ious)}  # fmt: skip


@dataclass(frozen=True)
class Job:
    arm: str
    seed: int
    cfg: ReproConfig


def train_job(job: Job) -> dict:
    import time

    from sotazoo.papers.mask_rcnn.method import mask_loss, mask_targets
    from sotazoo.train.detection import train_batch
    from sotazoo.train.parallel import tick

    cfg = job.cfg
    torch.manual_seed(job.seed)  # the same initial weights in every arm
    model = build(job.arm)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(job.seed)
    t0, loss = time.perf_counter(), float("nan")
    for step in range(cfg.steps):
        model.train()
        s = train_batch(job.seed, step, cfg.batch_size, masks=True)
        rois = [jitter_boxes(torch.from_numpy(b), cfg.jitter, g) for b in s["boxes"]]
        labels = torch.from_numpy(np.concatenate(s["labels"])) + 1
        target = torch.cat([mask_targets(torch.from_numpy(m), r, model.cfg.mask_size)
                            for m, r in zip(s["masks"], rois, strict=True)])  # fmt: skip
        x = normalise(s["images"])
        feats = model.features(x)
        cls_logits, _ = model.box_outputs(feats, rois, (SIZE, SIZE))
        logits = model.mask_logits(feats, rois, (SIZE, SIZE))
        total = F.cross_entropy(cls_logits, labels) + mask_loss(
            logits, labels, target, model.cfg.mask_activation
        )
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        loss = float(total.detach())
        tick()
    return {"arm": job.arm, "seed": job.seed, "final_loss": loss,
            "train_seconds": round(time.perf_counter() - t0, 1), **evaluate(model, cfg)}  # fmt: skip


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    jobs = [Job(arm, s, cfg) for s in seeds for arm in ARMS]
    # one thread per run, in `workers` processes (or here, for --quick)
    logs = run_parallel(train_job, jobs, steps=[cfg.steps] * len(jobs), workers=cfg.workers,
                        desc="mask_rcnn repro", progress=progress)  # fmt: skip
    by = {(r["arm"], r["seed"]): r for r in logs}

    def effects(arm: str, base: str, metric: str = "mask_ap") -> list[float]:
        return [by[arm, s][metric] - by[base, s][metric] for s in seeds]

    def mean(arm: str, metric: str = "mask_ap") -> float:
        return statistics.fmean(by[arm, s][metric] for s in seeds)

    where = (f"{cfg.test_scenes} synthetic {SIZE} px test scenes, the mask branch of "
             f"maskrcnn_mini trained {cfg.steps} Adam steps of batch {cfg.batch_size} on "
             f"ground-truth boxes jittered by up to {cfg.jitter:.0%}")  # fmt: skip

    def claim(claim_id: str, arm: str, base: str, metric: str, paper: str):
        name = {"mask_ap": "mask AP", "mask_ap75": "mask AP75"}[metric]
        return judged_claim(
            "mask_rcnn", claim_id, effects(arm, base, metric), sign_only=SIGN_ONLY,
            effect=f"{name} of {ARM_LABEL[arm]} minus {ARM_LABEL[base]}, points",
            tested=f"{name} on {where}: {ARM_LABEL[base]} {mean(base, metric):.2f}, "
            f"{ARM_LABEL[arm]} {mean(arm, metric):.2f} (paper: {paper})",
        )  # fmt: skip

    claims = [
        claim("roialign_vs_roipool_c4", "align_s16", "pool_s16", "mask_ap",
              "ResNet-50-C4 on COCO minival"),
        claim("roialign_vs_roipool_ap75", "align_s16", "pool_s16", "mask_ap75",
              "ResNet-50-C4 on COCO minival"),
        claim("roialign_stride32", "align_s32", "pool_s32", "mask_ap",
              "ResNet-50-C5, stride 32, on COCO minival"),
        claim("sigmoid_vs_softmax", "align_s16", "softmax_s16", "mask_ap",
              "ResNet-50-C4 on COCO minival"),
    ]  # fmt: skip
    metrics = ("mask_ap", "mask_ap50", "mask_ap75", "mask_iou")
    details = {
        "table": {
            ARM_LABEL[a]: {
                m: {"mean": mean(a, m), "std": statistics.pstdev(by[a, s][m] for s in seeds)}
                for m in metrics
            }
            for a in ARMS
        },  # fmt: skip
        "runs": logs,
    }

    def draw(path: Path) -> None:
        _figure(by, seeds, path)

    return Outcome(claims=claims, config=asdict(cfg) | {"arms": ARMS}, details=details, draw=draw)


def _figure(by: dict, seeds: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = (("mask_ap50", "AP50"), ("mask_ap", "AP"), ("mask_ap75", "AP75"))
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    width = 0.8 / len(ARMS)
    colours = ("#d62728", "#777777", "#1f77b4", "#ff9896", "#c7c7c7")
    for k, (arm, colour) in enumerate(zip(ARMS, colours, strict=True)):
        ys = [statistics.fmean(by[arm, s][m] for s in seeds) for m, _ in metrics]
        xs = [i + (k - (len(ARMS) - 1) / 2) * width for i in range(len(metrics))]
        ax.bar(xs, ys, width, color=colour, label=ARM_LABEL[arm])
    ax.set_xticks(range(len(metrics)), [label for _, label in metrics], fontsize=8)
    ax.set_ylabel("mask AP (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
