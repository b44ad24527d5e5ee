"""The U-Net of "Learning to See in the Dark", as the official code builds it (cchen156/Learning-
to-See-in-the-Dark, train_Sony.py and train_Fuji.py, `network`).

Input: the packed raw of a short exposure, black level subtracted, scaled to [0, 1], multiplied
by the amplification ratio and clipped at 1 (`raw.py`): 4 channels at half resolution for a
Bayer sensor (Sony), 9 at a third for X-Trans (Fuji). Five levels of two 3x3 convolutions
(32, 64, 128, 256, 512 channels, each followed by LeakyReLU max(0.2 x, x)) with 2x2 max pooling
between them; on the way up, a 2x2 stride-2 transposed convolution (no bias) halves the
channels, its output is concatenated with the encoder's features of that scale (upsampled first,
skip second), and two 3x3 convolutions follow. A 1x1 convolution gives 4 x 3 (Sony) or 9 x 3
(Fuji) channels, rearranged into a full-resolution sRGB image (depth to space by 2 or 3). No
output activation: the official test clips to [0, 1].

Depth to space: TensorFlow's `depth_to_space` reads the channels as (row, column, colour)
("DCR"); PyTorch's `pixel_shuffle` as (colour, row, column) ("CRD"). Ours is `pixel_shuffle`,
and the checkpoint converter permutes the last convolution's outputs. Padded sizes: the packed
input's H and W must be multiples of 16 (four 2x poolings that the way up must undo exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    build_configured,
    check_config,
    check_image_batch,
    ensure_finite_output,
    model_dtype,
)


@dataclass(frozen=True, kw_only=True)
class SIDConfig:
    in_chans: int = 4  # packed Bayer (R, G, B, G); X-Trans: 9
    scale: int = 2  # depth to space: 2 for Bayer, 3 for X-Trans
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    out_chans: int = 3
    slope: float = 0.2

    def __post_init__(self) -> None:
        check_config(self)
        if len(self.widths) < 2:
            raise InputError("SIDConfig: widths needs at least two levels")


def _lrelu(x: torch.Tensor, slope: float) -> torch.Tensor:
    return torch.maximum(x * slope, x)  # the official lrelu


class DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int, slope: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _lrelu(self.conv2(_lrelu(self.conv1(x), self.slope)), self.slope)


class SIDUNet(nn.Module):
    def __init__(self, cfg: SIDConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.down = nn.ModuleList(
            DoubleConv(cfg.in_chans if i == 0 else w[i - 1], w[i], cfg.slope) for i in range(len(w))
        )
        # up[i] goes from level i + 1 to level i (deepest first in the forward pass)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2, bias=False) for i in range(len(w) - 1)
        )
        self.up_conv = nn.ModuleList(DoubleConv(2 * w[i], w[i], cfg.slope) for i in range(len(w) - 1))
        self.head = nn.Conv2d(w[0], cfg.out_chans * cfg.scale**2, 1)
        self._init()

    def _init(self) -> None:
        """slim.conv2d's defaults (Xavier-uniform weights, zero biases) and the official
        transposed-convolution filters, truncated normal with std 0.02."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.ConvTranspose2d):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)

    @property
    def multiple(self) -> int:
        """What the packed input's H and W must be a multiple of."""
        return 2 ** (len(self.cfg.widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.cfg.in_chans, dtype=model_dtype(self))
        m = self.multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise InputError(f"SIDUNet: the packed input's H and W must be multiples of {m}, got "
                             f"{tuple(x.shape[-2:])}; pad the raw (`raw.pad_to`) first")  # fmt: skip
        skips, h = [], x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else F.max_pool2d(h, 2))
            skips.append(h)
        h = skips.pop()
        for i in reversed(range(len(self.up))):
            h = self.up_conv[i](torch.cat([self.up[i](h), skips[i]], 1))
        out = F.pixel_shuffle(self.head(h), self.cfg.scale)
        ensure_finite_output(out, {"input": x}, self)
        return out


def sid_sony(**overrides) -> SIDUNet:
    """The Sony (Bayer) network: 4 packed channels at half resolution, x2 depth to space."""
    return build_configured(SIDUNet, SIDConfig(), overrides)


def sid_fuji(**overrides) -> SIDUNet:
    """The Fuji (X-Trans) network: 9 packed channels at a third of the resolution, x3."""
    return build_configured(SIDUNet, SIDConfig(in_chans=9, scale=3), overrides)


def sid_mini(**overrides) -> SIDUNet:
    """Ours: the Sony network at a quarter of the widths (8 to 128 channels), for the laptop
    reproduction on 64x64 packed patches."""
    return build_configured(SIDUNet, SIDConfig(widths=(8, 16, 32, 64, 128)), overrides)


def tiny_overrides(name: str) -> dict:
    """Three levels of 4 to 16 channels: the registry-wide tests' version."""
    return {"widths": (4, 8, 16)}

