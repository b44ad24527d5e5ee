"""Checkpoint layouts of the style-transfer networks, recognised by their keys.

- `pytorch_examples` (Johnson et al.'s network): the state dicts of pytorch/examples'
  `fast_neural_style` (`TransformerNet`, the released candy, mosaic, rain_princess and udnie
  `.pth` files and the `.model` files its training writes). Our keys are its keys; the released
  files, saved before PyTorch 0.4, also hold `running_mean` / `running_var` of every instance
  norm, which it never used and which its own `stylize` deletes: so do we (and
  `num_batches_tracked`). Its networks work on pixels in [0, 255], as ours do inside.
- `pytorch_adain` (AdaIN): naoto0804/pytorch-AdaIN's release, two files, `decoder.pth` (an
  nn.Sequential whose convolutions sit at indices 1, 5, 8, 11, 14, 18, 21, 25, 28 between
  reflection pads, ReLUs and upsamplings) and `vgg_normalised.pth` (the whole normalised VGG-19:
  the 1x1 preprocessing conv at 0, then the 3x3 convs at 2, 5, 9, 12, 16, 19, 22, 25, 29, ...).
  `load` reads the decoder's file and finds the encoder's beside it; both map convolution by
  convolution, in order, onto `decoder.<i>` and `encoder.preprocess` / `encoder.features.<i>`,
  the encoder's past relu4_1 left out. Either file alone, as a state dict, converts to its half.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from sotazoo.errors import WeightsError
from sotazoo.papers._contract import default_load
from sotazoo.weights import read_state_dict, written_by_sotazoo

# the encoder's file beside the decoder's: the release's name, or the cache's (weights.py)
ENCODER_FILES = ("vgg_normalised.pth", "adain_vgg_normalised.pth")
# the 3x3 convolutions of our AdaIN at relu4_1, in order (`model.AdaINNet`: torchvision's
# indices in the encoder, conv1_1 to conv4_1; the mirror's in the decoder)
ENCODER_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19)
DECODER_CONVS = (0, 3, 5, 7, 9, 12, 14, 17, 19)


def _numbered(sd: dict[str, torch.Tensor]) -> list[int]:
    """The indices of an nn.Sequential's parameterised layers ('5.weight' -> 5), in order."""
    return sorted({int(k.split(".")[0]) for k in sd})


def _by_order(sd: dict, ours: list[str], theirs: list[int]) -> dict[str, torch.Tensor]:
    return {f"{o}.{kind}": sd[f"{t}.{kind}"] for o, t in zip(ours, theirs, strict=False) for kind in ("weight", "bias")}


def convert_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict, dict, str]:
    keys = set(sd)
    if "conv1.conv2d.weight" in keys and "deconv3.conv2d.weight" in keys:
        dropped = re.compile(r"in\d+\.(running_mean|running_var|num_batches_tracked)$")
        return {k: v for k, v in sd.items() if not dropped.search(k)}, {}, "pytorch_examples"
    if keys and all(re.fullmatch(r"\d+\.(weight|bias)", k) for k in keys):
        layers = _numbered(sd)
        if sd[f"{layers[0]}.weight"].shape[-2:] == (1, 1):  # vgg_normalised: its 1x1 first
            convs = layers[1:]
            if len(convs) < len(ENCODER_CONVS):
                raise WeightsError(f"a normalised VGG needs {len(ENCODER_CONVS)} 3x3 convolutions "
                                   f"to relu4_1, this file has {len(convs)}")  # fmt: skip
            out = {f"encoder.preprocess.{k}": sd[f"{layers[0]}.{k}"] for k in ("weight", "bias")}
            out |= _by_order(sd, [f"encoder.features.{i}" for i in ENCODER_CONVS], convs)
            return out, {}, "pytorch_adain"
        if len(layers) != len(DECODER_CONVS):
            raise WeightsError(f"AdaIN's decoder has {len(DECODER_CONVS)} convolutions, this file {len(layers)}")
        return _by_order(sd, [f"decoder.{i}" for i in DECODER_CONVS], layers), {}, "pytorch_adain"
    raise WeightsError("unknown style-transfer checkpoint layout: neither pytorch/examples' TransformerNet "
                       "(conv1.conv2d.*, res1.*, deconv3.*) nor pytorch-AdaIN's numbered nn.Sequential")  # fmt: skip


def load(path: Path, model: str, overrides: dict[str, Any]) -> tuple[dict, dict]:
    """AdaIN's release: the decoder's file at `path`, the encoder's (`vgg_normalised.pth`) beside
    it (`vgg_normalised.pth`, or `adain_vgg_normalised.pth` as the cache names it); any other
    file (ours, pytorch/examples') through `default_load`."""
    path = Path(path)
    if not model.startswith("adain") or written_by_sotazoo(path):
        return default_load(path, convert_state_dict)
    sd, _, layout = convert_state_dict(read_state_dict(path))
    if layout == "pytorch_adain" and not any(k.startswith("encoder.") for k in sd):
        beside = [path.parent / name for name in ENCODER_FILES if (path.parent / name).is_file()]
        if not beside:
            raise WeightsError(f"{path} is AdaIN's decoder; its encoder, {ENCODER_FILES[0]} of the same "
                               f"release, must be beside it: no such file in {path.parent}")  # fmt: skip
        enc, _, _ = convert_state_dict(read_state_dict(beside[0]))
        sd = enc | sd
    return sd, {}
