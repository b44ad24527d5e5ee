"""HDGAN (Zhang, Xie, Yang, CVPR 2018, arXiv 1802.09178): the generator and the hierarchically-
nested discriminators.

Paper: "Photographic Text-to-Image Synthesis with a Hierarchically-nested Adversarial Network".
Official code (PyTorch 0.3.1, Python 3, MIT): ypxie/HDGan at
d98e2a85f7ae6ce7bfacd1c15e519558d97cb931 (`HDGan/models/hd_networks.py`,
`HDGan/proj_utils/network_utils.py`, `HDGan/HDGan.py`, `train/train_gan/train_worker.py` and
`train_{birds,flower,coco}.sh`, `test/test_gan/test_worker.py`). Our modules keep the official
attribute names, so the released files load by key: `G_epochN.pth` into `Generator` (the
official Generator), `D_epochN.pth` into `Discriminator` (the official Discriminator, which holds
the three scales' networks in one module), once the `module.` prefix that a file saved from the
worker's DataParallel wrapper carries is stripped (HDGan_test.py checks for it). The birds, flowers and COCO models are one
architecture: the workers build `Generator(sent_dim=1024, noise_dim=100, emb_dim=128,
hid_dim=128, num_resblock=1)` and `Discriminator(num_chan=3, hid_dim=128, sent_dim=1024,
emb_dim=128)` for every dataset; the scripts differ only in batch size, KL weight and lr decay.

The idea: one generator runs from a 4 x 4 map to 256 x 256 and is tapped at 64, 128 and 256 by
small RGB heads (side outputs); each side output has its own discriminator, so the middle of the
deep generator is supervised directly (hierarchically-nested adversarial objectives). The text
enters once, at the start: the 1024-d char-CNN-RNN sentence embedding goes through conditioning
augmentation (c = mu + sigma * eps) and is joined with the noise z. Each discriminator encodes its
image and has two heads: a pair head that tiles a code of the sentence over the image code and
judges whether image and text match, and a local image head that judges the image alone (one
logit at 64 and 128, a 5 x 5 map of patch logits at 256).

What follows the official code rather than the paper's words (the paper's full text was not at
hand; these are what the code does, `layers.py` says where):
- CA: Linear(1024 -> 256) + LeakyReLU 0.2 on both halves -> (mean, log sigma), c = eps sigma +
  mean; G's input is [c, z] in that order; Linear + BatchNorm1d to 4 x 4 x 1024, no activation.
- G: scales 4, 8, ..., 256; each (after the first) upsamples by 2 (nearest), halves the width at
  8, 32, 128 and 256 with a 3x3 conv-BN-ReLU, and adds one residual block; every 3x3 conv of G
  pads by reflection; the 4 x 4 map gets a residual block too.
- D: 3x3 stride-2 convs (not 4x4) whose widths are hard-coded per scale (128 at 64 px, 64 at
  128, 32 at 256, `d_width_x_size`); the sentence code of each pair head is its own
  Linear(1024 -> 128) + LeakyReLU; the local head is a 4x4 conv at every scale ("never use 1x1
  convolutions as the image disc classifier", hd_networks.py), giving 1 x 1 at 64 / 128 and
  5 x 5 at 256, where the pair head first shrinks the 8 x 8 code with a 5x5 conv (`pre_encode`).
- Init: conv weights N(0, 0.02), BN weights N(1, 0.02); linear layers keep torch's default.
- The losses (HDGan.py) are least squares (MSE to 1 / 0), not cross-entropy.

What is ours: the CA noise eps is an input (or drawn from a `torch.Generator` given by keyword)
instead of a draw on the GPU inside the module; the scales and side outputs are config
(`side_output_at`, `reduce_dim_at`; the official forward hard-codes 64 / 128 / 256), and so are
the discriminator's first widths and which scale has the patch head (`d_width_x_size`,
`local_patch_at`), used by the laptop variant; no in-place ops; input checks; `forward` returns
the largest side output alone (`generate` returns them all with mean and log sigma).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    _tracing,
    build_configured,
    check_config,
    check_image_batch,
    check_tensor,
    ensure_finite,
    ensure_finite_output,
    model_dtype,
)
from sotazoo.papers.hdgan.layers import (
    CondEmbedding,
    DiscClassifier,
    ImageDown,
    ResnetBlock,
    Sent2FeatMap,
    branch_out,
    conv_norm,
    pad_conv_norm,
    weights_init,
)


@dataclass(frozen=True, kw_only=True)
class HDGANConfig:
    """The arguments train_worker.py gives Generator and Discriminator, and the sizes that
    hd_networks.py hard-codes (ours to set)."""

    sent_dim: int = 1024  # the char-CNN-RNN sentence embedding (StackGAN's preprocessed data)
    noise_dim: int = 100  # z (--noise_dim)
    emb_dim: int = 128  # the CA code c, and each D's sentence code
    hid_dim: int = 128  # G: hid_dim * 8 channels at 4 x 4
    num_resblock: int = 1  # residual blocks per scale of G (--num_resblock)
    # Ours to set: hard-coded in the official Generator (num_scales up to 256, reduce_dim_at,
    # and a forward that taps 64 / 128 / 256). The scales run 4, 8, ..., max(side_output_at).
    side_output_at: tuple[int, ...] = (64, 128, 256)
    reduce_dim_at: tuple[int, ...] = (8, 32, 128, 256)  # scales whose first conv halves the width
    num_chan: int = 3  # image channels
    d_hid_dim: int = 128  # Discriminator(hid_dim): its image code has 4 d_hid_dim channels
    # Ours to set: ImageDown's first width times the image size; hard-coded in the official code
    # (128 at 64 px, 64 at 128, 32 at 256, all 8192 / size)
    d_width_x_size: int = 8192
    # Ours to set: the scale whose D keeps an 8 x 8 code, a 5 x 5 local patch map and the
    # `pre_encode` conv; hard-coded `if this_img_size == 256` in the official forward
    local_patch_at: int = 256

    def __post_init__(self) -> None:
        check_config(self)
        name = type(self).__name__
        sides, scales = self.side_output_at, self.scales
        if sorted(set(sides)) != list(sides) or sides[0] < 16 or sides[-1] not in _POWERS:
            raise InputError(f"{name}: side_output_at must be increasing powers of 2 from 16, "
                             f"got {sides}")  # fmt: skip
        if any(s not in scales for s in (*sides, *self.reduce_dim_at)):
            raise InputError(f"{name}: side_output_at {sides} and reduce_dim_at "
                             f"{self.reduce_dim_at} must be scales of G: {scales}")  # fmt: skip
        if self.width(sides[-1]) < 1:
            raise InputError(f"{name}: hid_dim * 8 = {8 * self.hid_dim} is halved "
                             f"{len(self.reduce_dim_at)} times, below one channel")  # fmt: skip
        if self.local_patch_at not in sides:
            raise InputError(f"{name}: local_patch_at must be one of side_output_at {sides}, "
                             f"got {self.local_patch_at}")  # fmt: skip
        bad = [s for s in sides if self.d_width_x_size % s or self.d_width_x_size < s]
        if bad:
            raise InputError(f"{name}: d_width_x_size {self.d_width_x_size} must be a multiple "
                             f"of every side output size, not of {bad}")  # fmt: skip

    @property
    def scales(self) -> tuple[int, ...]:
        """G's scales: 4, 8, ..., the largest side output."""
        return tuple(4 * 2**k for k in range(int(math.log2(self.side_output_at[-1] // 4)) + 1))

    def width(self, scale: int) -> int:
        """G's channels at `scale`: hid_dim * 8, halved at every reduce_dim_at up to it."""
        return 8 * self.hid_dim // 2 ** sum(s <= scale for s in self.reduce_dim_at)


_POWERS = tuple(2**k for k in range(4, 14))


# ---------------------------------------------------------------------- generator


class Generator(nn.Module):
    """The HDGAN generator (official Generator): forward(noise (B, noise_dim), embedding
    (B, sent_dim), eps (B, emb_dim) or None) -> the largest side output (B, 3, S, S) in [-1, 1];
    `generate` -> ([side output per `side_output_at`], mean, log_sigma). Without eps, eps ~ N(0, I)
    is drawn from `generator` (torch's default one when None), as the official module draws it."""

    def __init__(self, cfg: HDGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.condEmbedding = CondEmbedding(cfg.sent_dim, cfg.emb_dim)
        self.vec_to_tensor = Sent2FeatMap(cfg.emb_dim + cfg.noise_dim, 4, 4, 8 * cfg.hid_dim)
        width = 8 * cfg.hid_dim
        for scale in cfg.scales:  # scale_4, scale_8, ...: Sequential positions as the official
            seq: list[nn.Module] = []
            if scale != 4:
                seq.append(nn.Upsample(scale_factor=2, mode="nearest"))
            if scale in cfg.reduce_dim_at:
                seq.append(pad_conv_norm(width, width // 2))
                width //= 2
            seq += [ResnetBlock(width) for _ in range(cfg.num_resblock)]
            self.add_module(f"scale_{scale}", nn.Sequential(*seq))
            if scale in cfg.side_output_at:
                self.add_module(f"tensor_to_img_{scale}", branch_out(width, cfg.num_chan))
        weights_init(self)

    def _check(self, noise, embedding, eps) -> None:
        cfg, dtype = self.cfg, model_dtype(self)
        check_tensor(noise, "noise", ("B", cfg.noise_dim), dtype)
        b = noise.shape[0]
        check_tensor(embedding, "embedding", (b, cfg.sent_dim), dtype)
        if eps is not None:
            check_tensor(eps, "eps", (b, cfg.emb_dim), dtype)
        if self.training and b == 1 and not _tracing():
            raise InputError("a batch of 1 in training mode: the BatchNorm1d after the first "
                             "linear layer needs 2 samples or more (model.eval())")  # fmt: skip

    def features(self, noise, embedding, eps=None, generator=None):
        """({scale: feature map} at the side outputs, mean, log_sigma): G without its RGB heads."""
        self._check(noise, embedding, eps)
        if eps is None:  # the official condEmbedding draws it: N(0, I)
            eps = torch.randn(noise.shape[0], self.cfg.emb_dim, generator=generator,
                              device=noise.device, dtype=noise.dtype)  # fmt: skip
        c, mean, log_sigma = self.condEmbedding(embedding, eps)
        x = self.vec_to_tensor(torch.cat((c, noise), 1))  # (B, 8 hid_dim, 4, 4)
        maps = {}
        for scale in self.cfg.scales:
            x = getattr(self, f"scale_{scale}")(x)
            if scale in self.cfg.side_output_at:
                maps[scale] = x
        return maps, mean, log_sigma

    def generate(self, noise, embedding, eps=None, generator=None):
        """-> ([images (B, 3, s, s) for s in side_output_at], mean, log_sigma): the official
        forward's output_64, output_128, output_256, mean, logsigma."""
        maps, mean, log_sigma = self.features(noise, embedding, eps, generator=generator)
        images = [getattr(self, f"tensor_to_img_{s}")(x) for s, x in maps.items()]
        ensure_finite_output([*images, mean, log_sigma], {}, self)
        return images, mean, log_sigma

    def forward(self, noise, embedding, eps=None, generator=None) -> torch.Tensor:
        # `generator` is not keyword-only: the ONNX exporter passes every parameter by position
        maps, *_ = self.features(noise, embedding, eps, generator=generator)
        last = self.cfg.side_output_at[-1]
        image = getattr(self, f"tensor_to_img_{last}")(maps[last])
        ensure_finite_output(image, {}, self)
        return image


# ---------------------------------------------------------------------- discriminators


class Discriminator(nn.Module):
    """The hierarchically-nested discriminators (official Discriminator): one network per side
    output size s, under the official names `img_encoder_s`, `pair_disc_s`, `local_img_disc_s`,
    `context_emb_pipe_s` (and `pre_encode` for the patch scale). forward(images (B, 3, s, s),
    embedding (B, sent_dim)) picks the network by the image size and returns the pair logit
    (B, 1) and the local image logits (B, 1, h, w): 1 x 1, or 5 x 5 patches at `local_patch_at`.
    The logits are raw: the official losses are least squares on them."""

    def __init__(self, cfg: HDGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        enc = 4 * cfg.d_hid_dim  # the official enc_dim
        for s in cfg.side_output_at:
            patch = s == cfg.local_patch_at
            first = cfg.d_width_x_size // s  # 128 / 64 / 32 at 64 / 128 / 256 px, officially
            self.add_module(f"img_encoder_{s}", ImageDown(s, cfg.num_chan, enc, first, patch=patch))
            self.add_module(f"pair_disc_{s}", DiscClassifier(enc, cfg.emb_dim, kernel=4))
            if patch:  # 8 x 8 -> 4 x 4 for the pair head
                self.pre_encode = conv_norm(enc, enc, 5, 1)
            self.add_module(f"local_img_disc_{s}", nn.Conv2d(enc, 1, 4, padding=0, bias=True))
            sentence_code = nn.Sequential(nn.Linear(cfg.sent_dim, cfg.emb_dim), nn.LeakyReLU(0.2))
            self.add_module(f"context_emb_pipe_{s}", sentence_code)
        weights_init(self)

    def scale_modules(self, size: int) -> dict[str, nn.Module]:
        """The modules of the discriminator of `size` px, by their official names."""
        names = [f"img_encoder_{size}", f"pair_disc_{size}", f"local_img_disc_{size}",
                 f"context_emb_pipe_{size}"]  # fmt: skip
        if size == self.cfg.local_patch_at:
            names.append("pre_encode")
        return {n: getattr(self, n) for n in names}

    def forward(
        self, images: torch.Tensor, embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, dtype = self.cfg, model_dtype(self)
        check_image_batch(images, cfg.num_chan, dtype=dtype)
        size = images.shape[3]
        if not _tracing():
            if images.shape[2] != size or size not in cfg.side_output_at:
                raise InputError(f"the discriminators take square images of "
                                 f"{' / '.join(map(str, cfg.side_output_at))} px, got "
                                 f"{images.shape[2]} x {size}")  # fmt: skip
            ensure_finite(images, "images")
        check_tensor(embedding, "embedding", (images.shape[0], cfg.sent_dim), dtype)
        sent_code = getattr(self, f"context_emb_pipe_{size}")(embedding)  # (B, emb_dim)
        img_code = getattr(self, f"img_encoder_{size}")(images)  # (B, enc, 4 or 8, 4 or 8)
        pair_in = self.pre_encode(img_code) if size == cfg.local_patch_at else img_code
        pair = getattr(self, f"pair_disc_{size}")(sent_code, pair_in)  # (B, 1)
        local = getattr(self, f"local_img_disc_{size}")(img_code)  # (B, 1, 1 or 5, 1 or 5)
        ensure_finite_output((pair, local), {}, self)
        return pair, local


# ---------------------------------------------------------------------- builders

# train_worker.py / test_worker.py, for birds (CUB), flowers (Oxford-102) and COCO alike.
OFFICIAL_256 = HDGANConfig()
# Laptop scale, ours, for the 64 x 64 captioned scenes (sotazoo.data.captioned_scenes): side
# outputs at 16 / 32 / 64 (scales 4 .. 64; the width halves at 8, 32 and 64: 128 -> 16
# channels), 32-d noise and CA code, and a 64-d sentence embedding in place of the 1024-d
# char-CNN-RNN one: that encoder is a Torch7 model trained on CUB captions, so the scenes' few
# dozen words get a small text encoder of their own, whose sentence vector is this input. The
# discriminators keep the official layout at a quarter of the width (64-channel codes, first
# widths 64 / 32 / 16 = 1024 / size), and the finest scale, 64, gets the patch head that the
# official code gives 256.
MINI = HDGANConfig(sent_dim=64, noise_dim=32, emb_dim=32, hid_dim=16, side_output_at=(16, 32, 64),
                   reduce_dim_at=(8, 32, 64), d_hid_dim=16, d_width_x_size=1024,
                   local_patch_at=64)  # fmt: skip


def hdgan_256(**overrides) -> Generator:
    """HDGAN's 256 px generator. CUB birds, Oxford-102 flowers and MS-COCO share the network
    (their scripts change the recipe only), so the released checkpoints of the three datasets
    would be three weights of this one model, as torchvision names a model's weights."""
    return build_configured(Generator, OFFICIAL_256, overrides)


def hdgan_mini(**overrides) -> Generator:
    """Laptop-scale HDGAN generator: side outputs at 16 / 32 / 64 px, a 64-d text embedding."""
    return build_configured(Generator, MINI, overrides)


def hdgan_discriminators_256(**overrides) -> Discriminator:
    """The official Discriminator (64 / 128 / 256 px) of CUB, Oxford-102 and COCO."""
    return build_configured(Discriminator, OFFICIAL_256, overrides)


def hdgan_discriminators_mini(**overrides) -> Discriminator:
    """The discriminators of hdgan_mini (16 / 32 / 64 px, the patch head at 64)."""
    return build_configured(Discriminator, MINI, overrides)


def tiny_overrides(name: str) -> dict:
    """Narrow generators for the registry-wide tests; the noise and embedding sizes stay those of
    the card's inputs."""
    return {"hid_dim": 2}


def unused_in_forward(name: str) -> tuple[str, ...]:
    """`forward` returns the largest side output: the RGB heads of the smaller ones train through
    their own discriminators (`generate` returns their images)."""
    sides = (MINI if name == "hdgan_mini" else OFFICIAL_256).side_output_at
    return tuple(f"tensor_to_img_{s}." for s in sides[:-1])
