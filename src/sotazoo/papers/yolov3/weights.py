"""YOLOv3 checkpoints: the authors' darknet release, and the small demo model we trained.

The release (pjreddie.com, linked from https://pjreddie.com/darknet/yolo/): `yolov3.weights` is
one COCO network for every input size (the paper evaluates it at 320, 416 and 608), and
`yolov3-tiny.weights` the tiny one. They are darknet binaries (a header, then every parameter in
layer order, `convert.read_darknet_weights`), with no published checksum from the author; the
sha256 digests here are the ones independent downloaders record for these files (for example
OpenCV-based and Keras-based YOLOv3 ports pin the same 523e4e69... and dccea06f... digests).
Metrics: the paper's table beside Figure 3 (arXiv v1), COCO test-dev.
"""

from __future__ import annotations

from sotazoo.data.detection_shapes import DETECTION_CLASSES
from sotazoo.weights import Weights, trained_here

_BASE = "https://pjreddie.com/media/files/"
_YOLOV3_SHA = "523e4e69e1d015393a1b0a441cef1d9c7659e3eb2d7e15f793f060a21b32f297"
_TINY_SHA = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"
_PAPER = "YOLOv3 paper, table beside Figure 3 (arXiv v1): COCO test-dev"
_LICENSE = "YOLO license (pjreddie/darknet LICENSE: public domain)"


def _official(model: str, size: int, ap: float | None, ap50: float | None) -> Weights:
    metrics = {} if ap is None else {"coco_testdev_ap": ap, "coco_testdev_ap50": ap50}
    return Weights(
        model=model,
        tag="official",
        urls=(_BASE + "yolov3.weights",),
        sha256=_YOLOV3_SHA,
        filename="yolov3.weights",
        format="darknet",
        num_params=61_949_149,
        metrics=metrics,
        metrics_source=_PAPER if metrics else "",
        recipe="https://github.com/pjreddie/darknet (cfg/yolov3.cfg, darknet53.conv.74 init)",
        license=_LICENSE,
        transforms={"size": size, "range": "RGB in [0, 1], letterboxed on grey 0.5",
                    "letterbox": 0.5},
    )


WEIGHTS = (
    _official("yolov3_320", 320, 28.2, 51.5),
    _official("yolov3_416", 416, 31.0, 55.3),
    _official("yolov3_608", 608, 33.0, 57.9),
    Weights(
        model="yolov3_tiny",
        tag="official",
        urls=(_BASE + "yolov3-tiny.weights",),
        sha256=_TINY_SHA,
        filename="yolov3-tiny.weights",
        format="darknet",
        num_params=8_852_366,
        recipe="https://github.com/pjreddie/darknet (cfg/yolov3-tiny.cfg)",
        license=_LICENSE,
        transforms={"size": 416, "range": "RGB in [0, 1], letterboxed on grey 0.5",
                    "letterbox": 0.5},
    ),
)

# Ours: `sotazoo train yolov3_mini --seed 0` (papers/yolov3/train.py), run on CPU and stored in
# half precision; the log beside the file records the command, commit, machine, recipe, losses and
# held-out COCO AP of the stored weights (tests recompute it). The site's demo runs it.
WEIGHTS += (
    trained_here(
        "yolov3",
        "yolov3_mini",
        sha256="fa61782ae2dc4b1d0babb56843c83fefd284ccb379ae594fe4cf6be5d11ca283",
        num_params=2_257_001,
        metrics={"heldout_map": 0.30772, "heldout_ap50": 0.58116, "heldout_ap75": 0.30909},
        measured_on="COCO AP (pycocotools) on 500 held-out synthetic shape scenes (seed 500), "
        "never trained on",
        transforms={"size": 128, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
                    "classes": DETECTION_CLASSES},  # fmt: skip
    ),
)
