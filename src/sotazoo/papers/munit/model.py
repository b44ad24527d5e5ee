"""MUNIT (Huang, Liu, Belongie, Kautz, ECCV 2018, arXiv 1804.04732): the networks.

Paper: "Multimodal Unsupervised Image-to-Image Translation". Official code (PyTorch, CC BY-NC-SA):
NVlabs/MUNIT at a82e222 (`networks.py`, `configs/edges2shoes_folder.yaml`, `trainer.py`). Its
released checkpoints hold {'a': gen_a.state_dict(), 'b': gen_b.state_dict()}; our modules keep
the official names, so each half loads into `Munit.gen_a` / `gen_b` as it is (`official_state_dict`).

The idea: an image is split into a content code c = E^c(x), a spatial map that both domains
share, and a style code s = E^s(x), an 8-number vector of its own domain. Translating A to B keeps
A's content and decodes it with B's decoder and a B style, drawn from N(0, I) or encoded from an
example B image: x_AB = G_B(E^c_A(x_A), s_B). The decoder injects the style through adaptive
instance normalisation in its residual blocks, AdaIN(z, γ, β) = γ (z - μ(z)) / σ(z) + β, where a
3-layer MLP maps s to the γ and β of every AdaIN layer at once.

Networks (edges2shoes, one per domain; `AdaINGen`): content encoder 7x7 conv (dim), n_downsample
4x4 stride-2 convs doubling the width, n_res residual blocks, all with instance norm; style
encoder 7x7 conv, four 4x4 stride-2 convs (widths x2, x2, x1, x1), no norm, global average pool,
1x1 conv to style_dim; decoder n_res AdaIN residual blocks, then n_downsample x [nearest x2
upsample, 5x5 conv halving the width, LayerNorm, ReLU], 7x7 conv, tanh. Every convolution pads by
reflection. The discriminators (`MsImageDis`, training only) are in `discriminator.py`.

What follows the official code rather than the paper's words (networks.py):
- The MLP's output is sliced per AdaIN layer in module order, [mean | std] each; the "std" is the
  raw linear output, used as the scale with no offset and no sign constraint.
- AdaIN normalises each (sample, channel) over H, W with the biased variance and eps 1e-5 inside
  the square root (the official layer runs F.batch_norm in training mode on a (1, B*C, H, W)
  view); its running_mean / running_var buffers are never used, but they are in the official
  state dicts, so we keep them.
- The decoder's LayerNorm normalises each sample over (C, H, W) with the UNBIASED std and adds
  eps to the std (not to the variance), then scales and shifts per channel; gamma starts U(0, 1).
- The style encoder always downsamples 4 times, whatever n_downsample; ReLU follows each conv.
- Init (trainer.py / utils.weights_init): Kaiming-normal (fan_in) convs and linears in G,
  N(0, 0.02) in D, zero biases.

What is ours: AdaIN and LayerNorm are written out (mean, variance) instead of F.batch_norm in
training mode, the same function that exports to ONNX; the AdaIN parameters are passed to the
decoder as arguments instead of being assigned to module attributes before each decode (the same
outputs, no state between calls); no in-place ops; `Munit` checks its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from sotazoo.errors import InputError, WeightsError
from sotazoo.nn.checks import (
    _tracing,
    build_configured,
    check_config,
    check_dtype,
    check_image_batch,
    ensure_finite_output,
    model_dtype,
)

Activation = Literal["relu", "lrelu", "prelu", "selu", "tanh", "none"]
PadType = Literal["reflect", "replicate", "zero"]
_PAD_MODE = {"reflect": "reflect", "replicate": "replicate", "zero": "zeros"}
STYLE_DOWNSAMPLE = 4  # AdaINGen builds StyleEncoder(4, ...): fixed, not n_downsample
MLP_BLOCKS = 3  # AdaINGen builds MLP(..., 3, ...): style_dim -> mlp_dim -> mlp_dim -> AdaIN params


@dataclass(frozen=True, kw_only=True)
class MunitConfig:
    """The yaml's `gen:` and `dis:` blocks and its input channels (edges2shoes_folder.yaml)."""

    input_dim_a: int = 3  # image channels of domain A
    input_dim_b: int = 3  # and of domain B
    dim: int = 64  # width of the first conv; the content encoder doubles it n_downsample times
    style_dim: int = 8
    n_downsample: int = 2  # content encoder's stride-2 convs (= the decoder's upsamplings)
    n_res: int = 4  # residual blocks in the content encoder and in the decoder
    mlp_dim: int = 256
    activ: Activation = "relu"
    pad_type: PadType = "reflect"
    # the discriminator (MsImageDis), one per domain, not part of the registered model
    dis_dim: int = 64
    dis_n_layer: int = 4
    dis_norm: Literal["none", "bn", "in", "ln"] = "none"
    dis_activ: Activation = "lrelu"
    dis_num_scales: int = 3
    dis_pad_type: PadType = "reflect"
    gan_type: Literal["lsgan", "nsgan"] = "lsgan"  # the loss D is trained with (method, not here)

    def __post_init__(self) -> None:
        check_config(self, {"n_downsample": 0})

    @property
    def content_dim(self) -> int:
        """Channels of the content code."""
        return self.dim * 2**self.n_downsample


