"""DeepLabv3+ (Chen et al., ECCV 2018): DeepLabv3's atrous encoder with ASPP, and a light
decoder that sharpens object boundaries with stride-4 features.

Encoder: a backbone whose last strides become dilations, so that its features stay at output
stride (OS) 16 (or 8), then ASPP (Section 3.1, Figure 2): a 1x1 convolution, three 3x3 atrous
convolutions (rates 6, 12, 18 at OS 16; 12, 24, 36 at OS 8) and image-level pooling (global
average, 1x1, BN, ReLU, broadcast back), each 256 channels with BN and ReLU, concatenated and
projected by a 1x1 to 256 (BN, ReLU, dropout 0.1: the official keep probability 0.9).

Decoder (Section 4.1): the encoder output upsampled x4 (bilinear), the backbone's stride-4
features reduced by a 1x1 to 48 channels (BN, ReLU), concatenated, two 3x3 convolutions of 256
(BN, ReLU), a 1x1 to the classes, upsampled to the input size. All resizing uses
align_corners=True, as the official code (hence crops of 16k + 1 pixels such as 513). With
`separable`, every 3x3 of ASPP and the decoder is an atrous separable convolution: depthwise 3x3
(dilated), BN, ReLU, pointwise 1x1, BN, ReLU (the official `split_separable_conv2d`).

Backbones: ResNet-50/101 with torchvision's layout and key names (dilation in place of the
stride of layer4 at OS 16, of layers 3 and 4 at OS 8, the first block of a dilated layer keeping
the previous dilation, as torchvision's `replace_stride_with_dilation`); the ASPP's key names are
torchvision's too (`aspp.convs.*`, `aspp.project.*`), so torchvision's DeepLabv3 weights load
into our encoder (`convert.py`). `decoder=False` is DeepLabv3 (the paper's ablation): the ASPP
output goes through the 1x1 classifier and is upsampled x16 (x8).
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

BACKBONES = ("resnet", "xception65", "mini")
# Aligned Xception-65 (research/deeplab/core/xception.py, xception_65): (name, depths, skip, stride,
# units); every block's three separable convolutions, the third carrying the stride.
XCEPTION65 = (
    ("entry_flow.block1", (128, 128, 128), "conv", 2, 1),
    ("entry_flow.block2", (256, 256, 256), "conv", 2, 1),
    ("entry_flow.block3", (728, 728, 728), "conv", 2, 1),
    ("middle_flow", (728, 728, 728), "sum", 1, 16),
    ("exit_flow.block1", (728, 1024, 1024), "conv", 2, 1),
    ("exit_flow.block2", (1536, 1536, 2048), "none", 1, 1),
)
XCEPTION_BN_EPS = 1e-3  # the backbone's batch norm (feature_extractor.py); the head's: 1e-5


@dataclass(frozen=True, kw_only=True)
class DeepLabConfig:
    num_classes: int = 21  # PASCAL VOC: 20 classes and background
    in_chans: int = 3
    backbone: str = "resnet"  # BACKBONES
    layers: tuple[int, ...] = (3, 4, 23, 3)  # ResNet-101; ResNet-50: (3, 4, 6, 3)
    planes: tuple[int, ...] = (64, 128, 256, 512)
    stem: int = 64
    output_stride: int = 16  # 16 or 8
    aspp_rates: tuple[int, ...] = (6, 12, 18)  # at OS 16; (12, 24, 36) at OS 8
    aspp_channels: int = 256
    image_pooling: bool = True
    separable: bool = False  # atrous separable 3x3 in ASPP and the decoder
    decoder: bool = True
    low_level_channels: int = 48
    decoder_channels: int = 256
    decoder_convs: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check_config(self)
        if self.backbone not in BACKBONES:
            raise InputError(f"DeepLabConfig: backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.output_stride not in (8, 16):
            raise InputError(f"DeepLabConfig: output_stride must be 8 or 16, got {self.output_stride}")
        if len(self.layers) != 4 or len(self.planes) != 4:
            raise InputError("DeepLabConfig: layers and planes name the four ResNet stages")
        if not 0 <= self.dropout < 1:
            raise InputError(f"DeepLabConfig: dropout must be in [0, 1), got {self.dropout}")


def conv_bn_relu(cin: int, cout: int, k: int = 1, dilation: int = 1) -> nn.Sequential:
    """k x k convolution (no bias, 'same' padding), BN, ReLU: torchvision's ASPP layout."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation,
                                   bias=False), nn.BatchNorm2d(cout), nn.ReLU())  # fmt: skip


