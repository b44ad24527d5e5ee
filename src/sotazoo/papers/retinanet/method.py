"""The method of RetinaNet: the focal loss (§3), anchors and their assignment (§4 "Anchors"), box
coding, the training objective (§4.1) and the post-processing of §4 "Inference".

The paper's one idea is Eq. 5. A dense detector scores ~100k anchors per image; nearly all are
easy background whose cross-entropy is small but, summed, outweighs the few positives. The focal
loss multiplies each anchor's cross-entropy by (1 − p_t)^γ, so an anchor already classified with
p_t = 0.9 keeps 1% of its loss at γ = 2 and the rare hard ones set the gradient. With the prior
bias (every anchor starts at p = π = 0.01) and normalisation by the number of positive anchors,
training needs no sampling and no hard-negative mining.

Box arithmetic (IoU, clipping, class-wise NMS) is torchvision.ops'. Boxes are (x1, y1, x2, y2)
in input pixels; anchor centres sit on the grid points (x·stride, y·stride), torchvision's and
detectron2's convention (Detectron centres them at (stride − 1)/2 with its "+1" box widths).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image

from sotazoo.errors import InputError
from sotazoo.train.detection import Detector

BACKGROUND = -1  # match_anchors: IoU < 0.4 with every box
IGNORED = -2  # match_anchors: 0.4 <= best IoU < 0.5, no loss at all
BBOX_XFORM_CLIP = math.log(1000.0 / 16)  # cap on dw, dh before exp (Detectron, torchvision)


# ---------------------------------------------------------------- the focal loss (§3)


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> torch.Tensor:
    """FL(p_t) = −α_t (1 − p_t)^γ log(p_t) (Eq. 5), elementwise on independent sigmoids.

    p_t is p for a target of 1 and 1 − p for 0 (Eq. 2); α_t is α for 1 and 1 − α for 0 (Eq. 3);
    alpha < 0 turns the weighting off. γ = 0, α < 0 is plain binary cross-entropy (Eq. 1).
    """
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # −log p_t, stable
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma  # the modulating factor (1 − p_t)^γ (Eq. 4)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction != "none":
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    return loss


# ---------------------------------------------------------------- anchors (§4 "Anchors")


def cell_anchors(
    sizes: Sequence[float], ratios: Sequence[float], *, round_: bool = True
) -> torch.Tensor:
    """The A = len(ratios)·len(sizes) zero-centred anchors of one level, ratio-major: anchor
    r·S + s has area sizes[s]² and height/width ratios[r]. Rounded to integers (Detectron,
    torchvision) unless `round_` is False (detectron2)."""
    s = torch.as_tensor(sizes, dtype=torch.float32)
    h = torch.sqrt(torch.as_tensor(ratios, dtype=torch.float32))
    w = 1 / h
    ws = (w[:, None] * s[None, :]).reshape(-1)
    hs = (h[:, None] * s[None, :]).reshape(-1)
    a = torch.stack([-ws, -hs, ws, hs], dim=1) / 2
    return a.round() if round_ else a


def anchor_grid(cfg, feature_sizes: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
    """All anchors of an image, (N, 4), in the order of the network's outputs (level, y, x, a),
    and the number per level. Level l's anchors step by its nominal stride 2^l. (torchvision
    steps by image_size // grid_size instead: the same whenever the input side is a multiple of
    128, a few pixels less on P6/P7 otherwise.)"""
    out, counts = [], []
    for (h, w), stride, sizes in zip(feature_sizes, cfg.strides, cfg.anchor_sizes, strict=True):
        base = cell_anchors(sizes, cfg.aspect_ratios, round_=cfg.round_anchors)
        sx = torch.arange(w, dtype=torch.float32) * stride
        sy = torch.arange(h, dtype=torch.float32) * stride
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)  # (H·W, 1, 4)
        out.append((shifts + base[None]).reshape(-1, 4))  # (H·W·A, 4)
        counts.append(out[-1].shape[0])
    return torch.cat(out), counts


# ---------------------------------------------------------------- box coding (R-CNN's)


def encode_boxes(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Targets (tx, ty, tw, th) of `boxes` relative to `anchors`, weights (1, 1, 1, 1)."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    gw, gh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    gx, gy = boxes[:, 0] + 0.5 * gw, boxes[:, 1] + 0.5 * gh
    return torch.stack([(gx - ax) / aw, (gy - ay) / ah, torch.log(gw / aw), torch.log(gh / ah)], 1)


def decode_boxes(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Boxes (x1, y1, x2, y2) from deltas (dx, dy, dw, dh) on `anchors`; inverse of encode."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    dw = deltas[:, 2].clamp(max=BBOX_XFORM_CLIP)
    dh = deltas[:, 3].clamp(max=BBOX_XFORM_CLIP)
    cx, cy = deltas[:, 0] * aw + ax, deltas[:, 1] * ah + ay
    half_w, half_h = 0.5 * (torch.exp(dw) * aw), 0.5 * (torch.exp(dh) * ah)
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1)


# ---------------------------------------------------------------- assignment and loss (§4.1)


def match_anchors(
    gt_boxes: torch.Tensor,
    anchors: torch.Tensor,
    *,
    fg_iou: float = 0.5,
    bg_iou: float = 0.4,
    low_quality: bool = True,
) -> torch.Tensor:
    """For each anchor, the index of its ground-truth box (IoU >= 0.5), BACKGROUND (IoU < 0.4
    with every box) or IGNORED (in between) — §4.1 "Anchors".

    `low_quality`: as Detectron, detectron2 and torchvision, each box also claims the anchors of
    its highest IoU even below 0.5, so that no object goes without a positive anchor (a box that
    overlaps no anchor at all claims none; torchvision would then claim every IoU-0 anchor).
    """
    if gt_boxes.numel() == 0:
        return torch.full((anchors.shape[0],), BACKGROUND, dtype=torch.long)
    iou = box_iou(gt_boxes, anchors)  # (M, N)
    best_iou, best_gt = iou.max(dim=0)
    matches = best_gt.clone()
    matches[best_iou < bg_iou] = BACKGROUND
    matches[(best_iou >= bg_iou) & (best_iou < fg_iou)] = IGNORED
    if low_quality:
        best_per_gt = iou.max(dim=1, keepdim=True).values  # (M, 1)
        _, idx = torch.nonzero((iou == best_per_gt) & (best_per_gt > 0), as_tuple=True)
        matches[idx] = best_gt[idx]
    return matches


def split_outputs(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, K + 4) network output -> (B, N, K) class logits, (B, N, 4) box deltas."""
    return out[..., :-4], out[..., -4:]


