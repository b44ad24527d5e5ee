"""Recipe for our demo weights: `sotazoo train maskrcnn_mini`.

The whole model trained end to end with §3's multi-task loss (`method.mask_rcnn_loss`: the RPN's
two terms, L_cls, L_box and L_mask) on the synthetic detection scenes at 128 px with their
instance masks, fresh scenes every step from the seed's stream (`sotazoo.train.detection`'s
seeds, never the held-out ones). Sampling scaled to the small images: 128 RoIs per image (the
paper: 512), 600 proposals before and 300 after NMS at training time (torchvision: 2000 and
2000). Adam at 1e-3 (the paper: SGD at 0.02 on 16 images; in a CPU budget Adam gets further),
linear warm-up over 100 steps from a third of it, then ÷10 at 2/3 and 8/9 of the run (Detectron's
schedule shape), batch 8, a budget (`--budget`) of thousands of steps (default 3). At the end,
box and mask AP (pycocotools) on 300 held-out scenes (seed `EVAL_SEED`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from sotazoo.train.detection import EVAL_SEED
from sotazoo.train.recipes import Recipe, Trained

DEFAULT_KSTEPS = 3
STEPS_PER_UNIT = 1000  # the budget's unit (a test's smoke run makes it 2)


@dataclass(frozen=True, kw_only=True)
class MaskRecipe:
    ksteps: int = DEFAULT_KSTEPS
    batch_size: int = 8
    lr: float = 1e-3
    warmup: int = 100
    milestones: tuple[float, ...] = (2 / 3, 8 / 9)
    rois_per_image: int = 128
    train_pre_nms_top_n: int = 600
    train_post_nms_top_n: int = 300
    eval_scenes: int = 300


def targets_of(scenes: dict) -> list[dict[str, torch.Tensor]]:
    """`mask_rcnn_loss`'s targets of a batch of scenes drawn with `masks=True` (labels 1 … 4:
    slot 0 is the background)."""
    return [{"boxes": torch.from_numpy(b), "labels": torch.from_numpy(lb) + 1,
             "masks": torch.from_numpy(m)}
            for b, lb, m in zip(scenes["boxes"], scenes["labels"], scenes["masks"], strict=True)]  # fmt: skip


@torch.no_grad()
def evaluate(model, scenes: dict, batch_size: int = 50) -> dict[str, float]:
    """Box and mask AP, AP50, AP75 (pycocotools, in points) of `model` on `scenes` (drawn with
    `masks=True`): its detections, masks pasted ("grid") and binarised at 0.5 (§3.1)."""
    from sotazoo.data.detection_shapes import to_coco
    from sotazoo.metrics.detection import coco_map
    from sotazoo.papers.mask_rcnn.method import paste_masks, unpack
    from sotazoo.papers.mask_rcnn.repro import normalise

    model.eval()
    dets = []
    size = int(scenes["size"])
    for i0 in range(0, len(scenes["images"]), batch_size):
        out = model(normalise(scenes["images"][i0 : i0 + batch_size]))
        for j, d in enumerate(unpack(out)):
            masks = paste_masks(d["masks"], d["boxes"], (size, size)) > 0.5
            dets.append({"image_id": i0 + j, "boxes": d["boxes"].numpy(),
                         "scores": d["scores"].numpy(), "labels": (d["labels"] - 1).numpy(),
                         "masks": masks.numpy()})  # fmt: skip
    gt = to_coco(scenes)
    box, mask = coco_map(gt, dets), coco_map(gt, dets, iou_type="segm")
    return {f"{kind}_{k}": round(100 * v, 3) for kind, r in (("box", box), ("mask", mask))
            for k, v in r.items() if k in ("map", "ap50", "ap75")}  # fmt: skip


def train_maskrcnn_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    import time

    from tqdm.auto import tqdm

    from sotazoo.papers.mask_rcnn.method import mask_rcnn_loss
    from sotazoo.papers.mask_rcnn.repro import normalise
    from sotazoo.train import seeded_model
    from sotazoo.train.detection import DetTrainConfig, held_out_scenes, lr_at, train_batch

    r = MaskRecipe(ksteps=budget or DEFAULT_KSTEPS)
    steps = r.ksteps * STEPS_PER_UNIT
    model = seeded_model("maskrcnn_mini", seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=r.lr)
    g = torch.Generator().manual_seed(seed)
    log: dict = {"loss": []}
    schedule = DetTrainConfig(steps=steps, lr=r.lr, warmup=r.warmup, milestones=r.milestones)
    t0 = time.perf_counter()
    with tqdm(total=steps, desc="train maskrcnn_mini", disable=not progress) as bar:
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(schedule, step)
            s = train_batch(seed, step, r.batch_size, masks=True)
            model.train()
            terms = mask_rcnn_loss(model, normalise(s["images"]), targets_of(s),
                                   rois_per_image=r.rois_per_image,
                                   train_pre_nms_top_n=r.train_pre_nms_top_n,
                                   train_post_nms_top_n=r.train_post_nms_top_n, generator=g)  # fmt: skip
            if not np.isfinite(float(terms["total"].detach())):
                raise FloatingPointError(f"maskrcnn_mini diverged at step {step}")
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            if step % 10 == 0 or step == steps - 1:
                log["loss"].append(
                    [step, {k: round(float(v.detach()), 5) for k, v in terms.items()}]
                )
            bar.update(1)
    log["seconds"] = round(time.perf_counter() - t0, 1)
    held_out = held_out_scenes(r.eval_scenes, masks=True)
    metrics = {f"heldout_{k}": v for k, v in evaluate(model, held_out).items()}
    return Trained(model=model.eval(), metrics=metrics,
                   log={"recipe": asdict(r), "eval_seed": EVAL_SEED, **log})  # fmt: skip


RECIPES = {"maskrcnn_mini": Recipe(train_maskrcnn_mini, unit="thousand steps",
                                   default=DEFAULT_KSTEPS)}  # fmt: skip