def separable_conv(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    """Atrous separable 3x3: depthwise (dilated), BN, ReLU, pointwise, BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=dilation, dilation=dilation, groups=cin, bias=False),
        nn.BatchNorm2d(cin), nn.ReLU(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
    )  # fmt: skip


def conv3x3(cin: int, cout: int, dilation: int, separable: bool) -> nn.Sequential:
    return separable_conv(cin, cout, dilation) if separable else conv_bn_relu(cin, cout, 3, dilation)


# ---------------------------------------------------------------- backbone


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3), torchvision's key names, with dilation."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, dilation: int) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)  # fmt: skip
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class DilatedResNet(nn.Module):
    """ResNet trunk at output stride 16 or 8; returns (stride-4 features, last features)."""

    def __init__(self, cfg: DeepLabConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cfg.in_chans, cfg.stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        dilate = {16: (False, False, True), 8: (False, True, True)}[cfg.output_stride]
        inplanes, dilation = cfg.stem, 1
        for i, (n, planes) in enumerate(zip(cfg.layers, cfg.planes, strict=True)):
            stride, previous = (1 if i == 0 else 2), dilation
            if i > 0 and dilate[i - 1]:
                dilation, stride = dilation * stride, 1
            blocks = [Bottleneck(inplanes, planes, stride, previous)]
            inplanes = planes * Bottleneck.expansion
            blocks += [Bottleneck(inplanes, planes, 1, dilation) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.low_channels = cfg.planes[0] * Bottleneck.expansion
        self.out_channels = inplanes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low = self.layer1(x)
        return low, self.layer4(self.layer3(self.layer2(low)))


class XceptionSepConv(nn.Module):
    """The backbone's separable 3x3 (xception.py `separable_conv2d_same`): depthwise, BN,
    pointwise, BN, no biases. `relu_inside` (exit_flow/block2): ReLU after each BN; otherwise
    the ReLU comes first, on the input (pre-activation), and none inside."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int, relu_inside: bool) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, stride=stride, padding=dilation, dilation=dilation,
                                   groups=cin, bias=False)  # fmt: skip
        self.bn_depth = nn.BatchNorm2d(cin, eps=XCEPTION_BN_EPS)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn_point = nn.BatchNorm2d(cout, eps=XCEPTION_BN_EPS)
        self.relu_inside = relu_inside

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.relu_inside:
            x = F.relu(x)
        x = self.bn_depth(self.depthwise(x))
        x = F.relu(x) if self.relu_inside else x
        x = self.bn_point(self.pointwise(x))
        return F.relu(x) if self.relu_inside else x