# ---------------------------------------------------------------------- normalisation layers


def _instance_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """(x - μ) / sqrt(σ² + eps), μ and the biased σ² over H, W of each sample and channel."""
    mean = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
    centred = x - mean
    var = centred.square().mean((2, 3), keepdim=True)
    return centred * torch.rsqrt(var + eps)


class InstanceNorm(nn.Module):
    """Instance norm without affine terms (the content encoder's nn.InstanceNorm2d: no state)."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _instance_norm(x, self.eps)


class AdaptiveInstanceNorm2d(nn.Module):
    """AdaIN(z, γ, β) = γ · IN(z) + β, with γ = `std` and β = `mean` (B, C) from the style MLP."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        # Never read: the official layer keeps them (and passes copies to batch_norm), so they
        # are in its state dicts; kept for strict loading.
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return _instance_norm(x, self.eps) * std[:, :, None, None] + mean[:, :, None, None]


class LayerNorm(nn.Module):
    """The official LayerNorm: (x - μ) / (σ + eps) over (C, H, W) of each sample, σ the unbiased
    std, then a per-channel scale `gamma` (initialised U(0, 1)) and shift `beta`."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)  # (B, C*H*W)
        mean = flat.mean(1)
        std = ((flat - mean[:, None]).square().sum(1) / (flat.shape[1] - 1)).sqrt()
        x = (x - mean[:, None, None, None]) / (std[:, None, None, None] + self.eps)
        return x * self.gamma[None, :, None, None] + self.beta[None, :, None, None]


def _norm(kind: str, channels: int) -> nn.Module | None:
    layers = {"in": InstanceNorm, "ln": LayerNorm, "adain": AdaptiveInstanceNorm2d,
              "bn": nn.BatchNorm2d}  # fmt: skip
    return None if kind == "none" else layers[kind](*(() if kind == "in" else (channels,)))


def _activation(kind: str) -> nn.Module | None:
    layers = {"relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.2), "prelu": nn.PReLU,
              "selu": nn.SELU, "tanh": nn.Tanh}  # fmt: skip
    return None if kind == "none" else layers[kind]()


# ---------------------------------------------------------------------- blocks

AdaIN = tuple[torch.Tensor, torch.Tensor]  # (mean, std) of one AdaIN layer, each (B, C)


class Conv2dBlock(nn.Module):
    """Padding (of `pad_type`), a conv with bias, an optional norm, an optional activation."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, padding: int, *,
                 norm: str = "none", activ: str = "relu", pad_type: str = "zero") -> None:  # fmt: skip
        super().__init__()
        self.norm = _norm(norm, c_out)  # attribute order as the official block's
        self.activation = _activation(activ)
        self.conv = nn.Conv2d(c_in, c_out, k, stride, padding, padding_mode=_PAD_MODE[pad_type])

    def forward(self, x: torch.Tensor, adain: AdaIN | None = None) -> torch.Tensor:
        x = self.conv(x)
        if isinstance(self.norm, AdaptiveInstanceNorm2d):
            x = self.norm(x, *adain)
        elif self.norm is not None:
            x = self.norm(x)
        return x if self.activation is None else self.activation(x)


