"""RetinaNet checkpoints.

torchvision's COCO model (`RetinaNet_ResNet50_FPN_Weights.COCO_V1`), a port trained by the
torchvision team to the paper's recipe: its file name ends in the first 8 hex digits of the
file's sha256 (torchvision checks only that prefix); the full digest is the one the LibreYOLO
project records for the same file (`weights/upload_retinanet_hf.py`, 136,595,076 bytes). Parameters, box AP and the recipe are torchvision's meta. The
converter reads torchvision's options (P6 from P5, stride on the 3x3, integer anchor sizes,
91 class slots) from the layout; the eps of its FrozenBatchNorm follows the file's keys (see
`convert.py`). The Detectron (Caffe2) release is a pickle of numpy arrays that we do not read.
"""

from sotazoo.data.detection_shapes import DETECTION_CLASSES
from sotazoo.transforms import IMAGENET_MEAN, IMAGENET_STD
from sotazoo.weights import Weights, trained_here

_FILE = "retinanet_resnet50_fpn_coco-eeacb38b.pth"

WEIGHTS = (
    Weights(
        model="retinanet_resnet50_fpn",
        tag="official",
        urls=(f"https://download.pytorch.org/models/{_FILE}",),
        sha256="eeacb38b7cec8cf93c57867e05eaab621047f19b0d2ec5accaa405f690da15b7",
        filename=_FILE,
        format="pth",
        converter="sotazoo.papers.retinanet.convert:convert_state_dict",
        num_params=34_014_999,
        metrics={"coco_val2017_box_ap": 36.4},
        metrics_source="torchvision's weights meta (RetinaNet_ResNet50_FPN_Weights.COCO_V1)",
        recipe="https://github.com/pytorch/vision/tree/main/references/detection#retinanet",
        license="BSD-3-Clause (torchvision)",
        transforms={"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "min_size": 800, "max_size": 1333},
    ),
)

# Ours: `sotazoo train retinanet_mini --seed 0` (papers/retinanet/train.py), run on CPU; the log
# beside the file records the command, commit, machine, recipe, losses and held-out COCO AP
# (tests recompute it). The site's demo runs it.
WEIGHTS += (
    trained_here(
        "retinanet",
        "retinanet_mini",
        sha256="5d54edd578677a8f69428f9d4b7c8d0dce55c494a89671dde92f728936bee3c8",
        converter="sotazoo.papers.retinanet.convert:from_sotazoo",
        num_params=312_888,
        metrics={"heldout_map": 0.48398, "heldout_ap50": 0.68058, "heldout_ap75": 0.57256},
        measured_on="COCO AP (pycocotools) on 500 held-out synthetic shape scenes (seed 500), "
        "never trained on",
        transforms={"size": 128, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                    "classes": DETECTION_CLASSES},  # fmt: skip
    ),
)
