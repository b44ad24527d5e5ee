"""The method of Mask R-CNN: the multi-task training loss of §3 (RPN, box and mask terms, with
Faster R-CNN's sampling), reading the model's output, and pasting the 28×28 masks into the image.

The paper's mask loss (§3, "Mask Representation" and "Loss"): the mask branch predicts K masks of
m × m per RoI; a per-pixel sigmoid and the average binary cross-entropy are taken on the channel
of the RoI's ground-truth class only, and only for positive RoIs (IoU >= 0.5 with a ground-truth
box). The target is the RoI's ground-truth mask cropped to the RoI and resized to m × m. Because
no class competes with another for a pixel, the classifier alone decides the label; Table 2b's
ablation instead takes a per-pixel softmax over the K classes and the background
(`mask_activation="softmax"`), the multinomial loss of FCNs.

The RPN and box terms are Faster R-CNN's as Detectron and torchvision implement them: anchors
with IoU >= 0.7 are positive, < 0.3 negative (plus each box's best anchors), 256 sampled per image
at most half positive, binary cross-entropy plus smooth L1 (β = 1/9) divided by the number
sampled; proposals (the ground-truth boxes added) with IoU >= 0.5 are foreground, the rest
background, 512 sampled per image (§3.1) at most a quarter foreground, cross-entropy over the
K + 1 slots plus smooth L1 on the foreground's class-specific deltas, divided by the number
sampled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, roi_align

from sotazoo.errors import InputError
from sotazoo.papers.retinanet.method import BACKGROUND, match_anchors

# ---------------------------------------------------------------- reading the output


def unpack(out: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """The detections of `MaskRCNN.forward`'s (B, D, 11 + M²) output, per image: "boxes" (n, 4),
    "scores" (n,), "labels" (n,) (classifier slots, 1 … K), "proposals" (n, 4), "objectness"
    (n,) and "masks" (n, M, M) probabilities; the zero rows after the last detection dropped."""
    m = int(round((out.shape[-1] - 11) ** 0.5))
    if out.ndim != 3 or m * m + 11 != out.shape[-1]:
        raise InputError(f"not a Mask R-CNN output (B, D, 11 + M²): {tuple(out.shape)}")
    result = []
    for o in out:
        o = o[o[:, 4] > 0]  # a detection's score is above the threshold; padding is 0
        result.append({"boxes": o[:, :4], "scores": o[:, 4], "labels": o[:, 5].round().long(),
                       "proposals": o[:, 6:10], "objectness": o[:, 10],
                       "masks": o[:, 11:].reshape(-1, m, m)})  # fmt: skip
    return result


# ---------------------------------------------------------------- pasting masks (§3.1)


def paste_masks(
    masks: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int], *, method: str = "grid"
) -> torch.Tensor:
    """(n, H, W) probabilities of the (n, M, M) `masks` resized into their `boxes` in an image of
    `size` (threshold them at 0.5 for the binary masks of §3.1).

    "grid": each image pixel centre samples the mask bilinearly at its position inside the box,
    zero outside (detectron2's `paste_masks_in_image`, and what the browser graph does).
    "torchvision": torchvision's, which copies Detectron's: the mask padded by one zero pixel on
    every side and the box widened to match, rounded to whole pixels, then the mask resized to it.
    """
    n, h, w = masks.shape[0], *size
    if method == "grid":
        x0, y0, x1, y1 = (boxes[:, i, None] for i in range(4))
        xs = (torch.arange(w, device=masks.device, dtype=masks.dtype) + 0.5 - x0) / (
            x1 - x0
        ) * 2 - 1
        ys = (torch.arange(h, device=masks.device, dtype=masks.dtype) + 0.5 - y0) / (
            y1 - y0
        ) * 2 - 1
        grid = torch.stack([xs[:, None, :].expand(-1, h, w), ys[:, :, None].expand(-1, h, w)], 3)
        return F.grid_sample(masks[:, None], grid, align_corners=False)[:, 0]
    if method != "torchvision":
        raise ValueError(f"method must be 'grid' or 'torchvision', got {method!r}")
    m = masks.shape[-1]
    scale = (m + 2) / m
    padded = F.pad(masks, (1, 1, 1, 1))
    cx, cy = (boxes[:, 0] + boxes[:, 2]) * 0.5, (boxes[:, 1] + boxes[:, 3]) * 0.5
    hw, hh = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale, (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    wide = torch.stack([cx - hw, cy - hh, cx + hw, cy + hh], 1).to(torch.int64)  # truncated
    out = masks.new_zeros(n, h, w)
    for i, (bx0, by0, bx1, by1) in enumerate(wide.tolist()):
        bw, bh = max(bx1 - bx0 + 1, 1), max(by1 - by0 + 1, 1)
        resized = F.interpolate(padded[i][None, None], size=(bh, bw), mode="bilinear",
                                align_corners=False)[0, 0]  # fmt: skip
        xa, xb, ya, yb = max(bx0, 0), min(bx1 + 1, w), max(by0, 0), min(by1 + 1, h)
        if xb > xa and yb > ya:
            out[i, ya:yb, xa:xb] = resized[ya - by0 : yb - by0, xa - bx0 : xb - bx0]
    return out


# ---------------------------------------------------------------- sampling and coding


def sample(labels: torch.Tensor, per_image: int, positive_fraction: float,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Indices of the sampled positives (labels >= 1) and negatives (labels == 0): at most
    `per_image` · `positive_fraction` positives, negatives filling the rest, chosen at random
    (Faster R-CNN's balanced sampler). Labels < 0 are never sampled."""
    pos, neg = torch.where(labels >= 1)[0], torch.where(labels == 0)[0]
    n_pos = min(int(per_image * positive_fraction), pos.numel())
    n_neg = min(per_image - n_pos, neg.numel())
    pos = pos[torch.randperm(pos.numel(), generator=generator)[:n_pos].to(pos.device)]
    neg = neg[torch.randperm(neg.numel(), generator=generator)[:n_neg].to(neg.device)]
    return pos, neg


def encode(boxes: torch.Tensor, refs: torch.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """R-CNN regression targets of `boxes` relative to `refs`, times `weights`; inverse of
    `model.decode`."""
    wx, wy, ww, wh = weights
    rw, rh = refs[:, 2] - refs[:, 0], refs[:, 3] - refs[:, 1]
    rx, ry = refs[:, 0] + 0.5 * rw, refs[:, 1] + 0.5 * rh
    gw, gh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    gx, gy = boxes[:, 0] + 0.5 * gw, boxes[:, 1] + 0.5 * gh
    return torch.stack([wx * (gx - rx) / rw, wy * (gy - ry) / rh,
                        ww * torch.log(gw / rw), wh * torch.log(gh / rh)], 1)  # fmt: skip


def mask_targets(masks: torch.Tensor, rois: torch.Tensor, size: int) -> torch.Tensor:
    """(R, size, size) binary targets: each RoI's ground-truth mask (R, H, W) cropped to the RoI
    and resized to size × size (RoIAlign on the full-resolution mask), binarised at 0.5 as
    Detectron's rasterised polygon targets are."""
    idx = torch.arange(len(rois), device=rois.device, dtype=rois.dtype)[:, None]
    crops = roi_align(masks[:, None].to(rois.dtype), torch.cat([idx, rois], 1), size, 1.0, 2)
    return (crops[:, 0] >= 0.5).to(rois.dtype)


# ---------------------------------------------------------------- the multi-task loss (§3)


def mask_rcnn_loss(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: list[dict[str, torch.Tensor]],
    *,
    rpn_per_image: int = 256,
    rois_per_image: int = 512,
    train_pre_nms_top_n: int = 2000,
    train_post_nms_top_n: int = 2000,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """L = L_cls + L_box + L_mask (§3), plus the RPN's objectness and box terms, for a normalised
    batch and its targets ("boxes" (M, 4) xyxy in pixels, "labels" (M,) in 1 … K, "masks" (M, H,
    W) bool); "total" is their sum. Proposal counts at training time are torchvision's."""
    cfg = model.cfg
    image_size = (int(images.shape[-2]), int(images.shape[-1]))
    if len(targets) != images.shape[0]:
        raise InputError(f"{len(targets)} targets for a batch of {images.shape[0]} images")
    for b, t in enumerate(targets):
        n = t["boxes"].shape[0]
        if (
            t["boxes"].shape != (n, 4)
            or t["labels"].shape != (n,)
            or t["masks"].shape != (n, *image_size)
        ):
            raise InputError(
                f"target {b}: boxes (M, 4), labels (M,) and masks (M, H, W) must agree"
            )
        if n and not (int(t["labels"].min()) >= 1 and int(t["labels"].max()) < cfg.num_classes):
            raise InputError(
                f"target {b}: labels must lie in [1, {cfg.num_classes}) (0 is background)"
            )
    feats = model.features(images)
    logits, deltas = model.rpn.head(feats)
    anchors, counts = model.anchors(feats, image_size)

    # RPN: 256 anchors per image, up to half positive.
    obj_l, obj_t, box_l, n_rpn = [], [], [], 0
    for b, t in enumerate(targets):
        matches = match_anchors(t["boxes"], anchors, fg_iou=0.7, bg_iou=0.3)
        # 1: positive, 0: negative, -1: between the thresholds, never sampled
        lab = torch.where(matches >= 0, 1, torch.where(matches == BACKGROUND, 0, -1))
        pos, neg = sample(lab, rpn_per_image, 0.5, generator)
        idx = torch.cat([pos, neg])
        obj_l.append(logits[b, idx])
        obj_t.append(torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).to(logits.dtype))
        target = encode(t["boxes"][matches[pos]], anchors[pos])
        box_l.append(F.smooth_l1_loss(deltas[b, pos], target, beta=1 / 9, reduction="sum"))
        n_rpn += idx.numel()
    rpn_objectness = F.binary_cross_entropy_with_logits(torch.cat(obj_l), torch.cat(obj_t))
    rpn_box = sum(box_l) / max(1, n_rpn)

    # Second stage: proposals (no gradient through them) plus the ground truth, 512 sampled.
    with torch.no_grad():
        proposals = model.propose(logits.detach(), deltas.detach(), anchors, counts, image_size,
                                  pre_nms_top_n=train_pre_nms_top_n,
                                  post_nms_top_n=train_post_nms_top_n)  # fmt: skip
    rois, roi_labels, roi_targets, fg_rois, fg_labels, fg_masks = [], [], [], [], [], []
    for (props, _), t in zip(proposals, targets, strict=True):
        props = torch.cat([props, t["boxes"]])
        lab = torch.zeros_like(props[:, 0], dtype=torch.long)
        best = torch.zeros_like(lab)
        if t["boxes"].numel():
            best_iou, best = box_iou(t["boxes"], props).max(dim=0)
            lab = torch.where(best_iou >= 0.5, t["labels"][best], 0)
        pos, neg = sample(lab, rois_per_image, 0.25, generator)
        idx = torch.cat([pos, neg])
        rois.append(props[idx])
        roi_labels.append(lab[idx])
        tgt = torch.zeros_like(props[idx])
        tgt[: pos.numel()] = encode(t["boxes"][best[pos]], props[pos], cfg.box_coder_weights)
        roi_targets.append(tgt)
        fg_rois.append(props[pos])  # per image, possibly none: `pool` numbers images by position
        fg_labels.append(lab[pos])
        fg_masks.append(t["masks"][best[pos]])
    cls_logits, box_deltas = model.box_outputs(feats, rois, image_size)
    labels = torch.cat(roi_labels)
    loss_cls = F.cross_entropy(cls_logits, labels)
    fg = torch.where(labels > 0)[0]
    loss_box = F.smooth_l1_loss(box_deltas[fg, labels[fg]], torch.cat(roi_targets)[fg], beta=1 / 9,
                                reduction="sum") / max(1, labels.numel())  # fmt: skip

    # The mask branch on the positive RoIs only, its loss on the ground-truth class (§3).
    fg_labels = torch.cat(fg_labels)
    if fg_labels.numel():
        logits = model.mask_logits(feats, fg_rois, image_size)  # (P, K + 1, M, M)
        target = torch.cat([mask_targets(m, r, logits.shape[-1])
                            for m, r in zip(fg_masks, fg_rois, strict=True) if len(r)])  # fmt: skip
        loss_mask = mask_loss(logits, fg_labels, target, cfg.mask_activation)
    else:  # no positive RoI: a zero that keeps the mask branch in the graph
        loss_mask = sum(p.sum() for p in model.roi_heads.mask_predictor.parameters()) * 0.0
    return {"rpn_objectness": rpn_objectness, "rpn_box": rpn_box, "classifier": loss_cls,
            "box_regression": loss_box, "mask": loss_mask,
            "total": rpn_objectness + rpn_box + loss_cls + loss_box + loss_mask}  # fmt: skip


def mask_loss(logits: torch.Tensor, labels: torch.Tensor, target: torch.Tensor,
              activation: str = "sigmoid") -> torch.Tensor:  # fmt: skip
    """L_mask (§3): the average binary cross-entropy of the per-pixel sigmoid on the channel of
    each RoI's ground-truth class, or (Table 2b's "softmax") the per-pixel cross-entropy of a
    softmax over the K + 1 slots, whose target is the class inside the mask and the background
    (slot 0) outside it. `logits` (P, K + 1, M, M), `labels` (P,), `target` (P, M, M) in {0, 1}."""
    if activation == "sigmoid":
        own = logits[torch.arange(len(labels), device=labels.device), labels]
        return F.binary_cross_entropy_with_logits(own, target)
    if activation == "softmax":
        pixel_labels = (target > 0.5).long() * labels[:, None, None]
        return F.cross_entropy(logits, pixel_labels)
    raise ValueError(f"activation must be 'sigmoid' or 'softmax', got {activation!r}")