def retinanet_loss(
    out: torch.Tensor,
    anchors: torch.Tensor,
    targets: Sequence[dict[str, torch.Tensor]],
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    box_loss: str = "smooth_l1",
    beta: float = 0.11,
    normalize: str = "image",
) -> dict[str, torch.Tensor]:
    """The training objective: focal loss summed over every non-ignored anchor and class, and the
    box loss over the positive anchors, both divided by max(1, number of positive anchors).

    Args:
        out: the network output (B, N, K + 4).
        anchors: (N, 4), from `RetinaNet.anchors`.
        targets: per image, "boxes" (M, 4) in input pixels and "labels" (M,) in [0, K).
        box_loss: "smooth_l1" with `beta` (Detectron: 0.11) or "l1" (torchvision).
        normalize: "image" divides each image's sums by its own positives and averages over the
            batch (torchvision); "batch" divides the batch's sums by the batch's positives
            (Detectron).
    """
    logits, deltas = split_outputs(out)
    k = logits.shape[-1]
    if len(targets) != out.shape[0]:
        raise InputError(f"{len(targets)} targets for a batch of {out.shape[0]} images")
    cls_sums, box_sums, n_pos = [], [], []
    for b, t in enumerate(targets):
        boxes, labels = t["boxes"], t["labels"]
        if boxes.ndim != 2 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:1]:
            raise InputError(f"target {b}: boxes must be (M, 4) and labels (M,)")
        if labels.numel() and not (int(labels.min()) >= 0 and int(labels.max()) < k):
            raise InputError(f"target {b}: labels must lie in [0, {k}), got {labels.tolist()}")
        matches = match_anchors(boxes, anchors)
        pos = matches >= 0
        valid = matches != IGNORED
        onehot = torch.zeros_like(logits[b])
        onehot[pos, labels[matches[pos]]] = 1.0
        cls_sums.append(
            sigmoid_focal_loss(
                logits[b][valid], onehot[valid], alpha=alpha, gamma=gamma, reduction="sum"
            )
        )
        target = encode_boxes(boxes[matches[pos]], anchors[pos])
        if box_loss == "smooth_l1":
            box_sums.append(F.smooth_l1_loss(deltas[b][pos], target, beta=beta, reduction="sum"))
        elif box_loss == "l1":
            box_sums.append(F.l1_loss(deltas[b][pos], target, reduction="sum"))
        else:
            raise ValueError(f"box_loss must be 'smooth_l1' or 'l1', got {box_loss!r}")
        n_pos.append(int(pos.sum()))
    if normalize == "image":
        cls = sum(c / max(1, n) for c, n in zip(cls_sums, n_pos, strict=True)) / len(targets)
        box = sum(r / max(1, n) for r, n in zip(box_sums, n_pos, strict=True)) / len(targets)
    elif normalize == "batch":
        cls, box = sum(cls_sums) / max(1, sum(n_pos)), sum(box_sums) / max(1, sum(n_pos))
    else:
        raise ValueError(f"normalize must be 'image' or 'batch', got {normalize!r}")
    return {"classification": cls, "box_regression": box}


