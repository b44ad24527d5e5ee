"""YOLOv3 (Redmon & Farhadi, 2018, arXiv 1804.02767): Darknet-53 and the three-scale detector.

Paper: "YOLOv3: An Incremental Improvement". Official code (C/CUDA): pjreddie/darknet, whose
`cfg/yolov3.cfg`, `cfg/yolov3-tiny.cfg` and `cfg/darknet53.cfg` define the networks layer by
layer; this module builds exactly those layers (checked: parameter counts and, through OpenCV's
darknet importer, outputs; see tests/papers/test_yolov3.py). The `.weights` reader is in
`convert.py`, the loss and the decode + NMS post-processing in `method.py`. What is ours: the
module names, the width/blocks knobs of the laptop-scale `yolov3_mini`, and one flat output.

The idea. Darknet-53 (Table 1) is a 3x3 conv of 32 filters, then five stages, each a stride-2
3x3 conv that doubles the width and 1, 2, 8, 8, 4 residual blocks of (1x1 conv to half width,
3x3 conv back); every conv is conv -> batch norm -> leaky ReLU (slope 0.1). The detector (§2.3)
predicts at three scales, "similar to feature pyramid networks": on the stride-32 map five convs
(1x1 and 3x3 alternating) form a branch; a 3x3 conv and a 1x1 conv turn it into predictions, and
a 1x1 conv + nearest x2 upsampling carry it down to be concatenated with the backbone's stride-16
map (cfg `route -1, 61`), and once more to stride 8 (`route -1, 36`). Each cell of each map
predicts 3 boxes, one per anchor of that scale, with 4 + 1 + C numbers each: (t_x, t_y, t_w, t_h),
the objectness logit and C independent class logits, so the map has 3(5 + C) channels (255 for
COCO). YOLOv3-tiny (the cfg; not in the paper) is seven conv + max-pool layers and two scales.

Output. `forward` returns one tensor of raw logits, (B, N, 5 + C), with N = sum over the scales
of 3 * (H/s) * (W/s): the maps in the cfg's order (stride 32, 16, 8), each flattened anchor by
anchor, then row by row (the order of darknet's own output buffer, `entry_index` in yolo_layer.c).
`forward_maps` returns the three (B, 3(5 + C), H/s, W/s) maps. One output keeps the ONNX graph
and the export check simple; decoding (sigmoids, anchors, cell offsets) is `method.decode`.

Input: RGB in [0, 1], H and W multiples of 32. Darknet divides 8-bit pixels by 255 and applies
no mean or std; at test time it letterboxes the image (aspect kept, grey 0.5 padding) into the
network size (`method.letterbox`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_config, check_image_batch, ensure_finite_output, model_dtype

# §2.3: nine k-means clusters on COCO, (w, h) in input pixels; masks give each scale its three.
ANCHORS = (
    (10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198), (373, 326)
)  # fmt: skip
MASKS = ((6, 7, 8), (3, 4, 5), (0, 1, 2))  # stride 32, 16, 8 (cfg/yolov3.cfg)
TINY_ANCHORS = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))
TINY_MASKS = ((3, 4, 5), (0, 1, 2))  # stride 32, 16 (cfg/yolov3-tiny.cfg)


@dataclass(frozen=True, kw_only=True)
class YOLOv3Config:
    """Hyper-parameters of one YOLOv3 network (cfg/yolov3.cfg by default)."""

    num_classes: int = 80
    anchors: tuple[tuple[float, float], ...] = ANCHORS  # (w, h) in input pixels
    masks: tuple[tuple[int, ...], ...] = MASKS  # anchor indices per output, coarse to fine
    tiny: bool = False  # cfg/yolov3-tiny.cfg: 7 conv + max-pool layers, two scales
    width: int = 32  # filters of the first conv; all widths scale with it (tiny: 16)
    blocks: tuple[int, ...] = (1, 2, 8, 8, 4)  # residual blocks per Darknet-53 stage
    # Darknet normalises with sqrt(var + 1e-5) on the GPU (cuDNN, where the released weights were
    # trained and evaluated) and with sqrt(var) + 1e-6 on the CPU (blas.c); OpenCV uses 1e-6.
    bn_eps: float = 1e-5
    in_chans: int = 3

    def __post_init__(self) -> None:
        check_config(self)
        if len(self.masks) != (2 if self.tiny else 3) or len({len(m) for m in self.masks}) != 1:
            raise InputError(
                f"{'yolov3-tiny has 2' if self.tiny else 'yolov3 has 3'} outputs with the same "
                f"number of anchors each; got masks {self.masks}"
            )
        used = sorted(i for m in self.masks for i in m)
        if used != list(range(len(self.anchors))):
            raise InputError(
                f"masks {self.masks} must use each of {len(self.anchors)} anchors once"
            )
        if not self.tiny and len(self.blocks) != 5:
            raise InputError(f"Darknet-53 has five stages of >= 1 block, got {self.blocks}")

    @property
    def strides(self) -> tuple[int, ...]:
        return (32, 16) if self.tiny else (32, 16, 8)

    @property
    def level_anchors(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        """The anchors of each output, in the order of `strides`."""
        return tuple(tuple(self.anchors[i] for i in m) for m in self.masks)

    @property
    def outputs_per_cell(self) -> int:
        """Channels of one output map: anchors x (4 box + 1 objectness + C class logits)."""
        return len(self.masks[0]) * (5 + self.num_classes)


class ConvBNLeaky(nn.Module):
    """A darknet `[convolutional]` with `batch_normalize=1 activation=leaky`: conv (no bias: BN's
    shift plays that role, darknet's `biases`) -> batch norm -> leaky ReLU 0.1. `pad=1` in the
    cfg means padding size // 2."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False)
        # Darknet's running averages: rolling = .99 rolling + .01 batch (batchnorm_layer.c).
        self.bn = nn.BatchNorm2d(c_out, eps=eps, momentum=0.01)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Residual(nn.Module):
    """Darknet-53's block: 1x1 conv to c/2, 3x3 conv back to c, plus the input (`[shortcut]
    from=-3 activation=linear`)."""

    def __init__(self, c: int, eps: float) -> None:
        super().__init__()
        self.conv1 = ConvBNLeaky(c, c // 2, 1, eps=eps)
        self.conv2 = ConvBNLeaky(c // 2, c, 3, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class Stage(nn.Module):
    """A stride-2 3x3 conv that doubles the width, then `n` residual blocks (Table 1)."""

    def __init__(self, c_in: int, n: int, eps: float) -> None:
        super().__init__()
        self.down = ConvBNLeaky(c_in, 2 * c_in, 3, stride=2, eps=eps)
        self.blocks = nn.Sequential(*(Residual(2 * c_in, eps) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(x))


class Darknet53(nn.Module):
    """The 52 convolutions of Table 1 (cfg layers 0-74); returns the stride 8, 16, 32 maps."""

    def __init__(self, cfg: YOLOv3Config) -> None:
        super().__init__()
        w, eps = cfg.width, cfg.bn_eps
        self.stem = ConvBNLeaky(cfg.in_chans, w, 3, eps=eps)
        self.stages = nn.ModuleList(
            Stage(w * 2**k, n, eps) for k, n in enumerate(cfg.blocks)
        )  # widths 64, 128, 256, 512, 1024 at strides 2 .. 32

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats[-3:]  # cfg layers 36 (stride 8), 61 (stride 16), 74 (stride 32)

    def darknet_convs(self) -> list[nn.Module]:
        convs = [self.stem]
        for stage in self.stages:
            convs.append(stage.down)
            for b in stage.blocks:
                convs += [b.conv1, b.conv2]
        return convs


class DetectionBlock(nn.Module):
    """One YOLOv3 output (cfg layers 75-81 for stride 32): five convs, 1x1 to c and 3x3 to 2c in
    turn, give the branch that the next scale reads (`route -4`); a 3x3 conv to 2c and a linear
    1x1 conv with bias give the predictions."""

    def __init__(self, c_in: int, c: int, n_out: int, eps: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNLeaky(c_in, c, 1, eps=eps),
            ConvBNLeaky(c, 2 * c, 3, eps=eps),
            ConvBNLeaky(2 * c, c, 1, eps=eps),
            ConvBNLeaky(c, 2 * c, 3, eps=eps),
            ConvBNLeaky(2 * c, c, 1, eps=eps),
        )
        self.conv = ConvBNLeaky(c, 2 * c, 3, eps=eps)
        self.pred = nn.Conv2d(2 * c, n_out, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        branch = self.body(x)
        return branch, self.pred(self.conv(branch))

    def darknet_convs(self) -> list[nn.Module]:
        return [*self.body, self.conv, self.pred]


class _Detector(nn.Module):
    """What both detectors share: the input check, the flat output, the darknet conv order."""

    cfg: YOLOv3Config

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def darknet_convs(self) -> list[nn.Module]:
        """The convolutions in the order of the cfg file, which is the order of a .weights file."""
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        check_image_batch(x, self.cfg.in_chans, min_size=32, dtype=model_dtype(self))
        if not torch.jit.is_tracing() and (x.shape[2] % 32 or x.shape[3] % 32):
            raise InputError(
                f"YOLOv3 needs H and W that are multiples of 32 (its coarsest stride), got "
                f"{x.shape[2]}x{x.shape[3]}; letterbox the image to e.g. 416x416 "
                "(sotazoo.papers.yolov3.method.letterbox)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> raw logits (B, N, 5 + C) in the order of the docstring."""
        self.check_input(x)
        out = torch.cat([flatten_map(m, len(self.cfg.masks[0])) for m in self.forward_maps(x)], 1)
        ensure_finite_output(out, {"input": x}, self)
        return out


def flatten_map(m: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """(B, A(5 + C), h, w) -> (B, A h w, 5 + C): anchor by anchor, then row by row."""
    b, c, h, w = m.shape  # explicit sizes: with an empty batch, -1 is undetermined
    m = m.reshape(b, num_anchors, c // num_anchors, h, w)  # (B, A, 5 + C, h, w)
    return m.permute(0, 1, 3, 4, 2).reshape(b, num_anchors * h * w, c // num_anchors)


class YOLOv3(_Detector):
    """cfg/yolov3.cfg: Darknet-53 and three detection blocks joined by 1x1 conv + upsampling."""

    def __init__(self, cfg: YOLOv3Config) -> None:
        super().__init__()
        self.cfg = cfg
        w, eps, n_out = cfg.width, cfg.bn_eps, cfg.outputs_per_cell
        self.backbone = Darknet53(cfg)
        # Stride 32 reads the 32w = 1024-channel map; strides 16 and 8 read the concatenation of
        # the upsampled branch (8w, 4w) and the backbone map (16w, 8w): 768 and 384 channels.
        self.heads = nn.ModuleList(
            [
                DetectionBlock(32 * w, 16 * w, n_out, eps),
                DetectionBlock(8 * w + 16 * w, 8 * w, n_out, eps),
                DetectionBlock(4 * w + 8 * w, 4 * w, n_out, eps),
            ]
        )
        self.laterals = nn.ModuleList(
            [ConvBNLeaky(16 * w, 8 * w, 1, eps=eps), ConvBNLeaky(8 * w, 4 * w, 1, eps=eps)]
        )
        _init_darknet(self)

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3, c4, c5 = self.backbone(x)
        branch, p32 = self.heads[0](c5)
        # `route -4` -> 1x1 conv -> `upsample stride=2` (nearest) -> `route -1, 61`: upsampled first.
        x = torch.cat([F.interpolate(self.laterals[0](branch), scale_factor=2.0), c4], 1)
        branch, p16 = self.heads[1](x)
        x = torch.cat([F.interpolate(self.laterals[1](branch), scale_factor=2.0), c3], 1)
        _, p8 = self.heads[2](x)
        return [p32, p16, p8]

    def darknet_convs(self) -> list[nn.Module]:
        h, lat = self.heads, self.laterals
        return [
            *self.backbone.darknet_convs(),
            *h[0].darknet_convs(),
            lat[0],
            *h[1].darknet_convs(),
            lat[1],
            *h[2].darknet_convs(),
        ]


class YOLOv3Tiny(_Detector):
    """cfg/yolov3-tiny.cfg: six 3x3 conv + 2x2 max-pool pairs (the last pool at stride 1), a
    3x3 conv to 64w, and two outputs (stride 32 and 16)."""

    def __init__(self, cfg: YOLOv3Config) -> None:
        super().__init__()
        self.cfg = cfg
        w, eps, n_out = cfg.width, cfg.bn_eps, cfg.outputs_per_cell
        chans = (cfg.in_chans, *(w * 2**k for k in range(7)))  # 3, 16, 32, ..., 1024
        self.backbone = nn.ModuleList(
            ConvBNLeaky(a, b, 3, eps=eps) for a, b in zip(chans[:-1], chans[1:], strict=True)
        )
        self.neck = ConvBNLeaky(64 * w, 16 * w, 1, eps=eps)  # cfg layer 13, read by `route -4`
        self.heads = nn.ModuleList(
            [TinyHead(16 * w, 32 * w, n_out, eps), TinyHead(8 * w + 16 * w, 16 * w, n_out, eps)]
        )
        self.laterals = nn.ModuleList([ConvBNLeaky(16 * w, 8 * w, 1, eps=eps)])
        _init_darknet(self)

    def forward_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        for conv in self.backbone[:5]:
            x = conv(x)
            c4 = x  # the last one (cfg layer 8, stride 16) is routed to the second output
            x = F.max_pool2d(x, 2, 2)
        x = self.backbone[5](x)
        # `maxpool size=2 stride=1`: darknet pads one row and column after the map (padding =
        # size - 1, offset -padding/2 = 0) with -inf; replicating the edge gives the same max.
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), 2, 1)
        branch = self.neck(self.backbone[6](x))
        p32 = self.heads[0](branch)
        x = torch.cat([F.interpolate(self.laterals[0](branch), scale_factor=2.0), c4], 1)
        return [p32, self.heads[1](x)]

    def darknet_convs(self) -> list[nn.Module]:
        h = self.heads
        return [*self.backbone, self.neck, *h[0].convs(), self.laterals[0], *h[1].convs()]


class TinyHead(nn.Module):
    """A yolov3-tiny output: 3x3 conv + leaky, then the linear 1x1 prediction conv."""

    def __init__(self, c_in: int, c: int, n_out: int, eps: float) -> None:
        super().__init__()
        self.conv = ConvBNLeaky(c_in, c, 3, eps=eps)
        self.pred = nn.Conv2d(c, n_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pred(self.conv(x))

    def convs(self) -> list[nn.Module]:
        return [self.conv, self.pred]


class Darknet53Classifier(nn.Module):
    """cfg/darknet53.cfg, the ImageNet network of Table 2: Darknet-53, global average pool and a
    linear 1x1 conv to the classes (darknet adds a softmax; we return the logits)."""

    def __init__(self, cfg: YOLOv3Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = Darknet53(cfg)
        self.fc = nn.Conv2d(32 * cfg.width, cfg.num_classes, 1)
        _init_darknet(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.cfg.in_chans, min_size=32, dtype=model_dtype(self))
        y = self.backbone(x)[-1].mean((2, 3), keepdim=True)  # `[avgpool]`: (B, 1024, 1, 1)
        out = self.fc(y).flatten(1)  # (B, classes)
        ensure_finite_output(out, {"input": x}, self)
        return out

    def darknet_convs(self) -> list[nn.Module]:
        return [*self.backbone.darknet_convs(), self.fc]


def _init_darknet(model: nn.Module) -> None:
    """Darknet's initialisation (convolutional_layer.c): weights ~ N(0, 2 / fan_in), biases 0,
    BN scale 1 and shift 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _build(cfg: YOLOv3Config, overrides: dict, cls: type[nn.Module] | None = None) -> nn.Module:
    try:
        cfg = replace(cfg, **overrides)
    except TypeError as e:
        known = ", ".join(YOLOv3Config.__dataclass_fields__)
        raise TypeError(f"{e}; YOLOv3Config takes: {known}") from None
    return (cls or (YOLOv3Tiny if cfg.tiny else YOLOv3))(cfg)


def yolov3_320(**overrides) -> nn.Module:
    """YOLOv3-320 (Figure 1): the YOLOv3 network run on 320x320 inputs."""
    return _build(YOLOv3Config(), overrides)


def yolov3_416(**overrides) -> nn.Module:
    """YOLOv3-416: cfg/yolov3.cfg, 80 COCO classes (same weights at every input size)."""
    return _build(YOLOv3Config(), overrides)


def yolov3_608(**overrides) -> nn.Module:
    """YOLOv3-608 (Table 3): the YOLOv3 network run on 608x608 inputs."""
    return _build(YOLOv3Config(), overrides)


def yolov3_tiny(**overrides) -> nn.Module:
    """YOLOv3-tiny: cfg/yolov3-tiny.cfg (the darknet release; not in the paper)."""
    cfg = YOLOv3Config(tiny=True, width=16, anchors=TINY_ANCHORS, masks=TINY_MASKS)
    return _build(cfg, overrides)


def darknet53(**overrides) -> nn.Module:
    """Darknet-53, the ImageNet classifier of Table 2 (cfg/darknet53.cfg, 1000 classes)."""
    return _build(YOLOv3Config(num_classes=1000), overrides, Darknet53Classifier)


# The paper's anchors rescaled from 416 to 128 pixels (x 128/416), rounded to 0.1 pixel.
MINI_ANCHORS = tuple((round(w * 128 / 416, 1), round(h * 128 / 416, 1)) for w, h in ANCHORS)


def yolov3_mini(**overrides) -> nn.Module:
    """Ours: a laptop-scale YOLOv3 for 128x128 images of a few classes: every width / 4
    (8 .. 256 filters), stages of 1, 1, 2, 2, 1 blocks, 4 classes, the anchors scaled to 128 px.
    Same layers, connections, outputs and loss as YOLOv3."""
    cfg = YOLOv3Config(num_classes=4, width=8, blocks=(1, 1, 2, 2, 1), anchors=MINI_ANCHORS)
    return _build(cfg, overrides)


def tiny_overrides(name: str) -> dict:
    """Narrow widths, one block per stage and 2 classes: the registry-wide tests' version."""
    if name == "darknet53":
        return {"width": 4, "blocks": (1,) * 5, "num_classes": 10}
    if name == "yolov3_tiny":
        return {"width": 2, "num_classes": 2}
    return {"width": 4, "blocks": (1,) * 5, "num_classes": 2}
