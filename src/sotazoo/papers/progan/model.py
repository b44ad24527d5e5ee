"""ProGAN (Karras, Aila, Laine, Lehtinen, ICLR 2018, arXiv 1710.10196): the networks.

Paper: "Progressive Growing of GANs for Improved Quality, Stability, and Variation". Official
code: tkarras/progressive_growing_of_gans (a Theano original, then TensorFlow; we follow the TF
`networks.py`, whose `G_paper` / `D_paper` are the paper's Table 2 networks).

The paper's (Table 2, §2-§4): a generator that maps a 512-d latent to a 4x4 feature map and then
doubles the resolution block by block (nearest x2 upsampling, two 3x3 convs), with a 1x1 "toRGB"
at the end; a mirrored discriminator (1x1 "fromRGB", blocks of two 3x3 convs and 2x2 average
pooling) ending in the minibatch standard-deviation feature (§3), a 3x3 conv, a 4x4 conv and a
linear output. Widths are min(8192 / 2^stage, 512): 512 up to 32x32, then 256, 128, 64, 32 and
16 at 1024x1024. No batch norm: LeakyReLU 0.2, pixelwise feature normalisation after every conv
of G (§4.2) and equalised learning rate everywhere (§4.1).

What follows the official code where the paper is silent: the gains of the He constant (sqrt(2)
in general, sqrt(2)/4 for G's first dense layer "to match the original Theano implementation",
1 for toRGB and for D's last layer), the latent normalised by pixelnorm before the first layer,
one bias per channel after G's first dense layer, the fade-in as lerp(old, new, alpha) with the
old image computed at the lower resolution and upsampled, and the minibatch stddev over groups of
4 (`D_paper`'s default; sample n is in group n mod (N / 4)).

Ours: a network holds blocks only up to its current stage, `grow()` appends one (the official
network holds all of them and selects by `lod`); the blend weight is `alpha` (the official code
uses lod's fraction, alpha = 1 - frac(lod)); by default we do not fuse the upsampling (or
pooling) into the neighbouring conv, which the official code does for speed (`fused_scale`, its
default); and G keeps only the toRGB of its current stage and, after `grow()`, the one before
(needed for the fade), so a network built at full size has exactly the paper's Table 2 layers.
The layers of §3-§4 are in `layers.py`, the loss and schedule in `method.py`.

`fused_scale=True` is the official fused form, with the same parameters: in G, nearest x2 then
conv 3x3 becomes one stride-2 transposed conv (`upscale2d_conv2d`), exactly the same function;
in D, conv 3x3 then 2x2 pooling becomes one stride-2 conv (`conv2d_downscale2d`), after which the
official code applies the bias and LeakyReLU, so its D computes lrelu(pool(conv)) where the
unfused D computes pool(lrelu(conv)): a different function (both are options of the official
code, whose config.py keeps networks.py's default, fused). Two more fields exist only to load
the checkpoints of facebookresearch/pytorch_GAN_zoo (`convert.py`): `g_dense_bias="unit"` and
`mbstd_variant="gan_zoo"`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_config, check_image_batch, ensure_finite_output, model_dtype
from sotazoo.papers.progan.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    is_exporting,
)


@dataclass(frozen=True, kw_only=True)
class ProGANConfig:
    """Hyper-parameters shared by a ProGAN generator and its discriminator."""

    resolution: int = 1024  # final side, 4 * 2^k (CelebA-HQ: 1024)
    latent_dim: int = 512  # official default: min(fmap_base, fmap_max)
    img_channels: int = 3
    fmap_base: int = 8192  # widths are min(fmap_base / 2^stage, fmap_max) (official `nf`)
    fmap_max: int = 512
    normalize_latents: bool = True  # pixelnorm on the latent before the first layer
    use_pixelnorm: bool = True  # §4.2; False for the ablation ladder of §6.1
    use_wscale: bool = True  # §4.1 equalised learning rate; False: He init, no runtime scale
    mbstd_group_size: int = 4  # §3; D_paper's default (the paper's 1-GPU preset used 16, the
    # whole minibatch, like the Theano original); 0 removes the layer (the ablation)
    fused_scale: bool = False  # official G_paper/D_paper default True (networks.py): upsampling
    # fused into G's conv0, pooling into D's conv1 (activation after it); ours: separate layers
    g_dense_bias: str = "channel"  # official G_paper: one bias per channel after the reshape;
    # "unit": one per each of the 16 C outputs (pytorch_GAN_zoo `GNet.formatLayer`)
    mbstd_variant: str = "official"  # "gan_zoo": pytorch_GAN_zoo's `miniBatchStdDev` (layers.py)

    def __post_init__(self) -> None:
        check_config(self, {"mbstd_group_size": 0})
        r = self.resolution
        if r < 4 or r & (r - 1):
            raise InputError(f"resolution must be 4 * 2^k (4, 8, ..., 1024), got {r}")
        if self.mbstd_group_size == 1:
            raise InputError("mbstd_group_size must be 0 (off) or at least 2")
        if self.g_dense_bias not in ("channel", "unit"):
            raise InputError(f"g_dense_bias must be 'channel' or 'unit', got {self.g_dense_bias!r}")
        if self.mbstd_variant not in ("official", "gan_zoo"):
            raise InputError(
                f"mbstd_variant must be 'official' or 'gan_zoo', got {self.mbstd_variant!r}"
            )

    @property
    def max_stage(self) -> int:
        """Index of the final resolution: stage k works at 4 * 2^k pixels."""
        return int(math.log2(self.resolution)) - 2

    def nf(self, stage: int) -> int:
        """Feature maps at `stage` in the official numbering (G's block at 4 * 2^k has nf(k+1))."""
        return min(self.fmap_base // 2**stage, self.fmap_max)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, 2H, 2W)


# ---------------------------------------------------------------- the blocks of Table 2


class GFirstBlock(nn.Module):
    """4x4: latent -> dense to 4x4xC (the paper's "Conv 4x4" on a 1x1 input) -> conv 3x3."""

    def __init__(self, cfg: ProGANConfig) -> None:
        super().__init__()
        c, ws = cfg.nf(1), cfg.use_wscale
        self.channels = c
        # gain sqrt(2)/4 and one bias per channel after the reshape: official G_paper
        self.dense = EqualizedLinear(
            cfg.latent_dim, 16 * c, gain=math.sqrt(2) / 4, use_wscale=ws, bias=False
        )
        self.per_unit = cfg.g_dense_bias == "unit"
        self.dense_bias = nn.Parameter(torch.zeros((c, 4, 4) if self.per_unit else (c,)))
        self.conv = EqualizedConv2d(c, c, 3, use_wscale=ws)
        self.norm = PixelNorm() if cfg.use_pixelnorm else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z).reshape(-1, self.channels, 4, 4)  # (B, C, 4, 4)
        b = self.dense_bias if self.per_unit else self.dense_bias.reshape(-1, 1, 1)
        x = self.norm(_lrelu(x + b))
        return self.norm(_lrelu(self.conv(x)))


class GBlock(nn.Module):
    """Doubling block: nearest x2 up, then two (conv 3x3 -> LeakyReLU -> pixelnorm)."""

    def __init__(self, c_in: int, c_out: int, cfg: ProGANConfig) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_out, 3, use_wscale=cfg.use_wscale)
        self.conv1 = EqualizedConv2d(c_out, c_out, 3, use_wscale=cfg.use_wscale)
        self.norm = PixelNorm() if cfg.use_pixelnorm else nn.Identity()
        self.fused = cfg.fused_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv0.forward_up(x) if self.fused else self.conv0(_up(x))  # (B, C', 2H, 2W)
        x = self.norm(_lrelu(x))
        return self.norm(_lrelu(self.conv1(x)))