# ---------------------------------------------------------------- inference (§4 "Inference")


@torch.no_grad()
def postprocess(
    out: torch.Tensor,
    anchors: torch.Tensor,
    counts: Sequence[int],
    image_size: tuple[int, int],
    *,
    score_thresh: float = 0.05,
    topk: int = 1000,
    nms_thresh: float = 0.5,
    max_detections: int = 100,
) -> list[dict[str, torch.Tensor]]:
    """Detections per image: on each level keep the `topk` scores above `score_thresh`, decode
    their boxes and clip them to the image, then class-wise NMS over all levels and the
    `max_detections` best. Defaults: §4 "Inference" and Detectron (100 detections per image,
    COCO's limit; torchvision keeps 300, detectron2 100).

    Returns one dict per image: "boxes" (D, 4), "scores" (D,), "labels" (D,) in [0, K).
    """
    logits, deltas = split_outputs(out)
    k = logits.shape[-1]
    results = []
    for b in range(out.shape[0]):
        boxes_all, scores_all, labels_all = [], [], []
        split = (logits[b].split(counts), deltas[b].split(counts), anchors.split(counts))
        levels = zip(*split, strict=True)
        for logit, delta, anchor in levels:
            scores = torch.sigmoid(logit).flatten()  # anchor-major: index = anchor·K + class
            keep = scores > score_thresh
            idx = torch.where(keep)[0]
            scores, order = scores[keep].topk(min(topk, idx.numel()))
            idx = idx[order]
            a = torch.div(idx, k, rounding_mode="floor")
            boxes = clip_boxes_to_image(decode_boxes(delta[a], anchor[a]), image_size)
            boxes_all.append(boxes)
            scores_all.append(scores)
            labels_all.append(idx % k)
        boxes, scores, labels = map(torch.cat, (boxes_all, scores_all, labels_all))
        keep = batched_nms(boxes, scores, labels, nms_thresh)[:max_detections]
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results


# ---------------------------------------------------------------- the shared detection loop's view


class RetinaNetDetector(Detector):
    """RetinaNet in `sotazoo.train.detection`'s loop: ImageNet normalisation, the focal loss
    plus smooth L1 (`retinanet_loss`, with the loop's `loss_kw`: alpha, gamma, ...), and
    `postprocess` at the evaluation threshold 0.05 (§4 "Inference")."""

    def loss(self, out: torch.Tensor, boxes: list, labels: list) -> dict[str, torch.Tensor]:
        anchors, _ = self.model.anchors(self.size, self.size)
        targets = [{"boxes": b, "labels": lb} for b, lb in zip(boxes, labels, strict=True)]
        terms = retinanet_loss(out, anchors.to(out.device), targets, **self.loss_kw)
        terms["total"] = terms["classification"] + terms["box_regression"]
        return terms

    def postprocess(self, out: torch.Tensor, **settings) -> list[dict[str, torch.Tensor]]:
        anchors, counts = self.model.anchors(self.size, self.size)
        settings = {"score_thresh": self.score_thresh, **settings}
        return postprocess(out, anchors.to(out.device), counts, (self.size, self.size), **settings)


def detector(model: torch.nn.Module, *, size: int = 128, **loss_kw) -> RetinaNetDetector:
    """The contract's `method.detector`: `model` as the shared detection loop trains it."""
    from sotazoo.transforms import IMAGENET_MEAN, IMAGENET_STD

    return RetinaNetDetector(model, loss_kw, IMAGENET_MEAN, IMAGENET_STD, 0.05, size)
