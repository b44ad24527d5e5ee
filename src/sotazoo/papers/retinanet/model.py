"""RetinaNet — a ResNet + FPN trunk with two small convolutional subnets on every pyramid level.

Paper: Lin, Goyal, Girshick, He, Dollár. "Focal Loss for Dense Object Detection", ICCV 2017,
arXiv 1708.02002. Official code (Caffe2): https://github.com/facebookresearch/Detectron
(`detectron/modeling/retinanet_heads.py`, `FPN.py`); its PyTorch successor detectron2, and
torchvision's port (`torchvision/models/detection/retinanet.py`), whose COCO weights load here.

What is the paper's (§4 "RetinaNet Detector"): the pyramid P3–P7 with 256 channels — P3–P5 from
C3–C5 through 1×1 lateral convs, a nearest-neighbour top-down path and 3×3 output convs, P6 a 3×3
stride-2 conv on C5, P7 a ReLU then a 3×3 stride-2 conv on P6; A = 9 anchors per position (areas
32² … 512² on P3 … P7, three scales 2^{0, 1/3, 2/3} × three aspect ratios 1:2, 1:1, 2:1); the class
subnet, 4 × (3×3 conv 256 + ReLU) then a 3×3 conv to K·A sigmoid logits, and the box subnet of the
same shape ending in 4·A class-agnostic offsets, both shared across levels but not with each other;
the initialisation of §4.1 (Gaussian σ = 0.01, zero bias, and the prior bias b = −log((1 − π)/π),
π = 0.01, on the last class conv); a backbone with frozen BatchNorm statistics and affine
(Detectron's `AffineChannel`) whose stem and first stage are not trained (`FREEZE_AT: 2`).

What follows torchvision, so that its checkpoints run exactly (the converter sets these; see
`convert.py`): the stride of a ResNet stage on the 3×3 conv (`stride_in_1x1=False`; Detectron and
the MSRA ImageNet models put it on the first 1×1), P6 computed from P5 (`p6_from="p5"`), anchor
sizes truncated to integers ((32, 40, 50) … (512, 645, 812)), FrozenBatchNorm with eps 0 for its
COCO weights, and 91 class slots. Key names are torchvision's, so its files need no renaming.

What is ours: the network returns raw outputs only and post-processing is a separate step
(`method.postprocess`), so that the network exports to ONNX; normalisation happens outside the
network, as in torchvision; `norm="batch"` and the laptop-scale `retinanet_mini`.

Input: RGB in [0, 1], normalised with the ImageNet mean and std (`IMAGENET_MEAN`, `IMAGENET_STD`)
*before* the network, resized by the caller (the paper: shorter side 600 or 800 px).
Output: one tensor (B, N, K + 4) — for each of the N anchors of the image, K class logits then the
box deltas (dx, dy, dw, dh). N runs level by level (P3 first), then row y, column x, then the
anchor a (aspect ratio major, scale minor): the order of `method.anchor_grid` and of torchvision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_config, check_image_batch, ensure_finite_output, model_dtype
from sotazoo.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 - the model's input

LEVELS = (3, 4, 5, 6, 7)  # P3–P7: strides 8 … 128


def paper_anchor_sizes(base: float = 32.0) -> tuple[tuple[float, ...], ...]:
    """Anchor sizes per level: base · 2^(l−3) · {2^0, 2^(1/3), 2^(2/3)} (§4 "Anchors")."""
    return tuple(tuple(base * 2 ** (lv - 3) * 2 ** (k / 3) for k in range(3)) for lv in LEVELS)


PAPER_ANCHOR_SIZES = paper_anchor_sizes()
# torchvision's `_default_anchorgen`: (x, int(x·2^(1/3)), int(x·2^(2/3))), i.e. truncated.
TORCHVISION_ANCHOR_SIZES = tuple(tuple(float(int(s)) for s in lvl) for lvl in PAPER_ANCHOR_SIZES)


@dataclass(frozen=True, kw_only=True)
class RetinaNetConfig:
    """Hyper-parameters of one RetinaNet (§4 and Detectron's `retinanet_R-50-FPN_1x.yaml`)."""

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)  # ResNet-50; ResNet-101: (3, 4, 23, 3)
    planes: tuple[int, int, int, int] = (64, 128, 256, 512)  # bottleneck widths (outputs ×4)
    stem_channels: int = 64
    stride_in_1x1: bool = True  # Detectron/MSRA; torchvision's ResNets: False (stride on the 3×3)
    norm: Literal["frozen", "batch"] = "frozen"  # frozen statistics and affine, as Detectron
    bn_eps: float = 0.0  # AffineChannel has none; torchvision's COCO weights also run with 0
    freeze_at: int = 2  # Detectron FREEZE_AT: stem (1) and stem + res2 (2) get no gradient
    fpn_channels: int = 256
    p6_from: Literal["c5", "p5"] = "c5"  # §4: P6 on C5; torchvision v1 builds it on P5
    head_convs: int = 4  # convs in each subnet before its predictor
    num_classes: int = 80  # COCO; torchvision's weights keep 91 slots (COCO's original ids)
    anchor_sizes: tuple[tuple[float, ...], ...] = PAPER_ANCHOR_SIZES
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    round_anchors: bool = True  # Detectron and torchvision round the cell anchors; detectron2 not
    prior: float = 0.01  # π of §3.3: every anchor starts as "object with probability 0.01"
    in_chans: int = 3

    def __post_init__(self) -> None:
        check_config(self, {"head_convs": 0, "freeze_at": 0})
        if self.freeze_at > 2:
            raise InputError(
                f"freeze_at must be 0, 1 (stem) or 2 (stem + res2), got {self.freeze_at}"
            )
        if not 0.0 < self.prior < 1.0:
            raise InputError(f"prior must be a probability in (0, 1), got {self.prior}")
        if self.bn_eps < 0:
            raise InputError(f"bn_eps must be >= 0, got {self.bn_eps}")
        sizes = self.anchor_sizes
        if len(sizes) != len(LEVELS) or len({len(s) for s in sizes}) != 1 or not sizes[0]:
            raise InputError(f"anchor_sizes needs one equal-length tuple per level P3–P7: {sizes}")
        if not self.aspect_ratios or min(self.aspect_ratios) <= 0:
            raise InputError(f"aspect_ratios must be positive, got {self.aspect_ratios}")

    @property
    def num_anchors(self) -> int:
        return len(self.aspect_ratios) * len(self.anchor_sizes[0])

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(2**lv for lv in LEVELS)


