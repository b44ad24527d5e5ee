"""The partial-convolution U-Net (Section 3.2) and its laptop-sized version.

Encoder: `layers` stride-2 partial convolutions; the paper's 512x512 network has 8 (7x7/64,
5x5/128, 5x5/256, 3x3/512, then four 3x3/512), each followed by BatchNorm and ReLU except the
first (no BatchNorm). Decoder: as many layers, each nearest-upsampling the features and the mask
by 2, concatenating the encoder's features and mask of that scale (the image and its mask at the
last), then a 3x3 partial convolution with BatchNorm and LeakyReLU(0.2); the last outputs the
image's channels with neither. Every partial convolution takes a mask with its input's channels
(`multi_channel`). A convolution followed by BatchNorm has no bias, the two without it have one
(mmagic's `PConvEncoderDecoder`, the public re-implementation with weights, builds it so; the
paper does not say).

`forward(image, mask)` returns the raw output I_out (B, C, H, W) of Eq. 3; `composite` puts the
known pixels back (I_comp). `mask` is 1 on known pixels and 0 in the holes, with one channel or
the image's; H and W must be multiples of 2^layers.

`partial=False` builds the paper's "Conv" baseline of Table 1 (Sec. 5.2): the same network with
ordinary convolutions (zero padding), whose input has its holes filled with a constant (the
paper's 127.5, `fill` on our [0, 1] scale) and which never sees the mask otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    _count,
    _tracing,
    build_configured,
    check_config,
    check_dtype,
    check_image_batch,
    ensure_finite,
    ensure_finite_output,
    model_dtype,
)
from sotazoo.papers.partialconv.layers import PartialConv2d


@dataclass(frozen=True, kw_only=True)
class PConvConfig:
    widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512, 512)  # encoder outputs
    kernels: tuple[int, ...] = (7, 5, 5, 3, 3, 3, 3, 3)  # encoder kernels; the decoder's are 3
    in_chans: int = 3
    image_size: int = 512  # the training size (Sec. 4.2)
    bn_eps: float = 1e-5
    slope: float = 0.2  # the decoder's LeakyReLU
    partial: bool = True  # False: the "Conv" baseline (ordinary convolutions, holes filled)
    fill: float = 0.5  # the baseline's hole value: 127.5 of 255

    def __post_init__(self) -> None:
        check_config(self)
        if len(self.widths) != len(self.kernels) or not self.widths:
            raise InputError(f"PConvConfig: {len(self.widths)} widths for {len(self.kernels)} "
                             "kernels; one of each per encoder layer")  # fmt: skip
        if self.image_size % 2 ** len(self.widths):
            raise InputError(f"PConvConfig: image_size {self.image_size} is not a multiple of "
                             f"2^{len(self.widths)}")  # fmt: skip

    @property
    def layers(self) -> int:
        return len(self.widths)


class PConvBlock(nn.Module):
    """Partial convolution, then BatchNorm and an activation where given (the mask passes by)."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int, *, bn: bool, act: nn.Module | None,
        eps: float, partial: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        if partial:
            self.conv = PartialConv2d(cin, cout, k, stride, k // 2, bias=not bn,
                                      multi_channel=True)  # fmt: skip
        else:
            self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=not bn)
        self.partial = partial
        self.bn = nn.BatchNorm2d(cout, eps=eps) if bn else None
        self.act = act

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.partial:
            x, mask = self.conv(x, mask)
        else:
            x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x, mask


