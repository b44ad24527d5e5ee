"""The VGG feature networks every family of the review measures style and content with.

Gatys et al. and AdaIN use VGG-19, Johnson et al. VGG-16 (Simonyan & Zisserman's configurations
D and E: 3x3 convolutions with ReLU in five blocks of 64, 128, 256, 512, 512 channels, a 2x2
max pooling after each). `VGGFeatures` is the convolutional part only, with torchvision's layout
and key names (`features.<index>` of its `vgg16().features` / `vgg19().features`: a conv, its
ReLU, ..., a pooling layer closing each block), so torchvision's ImageNet weights load by key.
It is cut after the deepest layer a method reads (`last`), and returns the activations of the
named ReLUs (`relu<block>_<conv>`, 1-based, as the papers name them).

The options cover the published variants:
- `input_norm="imagenet"`: torchvision's weights take RGB in [0, 1] normalised by the ImageNet
  mean and std, done here;
- `preprocess=True`, `padding_mode="reflect"`, `ceil_mode=True`: the "normalised" VGG-19 of
  Gatys et al. that AdaIN's release ships (`vgg_normalised`): a leading 1x1 convolution folds the
  RGB-to-BGR swap, the 0-255 scaling and the mean subtraction into weights, the 3x3 convolutions
  pad by reflection and max pooling rounds up;
- `pool="avg"`: Gatys et al.'s suggestion of average pooling for smoother images;
- `widths`: other channel counts and depths, for the small stand-in network of the laptop runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_config

# Convolution widths per block (configurations D and E of the VGG paper).
VGG16 = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG19 = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)
LAYOUTS = {"vgg16": VGG16, "vgg19": VGG19}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class VGGConfig:
    widths: tuple[tuple[int, ...], ...] = VGG19
    last: str = "relu5_1"  # the deepest ReLU kept; the network stops there
    in_chans: int = 3
    pool: str = "max"  # or "avg" (Gatys et al.'s option)
    ceil_mode: bool = False  # True in the normalised VGG-19 of AdaIN's release
    padding_mode: str = "zeros"  # "reflect" in the normalised VGG-19
    preprocess: bool = False  # the normalised VGG-19's leading 1x1 convolution
    input_norm: str = "none"  # "imagenet" for torchvision's weights

    def __post_init__(self) -> None:
        check_config(self)
        if self.pool not in ("max", "avg"):
            raise InputError(f"VGGConfig: pool must be 'max' or 'avg', got {self.pool!r}")
        if self.padding_mode not in ("zeros", "reflect"):
            raise InputError(f"VGGConfig: padding_mode must be 'zeros' or 'reflect', got {self.padding_mode!r}")
        if self.input_norm not in ("none", "imagenet"):
            raise InputError(f"VGGConfig: input_norm must be 'none' or 'imagenet', got {self.input_norm!r}")
        names = layer_names(self.widths)
        if self.last not in names:
            raise InputError(f"VGGConfig: last={self.last!r} is not one of {list(names)}")


def layer_names(widths: Sequence[Sequence[int]]) -> dict[str, int]:
    """relu<b>_<i> -> its index in torchvision's `features` (conv, ReLU, ..., pool per block)."""
    names, i = {}, 0
    for b, block in enumerate(widths, 1):
        for c in range(1, len(block) + 1):
            names[f"relu{b}_{c}"] = i + 1
            i += 2
        i += 1  # the block's pooling layer
    return names


class VGGFeatures(nn.Module):
    def __init__(self, cfg: VGGConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.taps = layer_names(cfg.widths)
        stop = self.taps[cfg.last]
        self.preprocess = nn.Conv2d(cfg.in_chans, cfg.in_chans, 1) if cfg.preprocess else None
        layers: list[nn.Module] = []
        cin = cfg.in_chans
        for block in cfg.widths:
            for cout in block:
                layers += [nn.Conv2d(cin, cout, 3, padding=1, padding_mode=cfg.padding_mode), nn.ReLU()]
                cin = cout
            pool = nn.MaxPool2d(2, 2, ceil_mode=cfg.ceil_mode) if cfg.pool == "max" else nn.AvgPool2d(
                2, 2, ceil_mode=cfg.ceil_mode)  # fmt: skip
            layers.append(pool)
        self.features = nn.Sequential(*layers[: stop + 1])
        self.out_channels = [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels
        if cfg.input_norm == "imagenet":
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        else:
            self.mean = self.std = None

    def forward(self, x: torch.Tensor, taps: Sequence[str] | None = None) -> list[torch.Tensor]:
        """The activations of the ReLUs named in `taps` (default: `last`), in that order, for
        images in [0, 1]."""
        taps = [self.cfg.last] if taps is None else list(taps)
        unknown = [t for t in taps if self.taps.get(t, 1 << 30) >= len(self.features)]
        if unknown:
            raise InputError(f"VGGFeatures: {unknown} not among its layers (it stops at {self.cfg.last})")
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.preprocess is not None:
            x = self.preprocess(x)
        want = {self.taps[t]: t for t in taps}
        got: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in want:
                got[want[i]] = x
                if len(got) == len(want):
                    break
        return [got[t] for t in taps]
