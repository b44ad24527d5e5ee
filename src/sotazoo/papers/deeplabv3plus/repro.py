"""DeepLabv3+ at laptop scale: does the decoder improve segmentation (Table 3), and most of all
near object boundaries (Figure 5, the trimap experiment)?

Data: the synthetic detection scenes (`sotazoo.data.detection_shapes`) at 96 px with their label
maps: background (with its clutter: colour fields, texture, thin lines, ring and bar distractors)
and four shape classes, 1 to 6 objects an image, 8 to 48 px, occluding each other. Each seed
trains on its own 2,000 scenes; the 200 test scenes are the same for every seed.

Arms: `deeplabv3plus_mini` (a four-stage plain CNN to output stride 8, ASPP at rates 1, 2, 3,
the paper's decoder scaled down: a 24-channel projection of the stride-4 features and two 3x3
convolutions of 64) with the decoder, and the same network without it (DeepLabv3: the ASPP output
classified and upsampled x8), from the same initial weights for the shared layers. Both: pixel
cross-entropy, Adam at 1e-3 with the paper's "poly" decay (power 0.9), batch 16, 600 steps,
random horizontal flips.

Measured on the test scenes: mIoU over the five classes (`sotazoo.metrics.segmentation`), and the
same inside the 3-pixel band around the label boundaries (the trimap). The rules, written before
any full run: per seed, the effect of `r101_decoder_val` is the decoder's mIoU minus the
ablation's, of `trimap_gain` the same inside the band, both in points and judged on the sign only
(96 px synthetic scenes at output stride 8 are not VOC at 513 px and stride 16). The details
give the band mIoU at widths 1 to 12 (Figure 5a's curve).

Budget: 4 seeds x 2 arms = 8 runs in two single-thread worker processes; from timings on the
2-core machine before any full run, a step takes about 0.17 s on one thread with the decoder and
0.09 s without, so 600 steps about 100 s and 50 s, about 5 minutes in all with the tests.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from sotazoo.repro import Outcome, judged_claim

DEFAULT_SEEDS = (0, 1, 2, 3)
TEST_SEED = 99_999
CLASSES = ("square", "circle", "triangle", "cross")
BAND = 3  # the trimap width of the claim, pixels
BAND_WIDTHS = (1, 2, 3, 4, 6, 8, 12)
ARMS = ("no_decoder", "decoder")
ARM_LABEL = {"no_decoder": "DeepLabv3 (ASPP, x8 upsampling)", "decoder": "DeepLabv3+ (decoder)"}
SIGN_ONLY = "96 px synthetic scenes at output stride 8 are not PASCAL VOC at 513 px and stride 16"


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    size: int = 96
    train_scenes: int = 2000
    test_scenes: int = 200
    steps: int = 600
    batch_size: int = 16
    lr: float = 1e-3
    workers: int = 2


QUICK = ReproConfig(size=32, train_scenes=8, test_scenes=4, steps=2, batch_size=2, workers=1)


def scenes(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sotazoo.data.detection_shapes import make_detection_scenes

    s = make_detection_scenes(n, size=size, seed=seed, classes=CLASSES, semantic=True,
                              object_size=(8.0, 48.0 * size / 128))  # fmt: skip
    return torch.from_numpy(s["images"]), torch.from_numpy(s["semantic"].astype(np.int64))


@lru_cache(maxsize=2)
def test_set(cfg: ReproConfig) -> tuple[torch.Tensor, torch.Tensor]:
    return scenes(cfg.test_scenes, cfg.size, TEST_SEED)


def evaluate(model, cfg: ReproConfig) -> dict:
    """mIoU, pixel accuracy, and band mIoU at every width of BAND_WIDTHS, on the test scenes."""
    from sotazoo.metrics.segmentation import boundary_band, confusion, mean_iou, pixel_accuracy

    x, y = test_set(cfg)
    k = len(CLASSES) + 1
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 50]).argmax(1) for i in range(0, len(x), 50)]).numpy()
    target = y.numpy()
    cm = confusion(pred, target, k)
    bands = np.stack([np.stack([boundary_band(t, w) for t in target]) for w in BAND_WIDTHS])
    band_miou = {str(w): mean_iou(confusion(pred, target, k, where=b))
                 for w, b in zip(BAND_WIDTHS, bands, strict=True)}  # fmt: skip
    return {"miou": 100 * mean_iou(cm), "pixel_acc": 100 * pixel_accuracy(cm),
            "band_miou": {w: 100 * v for w, v in band_miou.items()}}  # fmt: skip


def batch(x: torch.Tensor, y: torch.Tensor, size: int, g: torch.Generator):
    """`size` scenes drawn with replacement, each flipped left-right with probability 1/2."""
    idx = torch.randint(len(x), (size,), generator=g)
    xb, yb = x[idx], y[idx]
    flip = torch.rand(size, generator=g) < 0.5
    xb[flip], yb[flip] = xb[flip].flip(-1), yb[flip].flip(-1)
    return xb, yb


@dataclass(frozen=True)
class Job:
    arm: str
    seed: int
    cfg: ReproConfig


def train_job(job: Job) -> dict:
    import time

    from sotazoo.papers.deeplabv3plus.model import deeplabv3plus_mini
    from sotazoo.train.parallel import tick

    cfg = job.cfg
    torch.manual_seed(job.seed)  # the same initial weights for the layers both arms share
    model = deeplabv3plus_mini(decoder=job.arm == "decoder")
    x, y = scenes(cfg.train_scenes, cfg.size, job.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / cfg.steps) ** 0.9)
    g = torch.Generator().manual_seed(job.seed)
    t0, loss = time.perf_counter(), float("nan")
    for _ in range(cfg.steps):
        model.train()
        xb, yb = batch(x, y, cfg.batch_size, g)
        total = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        sched.step()
        loss = float(total.detach())
        tick()
    return {"arm": job.arm, "seed": job.seed, "final_loss": loss,
            "train_seconds": round(time.perf_counter() - t0, 1), **evaluate(model, cfg)}  # fmt: skip


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    jobs = [Job(arm, s, cfg) for s in seeds for arm in ARMS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as run_parallel's workers; `workers=1` trains in this process
    try:
        logs = run_parallel(train_job, jobs, steps=[cfg.steps] * len(jobs), workers=cfg.workers,
                            desc="deeplabv3plus repro", progress=progress)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    by = {(r["arm"], r["seed"]): r for r in logs}

    def effects(get) -> list[float]:
        return [get(by["decoder", s]) - get(by["no_decoder", s]) for s in seeds]

    def mean(arm: str, get) -> float:
        return statistics.fmean(get(by[arm, s]) for s in seeds)

    def band(r: dict) -> float:
        return r["band_miou"][str(BAND)]

    where = (f"{len(test_set(cfg)[0])} synthetic {cfg.size} px test scenes (background and 4 "
             f"shape classes), after {cfg.steps} Adam steps of batch {cfg.batch_size}")  # fmt: skip
    claims = [
        judged_claim(
            "deeplabv3plus", "r101_decoder_val", effects(lambda r: r["miou"]),
            effect="mIoU with the decoder minus without it, points", sign_only=SIGN_ONLY,
            tested=f"mIoU on {where}: without the decoder {mean('no_decoder', lambda r: r['miou']):.2f}, "
            f"with it {mean('decoder', lambda r: r['miou']):.2f} (paper: ResNet-101 on VOC val)",
        ),
        judged_claim(
            "deeplabv3plus", "trimap_gain", effects(band),
            effect=f"mIoU inside the {BAND}-pixel band around label boundaries with the decoder "
            "minus without it, points",
            sign_only=SIGN_ONLY,
            tested=f"mIoU within {BAND} px of a label boundary on {where}: without the decoder "
            f"{mean('no_decoder', band):.2f}, with it {mean('decoder', band):.2f} (paper: "
            "Xception on VOC val, the narrowest band of Figure 5a)",
        ),
    ]
    details = {
        "miou": {ARM_LABEL[a]: [by[a, s]["miou"] for s in seeds] for a in ARMS},
        "band_miou": {ARM_LABEL[a]: {str(w): statistics.fmean(by[a, s]["band_miou"][str(w)] for s in seeds)
                                     for w in BAND_WIDTHS} for a in ARMS},  # fmt: skip
        "runs": logs,
    }

    def draw(path: Path) -> None:
        _figure(by, seeds, path)

    return Outcome(claims=claims, config=asdict(cfg) | {"band": BAND}, details=details, draw=draw)


def _figure(by: dict, seeds: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for arm, colour in (("no_decoder", "#777777"), ("decoder", "#d62728")):
        ys = [statistics.fmean(by[arm, s]["band_miou"][str(w)] for s in seeds) for w in BAND_WIDTHS]
        ax.plot(BAND_WIDTHS, ys, "o-", color=colour, label=ARM_LABEL[arm])
    ax.set_xlabel("trimap width (pixels)", fontsize=8)
    ax.set_ylabel("mIoU in the band (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
