"""SAGAN (Zhang, Goodfellow, Metaxas, Odena, ICML 2019, arXiv 1805.08318): the networks.

Paper: "Self-Attention Generative Adversarial Networks". Official code (TensorFlow 1):
brain-research/self-attention-gan at ad9612e (`non_local.py`, `generator.py`,
`discriminator.py`, `ops.py`); it releases no weights. The networks are SNGAN-projection's
residual ResNets (Miyato & Koyama 2018) with one self-attention block added to each.

The idea (§3, Eq. 1-3): at every position of a feature map, 1x1 convolutions give a query, a
key and a value; a softmax over the query's scores against all keys weights a sum of values,
which a last 1x1 convolution maps back to the input width; the block returns y = x + γ·o with
the scalar γ learned from 0, so training starts from a plain ConvNet (§3, after Eq. 3).

What follows the official code rather than the paper's text (`non_local.sn_non_local_block_sim`):
the key and value maps are max-pooled 2x2 (each query attends to N/4 pooled positions, each
covering a 2x2 patch), the value path has C/2 channels (the paper: C/8), the 1x1 convolutions have
no bias, and every one of them is spectrally normalised. G (`generator.generator_test`): a
spectrally normalised linear layer from z to 4x4, five up-sampling residual blocks with
class-conditional batch norm (nearest-neighbour up-sampling), attention on the 32x32 map (256
channels), BN-ReLU-conv-tanh. D (`discriminator.discriminator_test`): an "optimized" first block,
down-sampling blocks (2x2 average pooling), attention on the 32x32 map (128 channels), a last
block without down-sampling, ReLU, a sum over positions, a linear output plus the projection term
<embed(y), h> (Miyato & Koyama, Eq. 3). Spectral norm on every conv, linear and embedding of both
(one power iteration per training forward), Xavier-uniform weights and zero biases (`ops.py`).

What is ours: NCHW layout (the linear stem is reshaped channels-first, a permutation of the
official columns), spectral norm as a parametrization with torch's keys and method but an
ONNX-exportable σ (`SpectralNorm`; u is updated at every training forward, while the official D
skips the update on its fake-image pass), one BN momentum for every BN (the official
CBN decays its moving statistics by 0.999, the last BN by 0.9999), the switches for the paper's
ablations (`attention=False`; `g_spectral_norm=False`, "SN on D only", Fig. 3) and the laptop-scale
`sagan_mini`.

For converted mmagic checkpoints only (convert.py; off by default): `cbn_spectral_norm` and
`cbn_gamma_offset`, mmagic's conditional BN (spectral norm on the class embeddings, γ = 1 +
embedding). With those, `bn_eps` 1e-4 and attention on the 64x64 maps, our modules compute
mmagic's SAGAN exactly (tests/papers/fixtures/sagan_mmagic.json).

Attention maps: `SelfAttention.forward(x, return_attention=True)` and the networks'
`forward_with_attention(...)` also return the map (`forward` returns only the output, so that
the ONNX exporter sees tensor arguments only), shape (B, N_query, N_key): query i = h * W + w
over the H x W map, key j = h' * (W/2) + w' over the 2x2-pooled map, rows summing to 1.

ONNX: the models export as they are, σ = uᵀWv then computed inside the graph from the stored
vectors (a MatMul and a Div per layer, on initializers). `bake_spectral_norm(model)` returns a
plain copy holding the current W / σ: export that one for the browser.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    check_config,
    check_dtype,
    check_ids,
    check_image_batch,
    ensure_finite_output,
    model_dtype,
)


@dataclass(frozen=True, kw_only=True)
class SAGANConfig:
    """Hyper-parameters of a SAGAN generator and its discriminator (one config for the pair)."""

    image_size: int = 128  # §5: 128x128 ImageNet
    image_channels: int = 3
    z_dim: int = 128  # official model.py flag z_dim
    num_classes: int = 1000
    g_channels: int = 64  # official gf_dim
    g_mults: tuple[int, ...] = (16, 16, 8, 4, 2, 1)  # widths / g_channels: the 4x4 stem, then
    # the output of each up-sampling block (4 -> 8 -> 16 -> 32 -> 64 -> 128)
    d_channels: int = 64  # official df_dim
    d_mults: tuple[int, ...] = (1, 2, 4, 8, 16, 16)  # widths / d_channels of D's blocks: the
    # optimized block, down-sampling blocks, a last block at the same resolution (128 -> ... -> 4)
    attention: bool = True  # False: the paper's "no attention" baseline (Table 1)
    g_attention_at: int = 32  # the resolution of the attended map (Table 1's best, feat32)
    d_attention_at: int = 32
    g_spectral_norm: bool = True  # False: SN on D only, the ablation of Fig. 3
    d_spectral_norm: bool = True  # False only in `bake_spectral_norm`'s plain copies
    bn_momentum: float = 0.001  # = 1 - the official CBN's 0.999 moving-average decay
    bn_eps: float = 1e-5  # official ops.ConditionalBatchNorm
    # Only for checkpoints converted from mmagic's SAGAN (convert.py), which departs from the
    # official code here (sagan_modules.SNConditionNorm): spectral norm on CBN's per-class gamma
    # and beta embeddings, and gamma = 1 + embedding (its BigGAN/StudioGAN inits, those of all
    # its published configs). The official CBN has neither: gamma = embedding, initialised to 1.
    cbn_spectral_norm: bool = False
    cbn_gamma_offset: float = 0.0

    def __post_init__(self) -> None:
        check_config(self)
        if self.image_size != 4 * 2 ** (len(self.g_mults) - 1):
            raise InputError(
                f"g_mults {self.g_mults} grow 4x4 to {4 * 2 ** (len(self.g_mults) - 1)}"
                f", not image_size {self.image_size}"
            )
        if self.image_size % 2 ** (len(self.d_mults) - 1):
            raise InputError(
                f"image_size {self.image_size} is not divisible by the "
                f"{2 ** (len(self.d_mults) - 1)} of D's down-sampling"
            )
        if not 0.0 <= self.bn_momentum <= 1.0 or self.bn_eps < 0:
            raise InputError(
                f"bn_momentum must be in [0, 1] and bn_eps >= 0, got {self.bn_momentum}, "
                f"{self.bn_eps}"
            )


class SpectralNorm(nn.Module):
    """Parametrization W -> W / σ(W), σ estimated by power iteration (Miyato et al. 2018).

    The same method, buffers (`_u`, `_v`) and state-dict keys as torch's
    `parametrizations.spectral_norm` (15 iterations at creation, `n_power_iterations` per
    training forward, none in eval mode), but σ = uᵀ(W v) is written as a matmul: torch's uses
    `vdot`, which the ONNX exporter cannot translate, so a model holding it cannot be exported.
    """

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, eps: float = 1e-12):
        super().__init__()
        mat = weight.detach().flatten(1)  # (out, in * k * k): the official reshape, transposed
        self.n_power_iterations, self.eps = n_power_iterations, eps
        self.register_buffer("_u", F.normalize(mat.new_empty(mat.shape[0]).normal_(), dim=0))
        self.register_buffer("_v", F.normalize(mat.new_empty(mat.shape[1]).normal_(), dim=0))
        self._power_method(mat, 15)

    @torch.no_grad()
    def _power_method(self, mat: torch.Tensor, n: int) -> None:
        for _ in range(n):
            self._u.copy_(F.normalize(mat @ self._v, dim=0, eps=self.eps))
            self._v.copy_(F.normalize(mat.T @ self._u, dim=0, eps=self.eps))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        mat = weight.flatten(1)
        if self.training:
            self._power_method(mat.detach(), self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()  # copies: a later update must not touch autograd
        return weight / (u @ (mat @ v))  # σ = uᵀ W v

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value


def _init_and_norm(layer: nn.Module, sn: bool) -> nn.Module:
    """Official init (ops.py: Xavier-uniform weights, zero biases), then spectral norm (one power
    iteration per training forward, as `ops.spectral_normed_weight(num_iters=1)`)."""
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    if sn:
        parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight))
    return layer


def _conv(c_in: int, c_out: int, k: int, sn: bool, bias: bool = True) -> nn.Module:
    return _init_and_norm(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias), sn)


class SelfAttention(nn.Module):
    """The attention block of the official code: y = x + γ · W_o(softmax(θ(x)ᵀ φ(x)) g(x)).

    θ, φ: 1x1 convs C -> C/8; g: 1x1 conv C -> C/2; φ and g max-pooled 2x2; W_o: 1x1 conv
    C/2 -> C; all without bias, spectrally normalised when `sn`. γ (official `sigma_ratio`)
    starts at 0, so the block starts as the identity.
    """

    def __init__(self, channels: int, sn: bool = True) -> None:
        super().__init__()
        if channels < 8:
            raise ValueError(f"attention needs at least 8 channels (C/8 >= 1), got {channels}")
        self.theta = _conv(channels, channels // 8, 1, sn, bias=False)
        self.phi = _conv(channels, channels // 8, 1, sn, bias=False)
        self.g = _conv(channels, channels // 2, 1, sn, bias=False)
        self.o = _conv(channels // 2, channels, 1, sn, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """(B, C, H, W) -> y of the same shape; with `return_attention`, (y, map (B, HW, HW/4))."""
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise InputError(f"attention pools 2x2: its {h}x{w} input map must have even sides")
        query = self.theta(x).flatten(2)  # (B, C/8, N)
        key = F.max_pool2d(self.phi(x), 2).flatten(2)  # (B, C/8, N/4)
        value = F.max_pool2d(self.g(x), 2).flatten(2)  # (B, C/2, N/4)
        attn = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # (B, N, N/4), Eq. 1
        o = (value @ attn.transpose(1, 2)).reshape(b, c // 2, h, w)  # (B, C/2, H, W), Eq. 2
        y = x + self.gamma * self.o(o)  # Eq. 3
        return (y, attn) if return_attention else y


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine, then a scale and shift looked up for each image's class
    (official `ops.ConditionalBatchNorm`: per-class gamma = 1, beta = 0 at init; not normalised).

    `sn` and `gamma_offset` are mmagic's variant (gamma = offset + embedding, both embeddings
    spectrally normalised, Xavier-initialised as its BigGAN init: a constant matrix would give
    a degenerate σ); see `SAGANConfig.cbn_spectral_norm`."""

    def __init__(
        self,
        channels: int,
        num_classes: int,
        eps: float,
        momentum: float,
        sn: bool = False,
        gamma_offset: float = 0.0,
    ) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        self.gamma_offset = gamma_offset
        if sn:
            _init_and_norm(self.gamma, True)
            _init_and_norm(self.beta, True)
        else:
            nn.init.constant_(self.gamma.weight, 1.0 - gamma_offset)
            nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gamma = self.gamma(y)[:, :, None, None]  # (B, C, 1, 1)
        if self.gamma_offset:
            gamma = gamma + self.gamma_offset
        return self.bn(x) * gamma + self.beta(y)[:, :, None, None]