class XceptionModule(nn.Module):
    """Three separable convolutions, then the skip: a strided 1x1 conv + BN of the module's
    input ("conv"), the input itself ("sum") or nothing ("none"); no ReLU after the merge."""

    def __init__(self, cin: int, depths: tuple[int, ...], skip: str, stride: int, dilation: int,
                 relu_inside: bool) -> None:  # fmt: skip
        super().__init__()
        chans = (cin, *depths)
        self.convs = nn.ModuleList(
            XceptionSepConv(chans[i], chans[i + 1], stride if i == 2 else 1, dilation, relu_inside)
            for i in range(3)
        )
        self.skip = skip
        self.shortcut = None
        if skip == "conv":
            self.shortcut = nn.Sequential(nn.Conv2d(cin, depths[-1], 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(depths[-1], eps=XCEPTION_BN_EPS))  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, the second separable conv's output: entry_flow/block2's is the decoder's
        low-level feature)."""
        r = self.convs[1](self.convs[0](x))
        mid, r = r, self.convs[2](r)
        if self.skip == "conv":
            r = r + self.shortcut(x)
        elif self.skip == "sum":
            r = r + x
        return r, mid


class Xception65(nn.Module):
    """Aligned Xception-65 as DeepLab builds it: a 3x3 stem (32 channels, stride 2; 64), then
    `XCEPTION65`. The output stride is reached as TF-slim's `stack_blocks_dense` does: once the
    running stride equals it, a block runs with stride 1 at the current rate, and the rate is
    multiplied by the stride it gave up. Returns (entry_flow/block2's second separable conv,
    stride 4, 256 channels; the exit flow's 2048 channels)."""

    def __init__(self, cfg: DeepLabConfig) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_chans, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32, eps=XCEPTION_BN_EPS), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64, eps=XCEPTION_BN_EPS), nn.ReLU(),
        )  # fmt: skip
        blocks, cin, current, rate = [], 64, 2, 1
        for name, depths, skip, stride, units in XCEPTION65:
            if current == cfg.output_stride:
                s, d, rate = 1, rate, rate * stride
            else:
                s, d, current = stride, rate, current * stride
            for u in range(units):
                blocks.append(XceptionModule(cin, depths, skip, s if u == 0 else 1, d,
                                             relu_inside=name == "exit_flow.block2"))  # fmt: skip
                cin = depths[-1]
        self.blocks = nn.ModuleList(blocks)
        self.low_channels, self.out_channels = XCEPTION65[1][1][1], cin

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, low = self.stem(x), None
        for i, block in enumerate(self.blocks):
            x, mid = block(x)
            if i == 1:
                low = mid
        return low, x


class MiniBackbone(nn.Module):
    """Ours, for the laptop reproduction: four stages of two 3x3 convolutions (BN, ReLU), the
    first three halving the resolution, the last dilated by 2 (output stride 8); returns the
    stride-4 and stride-8 features."""

    def __init__(self, cfg: DeepLabConfig) -> None:
        super().__init__()
        w = cfg.planes
        self.stages = nn.ModuleList()
        cin = cfg.in_chans
        for i, c in enumerate(w):
            stride, dil = (2, 1) if i < 3 else (1, 2)
            self.stages.append(nn.Sequential(
                nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                conv_bn_relu(c, c, 3, dil),
            ))  # fmt: skip
            cin = c
        self.low_channels, self.out_channels = w[1], w[3]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.stages[1](self.stages[0](x))
        return low, self.stages[3](self.stages[2](low))


# ---------------------------------------------------------------- head


