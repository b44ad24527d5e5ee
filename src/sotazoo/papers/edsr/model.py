"""EDSR and MDSR (Lim et al., CVPR 2017 Workshops, arXiv 1707.02921): the models.

Paper: "Enhanced Deep Residual Networks for Single Image Super-Resolution". Official code:
sanghyun-son/EDSR-PyTorch (`src/model/edsr.py`, `mdsr.py`, `common.py`); the Torch7 original is
LimBee/NTIRE2017. Our modules keep the official state-dict keys (`sub_mean`, `head.0`,
`body.<i>.body.{0,2}`, `body.<B>`, `tail.0.<j>`, `tail.1`; MDSR's `pre_process.<s>` and
`upsample.<s>`), so the authors' checkpoints load unchanged. What is ours: inputs and outputs in
[0, 1] (the official code works on [0, 255]; we scale by `rgb_range` inside), the mean shift
held as buffers rather than frozen parameters, and the `norm="batch"` option, the SRResNet-style
ablation that the reproduction trains against the real block.

The idea (§3.1, Fig. 2): a super-resolution network regresses pixel values, so batch norm, which
renormalises every feature map, throws away range information and costs memory; drop it. The
residual block is conv3x3 -> ReLU -> conv3x3, scaled by a constant (0.1 in the wide EDSR, §3.2)
before the identity addition. The network (Fig. 3): subtract the DIV2K mean, a conv head, B
blocks and a conv, a long skip from the head, then a sub-pixel upsampler (conv to F*s^2
channels + pixel shuffle; x4 is two x2 stages) and a conv to RGB; add the mean back.

MDSR (§3.3, Fig. 5): one trunk of 80 narrow blocks shared by x2, x3 and x4, a per-scale
pre-processing head (two residual blocks with 5x5 kernels) and a per-scale upsampler; a forward
pass runs the head and tail of one scale.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_config, check_image_batch, ensure_finite_output, model_dtype

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)  # official common.MeanShift: DIV2K training-set RGB mean


@dataclass(frozen=True, kw_only=True)
class EDSRConfig:
    """Hyper-parameters of one EDSR (or of MDSR, `scales` with more than one entry)."""

    scales: tuple[int, ...] = (2,)  # EDSR: one scale; MDSR: (2, 3, 4), one head and tail each
    n_resblocks: int = 16  # B (Table 1: baseline 16, EDSR 32, MDSR 80)
    n_feats: int = 64  # F (Table 1: baseline 64, EDSR 256, MDSR 64)
    res_scale: float = 1.0  # §3.2: 0.1 for EDSR (F = 256); 1 in the baseline and MDSR
    norm: str = "none"  # "none": the paper's block; "batch": BN after each conv of a block, as
    # in SRResNet (the ablation of the reproduction, not a model of the paper)
    pre_kernel: int = 5  # MDSR's per-scale pre-processing blocks use 5x5 kernels (§3.3)
    rgb_range: float = 255.0  # the official code's pixel range; checkpoints expect it
    rgb_mean: tuple[float, float, float] = DIV2K_MEAN

    def __post_init__(self) -> None:
        scales = self.scales if isinstance(self.scales, tuple) else ()
        if not scales or [s for s in scales if s not in (2, 3, 4, 8)]:
            raise InputError(f"scales must be a non-empty tuple of 2, 3, 4 or 8; got {self.scales}")
        check_config(self, {"n_resblocks": 0})  # B = 0: head, one conv, tail (a valid network)
        if self.norm not in ("none", "batch"):
            raise InputError(f"norm must be 'none' or 'batch', got {self.norm!r}")
        if self.pre_kernel % 2 != 1:
            raise InputError(f"pre_kernel must be odd (same padding), got {self.pre_kernel}")
        if not self.rgb_range > 0:
            raise InputError(f"rgb_range must be positive, got {self.rgb_range}")


def _conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)  # "same" padding, with bias


class MeanShift(nn.Module):
    """Subtract (sign -1) or add (sign +1) the dataset mean, as a fixed 1x1 conv.

    The official code holds it as a `Conv2d` with frozen weights; we keep its two tensors under
    the same names as buffers, so checkpoints load and optimisers never see them.
    """

    def __init__(self, rgb_range: float, mean: tuple[float, ...], sign: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.eye(3).reshape(3, 3, 1, 1))
        self.register_buffer("bias", sign * rgb_range * torch.tensor(mean))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight, self.bias)


class ResBlock(nn.Module):
    """conv -> ReLU -> conv, times `res_scale`, plus the input (Fig. 2c): no BN, no outer ReLU."""

    def __init__(self, n_feats: int, kernel: int, res_scale: float, norm: str = "none") -> None:
        super().__init__()
        bn = norm == "batch"
        layers: list[nn.Module] = [_conv(n_feats, n_feats, kernel)]
        layers += [nn.BatchNorm2d(n_feats)] if bn else []
        layers += [nn.ReLU(inplace=True), _conv(n_feats, n_feats, kernel)]
        layers += [nn.BatchNorm2d(n_feats)] if bn else []
        self.body = nn.Sequential(*layers)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling (§3.2, after ESPCN): conv F -> F*r^2, pixel shuffle by r; x4 and x8
    are stages of x2, x3 one stage of 3 (official `common.Upsampler`)."""

    def __init__(self, scale: int, n_feats: int) -> None:
        factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
        layers: list[nn.Module] = []
        for r in factors:
            layers += [_conv(n_feats, n_feats * r * r), nn.PixelShuffle(r)]
        super().__init__(*layers)