class GBlock(nn.Module):
    """Up-sampling residual block (official generator.block): CBN-ReLU-up-conv3-CBN-ReLU-conv3,
    plus up-conv1 of the input."""

    def __init__(self, c_in: int, c_out: int, cfg: SAGANConfig) -> None:
        super().__init__()
        sn, k = cfg.g_spectral_norm, cfg.num_classes
        cbn = (cfg.bn_eps, cfg.bn_momentum, cfg.cbn_spectral_norm, cfg.cbn_gamma_offset)
        self.cbn1 = ConditionalBatchNorm2d(c_in, k, *cbn)
        self.conv1 = _conv(c_in, c_out, 3, sn)
        self.cbn2 = ConditionalBatchNorm2d(c_out, k, *cbn)
        self.conv2 = _conv(c_out, c_out, 3, sn)
        self.shortcut = _conv(c_in, c_out, 1, sn)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.cbn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.cbn2(self.conv1(h), y)))
        return self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest")) + h


class DBlock(nn.Module):
    """Residual block of D (official discriminator.block / optimized_block): [ReLU]-conv3-ReLU-
    conv3-[avg-pool 2x2], plus a 1x1 conv shortcut when the width or the size changes. The first
    ("optimized") block has no leading ReLU and pools its shortcut before the conv."""

    def __init__(self, c_in: int, c_out: int, *, downsample: bool, first: bool, sn: bool) -> None:
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = _conv(c_in, c_out, 3, sn)
        self.conv2 = _conv(c_out, c_out, 3, sn)
        learned = downsample or c_in != c_out
        self.shortcut = _conv(c_in, c_out, 1, sn) if learned else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.first:  # optimized_block: pool, then conv
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = x if self.shortcut is None else self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.downsample else s)


