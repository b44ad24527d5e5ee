"""Training and evaluating the laptop-scale detectors on the synthetic shape scenes.

Shared by RetinaNet's and YOLOv3's reproductions and demo recipes. The data is an endless stream
of seeded scenes (`sotazoo.data.detection_shapes`): step i of a run with seed s trains on the
batch drawn with seed `TRAIN_SEED_BASE + s * STREAM + i`, so every arm of an ablation with the same
seed sees the same images in the same order, and no training image is ever one of the held-out
scenes (seed `EVAL_SEED`) or the demo's samples (seeds below 1000). Scenes are cheap (about 1 ms
each), so nothing is cached.

A `Detector` adapts a model family to the loop: how its input is normalised, its loss on the
raw outputs, and its post-processing. Boxes are scored by pycocotools (`sotazoo.metrics.detection`)
against the scenes' COCO annotations: mAP (IoU 0.5:0.95), AP50, AP75 and AP by object size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from sotazoo.errors import InputError, SotazooError
from sotazoo.train.parallel import run_parallel, tick

TRAIN_SEED_BASE = 1_000_000  # every training scene is drawn with a seed >= this
STREAM = 100_000  # seeds per training run: seed s draws from [BASE + s·STREAM, BASE + (s+1)·STREAM)
EVAL_SEED = 500  # the held-out scenes
IMAGE_SIZE = 128


@dataclass(frozen=True, kw_only=True)
class DetTrainConfig:
    """One training run. The schedule is Detectron's shape (linear warm-up from lr/3, then the
    learning rate divided by 10 at `milestones` of the run: the paper's 60k and 80k of 90k), with
    the optimiser given by `optimizer`."""

    steps: int = 1000
    batch_size: int = 16  # the paper's (16 images over 8 GPUs)
    optimizer: str = "sgd"  # "sgd" (momentum 0.9, the paper's) or "adam"
    lr: float = 0.01  # the paper's, for batch 16
    weight_decay: float = 1e-4  # the paper's
    warmup: int = 100  # steps of linear warm-up from lr / 3 (Detectron: 500)
    milestones: tuple[float, ...] = (2 / 3, 8 / 9)
    clip_grad: float | None = None  # max gradient norm; None: no clipping (the paper's)
    eval_every: int = 0  # steps between held-out evaluations; 0: at the end only


@dataclass
class Detector:
    """A detector as the training loop sees it: how its input is normalised, its loss on the
    raw outputs, and its post-processing. Each detection paper subclasses it in its `method.py`
    and returns one from `method.detector(model, **loss_kw)` (the paper contract); the loop
    never asks which paper it trains."""

    model: torch.nn.Module
    loss_kw: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, ...] | None = None  # normalisation before the network, if any
    std: tuple[float, ...] | None = None
    score_thresh: float = 0.05  # post-processing threshold for evaluation
    size: int = IMAGE_SIZE  # square input side

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return images
        mean = images.new_tensor(self.mean).view(1, -1, 1, 1)
        std = images.new_tensor(self.std).view(1, -1, 1, 1)
        return (images - mean) / std

    def loss(self, out: torch.Tensor, boxes: list, labels: list) -> dict[str, torch.Tensor]:
        """Named loss terms of raw outputs `out` for the images' ground truth, with "total"."""
        raise NotImplementedError

    def postprocess(self, out: torch.Tensor, **settings) -> list[dict[str, torch.Tensor]]:
        """Detections per image: `boxes` (xyxy, input pixels), `scores`, `labels`; `settings`
        (score_thresh, nms_thresh, ...) override the evaluation's, as a demo graph sets them."""
        raise NotImplementedError

    def detect(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections of a batch of [0, 1] images, on the model's device."""
        return self.postprocess(self.model(self.prepare(images)))


def detector(model: torch.nn.Module, *, size: int = IMAGE_SIZE, **loss_kw) -> Detector:
    """The `Detector` of a detection model, from its paper's `method.detector` (the paper whose
    folder defines the model's class); `loss_kw` goes to its loss."""
    from sotazoo.papers._contract import paper_of

    if not isinstance(model, torch.nn.Module):
        raise SotazooError(f"{type(model).__name__} is not a model")
    try:
        p = paper_of(model)
    except SotazooError:
        raise SotazooError(f"{type(model).__name__} is not a detector this loop knows") from None
    if p.hook("method", "detector") is None:
        raise SotazooError(f"{type(model).__name__} is not a detector this loop knows")
    return p.detector(model, size=size, **loss_kw)


def train_batch(
    seed: int, step: int, batch_size: int, classes=None, *, masks: bool = False
) -> dict:
    """The scenes of training step `step` of a run with seed `seed` (with their instance masks
    if `masks`: the same scenes either way)."""
    from sotazoo.data.detection_shapes import DETECTION_CLASSES, make_detection_scenes

    if not 0 <= step < STREAM:
        raise SotazooError(f"a run has at most {STREAM} steps, got step {step}")
    return make_detection_scenes(batch_size, size=IMAGE_SIZE, seed=TRAIN_SEED_BASE +
                                 seed * STREAM + step, classes=classes or DETECTION_CLASSES,
                                 masks=masks)  # fmt: skip


def held_out_scenes(n: int = 200, *, masks: bool = False) -> dict:
    """The evaluation scenes (seed `EVAL_SEED`): never trained on."""
    from sotazoo.data.detection_shapes import make_detection_scenes

    return make_detection_scenes(n, size=IMAGE_SIZE, seed=EVAL_SEED, masks=masks)


@torch.no_grad()
def evaluate_detector(det: Detector, scenes: dict, batch_size: int = 50) -> dict[str, float]:
    """COCO AP of `det` on `scenes` (pycocotools), in eval mode; restores the mode after."""
    from sotazoo.data.detection_shapes import to_coco
    from sotazoo.metrics.detection import coco_map

    was_training = det.model.training
    det.model.eval()
    device = next(det.model.parameters()).device
    images = torch.from_numpy(scenes["images"])
    dets = []
    for i in range(0, len(images), batch_size):
        for j, d in enumerate(det.detect(images[i : i + batch_size].to(device))):
            dets.append({"image_id": i + j, **{k: v.cpu() for k, v in d.items()}})
    det.model.train(was_training)
    return {k: round(float(v), 5) for k, v in coco_map(to_coco(scenes), dets).items()}


def lr_at(cfg: DetTrainConfig, step: int) -> float:
    """Warm-up from lr/3 over `warmup` steps, then ÷10 at each milestone."""
    lr = cfg.lr * 0.1 ** sum(step >= m * cfg.steps for m in cfg.milestones)
    if step < cfg.warmup:
        lr *= 1 / 3 + (2 / 3) * step / cfg.warmup
    return lr


def _optimizer(model: torch.nn.Module, cfg: DetTrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise SotazooError(f"optimizer must be 'sgd' or 'adam', got {cfg.optimizer!r}")


def train_detector(
    det: Detector,
    cfg: DetTrainConfig,
    *,
    seed: int,
    test: dict | None = None,
    on_step: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Train `det.model` in place on the scene stream of `seed`; returns the log: config, losses
    (every 10 steps), evaluations on `test` scenes, wall time, and whether training diverged
    (a non-finite loss stops the run: the result is reported, not retried)."""
    model = det.model
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    opt = _optimizer(model, cfg)
    log: dict[str, Any] = {"config": asdict(cfg), "loss": [], "evals": [], "diverged": False}
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        batch = train_batch(seed, step, cfg.batch_size)
        images = det.prepare(torch.from_numpy(batch["images"]).to(device))
        boxes = [torch.from_numpy(b).to(device) for b in batch["boxes"]]
        labels = [torch.from_numpy(lb).to(device) for lb in batch["labels"]]
        try:
            out = model(images)
        except InputError:  # the models refuse non-finite values: with finite input, that is
            if not torch.isfinite(images).all():  # activations overflowing: divergence
                raise
            log["diverged"], log["diverged_at"] = True, step
            break
        # The predictions themselves, not only the loss: a loss can stay finite while some
        # outputs have run off to inf (their terms masked or ignored), and those would reach
        # the evaluation as boxes.
        if not torch.isfinite(out).all():
            log["diverged"], log["diverged_at"] = True, step
            break
        terms = det.loss(out, boxes, labels)
        loss = terms["total"]
        if not math.isfinite(float(loss.detach())):
            log["diverged"] = True
            log["diverged_at"] = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        opt.step()
        if step % 10 == 0 or step == cfg.steps - 1:
            log["loss"].append([step, {k: round(float(v.detach()), 5) for k, v in terms.items()}])
        if test is not None and cfg.eval_every and (step + 1) % cfg.eval_every == 0:
            log["evals"].append({"step": step + 1, **evaluate_detector(det, test)})
        if on_step is not None:
            on_step()
    log["train_seconds"] = round(time.perf_counter() - t0, 1)
    if test is not None:
        final = evaluate_detector(det, test) if not log["diverged"] else None
        log["final"] = final
    model.cpu().eval()
    return log


@torch.no_grad()
def latency_ms(det: Detector, *, repeats: int = 30) -> dict[str, float]:
    """Median milliseconds per image (batch 1, eval mode, CPU) of the network alone and of the
    network plus its post-processing, on a held-out scene."""
    from sotazoo.data.detection_shapes import make_detection_scenes

    model = det.model.eval()
    x = torch.from_numpy(make_detection_scenes(1, size=det.size, seed=EVAL_SEED)["images"])
    x = det.prepare(x)
    net, full = [], []
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        out = model(x)
        t1 = time.perf_counter()
        det.postprocess(out)
        t2 = time.perf_counter()
        if i >= 3:  # warm-up
            net.append(t1 - t0)
            full.append(t2 - t0)
    med = lambda v: sorted(v)[len(v) // 2] * 1000  # noqa: E731
    return {"network_ms": round(med(net), 3), "with_postprocess_ms": round(med(full), 3)}


# ---------------------------------------------------------------- demo recipes


@dataclass(frozen=True, kw_only=True)
class DetRecipe:
    """`sotazoo train retinanet_mini` / `yolov3_mini`: the laptop models of the site's demos."""

    ksteps: int = 4  # thousands of steps (`sotazoo train --budget`)
    batch_size: int = 16
    optimizer: str = "adam"  # the papers: SGD; Adam gets further in a CPU budget
    lr: float = 1e-3
    eval_scenes: int = 500
    float16: bool = False  # store the weights in half precision (half the file)


def train_recipe(model_name: str, *, seed: int, budget: int | None, progress: bool,
                 loss_kw: dict | None = None, float16: bool = False):  # fmt: skip
    """Train `model_name` from a seeded initialisation with `DetRecipe`; returns a `Trained`
    whose metrics are COCO AP on the held-out scenes (never trained on)."""
    from tqdm.auto import tqdm

    from sotazoo.train import seeded_model
    from sotazoo.train.recipes import Trained

    r = DetRecipe(ksteps=budget or DetRecipe.ksteps, float16=float16)
    det = detector(seeded_model(model_name, seed), **(loss_kw or {}))
    cfg = DetTrainConfig(steps=r.ksteps * 1000, batch_size=r.batch_size, optimizer=r.optimizer,
                         lr=r.lr, eval_every=1000)  # fmt: skip
    test = held_out_scenes(r.eval_scenes)
    with tqdm(total=cfg.steps, desc=f"train {model_name}", disable=not progress) as bar:
        log = train_detector(det, cfg, seed=seed, test=test, on_step=lambda: bar.update(1))
    if log["diverged"]:
        raise SotazooError(f"{model_name} diverged at step {log['diverged_at']}")
    model = det.model.eval()
    if r.float16:  # stored in half precision: the metrics are those of the stored weights
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.half().float())
        log["final_float32"] = log["final"]
        log["final"] = evaluate_detector(det, test)
    metrics = {f"heldout_{k}": v for k, v in log["final"].items() if k in ("map", "ap50", "ap75")}
    fields = {"recipe": asdict(r), "loss_kw": loss_kw or {}, "eval_seed": EVAL_SEED,
              "eval_scenes": r.eval_scenes, **log}  # fmt: skip
    return Trained(model=model.half() if r.float16 else model, metrics=metrics, log=fields)


# ---------------------------------------------------------------- runs in parallel processes


@dataclass(frozen=True, kw_only=True)
class Job:
    """One training run of an ablation: a model trained on the scene stream of `seed`."""

    model: str
    seed: int
    cfg: DetTrainConfig
    loss_kw: dict = field(default_factory=dict)
    eval_scenes: int = 300
    keep_weights: bool = False  # return the trained state dict (for latency measurements)


def run_job(job: Job) -> dict[str, Any]:
    """Train and evaluate one job; returns its log (weights under "state_dict" if asked)."""
    from sotazoo.train import seeded_model

    det = detector(seeded_model(job.model, job.seed), **job.loss_kw)
    log = train_detector(det, job.cfg, seed=job.seed, test=held_out_scenes(job.eval_scenes),
                         on_step=tick)  # fmt: skip
    log["job"] = {"model": job.model, "seed": job.seed, "loss_kw": job.loss_kw}
    if job.keep_weights:
        log["state_dict"] = det.model.state_dict()
    return log


def run_jobs(jobs: list[Job], *, workers: int = 2, desc: str = "train",
             progress: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """Run `jobs` in `workers` single-thread processes (`sotazoo.train.parallel`); returns their
    logs in the order of `jobs`. `workers=1` runs them here, one by one."""
    return run_parallel(run_job, jobs, steps=[j.cfg.steps for j in jobs], workers=workers,
                        desc=desc, progress=progress)  # fmt: skip


@torch.no_grad()
def operating_points(det: Detector, scenes: dict, thresholds: tuple[float, ...]) -> list[dict]:
    """Recall, precision and F1 of `det` on `scenes` at each score threshold: a detection is a
    true positive when it overlaps a not yet matched ground-truth box of its class at IoU >= 0.5
    (greedy, best scores first, as COCO's matching at IoU 0.5). What a demo's threshold trades."""
    from torchvision.ops import box_iou

    was, det.score_thresh = det.score_thresh, min(thresholds)
    det.model.eval()
    dets = det.detect(torch.from_numpy(scenes["images"]))
    det.score_thresh = was
    out = []
    for t in thresholds:
        tp = n_det = n_gt = 0
        for d, boxes, labels in zip(dets, scenes["boxes"], scenes["labels"], strict=True):
            keep = d["scores"] >= t
            order = torch.argsort(d["scores"][keep], descending=True)
            bx, lb = d["boxes"][keep][order], d["labels"][keep][order]
            n_det, n_gt = n_det + len(bx), n_gt + len(boxes)
            if not len(bx) or not len(boxes):
                continue
            ok = (box_iou(bx, torch.from_numpy(boxes)) >= 0.5) & (
                lb[:, None] == torch.from_numpy(labels)[None, :]
            )
            free = torch.ones(len(boxes), dtype=torch.bool)
            for row in ok:
                hit = torch.nonzero(row & free)
                if len(hit):
                    free[hit[0, 0]] = False
                    tp += 1
        recall, precision = tp / max(1, n_gt), tp / max(1, n_det)
        f1 = 2 * recall * precision / (recall + precision) if tp else 0.0
        out.append({"threshold": t, "recall": recall, "precision": precision, "f1": f1})
    return out