class EDSR(nn.Module):
    """Single-scale EDSR: image in [0, 1], (B, 3, H, W) -> (B, 3, sH, sW) in [0, 1] (unclipped)."""

    def __init__(self, cfg: EDSRConfig) -> None:
        super().__init__()
        if len(cfg.scales) != 1:
            raise ValueError(f"EDSR is single-scale; use MDSR for scales {cfg.scales}")
        self.cfg = cfg
        self.scale = cfg.scales[0]
        f = cfg.n_feats
        self.sub_mean = MeanShift(cfg.rgb_range, cfg.rgb_mean, -1)
        self.add_mean = MeanShift(cfg.rgb_range, cfg.rgb_mean, +1)
        self.head = nn.Sequential(_conv(3, f))
        blocks = [ResBlock(f, 3, cfg.res_scale, cfg.norm) for _ in range(cfg.n_resblocks)]
        self.body = nn.Sequential(*blocks, _conv(f, f))
        self.tail = nn.Sequential(Upsampler(self.scale, f), _conv(f, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, 3, dtype=model_dtype(self))
        y = self.head(self.sub_mean(x * self.cfg.rgb_range))
        y = y + self.body(y)  # the long skip over the whole body (Fig. 3)
        y = self.add_mean(self.tail(y)) / self.cfg.rgb_range
        ensure_finite_output(y, {"input": x}, self)
        return y


class MDSR(nn.Module):
    """Multi-scale MDSR: forward(x, scale) runs the shared trunk with the head and upsampler of
    `scale` (default: the first of `cfg.scales`)."""

    def __init__(self, cfg: EDSRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        f, k = cfg.n_feats, cfg.pre_kernel
        self.sub_mean = MeanShift(cfg.rgb_range, cfg.rgb_mean, -1)
        self.add_mean = MeanShift(cfg.rgb_range, cfg.rgb_mean, +1)
        self.head = nn.Sequential(_conv(3, f))
        self.pre_process = nn.ModuleList(
            nn.Sequential(ResBlock(f, k, 1.0), ResBlock(f, k, 1.0)) for _ in cfg.scales
        )
        blocks = [ResBlock(f, 3, cfg.res_scale, cfg.norm) for _ in range(cfg.n_resblocks)]
        self.body = nn.Sequential(*blocks, _conv(f, f))
        self.upsample = nn.ModuleList(Upsampler(s, f) for s in cfg.scales)
        self.tail = nn.Sequential(_conv(f, 3))

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        check_image_batch(x, 3, dtype=model_dtype(self))
        scale = self.cfg.scales[0] if scale is None else scale
        if scale not in self.cfg.scales:
            raise InputError(f"this MDSR has scales {self.cfg.scales}, not x{scale}")
        i = self.cfg.scales.index(scale)
        y = self.pre_process[i](self.head(self.sub_mean(x * self.cfg.rgb_range)))
        y = y + self.body(y)
        y = self.add_mean(self.tail(self.upsample[i](y))) / self.cfg.rgb_range
        ensure_finite_output(y, {"input": x}, self)
        return y


def _build(cls: type[nn.Module], **kwargs) -> nn.Module:
    if "scale" in kwargs:  # convenience: scale=4 for scales=(4,)
        kwargs["scales"] = (kwargs.pop("scale"),)
    known = {f.name for f in fields(EDSRConfig)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"unknown EDSR config fields {unknown}; known: {sorted(known)}")
    return cls(EDSRConfig(**kwargs))


BASELINE = {"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0}  # Table 1, "baseline"
FULL = {"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1}  # Table 1, EDSR


def _edsr(scale: int, preset: dict, overrides: dict) -> EDSR:
    return _build(EDSR, **{**preset, "scales": (scale,), **overrides})


def edsr_baseline_x2(**overrides) -> EDSR:
    """EDSR baseline x2: B = 16, F = 64, no residual scaling (1.37M parameters)."""
    return _edsr(2, BASELINE, overrides)


def edsr_baseline_x3(**overrides) -> EDSR:
    """EDSR baseline x3 (1.55M parameters)."""
    return _edsr(3, BASELINE, overrides)


def edsr_baseline_x4(**overrides) -> EDSR:
    """EDSR baseline x4 (1.52M parameters)."""
    return _edsr(4, BASELINE, overrides)


def edsr_x2(**overrides) -> EDSR:
    """EDSR x2: B = 32, F = 256, residual scaling 0.1 (40.7M parameters)."""
    return _edsr(2, FULL, overrides)


def edsr_x3(**overrides) -> EDSR:
    """EDSR x3 (43.7M parameters)."""
    return _edsr(3, FULL, overrides)


def edsr_x4(**overrides) -> EDSR:
    """EDSR x4 (43.1M parameters)."""
    return _edsr(4, FULL, overrides)


def mdsr(**overrides) -> MDSR:
    """MDSR: B = 80, F = 64, heads and upsamplers for x2, x3, x4 (7.95M parameters)."""
    return _build(MDSR, **{"n_resblocks": 80, "n_feats": 64, "scales": (2, 3, 4), **overrides})


def mdsr_baseline(**overrides) -> MDSR:
    """MDSR baseline: B = 16, F = 64 (3.23M parameters, official README)."""
    return _build(MDSR, **{"n_resblocks": 16, "n_feats": 64, "scales": (2, 3, 4), **overrides})


# Laptop scale: the reproduction's networks, the same at x2 and x4 but for the upsampler.
MINI = {"n_resblocks": 6, "n_feats": 32, "res_scale": 1.0}


def edsr_mini_x2(**overrides) -> EDSR:
    """Laptop-scale EDSR (B = 6, F = 32) at x2: the reproduction's no-BN arm."""
    return _edsr(2, MINI, overrides)


def edsr_mini_x4(**overrides) -> EDSR:
    """Laptop-scale EDSR (B = 6, F = 32) at x4."""
    return _edsr(4, MINI, overrides)


def tiny_overrides(name: str) -> dict:
    """Small configs for the registry-wide forward/backward/export tests (MDSR with one scale:
    a pass runs one scale's head and tail, so the other scales would get no gradient)."""
    tiny = {"n_resblocks": 1, "n_feats": 8}
    return {**tiny, "scales": (2,)} if name.startswith("mdsr") else tiny