def _check_labels(label: torch.Tensor, batch: int, num_classes: int) -> None:
    if not isinstance(label, torch.Tensor):
        raise InputError(f"label must be a torch.Tensor of class ids, got {type(label).__name__}")
    if label.dtype not in (torch.int64, torch.int32) or label.ndim != 1:
        raise InputError(
            f"label must be (B,) integer class ids, got {label.dtype} {tuple(label.shape)}"
        )
    if label.shape[0] != batch:
        raise InputError(f"{batch} inputs but {label.shape[0]} labels")
    check_ids(label, num_classes, "label")


class Generator(nn.Module):
    """forward(z (B, z_dim) float, label (B,) int) -> images (B, C, H, W) in [-1, 1]."""

    def __init__(self, cfg: SAGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sn = cfg.g_spectral_norm
        widths = [m * cfg.g_channels for m in cfg.g_mults]
        self.linear = _init_and_norm(nn.Linear(cfg.z_dim, widths[0] * 16), sn)  # to 4x4
        self.stem_channels = widths[0]
        self.blocks = nn.ModuleList(
            GBlock(a, b, cfg) for a, b in zip(widths, widths[1:], strict=False)
        )
        sizes = [4 * 2 ** (i + 1) for i in range(len(self.blocks))]  # each block's output size
        self.attention_after = _attention_index(sizes, cfg.g_attention_at, cfg.attention, "G")
        self.attention = (
            SelfAttention(widths[self.attention_after + 1], sn) if cfg.attention else None
        )
        self.bn = nn.BatchNorm2d(widths[-1], eps=cfg.bn_eps, momentum=cfg.bn_momentum)
        self.conv_out = _conv(widths[-1], cfg.image_channels, 3, sn)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(z, label)[0]

    def forward_with_attention(
        self, z: torch.Tensor, label: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images, the attention map (B, N_query, N_key), or None when built without one)."""
        if not isinstance(z, torch.Tensor):
            raise InputError(f"noise must be a torch.Tensor, got {type(z).__name__}")
        if z.ndim != 2 or z.shape[1] != self.cfg.z_dim or not z.is_floating_point():
            raise InputError(
                f"noise must be (B, {self.cfg.z_dim}) float, got {z.dtype} {tuple(z.shape)}"
            )
        check_dtype(z, model_dtype(self), "noise")
        _check_labels(label, z.shape[0], self.cfg.num_classes)
        h = self.linear(z).reshape(z.shape[0], self.stem_channels, 4, 4)  # (B, C0, 4, 4)
        attn = None
        for i, block in enumerate(self.blocks):
            h = block(h, label)
            if self.attention is not None and i == self.attention_after:
                h, attn = self.attention(h, return_attention=True)
        img = torch.tanh(self.conv_out(F.relu(self.bn(h))))
        ensure_finite_output(img, {"noise": z}, self)
        return img, attn


class Discriminator(nn.Module):
    """forward(image (B, C, H, W), label (B,) int) -> logits (B, 1): ψ(h) + <embed(label), h>."""

    def __init__(self, cfg: SAGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [m * cfg.d_channels for m in cfg.d_mults]
        n = len(widths)
        ins = [cfg.image_channels, *widths[:-1]]
        sn = cfg.d_spectral_norm
        self.blocks = nn.ModuleList(
            DBlock(a, b, downsample=i < n - 1, first=i == 0, sn=sn)
            for i, (a, b) in enumerate(zip(ins, widths, strict=True))
        )
        sizes = [cfg.image_size // 2 ** min(i + 1, n - 1) for i in range(n)]
        self.attention_after = _attention_index(sizes, cfg.d_attention_at, cfg.attention, "D")
        self.attention = SelfAttention(widths[self.attention_after], sn) if cfg.attention else None
        self.linear = _init_and_norm(nn.Linear(widths[-1], 1), sn)
        self.embed = _init_and_norm(nn.Embedding(cfg.num_classes, widths[-1]), sn)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x, label)[0]

    def forward_with_attention(
        self, x: torch.Tensor, label: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, the attention map (B, N_query, N_key), or None when built without one)."""
        check_image_batch(x, self.cfg.image_channels, dtype=model_dtype(self))
        if x.shape[-2:] != (self.cfg.image_size,) * 2:
            raise InputError(
                f"this discriminator takes {self.cfg.image_size}x"
                f"{self.cfg.image_size} images, got {x.shape[-1]}x{x.shape[-2]}"
            )
        _check_labels(label, x.shape[0], self.cfg.num_classes)
        h, attn = x, None
        for i, block in enumerate(self.blocks):
            h = block(h)
            if self.attention is not None and i == self.attention_after:
                h, attn = self.attention(h, return_attention=True)
        h = F.relu(h).sum(dim=(2, 3))  # (B, C): sum-pooling, as the official code
        out = self.linear(h) + (self.embed(label) * h).sum(dim=1, keepdim=True)  # projection
        ensure_finite_output(out, {"image": x}, self)
        return out, attn


def _attention_index(sizes: list[int], at: int, on: bool, who: str) -> int:
    if not on:
        return -1
    if at not in sizes:
        raise ValueError(f"{who} has no block output at {at}x{at}; its sizes are {sizes}")
    return sizes.index(at)


def bake_spectral_norm(model: Generator | Discriminator) -> Generator | Discriminator:
    """A plain eval-mode copy of `model`: the same network built without spectral norm, holding
    each normalised weight's current value W / σ (σ from the stored vectors, no new iteration).
    The same function as `model.eval()`; `model` is left as it is."""
    was_training = model.training
    model.eval()  # no power iteration while the weights are read
    with torch.no_grad():
        state = {k: v for k, v in model.state_dict().items() if ".parametrizations." not in k}
        for name, m in model.named_modules():
            if parametrize.is_parametrized(m, "weight"):
                state[f"{name}.weight"] = m.weight.clone()
    model.train(was_training)
    cfg = dataclasses.replace(
        model.cfg, g_spectral_norm=False, d_spectral_norm=False, cbn_spectral_norm=False
    )
    plain = type(model)(cfg)
    plain.load_state_dict(state)
    return plain.eval()


def _config(preset: dict, overrides: dict) -> SAGANConfig:
    known = {f.name for f in fields(SAGANConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(
            f"unknown SAGAN config fields {unknown}; SAGANConfig takes: {', '.join(sorted(known))}"
        )
    return SAGANConfig(**{**preset, **overrides})


PAPER_128: dict = {}  # the defaults: 128x128 ImageNet, 1000 classes (official flags)
# Laptop scale, ours: 16x16 single-channel images (the planned digits reproduction), 10 classes,
# attention on the middle (8x8) map of both networks; BN momentum 0.1 for short runs.
MINI = {
    "image_size": 16,
    "image_channels": 1,
    "z_dim": 64,
    "num_classes": 10,
    "g_channels": 32,
    "g_mults": (4, 2, 1),  # 128 @ 4x4 -> 64 @ 8x8 (attention) -> 32 @ 16x16
    "d_channels": 32,
    "d_mults": (1, 2, 4),  # 32 @ 8x8 (attention) -> 64 @ 4x4 -> 128 @ 4x4
    "g_attention_at": 8,
    "d_attention_at": 8,
    "bn_momentum": 0.1,
}


def sagan_128(**overrides) -> Generator:
    """SAGAN's 128x128 ImageNet generator (official `generator_test`, gf_dim 64, z 128)."""
    return Generator(_config(PAPER_128, overrides))


def sagan_128_discriminator(**overrides) -> Discriminator:
    """SAGAN's 128x128 ImageNet projection discriminator (`discriminator_test`, df_dim 64)."""
    return Discriminator(_config(PAPER_128, overrides))


def sagan_mini(**overrides) -> Generator:
    """Laptop-scale conditional generator: z 64 -> 16x16x1 images of 10 classes."""
    return Generator(_config(MINI, overrides))


def sagan_mini_discriminator(**overrides) -> Discriminator:
    """Laptop-scale projection discriminator for `sagan_mini`'s images."""
    return Discriminator(_config(MINI, overrides))


def tiny_overrides(name: str) -> dict:
    """Small widths for the registry-wide tests; z_dim, classes and image size stay those of the
    card's inputs. Attention needs C >= 8 on the attended map (C/8 query channels)."""
    if name.startswith("sagan_128"):
        return {"g_channels": 2, "d_channels": 4}  # 32..2 wide; attention on 8 channels
    return {"g_channels": 4, "d_channels": 8}
