"""Neural style transfer (Jing et al., "Neural Style Transfer: A Review", IEEE TVCG 2020, arXiv
1705.04058): the networks of the two offline families the review compares with Gatys et al.'s
online optimisation (`method.gatys`, which has no network of its own).

Per-style-per-model, Johnson et al. (ECCV 2016): an image transformation network, three
convolutions down (9x9/32, 3x3/64 stride 2, 3x3/128 stride 2), five residual blocks of two 3x3
convolutions at 128 channels, two upsampling convolutions (3x3/64, 3x3/32) and a 9x9 convolution
to RGB, ReLU after every normalised layer. We build the version of the PyTorch project's example
(`pytorch/examples`, `fast_neural_style/neural_style/transformer_net.py`), whose released styles
(candy, mosaic, rain princess, udnie) are the most used: instance normalisation (Ulyanov et
al.'s change, which the review singles out) in place of the paper's batch normalisation,
reflection padding, nearest x2 upsampling then a convolution in place of fractionally-strided
convolutions, no output activation, and its key names (`conv1.conv2d`, `in1`, `res1.conv1`, ...)
so that those files load by key. It works on pixels in [0, 255]; ours takes and returns [0, 1]
and scales inside (`pixel_scale`).

Arbitrary-style-per-model, AdaIN (Huang & Belongie, ICCV 2017): the normalised VGG-19 up to
relu4_1 encodes the content and the style image, adaptive instance normalisation gives the content
features the style features' per-channel mean and standard deviation, and a decoder mirroring
the encoder (its convolutions in reverse order, nearest x2 upsampling where the encoder pooled,
reflection padding, ReLU after all but the last, no normalisation) maps them back to an image.
`alpha` blends the AdaIN output with the content features (style strength at test time).
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
from sotazoo.papers.style_transfer.method import adain
from sotazoo.papers.style_transfer.vgg import VGG19, VGGConfig, VGGFeatures

# ---------------------------------------------------------------- Johnson et al.


@dataclass(frozen=True, kw_only=True)
class TransformConfig:
    widths: tuple[int, int, int] = (32, 64, 128)
    n_res: int = 5
    outer_kernel: int = 9
    in_chans: int = 3
    pixel_scale: float = 255.0  # the example's networks see pixels in [0, 255]
    tanh_output: bool = False  # Johnson et al.'s scaled tanh keeps the output in range; the
    # example has none (its released files were trained without it)

    def __post_init__(self) -> None:
        check_config(self)
        if len(self.widths) != 3:
            raise InputError(f"TransformConfig: widths names the 3 levels, got {self.widths}")
        if self.outer_kernel % 2 == 0:
            raise InputError(f"TransformConfig: outer_kernel must be odd, got {self.outer_kernel}")


class ConvLayer(nn.Module):
    """Reflection padding and a convolution, after an optional nearest x2 upsampling."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv2d = nn.Conv2d(cin, cout, k, stride, padding=k // 2, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv2d(x)


class ResidualBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the input (He et al.'s block without the last ReLU, as Johnson et
    al.'s supplementary material and the example)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.in1 = ConvLayer(c, c, 3), nn.InstanceNorm2d(c, affine=True)
        self.conv2, self.in2 = ConvLayer(c, c, 3), nn.InstanceNorm2d(c, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))


