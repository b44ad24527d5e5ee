"""YOLOv3's browser demo: `yolov3_mini` finds the shapes of generated detection scenes.

The site's `detect` widget (site/static/widgets/detect.mjs) wants decoded detections, boxes (D, 4) xyxy
in input pixels, scores (D,) and labels (D,), and applies only a score threshold. So the exported
graph is `Detections`: the network, then `method.decode` and the steps of `method.postprocess`
(score = objectness x class probability, every (box, class) pair above the threshold, NMS per
class), traced into ONNX; torchvision's batched NMS becomes ONNX NonMaxSuppression, which
onnxruntime-web's wasm build runs. Nothing is simplified: the graph keeps what `postprocess`
keeps, in the same order (tests/test_detection_demo.py).

What is darknet's: NMS at IoU 0.45 (`method`'s default). What is ours: the score threshold, 0.4
(darknet's `detect` uses 0.5), where F1 of the demo weights on 300 held-out scenes peaks among 0.2
... 0.5 (`sotazoo.train.detection.operating_points`; tests/test_detection_train.py); the input is
the 128 x 128 image as it is (RGB in [0, 1], no letterbox: the samples are already square and of
the network's size; the widget centre-crops and resizes other images instead of letterboxing them)
and the samples: scenes of `sotazoo.data.detection_shapes` from seed 7 (training uses seeds >=
10^6), and one scene of clutter without objects. They are RetinaNet's demo scenes, so the two pages
show the same images.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.ops import batched_nms

from sotazoo.export import DetectionGraph
from sotazoo.papers.retinanet.demo import save_scenes
from sotazoo.papers.yolov3.method import decode

SIZE = 128  # the input side of yolov3_mini (its card's input_size)
SAMPLE_SEED = 7  # below 1000: never a training seed
N_SCENES = 5
SCORE_THRESHOLD = 0.4  # best F1 of the demo weights on held-out scenes (tested)
NMS_THRESHOLD = 0.45  # darknet's NMS (method.postprocess)
MAX_DETECTIONS = 300  # method.postprocess's max_det


class Detections(DetectionGraph):
    """YOLOv3 + decode + NMS for one (1, 3, size, size) image in [0, 1]: returns boxes (D, 4)
    xyxy in input pixels (not clipped, as darknet's), scores (D,) and labels (D,)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        size: int = SIZE,
        score_thresh: float = SCORE_THRESHOLD,
        nms_thresh: float = NMS_THRESHOLD,
        max_det: int = MAX_DETECTIONS,
    ) -> None:
        super().__init__(model, size)
        self.score_thresh, self.nms_thresh, self.max_det = score_thresh, nms_thresh, max_det

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.check_input(x)
        cfg = self.model.cfg
        boxes, obj, cls = decode(self.model(x), cfg.level_anchors, cfg.strides, (self.size,) * 2)
        scores = obj[0].unsqueeze(-1) * cls[0]  # (N, C): objectness x class probability
        idx, label = torch.nonzero(scores > self.score_thresh, as_tuple=True)
        s = scores[idx, label]
        keep = batched_nms(boxes[0, idx], s, label, self.nms_thresh)[: self.max_det]
        return boxes[0, idx[keep]], s[keep], label[keep]

    def postprocess_kwargs(self) -> dict:
        """The arguments of `method.postprocess` that give the same detections."""
        return {
            "score_thresh": self.score_thresh,
            "nms_thresh": self.nms_thresh,
            "max_det": self.max_det,
        }


def export_module(model: nn.Module) -> Detections:
    """The module the site exports instead of the raw network (see `sotazoo.site.build`)."""
    return Detections(model)


def samples(out_dir: Path) -> list[Path]:
    """Write the demo's scenes as 128 x 128 PNGs: `N_SCENES` scenes of 1 to 6 objects, then one
    of clutter only. Returns their paths in that order."""
    return save_scenes(out_dir, seed=SAMPLE_SEED, n=N_SCENES, size=SIZE)


def spec_extra() -> dict:
    """The widget draws every output box scoring at least `score_threshold`: the graph returns
    only those above it, so it draws exactly what the graph kept."""
    return {"score_threshold": SCORE_THRESHOLD, "nms_threshold": NMS_THRESHOLD}
