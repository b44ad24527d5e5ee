"""RetinaNet's browser demo: `retinanet_mini` finds the shapes of generated detection scenes.

The site's `detect` widget (site/static/widgets/detect.mjs) wants decoded detections, boxes (D, 4) xyxy
in input pixels, scores (D,) and labels (D,), and does no post-processing of its own beyond a
score threshold. So the exported graph is `Detections`: the network, then the inference step of
§4 "Inference" as `method.postprocess` does it, traced into ONNX (TopK, NonZero, and
torchvision's batched NMS as ONNX NonMaxSuppression, which onnxruntime-web's wasm build runs).

What is the paper's: per level, the `topk` (1000) highest scores above a threshold, boxes decoded
from their anchors, class-wise NMS at IoU 0.5 over all levels, at most 100 detections (§4 and
Detectron's TEST.DETECTIONS_PER_IM). What is ours: the order of the first two steps. The graph
takes the top-k of every score of a level first and then drops those at or below the threshold,
so that k is a constant (the number of scores of a level is fixed for a 128 x 128 input); this
keeps exactly the set that `method.postprocess` keeps (threshold, then top-k of what is left),
in the same order, and tests/test_detection_demo.py checks it. The score threshold is the demo's
(`SCORE_THRESHOLD`, 0.4, where F1 of the demo weights on 300 held-out scenes peaks among
0.2 ... 0.5: `sotazoo.train.detection.operating_points`, tests/test_detection_train.py;
detectron2's demo uses 0.5), not the 0.05 of the COCO evaluation: the widget shows what a user
would call a detection.

Samples: scenes of `sotazoo.data.detection_shapes` from seed 7 (training uses seeds >= 10^6, so
they are never trained on), and one scene of clutter without objects.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.ops import batched_nms, clip_boxes_to_image

from sotazoo.data.detection_shapes import make_detection_scenes
from sotazoo.export import DetectionGraph
from sotazoo.papers.retinanet.method import decode_boxes, split_outputs
from sotazoo.transforms import save_png

SIZE = 128  # the input side of retinanet_mini (its card's input_size)
SAMPLE_SEED = 7  # below 1000: never a training seed
N_SCENES = 5
SCORE_THRESHOLD = 0.4  # best F1 of the demo weights on held-out scenes (tested)
NMS_THRESHOLD = 0.5  # §4 "Inference"
TOPK = 1000  # §4 "Inference": per level
MAX_DETECTIONS = 100  # Detectron TEST.DETECTIONS_PER_IM


class Detections(DetectionGraph):
    """RetinaNet + its post-processing, for one normalised (1, 3, size, size) image: returns
    boxes (D, 4) xyxy in input pixels (clipped to the image), scores (D,) and labels (D,)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        size: int = SIZE,
        score_thresh: float = SCORE_THRESHOLD,
        nms_thresh: float = NMS_THRESHOLD,
        topk: int = TOPK,
        max_detections: int = MAX_DETECTIONS,
    ) -> None:
        super().__init__(model, size)
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.topk, self.max_detections = topk, max_detections
        anchors, counts = model.anchors(size, size)
        self.register_buffer("anchors", anchors, persistent=False)  # (N, 4), output order
        self.counts = counts  # anchors per level, P3 first

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.check_input(x)
        logits, deltas = split_outputs(self.model(x)[0])  # (N, K), (N, 4)
        k = logits.shape[-1]
        boxes, scores, labels = [], [], []
        per_level = zip(logits.split(self.counts), deltas.split(self.counts),
                        self.anchors.split(self.counts), strict=True)  # fmt: skip
        for logit, delta, anchor in per_level:
            s = torch.sigmoid(logit).flatten()  # anchor-major: index = anchor·K + class
            # Top-k first (k a constant), then the threshold: the set postprocess keeps.
            s, idx = s.topk(min(self.topk, s.numel()))
            keep = s > self.score_thresh
            s, idx = s[keep], idx[keep]
            a = torch.div(idx, k, rounding_mode="floor")
            boxes.append(clip_boxes_to_image(decode_boxes(delta[a], anchor[a]), (self.size,) * 2))
            scores.append(s)
            labels.append(idx % k)
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.max_detections]
        return boxes[keep], scores[keep], labels[keep]

    def postprocess_kwargs(self) -> dict:
        """The arguments of `method.postprocess` that give the same detections."""
        return {"score_thresh": self.score_thresh, "topk": self.topk,
                "nms_thresh": self.nms_thresh, "max_detections": self.max_detections}  # fmt: skip


def export_module(model: nn.Module) -> Detections:
    """The module the site exports instead of the raw network (see `sotazoo.site.build`)."""
    return Detections(model)


def samples(out_dir: Path) -> list[Path]:
    """Write the demo's scenes as 128 x 128 PNGs: `N_SCENES` scenes of 1 to 6 objects, then one
    of clutter only (no objects). Returns their paths in that order."""
    return save_scenes(out_dir, seed=SAMPLE_SEED, n=N_SCENES, size=SIZE)


def save_scenes(out_dir: Path, *, seed: int, n: int, size: int) -> list[Path]:
    scenes = make_detection_scenes(n, size=size, seed=seed)
    empty = make_detection_scenes(1, size=size, seed=seed, min_objects=0, max_objects=0)
    paths = [save_png(img, Path(out_dir) / f"scene{i + 1}.png")
             for i, img in enumerate(scenes["images"])]  # fmt: skip
    return [*paths, save_png(empty["images"][0], Path(out_dir) / "clutter.png")]


def spec_extra() -> dict:
    """The widget draws every output box scoring at least `score_threshold`: the graph returns
    only those above it, so it draws exactly what the graph kept."""
    return {"score_threshold": SCORE_THRESHOLD, "nms_threshold": NMS_THRESHOLD}