def prior_bias(pi: float) -> float:
    """b = −log((1 − π)/π): the bias that makes sigmoid(b) = π (§3.3, §4.1)."""
    return -math.log((1 - pi) / pi)


def _norm(cfg: RetinaNetConfig, channels: int) -> nn.Module:
    if cfg.norm == "frozen":  # statistics and affine as buffers: not parameters, never trained
        return FrozenBatchNorm2d(channels, eps=cfg.bn_eps)
    return nn.BatchNorm2d(channels, eps=cfg.bn_eps)


class Bottleneck(nn.Module):
    """ResNet bottleneck, 1×1 → 3×3 → 1×1 (×4 channels), with torchvision's key names."""

    expansion = 4

    def __init__(self, cfg: RetinaNetConfig, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * self.expansion
        s1, s3 = (stride, 1) if cfg.stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=s1, bias=False)
        self.bn1 = _norm(cfg, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=s3, padding=1, bias=False)
        self.bn2 = _norm(cfg, planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = _norm(cfg, out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), _norm(cfg, out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        y += x if self.downsample is None else self.downsample(x)  # in place, as torchvision
        return self.relu(y)


class ResNetBody(nn.Module):
    """The ResNet trunk without its classifier; returns C3, C4, C5 (strides 8, 16, 32)."""

    def __init__(self, cfg: RetinaNetConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cfg.in_chans, cfg.stem_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = _norm(cfg, cfg.stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = cfg.stem_channels
        for i, (n, planes) in enumerate(zip(cfg.layers, cfg.planes, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [Bottleneck(cfg, inplanes, planes, stride)]
            inplanes = planes * Bottleneck.expansion
            blocks += [Bottleneck(cfg, inplanes, planes, 1) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_channels = tuple(p * Bottleneck.expansion for p in cfg.planes[1:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]


def _conv(c_in: int, c_out: int, k: int, *, relu: bool = False) -> nn.Sequential:
    """A conv with bias (and a ReLU) in a Sequential, so that its keys read `<name>.0.weight` as
    those of torchvision's `Conv2dNormActivation`."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, padding=k // 2)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class P6P7(nn.Module):
    """P6 = 3×3/2 conv on C5 (paper) or P5 (torchvision v1); P7 = 3×3/2 conv on ReLU(P6) (§4)."""

    def __init__(self, in_channels: int, channels: int, from_p5: bool) -> None:
        super().__init__()
        self.from_p5 = from_p5
        self.p6 = nn.Conv2d(in_channels, channels, 3, stride=2, padding=1)
        self.p7 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, p5: torch.Tensor, c5: torch.Tensor) -> list[torch.Tensor]:
        p6 = self.p6(p5 if self.from_p5 else c5)
        return [p6, self.p7(F.relu(p6))]


class FPN(nn.Module):
    """Feature pyramid (Lin et al., 2017b) over C3–C5, extended with P6 and P7."""

    def __init__(self, cfg: RetinaNetConfig, in_channels: tuple[int, ...]) -> None:
        super().__init__()
        c = cfg.fpn_channels
        self.inner_blocks = nn.ModuleList(_conv(ci, c, 1) for ci in in_channels)  # lateral 1×1
        self.layer_blocks = nn.ModuleList(_conv(c, c, 3) for _ in in_channels)  # output 3×3
        from_p5 = cfg.p6_from == "p5"
        self.extra_blocks = P6P7(c if from_p5 else in_channels[-1], c, from_p5)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        # Top-down: start from C5's lateral, upsample ×2 (nearest) and add the next lateral.
        inner = self.inner_blocks[-1](feats[-1])
        outs = [self.layer_blocks[-1](inner)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.inner_blocks[i](feats[i])
            inner = lateral + F.interpolate(inner, size=lateral.shape[-2:], mode="nearest")
            outs.insert(0, self.layer_blocks[i](inner))
        return outs + self.extra_blocks(outs[-1], feats[-1])  # [P3, P4, P5, P6, P7]


class Backbone(nn.Module):
    def __init__(self, cfg: RetinaNetConfig) -> None:
        super().__init__()
        self.body = ResNetBody(cfg)
        self.fpn = FPN(cfg, self.body.out_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.fpn(self.body(x))


class Subnet(nn.Module):
    """`head_convs` × (3×3 conv + ReLU), then a 3×3 conv to A·n outputs per position; shared by
    every level. Returns (B, H·W·A, n) per level, concatenated over the levels."""

    def __init__(self, cfg: RetinaNetConfig, n: int, predictor: str) -> None:
        super().__init__()
        c = cfg.fpn_channels
        self.n, self.predictor, self.num_anchors = n, predictor, cfg.num_anchors
        self.conv = nn.Sequential(*(_conv(c, c, 3, relu=True) for _ in range(cfg.head_convs)))
        self.add_module(predictor, nn.Conv2d(c, cfg.num_anchors * n, 3, padding=1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        out = []
        for f in feats:
            y = getattr(self, self.predictor)(self.conv(f))  # (B, A·n, H, W), channel a·n + j
            b, _, h, w = y.shape  # explicit sizes: with an empty batch, -1 is undetermined
            y = y.permute(0, 2, 3, 1).reshape(b, h * w * self.num_anchors, self.n)  # (B, H·W·A, n)
            out.append(y)
        return torch.cat(out, dim=1)


class RetinaNetHead(nn.Module):
    def __init__(self, cfg: RetinaNetConfig) -> None:
        super().__init__()
        self.classification_head = Subnet(cfg, cfg.num_classes, "cls_logits")
        self.regression_head = Subnet(cfg, 4, "bbox_reg")

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classification_head(feats), self.regression_head(feats)


class RetinaNet(nn.Module):
    """Backbone + FPN + the two subnets; `forward` returns (B, N, K + 4) raw outputs."""

    def __init__(self, cfg: RetinaNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg)
        self.head = RetinaNetHead(cfg)
        self._init_weights()
        self._freeze(cfg.freeze_at)

    def _init_weights(self) -> None:
        # §4.1: the new convs (the subnets) get N(0, 0.01) weights and zero bias, the last class
        # conv the prior bias. FPN convs: Detectron's Xavier fill (kaiming_uniform, a = 1, as
        # torchvision and detectron2's c2_xavier_fill). Backbone: He init, BN at identity.
        for m in self.backbone.body.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.backbone.fpn.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)
        for m in self.head.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.head.classification_head.cls_logits.bias, prior_bias(self.cfg.prior))

    def _freeze(self, freeze_at: int) -> None:
        body = self.backbone.body
        if freeze_at >= 1:
            body.conv1.requires_grad_(False)
            body.bn1.requires_grad_(False)
        if freeze_at >= 2:
            body.layer1.requires_grad_(False)

    def feature_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """(H, W) of P3 … P7 for an input of height × width: every stride-2 layer (7×7 pad 3,
        3×3 pad 1, 1×1 pad 0) maps n to ⌈n/2⌉, so level l has ⌈n/2^l⌉."""
        return [(-(-height // 2**lv), -(-width // 2**lv)) for lv in LEVELS]

    def anchors(self, height: int, width: int) -> tuple[torch.Tensor, list[int]]:
        """The (N, 4) anchors (x1, y1, x2, y2) in input pixels, in output order, and the number
        of anchors per level."""
        from sotazoo.papers.retinanet.method import anchor_grid

        return anchor_grid(self.cfg, self.feature_sizes(height, width))

    def forward_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, K) class logits and (B, N, 4) box deltas."""
        check_image_batch(x, self.cfg.in_chans, dtype=model_dtype(self))
        logits, deltas = self.head(self.backbone(x))
        ensure_finite_output((logits, deltas), {"input": x}, self)
        return logits, deltas

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One output tensor keeps the ONNX graph to one output (what sotazoo.export checks).
        return torch.cat(self.forward_heads(x), dim=-1)  # (B, N, K + 4)


def _build(cfg: RetinaNetConfig, overrides: dict) -> RetinaNet:
    try:
        return RetinaNet(replace(cfg, **overrides))
    except TypeError as e:
        known = ", ".join(RetinaNetConfig.__dataclass_fields__)
        raise TypeError(f"{e}; RetinaNetConfig takes: {known}") from None


def retinanet_resnet50_fpn(**overrides) -> RetinaNet:
    """RetinaNet with ResNet-50-FPN, as in the paper (P6 on C5, 80 classes)."""
    return _build(RetinaNetConfig(), overrides)


def retinanet_resnet101_fpn(**overrides) -> RetinaNet:
    """RetinaNet with ResNet-101-FPN (the paper's Table 2 model)."""
    return _build(RetinaNetConfig(layers=(3, 4, 23, 3)), overrides)


def retinanet_mini(**overrides) -> RetinaNet:
    """Ours: a laptop-scale RetinaNet for 128×128 images of a few classes of generated shapes.

    The same architecture at 1/8 of the widths: one bottleneck per stage (widths 8 … 64, so C5 has
    256 channels), a 32-channel pyramid, two convs per subnet, 4 classes (the shapes of
    `sotazoo.data.detection_shapes`), trainable BatchNorm
    (it learns from scratch) and anchors of 16 … 256 px (scale 2 of the stride instead of 4).
    """
    cfg = RetinaNetConfig(
        layers=(1, 1, 1, 1),
        planes=(8, 16, 32, 64),
        stem_channels=16,
        norm="batch",
        bn_eps=1e-5,
        freeze_at=0,
        fpn_channels=32,
        head_convs=2,
        num_classes=4,
        anchor_sizes=paper_anchor_sizes(16.0),
    )
    return _build(cfg, overrides)


def tiny_overrides(name: str) -> dict:
    """Narrow, one block per stage, 5 classes: the registry-wide tests' fast version of `name`."""
    if name == "retinanet_mini":
        return {}
    return {
        "layers": (1, 1, 1, 1),
        "planes": (8, 16, 32, 64),
        "stem_channels": 16,
        "fpn_channels": 32,
        "head_convs": 2,
        "num_classes": 5,
    }
