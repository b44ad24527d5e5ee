"""Checkpoint layouts for SENet, recognised by their keys and mapped onto ours.

- `sotazoo`: our keys, which are those of the PyTorch port of the Caffe release (Cadene's
  `pretrainedmodels` `se_resnet50-ce0d4300.pth` etc., and timm's `legacy_*` models): `layer0.*`,
  `layerN.i.se_module.fc1`, `last_linear`. Loaded as they are.
- `timm_resnet`: timm's ResNet-family SE models (`seresnet50`, `seresnext50_32x4d`, `senet154`,
  their `.a1_in1k`-style weights): `conv1`/`bn1` (or the deep stem `conv1.0…conv1.6`), `se.fc1`,
  `fc`. Those networks pad the stem max-pool and put every stride on the 3×3, so the model is
  built with `pool="pad", stride_in_1x1=False` to compute exactly what timm computes.
"""

from __future__ import annotations

import re

import torch

from sotazoo.weights import WeightsError

# timm's deep stem (Sequential of conv, bn, relu ×3, then bn1) -> our layer0 names.
_DEEP_STEM = {
    "conv1.0.": "layer0.conv1.",
    "conv1.1.": "layer0.bn1.",
    "conv1.3.": "layer0.conv2.",
    "conv1.4.": "layer0.bn2.",
    "conv1.6.": "layer0.conv3.",
}


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a SENet checkpoint from its keys; `WeightsError` when none fits."""
    if "last_linear.weight" in keys and any(k.startswith("layer0.") for k in keys):
        return "sotazoo"
    if "fc.weight" in keys and ("conv1.weight" in keys or "conv1.0.weight" in keys):
        return "timm_resnet"
    sample = sorted(keys)[:8]
    raise WeightsError(
        "unrecognised SENet checkpoint layout: expected 'layer0.*' + 'last_linear.*' (sotazoo, "
        "Cadene's pretrainedmodels, timm legacy_*) or 'conv1.*' + 'fc.*' (timm seresnet*/"
        f"seresnext*/senet154); the file's first keys are {sample}"
    )


def _timm_key(k: str, deep_stem: bool) -> str:
    if deep_stem:
        for old, new in _DEEP_STEM.items():
            if k.startswith(old):
                return new + k[len(old) :]
        if k.startswith("bn1."):
            return "layer0.bn3." + k[4:]
    elif k.startswith(("conv1.", "bn1.")):
        return "layer0." + k
    if k.startswith("fc."):
        return "last_linear." + k[3:]
    return re.sub(r"^(layer\d+\.\d+)\.se\.", r"\1.se_module.", k)


def convert_state_dict(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys.

    Returns the state dict, the config overrides the checkpoint needs (its class count, and for
    timm's ResNet layout the padded pool and 3×3 strides) and the layout's name.
    """
    layout = detect_layout(set(sd))
    overrides: dict[str, object] = {}
    if layout == "timm_resnet":
        deep = "conv1.0.weight" in sd
        sd = {_timm_key(k, deep): v for k, v in sd.items()}
        overrides.update(pool="pad", stride_in_1x1=False)
    if "last_linear.weight" in sd:
        overrides["num_classes"] = sd["last_linear.weight"].shape[0]
    return sd, overrides, layout
