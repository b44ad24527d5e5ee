"""YOLOv3's loss and its post-processing (§2.1-2.3 of the paper; darknet `src/yolo_layer.c`).

Decoding (§2.1). A prediction (t_x, t_y, t_w, t_h) in cell (c_x, c_y) of a map of stride s, with
anchor (p_w, p_h) in input pixels, is the box

    b_x = (sigmoid(t_x) + c_x) s,   b_y = (sigmoid(t_y) + c_y) s,   b_w = p_w e^{t_w},   b_h = p_h e^{t_h}

(t_w and t_h capped at log(1000/16) before the exp, as Detectron's decoder caps its deltas.)

Objectness is sigmoid(t_o) and every class score is its own sigmoid (§2.2: "we simply use
independent logistic classifiers", no softmax, so one box may be both "woman" and "person").
A detection's score for class k is objectness x class probability (darknet's `get_yolo_detections`).

Assignment (§2.1, `forward_yolo_layer`). Each ground truth goes to ONE prediction: the anchor, of
all nine, whose shape (both boxes centred at the origin) overlaps its own the most, at that
anchor's scale, in the cell that holds the box centre. That prediction is trained on box,
objectness 1 and classes. Every other prediction is trained on objectness 0 unless its decoded
box overlaps some ground truth by more than the ignore threshold: then it gets no loss at all.
The paper says 0.5; the released cfg/yolov3.cfg says ignore_thresh = .7 (the card's deviations).

The terms, written as the losses whose gradients are darknet's deltas (darknet applies each delta
to the raw conv output, without the derivative of the sigmoid):
- objectness and classes: binary cross-entropy with logits (delta = target - sigmoid);
- x, y: delta = scale (t - sigmoid(t_x)), the gradient of scale x BCE(sigmoid(t_x), t) with a soft
  target t in [0, 1); we subtract the target's entropy, a constant, so the term is 0 at a perfect fit;
- w, h: delta = scale (t - t_w), the gradient of scale (t - t_w)^2 / 2 (§2.1: sum of squared
  error, "the gradient is the ground truth value minus our prediction");
- scale = 2 - w h (w, h the box's size as fractions of the image): small boxes weigh up to 2x.
Darknet sums the deltas over a batch and divides the learning rate by the batch size; each term
here is the sum over predictions divided by the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, box_iou

from sotazoo.papers.retinanet.method import BBOX_XFORM_CLIP
from sotazoo.train.detection import Detector

Anchors = Sequence[Sequence[tuple[float, float]]]  # per output: the (w, h) of its anchors
Targets = Sequence[tuple[torch.Tensor, torch.Tensor]]  # per image: boxes (n, 4) xyxy, labels (n,)


def prediction_grid(
    anchors: Anchors, strides: Sequence[int], img_size: tuple[int, int], device=None
) -> dict[str, torch.Tensor]:
    """For each of the N predictions, in the order of the model's output (map by map, anchor by
    anchor, row by row): its cell (cx, cy), stride, anchor (aw, ah) and anchor slot in its map."""
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("cx", "cy", "stride", "aw", "ah", "a")}
    for level, s in zip(anchors, strides, strict=True):
        h, w = img_size[0] // s, img_size[1] // s
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        a = torch.tensor(level, dtype=torch.float32)  # (A, 2)
        rows["cx"].append(xs.flatten().repeat(len(level)))  # (A h w,)
        rows["cy"].append(ys.flatten().repeat(len(level)))
        rows["stride"].append(torch.full((len(level) * h * w,), s))
        rows["aw"].append(a[:, 0].repeat_interleave(h * w))
        rows["ah"].append(a[:, 1].repeat_interleave(h * w))
        rows["a"].append(torch.arange(len(level)).repeat_interleave(h * w))
    return {k: torch.cat(v).to(device) for k, v in rows.items()}


def decode(
    out: torch.Tensor, anchors: Anchors, strides: Sequence[int], img_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw outputs (B, N, 5 + C) -> boxes (B, N, 4) xyxy in input pixels, objectness (B, N) and
    class probabilities (B, N, C), each class its own sigmoid."""
    g = prediction_grid(anchors, strides, img_size, out.device)
    if out.shape[1] != g["cx"].numel():
        raise ValueError(
            f"{out.shape[1]} predictions, but strides {tuple(strides)} and {len(anchors[0])} "
            f"anchors per cell give {g['cx'].numel()} for a {img_size[0]}x{img_size[1]} input"
        )
    s = g["stride"].to(out.dtype)
    cx = (torch.sigmoid(out[..., 0]) + g["cx"]) * s  # b_x = sigmoid(t_x) + c_x, in pixels
    cy = (torch.sigmoid(out[..., 1]) + g["cy"]) * s
    # b_w = p_w e^{t_w}, with t_w capped at log(1000/16) first, as the Detectron and torchvision
    # box decoders cap theirs: an untrained or diverging network's logits of ~90 would give
    # infinite boxes (float32 exp overflows at 88.7), which NMS and IoU turn into NaN. The cap
    # binds only for boxes over 62x their anchor, larger than any input.
    bw = g["aw"] * torch.exp(out[..., 2].clamp(max=BBOX_XFORM_CLIP))
    bh = g["ah"] * torch.exp(out[..., 3].clamp(max=BBOX_XFORM_CLIP))
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)
    return boxes, torch.sigmoid(out[..., 4]), torch.sigmoid(out[..., 5:])