class PConvUNet(nn.Module):
    def __init__(self, cfg: PConvConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w, eps = cfg.widths, cfg.bn_eps
        self.encoder = nn.ModuleList(
            PConvBlock(cfg.in_chans if i == 0 else w[i - 1], w[i], k, 2, bn=i > 0,
                       act=nn.ReLU(inplace=True), eps=eps, partial=cfg.partial)
            for i, k in enumerate(cfg.kernels)
        )  # fmt: skip
        # decoder[i] runs at encoder level i's input scale: it reads the level-(i+1) output,
        # upsampled, and the skip of level i (the image for i = 0), and outputs that level's width
        skip = (cfg.in_chans, *w[:-1])
        self.decoder = nn.ModuleList(
            PConvBlock(w[i] + skip[i], skip[i], 3, 1, bn=i > 0,
                       act=nn.LeakyReLU(cfg.slope, inplace=True) if i > 0 else None, eps=eps,
                       partial=cfg.partial)
            for i in range(cfg.layers)
        )  # fmt: skip

    def _check(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The image with its holes set to 0 and the mask with the image's channels. Hole
        pixels may hold anything, NaN included (they are never read); known pixels must be
        finite, and the mask must be 0/1 (a bool mask is taken as is)."""
        dtype = model_dtype(self)
        check_image_batch(image, self.cfg.in_chans, dtype=dtype)
        step = 2**self.cfg.layers
        if image.shape[2] % step or image.shape[3] % step:
            raise InputError(f"PConvUNet: H and W must be multiples of {step}, got "
                             f"{tuple(image.shape[2:])}")  # fmt: skip
        if not isinstance(mask, torch.Tensor) or mask.dim() != 4 or \
                mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:  # fmt: skip
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise InputError(f"PConvUNet: mask {got} does not match image {tuple(image.shape)}: "
                             "it needs (B, 1 or C, H, W)")  # fmt: skip
        if mask.shape[1] not in (1, self.cfg.in_chans):
            raise InputError(f"PConvUNet: mask needs 1 or {self.cfg.in_chans} channels, got "
                             f"{mask.shape[1]}")  # fmt: skip
        if mask.dtype == torch.bool:
            mask = mask.to(image.dtype)
        else:
            check_dtype(mask, dtype, "mask")
            ensure_finite(mask, "mask")
            if not _tracing() and not bool(((mask == 0) | (mask == 1)).all()):
                raise InputError("PConvUNet: the mask must hold only 0 (hole) and 1 (known)")
        mask = mask.expand(-1, self.cfg.in_chans, -1, -1)
        known = torch.where(mask > 0, image, torch.zeros_like(image))
        if not _tracing() and not bool(torch.isfinite(known).all()):
            nan, inf = int(torch.isnan(known).sum()), int(torch.isinf(known).sum())
            raise InputError(f"{_count('image', image)}; at its known pixels (mask 1): {nan} NaN "
                             f"and {inf} infinite (hole pixels are never read)")  # fmt: skip
        return known, mask

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        image, mask = self._check(image, mask)
        inputs = {"image": image, "mask": mask}
        if not self.cfg.partial:  # the baseline: holes filled, the mask used nowhere else
            image, mask = image + (1 - mask) * self.cfg.fill, None
        feats, masks = [image], [mask]
        for block in self.encoder:
            x, m = block(feats[-1], masks[-1])
            feats.append(x)
            masks.append(m)
        x, m = feats[-1], masks[-1]
        for i in reversed(range(self.cfg.layers)):
            x = torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), feats[i]], 1)
            if m is not None:
                m = torch.cat([F.interpolate(m, scale_factor=2.0, mode="nearest"), masks[i]], 1)
            x, m = self.decoder[i](x, m)
        ensure_finite_output(x, inputs, self)
        return x


def composite(image: torch.Tensor, output: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """I_comp: the known pixels of `image` where `mask` is 1, the network's output elsewhere."""
    return mask * image + (1 - mask) * output


def _build(cfg: PConvConfig, overrides: dict) -> PConvUNet:
    return build_configured(PConvUNet, cfg, overrides)


def pconv_unet(**overrides) -> PConvUNet:
    """The paper's network: 8 encoder and 8 decoder layers, 512x512 inputs (Sec. 3.2, 4.2)."""
    return _build(PConvConfig(), overrides)


def pconv_unet_256(**overrides) -> PConvUNet:
    """The 256x256 network of mmagic's released PConv weights (Places, CelebA-HQ): the same
    layers with 7 levels (mmagic PConvEncoder's num_layers=7), not the paper's own release."""
    cfg = PConvConfig(widths=(64, 128, 256, 512, 512, 512, 512), kernels=(7, 5, 5, 3, 3, 3, 3),
                      image_size=256)  # fmt: skip
    return _build(cfg, overrides)


def pconv_mini(**overrides) -> PConvUNet:
    """Ours: 4 levels of 16, 32, 64 and 64 channels (kernels 7, 5, 5, 3) for 64x64 patches, the
    laptop reproduction's network."""
    cfg = PConvConfig(widths=(16, 32, 64, 64), kernels=(7, 5, 5, 3), image_size=64)
    return _build(cfg, overrides)


def tiny_overrides(name: str) -> dict:
    """Three levels of 8 channels: the registry-wide tests' version."""
    return {"widths": (8, 8, 8), "kernels": (3, 3, 3), "image_size": 32}
