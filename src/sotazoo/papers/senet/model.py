"""Squeeze-and-Excitation Networks — SE-ResNet, SE-ResNeXt and SENet-154.

Paper: Hu, Shen, Albanie, Sun, Wu. "Squeeze-and-Excitation Networks", CVPR 2018 / TPAMI 2019,
arXiv 1709.01507. Official code (Caffe): https://github.com/hujie-frank/SENet.

What is the paper's: the SE block (`sotazoo.nn.SqueezeExcite`) on the residual branch of every
bottleneck, before the identity addition (§6.3, Fig. 3), r = 16 everywhere, and the SENet-154
changes to ResNeXt-152 (§5 "SENet-154"; the official prototxt). What follows the released Caffe
models rather than the text: SE-ResNet puts the stride on the first 1×1 convolution, SE-ResNeXt
and SENet-154 on the 3×3; the max-pool of the stem rounds up (Caffe's ceil mode). Key names follow
the PyTorch port of the Caffe release (Cadene's `pretrainedmodels`, timm's `legacy_*`), so its
checkpoints load without renaming; `convert.py` maps timm's ResNet-family layout.

What is ours: the knobs `se` (for the ablations: no SE, SE after the addition), `stem="cifar"` and
narrow `planes` for the laptop-scale reproduction, and `pool="pad"` / `stride_in_1x1=False` which
let checkpoints trained with timm's ResNet layout run exactly.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn import SqueezeExcite
from sotazoo.nn.checks import check_config, check_image_batch, ensure_finite_output, model_dtype

BlockKind = Literal["resnet", "resnext", "senet"]


@dataclass(frozen=True, kw_only=True)
class SENetConfig:
    """Hyper-parameters of one SE network (Table 1 of the paper gives the three families)."""

    layers: tuple[int, ...]
    block: BlockKind = "resnet"
    planes: tuple[int, ...] = (64, 128, 256, 512)  # bottleneck width per stage (output ×4)
    groups: int = 1  # cardinality of the 3×3 convolution (ResNeXt: 32, SENet-154: 64)
    base_width: int = 64  # ResNeXt width per group at planes = 64 (32×4d: 4)
    reduction: int = 16  # r, §6.1: 16 for every released model
    se: Literal["standard", "post", "none"] = "standard"  # ours: the ablation arms (§6.3)
    se_min_hidden: int = 1  # ours: floor on C/r for narrow networks
    stem: Literal["7x7", "3x3", "cifar"] = "7x7"  # SENet-154: three 3×3 convs; cifar is ours
    stem_stride: int = 1  # ours: stride of the single 3×3 conv of the cifar stem
    inplanes: int = 64  # stem output channels (SENet-154: 128)
    pool: Literal["ceil", "pad"] = "ceil"  # Caffe rounds the stem max-pool up; timm pads by 1
    stride_in_1x1: bool = True  # Caffe SE-ResNet: stride on the first 1×1; ResNeXt: on the 3×3
    downsample_kernel: int = 1  # SENet-154: 3×3 projection shortcuts from stage 2 on
    dropout: float = 0.0  # SENet-154: 0.2 before the classifier
    num_classes: int = 1000
    in_chans: int = 3

    def __post_init__(self) -> None:
        check_config(self)
        if len(self.layers) != len(self.planes):
            raise InputError(f"layers {self.layers} and planes {self.planes} differ in length")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"SENetConfig: dropout must be in [0, 1), got {self.dropout}")

    @property
    def min_size(self) -> int:
        """The smallest input side: the Caffe stem's ceil-mode max-pool (3x3, stride 2, no
        padding) needs a 2x2 map, which the stride-2 stem makes from 3x3 (2x2 gives 1x1)."""
        return 3 if self.stem != "cifar" and self.pool == "ceil" else 1

    def widths(self, planes: int) -> tuple[int, int]:
        """Channel counts (after the 1×1, after the 3×3) of a bottleneck."""
        if self.block == "resnet":
            return planes, planes
        if self.block == "resnext":
            w = planes * self.base_width // 64 * self.groups
            return w, w
        return planes * 2, planes * 4  # SENet-154 (official prototxt): halve the first 1×1


class SEBottleneck(nn.Module):
    """1×1 → 3×3 (grouped) → 1×1 bottleneck whose output is rescaled by SE before the sum."""

    expansion = 4

    def __init__(
        self,
        cfg: SENetConfig,
        inplanes: int,
        planes: int,
        stride: int,
        downsample: nn.Module | None,
    ) -> None:
        super().__init__()
        w1, w2 = cfg.widths(planes)
        out = planes * self.expansion
        s1, s3 = (stride, 1) if cfg.stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, w1, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(w1)
        self.conv2 = nn.Conv2d(w1, w2, 3, stride=s3, padding=1, groups=cfg.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(w2)
        self.conv3 = nn.Conv2d(w2, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.se_position = cfg.se
        if cfg.se != "none":
            self.se_module = SqueezeExcite(out, cfg.reduction, cfg.se_min_hidden)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.se_position == "standard":
            y = self.se_module(y)  # recalibrate the residual branch before the sum (Fig. 3)
        # The projection runs after the branch, so that its output is not held in memory while
        # the branch runs; the sum goes into the branch's own buffer (no new allocation; autograd
        # allows it: neither SE's product nor BN needs its output for the backward pass).
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(y.add_(shortcut))
        if self.se_position == "post":
            y = self.se_module(y)  # SE-POST ablation (Table 14): after the sum and its ReLU
        return y


def _stem(cfg: SENetConfig) -> nn.Sequential:
    c = cfg.in_chans
    if cfg.stem == "3x3":  # SENet-154: 3×3/2 (64) → 3×3 (64) → 3×3 (inplanes), then max-pool
        mods = [
            ("conv1", nn.Conv2d(c, 64, 3, stride=2, padding=1, bias=False)),
            ("bn1", nn.BatchNorm2d(64)),
            ("relu1", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(64, 64, 3, padding=1, bias=False)),
            ("bn2", nn.BatchNorm2d(64)),
            ("relu2", nn.ReLU(inplace=True)),
            ("conv3", nn.Conv2d(64, cfg.inplanes, 3, padding=1, bias=False)),
            ("bn3", nn.BatchNorm2d(cfg.inplanes)),
            ("relu3", nn.ReLU(inplace=True)),
        ]
    elif cfg.stem == "7x7":
        mods = [
            ("conv1", nn.Conv2d(c, cfg.inplanes, 7, stride=2, padding=3, bias=False)),
            ("bn1", nn.BatchNorm2d(cfg.inplanes)),
            ("relu1", nn.ReLU(inplace=True)),
        ]
    else:  # ours, for 32×32 inputs: one 3×3 conv, no pooling
        mods = [
            ("conv1", nn.Conv2d(c, cfg.inplanes, 3, stride=cfg.stem_stride, padding=1, bias=False)),
            ("bn1", nn.BatchNorm2d(cfg.inplanes)),
            ("relu1", nn.ReLU(inplace=True)),
        ]
        return nn.Sequential(OrderedDict(mods))
    if cfg.pool == "ceil":
        mods.append(("pool", nn.MaxPool2d(3, stride=2, ceil_mode=True)))
    else:
        mods.append(("pool", nn.MaxPool2d(3, stride=2, padding=1)))
    return nn.Sequential(OrderedDict(mods))


class SENet(nn.Module):
    """A ResNet/ResNeXt whose every bottleneck carries an SE block; `forward` returns logits."""

    def __init__(self, cfg: SENetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.layer0 = _stem(cfg)
        inplanes = cfg.inplanes
        for i, (n, planes) in enumerate(zip(cfg.layers, cfg.planes, strict=True)):
            stride = 1 if i == 0 else 2
            out = planes * SEBottleneck.expansion
            downsample = None
            if stride != 1 or inplanes != out:
                k = cfg.downsample_kernel if i > 0 else 1  # the first stage's is 1×1 always
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, out, k, stride=stride, padding=k // 2, bias=False),
                    nn.BatchNorm2d(out),
                )
            blocks = [SEBottleneck(cfg, inplanes, planes, stride, downsample)]
            blocks += [SEBottleneck(cfg, out, planes, 1, None) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = out
        self.num_features = inplanes
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.last_linear = nn.Linear(inplanes, cfg.num_classes)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.cfg.layers))]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer0(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(dim=(2, 3))  # global average pool: (B, C, H, W) -> (B, C)
        return self.last_linear(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.cfg.in_chans, min_size=self.cfg.min_size, dtype=model_dtype(self))
        out = self.forward_head(self.forward_features(x))
        ensure_finite_output(out, {"input": x}, self)
        return out


def _build(cfg: SENetConfig, overrides: dict) -> SENet:
    try:
        return SENet(replace(cfg, **overrides))
    except TypeError as e:
        known = ", ".join(SENetConfig.__dataclass_fields__)
        raise TypeError(f"{e}; SENetConfig takes: {known}") from None


# Table 1 of the paper gives the layouts; the official prototxts give the SENet-154 details.
def seresnet50(**overrides) -> SENet:
    """SE-ResNet-50 (Caffe release: stride on the 1×1)."""
    return _build(SENetConfig(layers=(3, 4, 6, 3)), overrides)


def seresnet101(**overrides) -> SENet:
    """SE-ResNet-101."""
    return _build(SENetConfig(layers=(3, 4, 23, 3)), overrides)


def seresnet152(**overrides) -> SENet:
    """SE-ResNet-152."""
    return _build(SENetConfig(layers=(3, 8, 36, 3)), overrides)


def seresnext50_32x4d(**overrides) -> SENet:
    """SE-ResNeXt-50 (32×4d)."""
    cfg = SENetConfig(
        layers=(3, 4, 6, 3), block="resnext", groups=32, base_width=4, stride_in_1x1=False
    )
    return _build(cfg, overrides)


def seresnext101_32x4d(**overrides) -> SENet:
    """SE-ResNeXt-101 (32×4d)."""
    cfg = SENetConfig(
        layers=(3, 4, 23, 3), block="resnext", groups=32, base_width=4, stride_in_1x1=False
    )
    return _build(cfg, overrides)


def senet154(**overrides) -> SENet:
    """SENet-154: SE-ResNeXt-152 (64×4d) with a 3×3 stem, 3×3 projections and dropout 0.2."""
    cfg = SENetConfig(
        layers=(3, 8, 36, 3),
        block="senet",
        groups=64,
        stem="3x3",
        inplanes=128,
        stride_in_1x1=False,
        downsample_kernel=3,
        dropout=0.2,
    )
    return _build(cfg, overrides)


def seresnet_mini(**overrides) -> SENet:
    """Ours: a 20-layer SE-ResNet for 32×32 images — the laptop-scale reproduction's network and
    the browser demo's classifier.

    A stride-2 3×3 stem, then three stages of two bottlenecks, widths 16/32/64 (outputs
    64/128/256). r = 8: with r = 16 the first stage's excitation would squeeze 64 channels
    through 4 units (a departure; see the card).
    """
    cfg = SENetConfig(
        layers=(2, 2, 2),
        planes=(16, 32, 64),
        reduction=8,
        stem="cifar",
        stem_stride=2,
        inplanes=32,
        num_classes=10,
    )
    return _build(cfg, overrides)


def tiny_overrides(name: str) -> dict:
    """One block per stage and 10 classes: the registry-wide tests' fast version of `name`."""
    return {"layers": (1,) * (3 if name == "seresnet_mini" else 4), "num_classes": 10}
