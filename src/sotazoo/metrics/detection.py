"""COCO detection metrics (mAP, AP50, AP75, AP by object size), computed by pycocotools, of boxes
(iouType "bbox") or of instance masks (iouType "segm", the overlap of pixels instead of boxes).

`coco_map` scores detections against a COCO-format ground truth with pycocotools' `COCOeval`
(iouType "bbox"), the reference implementation every detection paper since COCO reports; we only
convert formats, silence its prints and name its numbers. What it computes, in brief:

- per category and IoU threshold t in {0.50, 0.55, …, 0.95}, detections are sorted by score
  (at most 100 per image) and greedily matched to the unmatched ground-truth box of highest IoU
  >= t; AP is the precision, made monotone, averaged at the 101 recall points 0, 0.01, …, 1;
- "map" (AP@[.5:.95]) averages AP over categories and the 10 thresholds; "ap50" and "ap75" are
  t = 0.5 and t = 0.75 alone;
- "ap_small", "ap_medium", "ap_large" restrict the ground truth to area < 32², 32² to 96², and
  > 96² (the ground truth's `area` field, its segment area in COCO; a detection's box area),
  averaged over the 10 thresholds; "ar100" is the recall with 100 detections per image.

A category without ground truth is left out of the averages; a number over no ground truth at all
is undefined (pycocotools says -1) and is returned as NaN, as detectron2 does.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["coco_map"]

# Where each number sits in COCOeval.stats (COCOeval.summarize, iouType "bbox").
_STATS = {
    "map": 0,
    "ap50": 1,
    "ap75": 2,
    "ap_small": 3,
    "ap_medium": 4,
    "ap_large": 5,
    "ar100": 8,
}


def _check_gt(gt: Mapping) -> None:
    for key in ("images", "annotations", "categories"):
        if key not in gt or not isinstance(gt[key], list):
            raise ValueError(f"ground truth must be a COCO dict with a list under {key!r}")
    if not gt["categories"]:
        raise ValueError("ground truth has no categories")
    image_ids = {img["id"] for img in gt["images"]}
    category_ids = {c["id"] for c in gt["categories"]}
    for ann in gt["annotations"]:
        bbox = ann.get("bbox")
        if bbox is None or len(bbox) != 4 or "area" not in ann or "id" not in ann:
            raise ValueError(f"annotation {ann!r} needs an id, a bbox [x, y, w, h] and an area")
        if ann["id"] == 0:
            raise ValueError("annotation ids must not be 0 (pycocotools reads 0 as unmatched)")
        if ann.get("image_id") not in image_ids:
            raise ValueError(
                f"annotation {ann['id']}: image_id {ann.get('image_id')} not in images"
            )
        if ann.get("category_id") not in category_ids:
            raise ValueError(
                f"annotation {ann['id']}: category_id {ann.get('category_id')} not in categories"
            )


def _results(detections: Sequence[Mapping], image_ids: set, category_ids: list[int],
             masks: Mapping | None = None) -> list[dict]:  # fmt: skip
    """Detections per image (xyxy, 0-based labels) -> COCO results (xywh, category ids), with
    each mask's run-length encoding under "segmentation" if `masks` (image id -> (H, W))."""
    from sotazoo.data.detection_shapes import encode_masks

    out = []
    for n, det in enumerate(detections):
        missing = {
            "image_id",
            "boxes",
            "scores",
            "labels",
            *(["masks"] if masks is not None else []),
        }
        missing -= set(det)
        if missing:
            raise ValueError(f"detections[{n}] lacks {sorted(missing)}")
        image_id = det["image_id"]
        image_id = image_id.item() if hasattr(image_id, "item") else image_id
        if image_id not in image_ids:
            raise ValueError(f"detections[{n}]: image_id {image_id!r} is not in the ground truth")
        # np.asarray takes lists, numpy arrays and CPU torch tensors alike.
        boxes = np.asarray(det["boxes"], dtype=np.float64)
        scores = np.asarray(det["scores"], dtype=np.float64)
        labels = np.asarray(det["labels"])
        if boxes.size == 0 and scores.size == 0 and labels.size == 0:
            continue
        d = len(scores)
        if boxes.shape != (d, 4) or scores.shape != (d,) or labels.shape != (d,):
            raise ValueError(
                f"detections[{n}]: boxes must be (D, 4), scores and labels (D,); got "
                f"{boxes.shape}, {scores.shape}, {labels.shape}"
            )
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise ValueError(f"detections[{n}]: boxes and scores must be finite")
        if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
            raise ValueError(f"detections[{n}]: boxes must be xyxy with x2 >= x1 and y2 >= y1")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"detections[{n}]: labels must be integers, got {labels.dtype}")
        if ((labels < 0) | (labels >= len(category_ids))).any():
            raise ValueError(
                f"detections[{n}]: labels must lie in [0, {len(category_ids)}), "
                f"got {labels.tolist()}"
            )
        rles = [None] * d
        if masks is not None:
            m = np.asarray(det["masks"])
            if m.shape != (d, *masks[image_id]) or m.dtype != np.bool_:
                raise ValueError(f"detections[{n}]: masks must be (D, H, W) = {(d, *masks[image_id])} "
                                 f"bool, the image's size; got {m.shape} {m.dtype}")  # fmt: skip
            rles = encode_masks(m)
        for (x1, y1, x2, y2), score, label, rle in zip(
            boxes.tolist(), scores.tolist(), labels.tolist(), rles, strict=True
        ):
            out.append(
                # A mask result has no box: pycocotools' loadRes then takes its area (for the
                # size ranges) from the mask, as Detectron's segm results do.
                {"image_id": image_id, "category_id": category_ids[label], "score": score}
                | ({"bbox": [x1, y1, x2 - x1, y2 - y1]} if rle is None else {"segmentation": rle})
            )
    return out


