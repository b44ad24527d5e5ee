"""Mask R-CNN's browser demo: `maskrcnn_mini` finds the shapes of generated scenes and outlines
each one's own pixels.

The site's `instances` widget (site/static/widgets/instances.mjs) wants what a reader sees:
boxes (D, 4) xyxy in input pixels, scores (D,), labels (D,) (0-based, the spec's `labels`) and
masks (D, H, W), each detection's mask probabilities pasted into the image; it paints every pixel
above 0.5 (§3.1) in its detection's colour and draws the boxes. So the exported graph,
`Instances`, is the whole model — proposals, RoIAlign, class-wise NMS and the mask branch, which
onnxruntime-web's wasm build runs (NonMaxSuppression, RoiAlign, TopK, NonZero) — followed by the
demo's score threshold and the paste (`method.paste_masks`, "grid": one GridSample over all
detections, detectron2's paste). Nothing is left for JavaScript but drawing.

The score threshold is detectron2's demo default (0.5), not the 0.05 of the COCO evaluation: the
widget shows what a user would call a detection. Samples: scenes of
`sotazoo.data.detection_shapes` from seed 7 (training uses seeds >= 10^6, the held-out scenes
seed 500), and one scene of clutter without objects.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sotazoo.export import DEFAULT_TOLERANCE, DetectionGraph
from sotazoo.papers.mask_rcnn.method import paste_masks

SIZE = 128  # the input side of maskrcnn_mini (its card's input_size)
SAMPLE_SEED = 7  # below 1000: never a training seed
N_SCENES = 5
SCORE_THRESHOLD = 0.5  # detectron2's demo default
MASK_THRESHOLD = 0.5  # §3.1: "binarized at a threshold of 0.5"


class Instances(DetectionGraph):
    """Mask R-CNN, the demo's score threshold and the mask paste, for one normalised (1, 3, size,
    size) image: boxes (D, 4), scores (D,), labels (D,) in [0, K) and masks (D, size, size)."""

    output_names = ("boxes", "scores", "labels", "masks")
    dynamic_axes = {name: {0: "detections"} for name in output_names}
    # Boxes and scores as DetectionGraph's; labels equal or wrong; masks are probabilities in
    # [0, 1], bilinear samples of sigmoids, checked absolutely at the default bound.
    export_tolerance = {**DetectionGraph.export_tolerance, "masks": DEFAULT_TOLERANCE}

    def __init__(self, model: nn.Module, *, size: int = SIZE,
                 score_thresh: float = SCORE_THRESHOLD) -> None:  # fmt: skip
        super().__init__(model, size)
        self.score_thresh = score_thresh

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.check_input(x)
        out = self.model(x)[0]  # (D, 11 + M²), best first, zero rows after the last
        out = out[out[:, 4] > self.score_thresh]
        m = self.model.cfg.mask_size
        boxes = out[:, :4]
        masks = paste_masks(out[:, 11:].reshape(-1, m, m), boxes, (self.size, self.size))
        return boxes, out[:, 4], out[:, 5].long() - 1, masks  # labels: slot 0 is the background


def export_module(model: nn.Module) -> Instances:
    """The module the site exports instead of the raw network (see `sotazoo.site.build`)."""
    return Instances(model)


def samples(out_dir: Path) -> list[dict]:
    """The demo's scenes as 128 x 128 PNGs: `N_SCENES` scenes of 1 to 6 objects, then one of
    clutter only (no objects)."""
    from sotazoo.data.detection_shapes import make_detection_scenes
    from sotazoo.transforms import save_png

    scenes = make_detection_scenes(N_SCENES, size=SIZE, seed=SAMPLE_SEED)
    empty = make_detection_scenes(1, size=SIZE, seed=SAMPLE_SEED, min_objects=0, max_objects=0)
    paths = [save_png(img, Path(out_dir) / f"scene{i + 1}.png")
             for i, img in enumerate(scenes["images"])]  # fmt: skip
    paths.append(save_png(empty["images"][0], Path(out_dir) / "clutter.png"))
    return [{"path": p} for p in paths]


def spec_extra() -> dict:
    """The widget draws every detection the graph returns (it keeps those above the threshold)
    and paints each mask's pixels above `mask_threshold`."""
    return {"score_threshold": SCORE_THRESHOLD, "mask_threshold": MASK_THRESHOLD}