class DBlock(nn.Module):
    """Halving block: two (conv 3x3 -> LeakyReLU), then 2x2 average pooling; fused (official
    `conv2d_downscale2d`): conv 3x3 -> LeakyReLU -> (conv 3x3 + pooling, one stride-2 conv) ->
    LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, cfg: ProGANConfig) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_in, 3, use_wscale=cfg.use_wscale)
        self.conv1 = EqualizedConv2d(c_in, c_out, 3, use_wscale=cfg.use_wscale)
        self.fused = cfg.fused_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _lrelu(self.conv0(x))
        if self.fused:
            return _lrelu(self.conv1.forward_down(x))  # (B, C', H/2, W/2)
        return F.avg_pool2d(_lrelu(self.conv1(x)), 2)


class DLastBlock(nn.Module):
    """4x4: minibatch stddev -> conv 3x3 -> dense (the paper's "Conv 4x4") -> dense to 1."""

    def __init__(self, cfg: ProGANConfig) -> None:
        super().__init__()
        c, ws, g = cfg.nf(1), cfg.use_wscale, cfg.mbstd_group_size
        self.mbstd = MinibatchStdDev(g, cfg.mbstd_variant) if g else nn.Identity()
        self.conv = EqualizedConv2d(c + (1 if g else 0), c, 3, use_wscale=ws)
        self.dense0 = EqualizedLinear(16 * c, cfg.nf(0), use_wscale=ws)
        self.dense1 = EqualizedLinear(cfg.nf(0), 1, gain=1.0, use_wscale=ws)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _lrelu(self.conv(self.mbstd(x)))
        x = _lrelu(self.dense0(x.flatten(1)))  # (B, 16 C)
        return self.dense1(x)  # (B, 1): the critic's score


def _key(stage: int) -> str:
    return f"{4 * 2**stage}x{4 * 2**stage}"  # toRGB / fromRGB of 4x4, 8x8, ...


def _check_alpha(alpha: float) -> float:
    if not 0.0 <= float(alpha) <= 1.0:
        raise InputError(
            f"alpha (the fade-in weight of the newest block) must be in [0, 1], got {alpha}"
        )
    return float(alpha)


class _Growing(nn.Module):
    """What G and D share: the config, the current stage, alpha and the toRGB/fromRGB dict."""

    rgb: nn.ModuleDict

    def __init__(self, cfg: ProGANConfig, stage: int | None) -> None:
        super().__init__()
        self.cfg = cfg
        self.stage = cfg.max_stage if stage is None else stage
        if not 0 <= self.stage <= cfg.max_stage:
            raise ValueError(
                f"stage {stage} is outside 0..{cfg.max_stage} for resolution {cfg.resolution}"
            )
        self.alpha = 1.0  # fade-in weight of the newest block; grow() sets it to 0

    @property
    def resolution(self) -> int:
        """The side of the images at the current stage."""
        return 4 * 2**self.stage

    def _alpha(self, alpha: float | None) -> float:
        a = _check_alpha(self.alpha if alpha is None else alpha)
        if self.stage == 0:
            return 1.0  # nothing to fade at 4x4
        if a < 1.0 and _key(self.stage - 1) not in self.rgb:
            raise InputError(
                f"alpha {a} < 1 needs the {_key(self.stage - 1)} RGB layer, which "
                "only a network grown into this stage has"
            )
        return a

    def _next_stage(self) -> int:
        if self.stage >= self.cfg.max_stage:
            raise ValueError(
                f"cannot grow past stage {self.cfg.max_stage} "
                f"({self.cfg.resolution}x{self.cfg.resolution})"
            )
        self.stage += 1
        for key in [k for k in self.rgb if k not in (_key(self.stage - 1), _key(self.stage))]:
            del self.rgb[key]  # older RGB layers are never used again
        return self.stage

    def end_fade(self) -> None:
        """Drop the lower stage's RGB layer once alpha has reached 1 for good: the state dict
        then has exactly the keys of a network built at this stage."""
        self.alpha = 1.0
        for key in [k for k in self.rgb if k != _key(self.stage)]:
            del self.rgb[key]


class Generator(_Growing):
    """ProGAN's generator: latents (B, Z) -> images (B, C, R, R), R = 4 * 2^stage, unclipped.

    `stage` (default: the final one) is the current resolution; `alpha`, a plain attribute (or
    the `alpha` argument of `forward`), the fade-in weight of the newest block: the output is
    (1 - alpha) * up2(toRGB_old(h)) + alpha * toRGB_new(block(h)) (Fig. 2). Images are in the
    official range [-1, 1] but not clipped.
    """

    def __init__(self, cfg: ProGANConfig, *, stage: int | None = None) -> None:
        super().__init__(cfg, stage)
        self.blocks = nn.ModuleList([GFirstBlock(cfg)])
        self.rgb = nn.ModuleDict()
        for k in range(1, self.stage + 1):
            self.blocks.append(GBlock(cfg.nf(k), cfg.nf(k + 1), cfg))
        self.rgb[_key(self.stage)] = self._to_rgb(self.stage)
        self.latent_norm = PixelNorm() if cfg.normalize_latents else nn.Identity()

    def _to_rgb(self, stage: int) -> EqualizedConv2d:
        return EqualizedConv2d(
            self.cfg.nf(stage + 1),
            self.cfg.img_channels,
            1,
            gain=1.0,
            use_wscale=self.cfg.use_wscale,
        )

    def grow(self) -> None:
        """Add the block and toRGB of the next resolution and start its fade-in (alpha = 0)."""
        k = self._next_stage()
        ref = self.blocks[0].dense.weight
        self.blocks.append(GBlock(self.cfg.nf(k), self.cfg.nf(k + 1), self.cfg).to(ref))
        self.rgb[_key(k)] = self._to_rgb(k).to(ref)
        self.alpha = 0.0

    def forward(self, z: torch.Tensor, alpha: float | None = None) -> torch.Tensor:
        _check_latents(z, self.cfg.latent_dim, model_dtype(self))
        a = self._alpha(alpha)
        x = self.blocks[0](self.latent_norm(z))
        for block in self.blocks[1 : self.stage]:
            x = block(x)
        if self.stage == 0:
            y = self.rgb[_key(0)](x)
        elif a == 1.0:
            y = self.rgb[_key(self.stage)](self.blocks[self.stage](x))
        else:  # Fig. 2(b): blend the new block's image with the upsampled old one
            old = _up(self.rgb[_key(self.stage - 1)](x))
            new = self.rgb[_key(self.stage)](self.blocks[self.stage](x))
            y = torch.lerp(old, new, a)
        ensure_finite_output(y, {"latents": z}, self)
        return y


class Discriminator(_Growing):
    """ProGAN's critic: images (B, C, R, R) at the current stage's R -> scores (B, 1).

    Mirrors the generator: with alpha < 1 the features of the newest block are blended with
    fromRGB of the 2x average-pooled image, lerp(fromRGB_old(pool(x)), block(fromRGB_new(x)), a).
    """

    def __init__(self, cfg: ProGANConfig, *, stage: int | None = None) -> None:
        super().__init__(cfg, stage)
        self.blocks = nn.ModuleList([DLastBlock(cfg)])  # blocks[k] takes 4 * 2^k pixels down
        for k in range(1, self.stage + 1):
            self.blocks.append(DBlock(cfg.nf(k + 1), cfg.nf(k), cfg))
        self.rgb = nn.ModuleDict({_key(self.stage): self._from_rgb(self.stage)})

    def _from_rgb(self, stage: int) -> nn.Module:
        return EqualizedConv2d(
            self.cfg.img_channels, self.cfg.nf(stage + 1), 1, use_wscale=self.cfg.use_wscale
        )

    def grow(self) -> None:
        """Add the fromRGB and block of the next resolution and start its fade-in (alpha = 0)."""
        k = self._next_stage()
        ref = self.blocks[0].conv.weight
        self.blocks.append(DBlock(self.cfg.nf(k + 1), self.cfg.nf(k), self.cfg).to(ref))
        self.rgb[_key(k)] = self._from_rgb(k).to(ref)
        self.alpha = 0.0

    def forward(self, x: torch.Tensor, alpha: float | None = None) -> torch.Tensor:
        check_image_batch(x, self.cfg.img_channels, dtype=model_dtype(self))
        r = self.resolution
        if not is_exporting() and tuple(x.shape[2:]) != (r, r):
            raise InputError(
                f"this discriminator is at stage {self.stage} and takes {r}x{r} "
                f"images, got {x.shape[2]}x{x.shape[3]}"
            )
        a = self._alpha(alpha)
        h = _lrelu(self.rgb[_key(self.stage)](x))
        if self.stage > 0:
            h = self.blocks[self.stage](h)
            if a < 1.0:
                old = _lrelu(self.rgb[_key(self.stage - 1)](F.avg_pool2d(x, 2)))
                h = torch.lerp(old, h, a)
        for block in reversed(self.blocks[1 : self.stage]):
            h = block(h)
        y = self.blocks[0](h)
        ensure_finite_output(y, {"input": x}, self)
        return y


def _check_latents(z: torch.Tensor, latent_dim: int, dtype: torch.dtype) -> None:
    if is_exporting():
        return
    if not isinstance(z, torch.Tensor):
        raise InputError(f"expected a torch.Tensor of latents, got {type(z).__name__}")
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise InputError(f"expected latents of shape (B, {latent_dim}), got {tuple(z.shape)}")
    if z.dtype != dtype:
        raise InputError(
            f"latents are {z.dtype} but the generator is {dtype}; convert them with z.to({dtype})"
        )


# ---------------------------------------------------------------- builders


def _build(cls: type[_Growing], preset: dict, overrides: dict) -> _Growing:
    stage = overrides.pop("stage", None)
    known = {f.name for f in fields(ProGANConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(
            f"unknown fields {unknown}; ProGANConfig takes: {', '.join(sorted(known))} (and stage)"
        )
    return cls(ProGANConfig(**{**preset, **overrides}), stage=stage)


CELEBAHQ_1024 = {"resolution": 1024, "latent_dim": 512}  # official config.py, CelebA-HQ
# Laptop scale: 4 -> 8 -> 16 pixels, widths 64, 64, 32, latent 32, one grey channel for the
# digits of `sotazoo.data.digits` that its recipe and reproduction train on (ours)
MINI = {"resolution": 16, "latent_dim": 32, "fmap_base": 256, "fmap_max": 64, "img_channels": 1}


def progan_1024(**overrides) -> Generator:
    """The CelebA-HQ 1024x1024 generator (Table 2, 23.1M parameters), built at full size.

    `stage=0` gives the same network at 4x4, to be grown with `grow()`.
    """
    return _build(Generator, CELEBAHQ_1024, overrides)


def progan_1024_discriminator(**overrides) -> Discriminator:
    """The CelebA-HQ 1024x1024 discriminator (Table 2, 23.1M parameters)."""
    return _build(Discriminator, CELEBAHQ_1024, overrides)


def progan_mini(**overrides) -> Generator:
    """Laptop-scale generator, 16x16x1 (stage 2); `stage=0` starts it at 4x4 for growing, the
    default is the "full-size network from the start" baseline."""
    return _build(Generator, MINI, overrides)


def progan_mini_discriminator(**overrides) -> Discriminator:
    """The discriminator paired with `progan_mini`."""
    return _build(Discriminator, MINI, overrides)


def tiny_overrides(name: str) -> dict:
    """Small configs for the registry-wide tests; the latent length stays the card's."""
    tiny = {"fmap_base": 16, "fmap_max": 8}
    return {**tiny, "resolution": 8} if name == "progan_1024" else tiny
