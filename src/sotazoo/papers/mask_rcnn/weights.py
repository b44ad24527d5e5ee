"""Mask R-CNN checkpoints.

- `official`: torchvision's COCO model (`MaskRCNN_ResNet50_FPN_Weights.COCO_V1`), a port trained
  by the torchvision team to the paper's recipe. Its file name ends in the first 8 hex digits of
  the file's sha256 (torchvision checks only that prefix); the full digest is the one that
  independent users of the same file record, e.g. lc542/ActiveVision-Research-Workbench
  (`src/activevision_workbench/adapters/gazexplain/config.py`, GAZEXPLAIN_MASKRCNN_COCO_SHA256;
  three other projects record the same digest). Parameters, box and mask AP
  and the recipe are torchvision's meta. The converter reads torchvision's options (stride on
  the 3x3, rounded anchors, RoIAlign unaligned, 91 class slots) from the layout, and the eps of
  its FrozenBatchNorm from the file's keys (see `convert.py`).
- `detectron2`: detectron2's model zoo R50-FPN 3x (`COCO-InstanceSegmentation/
  mask_rcnn_R_50_FPN_3x`, model id 137849600), from the authors' group; box and mask AP from its
  MODEL_ZOO.md (COCO val2017). Its name ends in a 6-hex-digit tag, not a hash the publisher
  gives; the full sha256 is the one InterDigitalInc/CompressAI-Vision checks after download
  (`scripts/install.sh`, `sha256sum --check`). It is a pickle of numpy arrays: `convert.load`
  reads it without running pickled code (the entry names no converter, so that the paper's
  reader, not `default_load`, gets the file) and maps it onto our 81 class slots and normalised
  RGB input. `num_params` counts the converted model (detectron2's own has no background rows in
  its box and mask predictors: 4,357 parameters fewer).
- `sotazoo`: `maskrcnn_mini` trained by our recipe (`train.py`) for the site's demo.
"""

from sotazoo.data.detection_shapes import DETECTION_CLASSES
from sotazoo.transforms import IMAGENET_MEAN, IMAGENET_STD
from sotazoo.weights import Weights, trained_here

_TV_FILE = "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
_D2_URL = (
    "https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/"
    "137849600/model_final_f10217.pkl"
)

WEIGHTS = (
    Weights(
        model="maskrcnn_resnet50_fpn",
        tag="official",
        urls=(f"https://download.pytorch.org/models/{_TV_FILE}",),
        sha256="bf2d0c1efbc936eeee2bc95a48e80ebc86b891f61b0106485937fc29f9315fc0",
        filename=_TV_FILE,
        format="pth",
        converter="sotazoo.papers.mask_rcnn.convert:convert_state_dict",
        num_params=44_401_393,
        metrics={"coco_val2017_box_ap": 37.9, "coco_val2017_mask_ap": 34.6},
        metrics_source="torchvision's weights meta (MaskRCNN_ResNet50_FPN_Weights.COCO_V1)",
        recipe="https://github.com/pytorch/vision/tree/main/references/detection#mask-r-cnn",
        license="BSD-3-Clause (torchvision)",
        transforms={"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "min_size": 800, "max_size": 1333},
    ),
    Weights(
        model="maskrcnn_resnet50_fpn",
        tag="detectron2",
        urls=(_D2_URL,),
        sha256="9a737e290372f1f70994ebcbd89d8004dbb3ae30a605fd915a190fa4a782dd66",
        filename="model_final_f10217.pkl",
        format="pkl",  # read by the paper's convert.load
        num_params=44_347_573,
        metrics={"coco_val2017_box_ap": 41.0, "coco_val2017_mask_ap": 37.2},
        metrics_source="detectron2 MODEL_ZOO.md (COCO Instance Segmentation Baselines with "
        "Mask R-CNN: R50-FPN, 3x, model id 137849600)",
        recipe="https://github.com/facebookresearch/detectron2/blob/main/configs/"
        "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
        license="CC-BY-SA-3.0 (detectron2 model zoo)",
        transforms={"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "min_size": 800, "max_size": 1333},
        notes="Converted from detectron2's BGR 0-255 input to normalised RGB (exact). Anchors "
        "match detectron2's when the input sides are multiples of 64 (convert.py lists what "
        "else differs); paste masks with method.paste_masks(..., method='grid').",
    ),
)

# Ours: `sotazoo train maskrcnn_mini --seed 0` (papers/mask_rcnn/train.py), run on CPU; the log
# beside the file records the command, commit, machine, recipe, losses and held-out box and mask
# AP (a test recomputes them). The site's demo runs it.
WEIGHTS += (
    trained_here(
        "mask_rcnn",
        "maskrcnn_mini",
        sha256="6d8a78074c11cb716203be0911444890dfb12ce865934397be954e19f7c8a5ab",
        num_params=435_485,
        metrics={
            "heldout_box_map": 70.482,
            "heldout_box_ap50": 89.061,
            "heldout_box_ap75": 84.086,
            "heldout_mask_map": 64.105,
            "heldout_mask_ap50": 88.27,
            "heldout_mask_ap75": 72.693,
        },  # fmt: skip
        measured_on="COCO box and mask AP (pycocotools, in points) on 300 held-out synthetic "
        "shape scenes (seed 500), never trained on",
        transforms={
            "size": 128,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "classes": DETECTION_CLASSES,
        },  # fmt: skip
    ),
)