def coco_map(
    gt: Mapping, detections: Sequence[Mapping], *, iou_type: str = "bbox"
) -> dict[str, float]:
    """COCO box AP (or, with `iou_type="segm"`, mask AP) of `detections` against `gt`, computed
    by pycocotools.

    Args:
        gt: a COCO ground-truth dict ("images", "annotations", "categories"), e.g. from
            `sotazoo.data.detection_shapes.to_coco`. It is not modified.
        detections: one dict per image (images without one have no detections): "image_id",
            "boxes" (D, 4) xyxy in pixels, "scores" (D,), "labels" (D,), 0-based indices into the
            categories sorted by id (label + 1 for `to_coco`'s). Arrays, lists or CPU tensors.
            For "segm", also "masks" (D, H, W) bool, the pasted masks; `gt`'s annotations then
            need a "segmentation" (`to_coco` of scenes drawn with `masks=True`).
        iou_type: "bbox" or "segm".

    Returns:
        "map", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar100", each in [0, 1], or
        NaN where no ground truth falls in its scope. No detections at all score 0.0.

    Raises:
        ValueError: if `gt` or `detections` is malformed.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    _check_gt(gt)
    if iou_type == "segm" and any("segmentation" not in a for a in gt["annotations"]):
        raise ValueError("mask AP needs a 'segmentation' in every ground-truth annotation")
    category_ids = sorted(c["id"] for c in gt["categories"])
    image_ids = {img["id"] for img in gt["images"]}
    sizes = {img["id"]: (img.get("height"), img.get("width")) for img in gt["images"]}
    results = _results(detections, image_ids, category_ids, sizes if iou_type == "segm" else None)
    # COCOeval writes an "ignore" flag into the ground-truth annotations: give it copies.
    dataset = {
        **gt,
        "annotations": [dict(a) for a in gt["annotations"]],
        "images": list(gt["images"]),
        "categories": [dict(c) for c in gt["categories"]],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:
            # loadRes cannot take an empty list; an empty result set scores 0 where there is
            # ground truth, as it should.
            coco_dt = COCO()
            coco_dt.dataset = {
                "images": dataset["images"],
                "categories": dataset["categories"],
                "annotations": [],
            }
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    return {name: float(stats[i]) if stats[i] >= 0 else math.nan for name, i in _STATS.items()}