def postprocess(
    out: torch.Tensor,
    anchors: Anchors,
    strides: Sequence[int],
    img_size: tuple[int, int],
    *,
    score_thresh: float = 0.5,
    nms_thresh: float = 0.45,
    max_det: int = 300,
) -> list[dict[str, torch.Tensor]]:
    """Detections per image: `boxes` (xyxy, input pixels, not clipped), `scores`, `labels`.

    Score = objectness x class probability; every (box, class) pair above `score_thresh` is a
    candidate (so one box may carry several labels), then NMS per class at IoU `nms_thresh`.
    Darknet's defaults: `detector test` 0.5, the COCO evaluation 0.005, NMS 0.45 for both.
    """
    boxes, obj, cls = decode(out, anchors, strides, img_size)
    scores = obj.unsqueeze(-1) * cls  # (B, N, C)
    results = []
    for b in range(out.shape[0]):
        idx, label = torch.nonzero(scores[b] > score_thresh, as_tuple=True)
        sc = scores[b, idx, label]
        keep = batched_nms(boxes[b, idx], sc, label, nms_thresh)[:max_det]
        results.append({"boxes": boxes[b, idx[keep]], "scores": sc[keep], "labels": label[keep]})
    return results


def build_targets(
    targets: Targets,
    anchors: Sequence[tuple[float, float]],
    masks: Sequence[Sequence[int]],
    strides: Sequence[int],
    img_size: tuple[int, int],
    num_classes: int,
) -> dict[str, torch.Tensor]:
    """The one prediction each ground truth is assigned to, and what it is trained towards.

    Returns, per assigned prediction (M of them): `batch` and `index` (its row in the model's
    output), `txy` and `twh` (the t values that decode to the box), `scale` (2 - w h) and `cls`
    (M, C) multi-hot. Two boxes that fall on the same prediction share it as darknet does: the
    later box sets the box target, and the classes of both are positive.
    """
    all_anchors = torch.tensor(anchors, dtype=torch.float32)  # (total, 2)
    where = {a: (lvl, k) for lvl, m in enumerate(masks) for k, a in enumerate(m)}
    grids = [(img_size[0] // s, img_size[1] // s) for s in strides]
    sizes = [len(m) * h * w for m, (h, w) in zip(masks, grids, strict=True)]
    offsets = [sum(sizes[:lvl]) for lvl in range(len(sizes))]  # first row of each map
    slots: dict[tuple[int, int], dict] = {}
    for b, (boxes, labels) in enumerate(targets):
        boxes = boxes.detach().float().cpu().reshape(-1, 4)
        wh = boxes[:, 2:] - boxes[:, :2]
        if (wh <= 0).any() or not ((labels >= 0) & (labels < num_classes)).all():
            raise ValueError(
                f"image {b}: boxes must be xyxy with x2 > x1 and y2 > y1, labels in "
                f"[0, {num_classes}); got boxes {boxes.tolist()} and labels {labels.tolist()}"
            )
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        # Shape-only IoU with every anchor: both boxes centred at the origin.
        inter = torch.minimum(wh[:, None], all_anchors[None]).prod(-1)  # (n, total)
        iou = inter / (wh.prod(-1)[:, None] + all_anchors.prod(-1)[None] - inter)
        best = iou.argmax(1)  # ties: the first anchor, as darknet's strict ">" loop
        for t in range(len(boxes)):
            lvl, k = where[int(best[t])]
            s, (h, w) = strides[lvl], grids[lvl]
            i = min(max(int(centre[t, 0] // s), 0), w - 1)  # the cell holding the centre
            j = min(max(int(centre[t, 1] // s), 0), h - 1)
            row = offsets[lvl] + k * h * w + j * w + i
            slot = slots.setdefault((b, row), {"cls": torch.zeros(num_classes)})
            slot["txy"] = centre[t] / s - torch.tensor([i, j], dtype=torch.float32)
            slot["twh"] = torch.log(wh[t] / all_anchors[best[t]])
            slot["scale"] = 2 - float(wh[t, 0] / img_size[1] * wh[t, 1] / img_size[0])
            slot["cls"][int(labels[t])] = 1.0
    keys = list(slots)
    return {
        "batch": torch.tensor([b for b, _ in keys], dtype=torch.long),
        "index": torch.tensor([r for _, r in keys], dtype=torch.long),
        "txy": torch.stack([slots[k]["txy"] for k in keys]) if keys else torch.zeros(0, 2),
        "twh": torch.stack([slots[k]["twh"] for k in keys]) if keys else torch.zeros(0, 2),
        "scale": torch.tensor([slots[k]["scale"] for k in keys], dtype=torch.float32),
        "cls": torch.stack([slots[k]["cls"] for k in keys])
        if keys
        else torch.zeros(0, num_classes),
    }


def ignored(
    out: torch.Tensor,
    targets: Targets,
    anchors: Anchors,
    strides: Sequence[int],
    img_size: tuple[int, int],
    ignore_thresh: float,
) -> torch.Tensor:
    """(B, N) True where the decoded box overlaps some ground truth by more than the threshold."""
    with torch.no_grad():
        boxes = decode(out.detach(), anchors, strides, img_size)[0]
    mask = torch.zeros(out.shape[:2], dtype=torch.bool, device=out.device)
    for b, (gt, _) in enumerate(targets):
        if len(gt):
            mask[b] = box_iou(boxes[b], gt.to(boxes)).amax(1) > ignore_thresh
    return mask


def yolo_loss(
    out: torch.Tensor,
    targets: Targets,
    *,
    anchors: Sequence[tuple[float, float]],
    masks: Sequence[Sequence[int]],
    strides: Sequence[int],
    img_size: tuple[int, int],
    ignore_thresh: float = 0.5,
) -> dict[str, torch.Tensor]:
    """YOLOv3's loss on raw outputs (B, N, 5 + C): the terms `xy`, `wh`, `obj` (assigned
    predictions), `noobj` (the others, less the ignored) and `cls`, and their sum `total`.

    `anchors`, `masks`, `strides` are those of the model's config (`model.cfg`); `targets` holds,
    per image, boxes (n, 4) xyxy in input pixels and labels (n,). `ignore_thresh`: 0.5 in the
    paper, 0.7 in the released cfg.
    """
    batch, num_classes = out.shape[0], out.shape[-1] - 5
    level_anchors = [[anchors[i] for i in m] for m in masks]
    t = build_targets(targets, anchors, masks, strides, img_size, num_classes)
    t = {k: v.to(out.device) for k, v in t.items()}
    positive = torch.zeros(out.shape[:2], dtype=torch.bool, device=out.device)
    positive[t["batch"], t["index"]] = True
    skip = ignored(out, targets, level_anchors, strides, img_size, ignore_thresh) & ~positive
    bce = F.binary_cross_entropy_with_logits
    negative = ~positive & ~skip
    obj_logit = out[..., 4]
    p = out[t["batch"], t["index"]]  # (M, 5 + C): the assigned predictions
    scale = t["scale"].unsqueeze(1).to(out.dtype)
    entropy = -(torch.xlogy(t["txy"], t["txy"]) + torch.xlogy(1 - t["txy"], 1 - t["txy"]))
    terms = {
        "xy": (scale * (bce(p[:, :2], t["txy"], reduction="none") - entropy)).sum(),
        "wh": (0.5 * scale * (p[:, 2:4] - t["twh"]) ** 2).sum(),
        "obj": bce(p[:, 4], torch.ones_like(p[:, 4]), reduction="sum"),
        "noobj": bce(obj_logit[negative], torch.zeros_like(obj_logit[negative]), reduction="sum"),
        "cls": bce(p[:, 5:], t["cls"].to(out.dtype), reduction="sum"),
    }
    terms = {k: v / batch for k, v in terms.items()}
    terms["total"] = sum(terms.values())
    return terms


def letterbox(
    img: torch.Tensor, size: int | tuple[int, int]
) -> tuple[torch.Tensor, tuple[float, float, float, float]]:
    """Darknet's test-time resize (`letterbox_image`, image.c): scale (C, H, W) to fit `size`
    keeping the aspect ratio, centre it on grey 0.5. Returns the image and (sx, sy, pad_x, pad_y)
    for `unletterbox`. Bilinear resizing here; darknet's own bilinear differs slightly."""
    nh, nw = (size, size) if isinstance(size, int) else size
    h, w = img.shape[-2:]
    if nw / w < nh / h:
        new_w, new_h = nw, h * nw // w
    else:
        new_w, new_h = w * nh // h, nh
    resized = F.interpolate(img[None], size=(new_h, new_w), mode="bilinear", align_corners=False)
    canvas = img.new_full((img.shape[0], nh, nw), 0.5)
    px, py = (nw - new_w) // 2, (nh - new_h) // 2
    canvas[:, py : py + new_h, px : px + new_w] = resized[0]
    return canvas, (new_w / w, new_h / h, float(px), float(py))


def unletterbox(boxes: torch.Tensor, info: tuple[float, float, float, float]) -> torch.Tensor:
    """Boxes (n, 4) xyxy in letterboxed pixels -> pixels of the original image (darknet's
    `correct_yolo_boxes`)."""
    sx, sy, px, py = info
    return (boxes - boxes.new_tensor([px, py, px, py])) / boxes.new_tensor([sx, sy, sx, sy])


# ---------------------------------------------------------------- the shared detection loop's view


class YOLOv3Detector(Detector):
    """YOLOv3 in `sotazoo.train.detection`'s loop: RGB in [0, 1] as it is, `yolo_loss` (with the
    loop's `loss_kw`: ignore_thresh), and `postprocess` at darknet's COCO-evaluation threshold
    0.005 (`validate_detector`)."""

    def loss(self, out: torch.Tensor, boxes: list, labels: list) -> dict[str, torch.Tensor]:
        cfg = self.model.cfg
        return yolo_loss(out, list(zip(boxes, labels, strict=True)), anchors=cfg.anchors,
                         masks=cfg.masks, strides=cfg.strides, img_size=(self.size, self.size),
                         **self.loss_kw)  # fmt: skip

    def postprocess(self, out: torch.Tensor, **settings) -> list[dict[str, torch.Tensor]]:
        cfg = self.model.cfg
        settings = {"score_thresh": self.score_thresh, **settings}
        return postprocess(out, cfg.level_anchors, cfg.strides, (self.size, self.size), **settings)


def detector(model: torch.nn.Module, *, size: int = 128, **loss_kw) -> YOLOv3Detector:
    """The contract's `method.detector`: `model` as the shared detection loop trains it."""
    return YOLOv3Detector(model, loss_kw, None, None, 0.005, size)