class ResBlock(nn.Module):
    """x + [conv3x3-norm-act, conv3x3-norm](x); no activation after the sum."""

    def __init__(self, dim: int, norm: str, activ: str, pad_type: str) -> None:
        super().__init__()
        self.model = nn.Sequential(
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activ=activ, pad_type=pad_type),
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activ="none", pad_type=pad_type),
        )

    def forward(self, x: torch.Tensor, adain: list[AdaIN] | None = None) -> torch.Tensor:
        first, second = (None, None) if adain is None else adain
        return x + self.model[1](self.model[0](x, first), second)


class ResBlocks(nn.Module):
    def __init__(self, n: int, dim: int, norm: str, activ: str, pad_type: str) -> None:
        super().__init__()
        self.model = nn.Sequential(*(ResBlock(dim, norm, activ, pad_type) for _ in range(n)))

    def forward(self, x: torch.Tensor, adain: list[AdaIN] | None = None) -> torch.Tensor:
        for i, block in enumerate(self.model):
            x = block(x, None if adain is None else adain[2 * i : 2 * i + 2])
        return x


class LinearBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, activ: str) -> None:
        super().__init__()
        self.fc = nn.Linear(c_in, c_out)
        self.activation = _activation(activ)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        return x if self.activation is None else self.activation(x)


class MLP(nn.Module):
    """style (B, style_dim, 1, 1) -> every AdaIN parameter (B, n_params); no output activation."""

    def __init__(self, c_in: int, c_out: int, dim: int, n_blk: int, activ: str) -> None:
        super().__init__()
        widths = [c_in, *[dim] * (n_blk - 1)]
        self.model = nn.Sequential(
            *(LinearBlock(a, b, activ) for a, b in zip(widths, widths[1:], strict=False)),
            LinearBlock(dim, c_out, "none"),
        )

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        return self.model(style.flatten(1))  # (B, style_dim)


# ---------------------------------------------------------------------- encoders and decoder


