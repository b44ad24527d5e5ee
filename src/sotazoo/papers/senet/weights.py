"""SENet checkpoints: the public ImageNet ones, and the small demo classifier we trained.

The public ones are the PyTorch port of the Caffe release (Cadene's pretrainedmodels).

URLs: `pretrainedmodels/models/senet.py` (`pretrained_settings`). The file names end in the first
8 hex digits of the sha256 (torch.hub convention), the only hash the publisher gives: 32 bits,
too few to trust a download. `FULL_SHA256` holds the full digests that independent users of these
files recorded after downloading them (each starts with the published prefix; the source is named
beside it); a file with no known full digest is not fetched by sotazoo: download it yourself and
pass its path (`sotazoo.weights.fetch` says so). Metrics: timm's model index for the same files (top-1/top-5 on the
ImageNet validation set, crop 0.875, bilinear).
"""

from sotazoo.data import SHAPE_CLASSES
from sotazoo.weights import Weights, trained_here

# The demo classifier's normalisation of the shapes images ([0, 1] RGB), used by its recipe.
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)
_CADENE = "http://data.lip6.fr/cadene/pretrainedmodels/"
_TIMM_MIRROR = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/"
_TRANSFORMS = {
    "resize": 256,
    "crop": 224,
    "interpolation": "bilinear",
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}
_TIMM_INDEX = "timm model index (docs/models/legacy-se-res*.md)"


FULL_SHA256 = {
    # jiarundongjack/breastdm-reproduction, code/classification/exp2_run_records/
    # exp2_provenance.py (`expected_weights`, checked after download)
    "se_resnet50-ce0d4300.pth": "ce0d430017d3f4aa6b5658c72209f3bfffb060207fd26a2ef0b203ce592eba01",
}


def _official(model: str, filename: str, num_params: int, **meta) -> Weights:
    return Weights(
        model=model,
        tag="official",
        urls=(_CADENE + filename, _TIMM_MIRROR + filename),
        sha256=FULL_SHA256.get(filename, filename.rsplit("-", 1)[1].split(".")[0]),
        filename=filename,
        format="pth",
        converter="sotazoo.papers.senet.convert:convert_state_dict",
        num_params=num_params,
        license="Apache-2.0 (SENet release); BSD-3-Clause (pretrainedmodels port)",
        recipe="https://github.com/hujie-frank/SENet (Caffe), converted by Cadene/pretrainedmodels",
        transforms=_TRANSFORMS,
        **meta,
    )


WEIGHTS = (
    _official(
        "seresnet50",
        "se_resnet50-ce0d4300.pth",
        28_088_024,
        gflops=3.87,
        metrics={"imagenet_top1": 77.64, "imagenet_top5": 93.74},
        metrics_source=_TIMM_INDEX,
    ),
    _official("seresnet101", "se_resnet101-7e38fcc6.pth", 49_326_872),
    _official("seresnet152", "se_resnet152-d17c99b7.pth", 66_821_848),
    _official(
        "seresnext50_32x4d",
        "se_resnext50_32x4d-a260b3a4.pth",
        27_559_896,
        metrics={"imagenet_top1": 79.08, "imagenet_top5": 94.43},
        metrics_source=_TIMM_INDEX,
    ),
    _official("seresnext101_32x4d", "se_resnext101_32x4d-3b2fe3d8.pth", 48_955_416),
    _official(
        "senet154",
        "senet154-c7b49a05.pth",
        115_088_984,
        metrics={"imagenet_top1": 81.33, "imagenet_top5": 95.51},
        metrics_source=_TIMM_INDEX,
    ),
)

# Ours: `sotazoo train seresnet_mini --seed 0`, run on CPU; the log beside the file records the
# command, commit, machine, losses and held-out accuracy (tests recompute the accuracy).
WEIGHTS += (
    trained_here(
        "senet",
        "seresnet_mini",
        sha256="e25a3721f31100184313809c2e9fc6cbe71f33e4060bb39cde6b03b83c5492c2",
        num_params=266_138,
        metrics={"shapes_val_top1": 99.35},
        measured_on="2,000 held-out shapes-in-clutter images (seed 2), never trained on",
        transforms={"size": 32, "mean": MEAN, "std": STD, "classes": SHAPE_CLASSES},
    ),
)