class TransformNet(nn.Module):
    def __init__(self, cfg: TransformConfig) -> None:
        super().__init__()
        self.cfg = cfg
        a, b, c = cfg.widths
        k = cfg.outer_kernel
        self.conv1, self.in1 = ConvLayer(cfg.in_chans, a, k), nn.InstanceNorm2d(a, affine=True)
        self.conv2, self.in2 = ConvLayer(a, b, 3, 2), nn.InstanceNorm2d(b, affine=True)
        self.conv3, self.in3 = ConvLayer(b, c, 3, 2), nn.InstanceNorm2d(c, affine=True)
        for i in range(1, cfg.n_res + 1):
            self.add_module(f"res{i}", ResidualBlock(c))
        self.deconv1, self.in4 = ConvLayer(c, b, 3, upsample=True), nn.InstanceNorm2d(b, affine=True)
        self.deconv2, self.in5 = ConvLayer(b, a, 3, upsample=True), nn.InstanceNorm2d(a, affine=True)
        self.deconv3 = ConvLayer(a, cfg.in_chans, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stylised images in [0, 1] (not clamped: the losses see the raw output) for images in
        [0, 1] whose sides are multiples of 4 (two stride-2 levels, two x2 upsamplings)."""
        check_image_batch(x, self.cfg.in_chans, min_size=4, dtype=model_dtype(self))
        if not torch.jit.is_tracing() and (x.shape[-2] % 4 or x.shape[-1] % 4):
            raise InputError(f"TransformNet: height and width must be multiples of 4, got {tuple(x.shape[-2:])}")
        if x.shape[0] == 0:  # instance norm has no statistics to take: an empty batch out
            return x.clone()
        h = x * self.cfg.pixel_scale
        h = F.relu(self.in1(self.conv1(h)))
        h = F.relu(self.in2(self.conv2(h)))
        h = F.relu(self.in3(self.conv3(h)))
        for i in range(1, self.cfg.n_res + 1):
            h = getattr(self, f"res{i}")(h)
        h = F.relu(self.in4(self.deconv1(h)))
        h = F.relu(self.in5(self.deconv2(h)))
        y = self.deconv3(h) / self.cfg.pixel_scale
        if self.cfg.tanh_output:  # the paper's output layer: pixels within [0, 1] by construction
            y = (torch.tanh(2 * y - 1) + 1) / 2
        ensure_finite_output(y, {"input": x}, self)
        return y


# ---------------------------------------------------------------- AdaIN


@dataclass(frozen=True, kw_only=True)
class AdaINConfig:
    widths: tuple[tuple[int, ...], ...] = VGG19  # the encoder's VGG, cut at `last`
    last: str = "relu4_1"
    preprocess: bool = True  # the normalised VGG-19's leading 1x1 convolution
    padding_mode: str = "reflect"  # the release's encoder and decoder; "zeros" for the stand-in
    ceil_mode: bool = True  # the release's max pooling; False for the stand-in
    alpha: float = 1.0  # style strength: 0 gives decoder(encoder(content))
    eps: float = 1e-5  # added to the variance before the square root (the release's)

    def __post_init__(self) -> None:
        check_config(self)
        VGGConfig(widths=self.widths, last=self.last, padding_mode=self.padding_mode)  # checks them
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"AdaINConfig: alpha must be in [0, 1], got {self.alpha}")


def mirror_decoder(encoder: VGGFeatures, padding_mode: str = "reflect") -> nn.Sequential:
    """The encoder's convolutions in reverse order with input and output channels swapped, a
    nearest x2 upsampling where the encoder pooled, ReLU after all but the last convolution."""
    layers: list[nn.Module] = []
    for m in reversed(list(encoder.features)):
        if isinstance(m, nn.Conv2d):
            layers += [nn.Conv2d(m.out_channels, m.in_channels, 3, padding=1, padding_mode=padding_mode),
                       nn.ReLU()]  # fmt: skip
        elif isinstance(m, nn.MaxPool2d | nn.AvgPool2d) and layers:
            layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
    return nn.Sequential(*layers[:-1])


class AdaINNet(nn.Module):
    def __init__(self, cfg: AdaINConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = VGGFeatures(VGGConfig(widths=cfg.widths, last=cfg.last, ceil_mode=cfg.ceil_mode,
                                             padding_mode=cfg.padding_mode, preprocess=cfg.preprocess))  # fmt: skip
        self.decoder = mirror_decoder(self.encoder, cfg.padding_mode)
        self.stride = 2 ** sum(isinstance(m, nn.MaxPool2d | nn.AvgPool2d) for m in self.encoder.features)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The content images in the style of the style images (one style per content image),
        in [0, 1], not clamped. Sides must be multiples of the encoder's stride (8 at relu4_1),
        so that the decoder returns the input's size; the style image may be any size."""
        dtype = model_dtype(self)
        # at least 2x2 features at the last layer, so that a channel has a standard deviation
        check_image_batch(content, 3, min_size=2 * self.stride, dtype=dtype)
        try:
            check_image_batch(style, 3, min_size=2 * self.stride, dtype=dtype)
        except InputError as e:
            raise InputError(f"style image: {e}") from None
        if not torch.jit.is_tracing():
            if content.shape[-2] % self.stride or content.shape[-1] % self.stride:
                raise InputError(f"AdaINNet: content height and width must be multiples of "
                                 f"{self.stride}, got {tuple(content.shape[-2:])}")  # fmt: skip
            if style.shape[0] != content.shape[0]:
                raise InputError(f"AdaINNet: {style.shape[0]} style images for {content.shape[0]} content images")
            if content.shape[0] == 0:
                return content.clone()
        (fc,) = self.encoder(content)
        (fs,) = self.encoder(style)
        t = adain(fc, fs, self.cfg.eps)
        a = self.cfg.alpha
        y = self.decoder(t if a == 1.0 else a * t + (1 - a) * fc)
        ensure_finite_output(y, {"input": content, "style": style}, self)
        return y


# ---------------------------------------------------------------- builders

MINI_VGG = ((16, 16), (32, 32), (64,), (64,))  # the stand-in feature network's layout (laptop)


def johnson_transformnet(**overrides) -> TransformNet:
    """pytorch/examples' TransformerNet (1,679,235 parameters)."""
    return build_configured(TransformNet, TransformConfig(), overrides)


def johnson_mini(**overrides) -> TransformNet:
    """The same layers at 16/32/64 channels with 3 residual blocks and 5x5 outer kernels, and the
    paper's tanh output (laptop: without it the small stand-in's losses are met with pixels
    outside [0, 1])."""
    return build_configured(TransformNet, TransformConfig(widths=(16, 32, 64), n_res=3, outer_kernel=5,
                                                          tanh_output=True), overrides)  # fmt: skip


def adain_vgg19(**overrides) -> AdaINNet:
    """AdaIN with the normalised VGG-19 encoder up to relu4_1 and its mirrored decoder."""
    return build_configured(AdaINNet, AdaINConfig(), overrides)


def adain_mini(**overrides) -> AdaINNet:
    """AdaIN on the stand-in feature network as it was trained (`train.standin`: zero padding,
    floor pooling, no 1x1 preprocessing), its decoder padding with zeros too, cut at relu3_1 (at
    relu4_1, 64 channels at 1/8 of 64 px, the small decoder gave one colour whatever the style in
    3,000 steps; laptop)."""
    return build_configured(AdaINNet, AdaINConfig(widths=MINI_VGG, last="relu3_1", preprocess=False,
                                                  padding_mode="zeros", ceil_mode=False), overrides)  # fmt: skip


def tiny_overrides(name: str) -> dict:
    if name.startswith("johnson"):
        return {"widths": (4, 4, 8), "n_res": 1, "outer_kernel": 3}
    return {"widths": ((4,), (8,), (8,), (8,))}