class StyleEncoder(nn.Module):
    def __init__(self, n_downsample: int, c_in: int, dim: int, style_dim: int, activ: str,
                 pad_type: str) -> None:  # fmt: skip
        super().__init__()
        kw = {"norm": "none", "activ": activ, "pad_type": pad_type}
        layers = [Conv2dBlock(c_in, dim, 7, 1, 3, **kw)]
        for i in range(n_downsample):  # the width doubles twice, then stays
            layers.append(Conv2dBlock(dim, dim * 2 if i < 2 else dim, 4, 2, 1, **kw))
            dim = dim * 2 if i < 2 else dim
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]  # (B, style_dim, 1, 1)
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    def __init__(self, n_downsample: int, n_res: int, c_in: int, dim: int, activ: str,
                 pad_type: str) -> None:  # fmt: skip
        super().__init__()
        kw = {"norm": "in", "activ": activ, "pad_type": pad_type}
        layers = [Conv2dBlock(c_in, dim, 7, 1, 3, **kw)]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, **kw))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, "in", activ, pad_type))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """model[0]: the AdaIN residual blocks; then [Upsample, conv5x5-LN-act] per upsampling;
    last, conv7x7-tanh."""

    def __init__(self, n_upsample: int, n_res: int, dim: int, c_out: int, activ: str,
                 pad_type: str) -> None:  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, "adain", activ, pad_type)]
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       Conv2dBlock(dim, dim // 2, 5, 1, 2, norm="ln", activ=activ,
                                   pad_type=pad_type)]  # fmt: skip
            dim //= 2
        layers.append(Conv2dBlock(dim, c_out, 7, 1, 3, norm="none", activ="tanh",
                                  pad_type=pad_type))  # fmt: skip
        self.model = nn.Sequential(*layers)

    def adain_layers(self) -> list[AdaptiveInstanceNorm2d]:
        """The AdaIN layers in module order, the order in which they take the MLP's output."""
        return [m for m in self.modules() if isinstance(m, AdaptiveInstanceNorm2d)]

    @property
    def num_adain_params(self) -> int:
        return sum(2 * m.num_features for m in self.adain_layers())

    def split_adain_params(self, params: torch.Tensor) -> list[AdaIN]:
        """(B, num_adain_params) -> [(mean, std)] per AdaIN layer: [mean | std] slices in turn."""
        out, at = [], 0
        for m in self.adain_layers():
            c = m.num_features
            out.append((params[:, at : at + c], params[:, at + c : at + 2 * c]))
            at += 2 * c
        return out

    def forward(self, content: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        x = self.model[0](content, self.split_adain_params(adain_params))
        for layer in self.model[1:]:
            x = layer(x)
        return x


class AdaINGen(nn.Module):
    """One domain's auto-encoder: `enc_style`, `enc_content`, `dec` and the AdaIN `mlp`."""

    def __init__(self, input_dim: int, cfg: MunitConfig) -> None:
        super().__init__()
        a, p = cfg.activ, cfg.pad_type
        self.enc_style = StyleEncoder(STYLE_DOWNSAMPLE, input_dim, cfg.dim, cfg.style_dim, a, p)
        self.enc_content = ContentEncoder(cfg.n_downsample, cfg.n_res, input_dim, cfg.dim, a, p)
        self.dec = Decoder(cfg.n_downsample, cfg.n_res, self.enc_content.output_dim, input_dim,
                           a, p)  # fmt: skip
        self.mlp = MLP(cfg.style_dim, self.dec.num_adain_params, cfg.mlp_dim, MLP_BLOCKS, a)
        _init_weights(self, "kaiming")

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images -> (content (B, C', H/2^n, W/2^n), style (B, style_dim, 1, 1))."""
        return self.enc_content(images), self.enc_style(images)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.dec(content, self.mlp(style))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction G(E^c(x), E^s(x))."""
        return self.decode(*self.encode(images))


def _init_weights(module: nn.Module, kind: str) -> None:
    """utils.weights_init: Kaiming-normal (fan_in, gain sqrt 2) or N(0, 0.02) weights of every
    nn.Conv2d and nn.Linear, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------- the model


class Munit(nn.Module):
    """Both domains' generators. forward(x_a (B, C_a, H, W), s_b (B, style_dim, 1, 1)) -> x_ab
    (B, C_b, H, W) in [-1, 1]: domain-A images translated to domain B with style codes s_b."""

    def __init__(self, cfg: MunitConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gen_a = AdaINGen(cfg.input_dim_a, cfg)
        self.gen_b = AdaINGen(cfg.input_dim_b, cfg)

    def generator(self, domain: str) -> AdaINGen:
        if domain not in ("a", "b"):
            raise InputError(f"domain must be 'a' or 'b', got {domain!r}")
        return self.gen_a if domain == "a" else self.gen_b

    def forward(self, x_a: torch.Tensor, s_b: torch.Tensor) -> torch.Tensor:
        self._check_image(x_a, "a", translate=True)
        self._check_style(s_b, x_a.shape[0])
        x_ab = self.gen_b.decode(self.gen_a.enc_content(x_a), s_b)
        ensure_finite_output(x_ab, {"image": x_a, "style": s_b}, self)
        return x_ab

    def encode(self, x: torch.Tensor, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images of `domain` -> (content (B, content_dim, H/2^n, W/2^n), style (B, style_dim,
        1, 1))."""
        gen = self.generator(domain)
        self._check_image(x, domain, translate=False)
        content, style = gen.encode(x)
        ensure_finite_output((content, style), {"image": x}, self)
        return content, style

    def decode(self, content: torch.Tensor, style: torch.Tensor, domain: str) -> torch.Tensor:
        """A content code and style codes -> images of `domain`, in [-1, 1]."""
        gen = self.generator(domain)
        if not _tracing():
            if not isinstance(content, torch.Tensor) or content.ndim != 4 \
                    or content.shape[1] != self.cfg.content_dim:  # fmt: skip
                got = tuple(content.shape) if isinstance(content, torch.Tensor) else content
                raise InputError(f"content code must be (B, {self.cfg.content_dim}, h, w), "
                                 f"got {got}")  # fmt: skip
            check_dtype(content, model_dtype(self), "content")
            self._check_style(style, content.shape[0])
        out = gen.decode(content, style)
        ensure_finite_output(out, {"content": content, "style": style}, self)
        return out

    def _check_image(self, x: torch.Tensor, domain: str, *, translate: bool) -> None:
        """Every reflection pad needs a map wider than the pad: 2 px at the content code, 16 px
        at the input of the style encoder's four stride-2 convs. A translation's output has the
        input's size only when H and W are multiples of 2^n_downsample."""
        step = 2**self.cfg.n_downsample
        c = self.cfg.input_dim_a if domain == "a" else self.cfg.input_dim_b
        min_size = max(4, 2 * step) if translate else max(16, 2 * step)
        check_image_batch(x, c, min_size=min_size, dtype=model_dtype(self))
        if translate and not _tracing() and (x.shape[2] % step or x.shape[3] % step):
            raise InputError(f"H and W must be multiples of 2^n_downsample = {step}, got "
                             f"{x.shape[2]}x{x.shape[3]}")  # fmt: skip

    def _check_style(self, s: torch.Tensor, batch: int) -> None:
        if _tracing():
            return
        want = (batch, self.cfg.style_dim, 1, 1)
        if not isinstance(s, torch.Tensor):
            raise InputError(f"style code must be a torch.Tensor {want}, got {type(s).__name__}")
        if tuple(s.shape) != want:
            hint = "; add the axes with s[:, :, None, None]" if s.ndim == 2 else ""
            raise InputError(f"style code must have shape (B, style_dim, 1, 1) = {want}, got "
                             f"{tuple(s.shape)}{hint}")  # fmt: skip
        check_dtype(s, model_dtype(self), "style")


def official_state_dict(checkpoint: Mapping[str, Mapping[str, torch.Tensor]]) -> dict:
    """A released `.pt` ({'a': gen_a state dict, 'b': gen_b state dict}) as `Munit`'s state dict:
    the same keys under `gen_a.` and `gen_b.`, nothing renamed."""
    if not isinstance(checkpoint, Mapping) or set(checkpoint) != {"a", "b"}:
        got = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise WeightsError(f"an official MUNIT generator checkpoint holds keys 'a' and 'b', got "
                           f"{got}")  # fmt: skip
    return {f"gen_{d}.{k}": v for d in ("a", "b") for k, v in checkpoint[d].items()}


# ---------------------------------------------------------------------- builders

EDGES2SHOES = MunitConfig()  # configs/edges2shoes_folder.yaml, 256x256 crops
# Laptop scale, ours: 32x32 images, 64-channel content code at 8x8, 2 AdaIN residual blocks; the
# discriminator has 3 convs per scale so that its coarsest scale (8x8) keeps >= 2 px per conv.
MINI = MunitConfig(dim=16, mlp_dim=64, n_res=2, dis_dim=16, dis_n_layer=3)


def munit_edges2shoes(**overrides) -> Munit:
    """MUNIT's edges -> shoes generators (both domains), 3x256x256 images, 8-d style codes."""
    return build_configured(Munit, EDGES2SHOES, overrides)


def munit_mini(**overrides) -> Munit:
    """Laptop-scale MUNIT: 3x32x32 images, width 16, 8-d style codes."""
    return build_configured(Munit, MINI, overrides)


def tiny_overrides(name: str) -> dict:
    """Narrow networks for the registry-wide tests; style_dim stays that of the card's input."""
    return {"dim": 4, "mlp_dim": 8, "n_res": 1, "dis_dim": 4}


def unused_in_forward(name: str) -> tuple[str, ...]:
    """`forward` translates A to B with a given style code: A's style encoder, decoder and MLP and
    B's encoders take no part (they train through the other direction and the reconstruction
    losses, as in the official trainer's forward)."""
    return (
        "gen_a.enc_style.",
        "gen_a.dec.",
        "gen_a.mlp.",
        "gen_b.enc_content.",
        "gen_b.enc_style.",
    )