class ASPPPooling(nn.Sequential):
    """Image-level features: global average, 1x1, BN, ReLU, broadcast to the map's size."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    def __init__(self, cin: int, cfg: DeepLabConfig) -> None:
        super().__init__()
        c = cfg.aspp_channels
        branches = [conv_bn_relu(cin, c, 1)]
        branches += [conv3x3(cin, c, r, cfg.separable) for r in cfg.aspp_rates]
        if cfg.image_pooling:
            branches.append(ASPPPooling(cin, c))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(nn.Conv2d(len(branches) * c, c, 1, bias=False),
                                     nn.BatchNorm2d(c), nn.ReLU(), nn.Dropout(cfg.dropout))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([b(x) for b in self.convs], 1))


class Decoder(nn.Module):
    def __init__(self, low_cin: int, cfg: DeepLabConfig) -> None:
        super().__init__()
        self.reduce = conv_bn_relu(low_cin, cfg.low_level_channels, 1)
        cin, convs = cfg.aspp_channels + cfg.low_level_channels, []
        for _ in range(cfg.decoder_convs):
            convs.append(conv3x3(cin, cfg.decoder_channels, 1, cfg.separable))
            cin = cfg.decoder_channels
        self.convs = nn.Sequential(*convs)
        self.out_channels = cin

    def forward(self, enc: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(enc, size=low.shape[-2:], mode="bilinear", align_corners=True)
        return self.convs(torch.cat([up, self.reduce(low)], 1))


class DeepLabV3Plus(nn.Module):
    def __init__(self, cfg: DeepLabConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = {"resnet": DilatedResNet, "xception65": Xception65,
                         "mini": MiniBackbone}[cfg.backbone](cfg)  # fmt: skip
        self.aspp = ASPP(self.backbone.out_channels, cfg)
        self.decoder = Decoder(self.backbone.low_channels, cfg) if cfg.decoder else None
        cin = self.decoder.out_channels if self.decoder is not None else cfg.aspp_channels
        self.classifier = nn.Conv2d(cin, cfg.num_classes, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(stride-4 backbone features, ASPP output at the output stride)."""
        check_image_batch(x, self.cfg.in_chans, min_size=16, dtype=model_dtype(self))
        low, high = self.backbone(x)
        return low, self.aspp(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel class logits (B, K, H, W) at the input's resolution."""
        low, enc = self.encode(x)
        y = self.decoder(enc, low) if self.decoder is not None else enc
        out = F.interpolate(self.classifier(y), size=x.shape[-2:], mode="bilinear", align_corners=True)
        ensure_finite_output(out, {"input": x}, self)
        return out


def deeplabv3plus_resnet101(**overrides) -> DeepLabV3Plus:
    """DeepLabv3+ with ResNet-101 at output stride 16 (Table 3's decoder row), 21 classes."""
    return build_configured(DeepLabV3Plus, DeepLabConfig(), overrides)


def deeplabv3plus_resnet50(**overrides) -> DeepLabV3Plus:
    return build_configured(DeepLabV3Plus, DeepLabConfig(layers=(3, 4, 6, 3)), overrides)


def deeplabv3plus_xception65(**overrides) -> DeepLabV3Plus:
    """The paper's main model and the model zoo's: aligned Xception-65 at output stride 16,
    separable ASPP and decoder (the official defaults), 21 classes."""
    return build_configured(DeepLabV3Plus, DeepLabConfig(backbone="xception65", separable=True),
                            overrides)  # fmt: skip


def deeplabv3plus_mini(**overrides) -> DeepLabV3Plus:
    """Ours: a four-stage plain CNN (16 to 64 channels, output stride 8), ASPP of 64 channels at
    rates 1, 2, 3 and the paper's decoder scaled down (24-channel projection, two 3x3 of 64), for
    the laptop reproduction on 96 px scenes."""
    cfg = DeepLabConfig(backbone="mini", planes=(16, 32, 48, 64), output_stride=8, aspp_rates=(1, 2, 3),
                        aspp_channels=64, low_level_channels=24, decoder_channels=64, num_classes=5)  # fmt: skip
    return build_configured(DeepLabV3Plus, cfg, overrides)


def tiny_overrides(name: str) -> dict:
    """The registry-wide tests' version: a two-block ResNet of 8-channel stages (Xception-65 has
    fixed widths: it is tested at its own size)."""
    if name == "deeplabv3plus_xception65":
        return {"aspp_channels": 8, "low_level_channels": 4, "decoder_channels": 8}
    if name == "deeplabv3plus_mini":
        return {"planes": (4, 4, 8, 8), "aspp_channels": 8, "low_level_channels": 4, "decoder_channels": 8}
    return {"layers": (1, 1, 1, 1), "planes": (4, 4, 8, 8), "stem": 8, "aspp_channels": 8,
            "low_level_channels": 4, "decoder_channels": 8}  # fmt: skip
