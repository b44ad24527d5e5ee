"""DPIG stage II and the networks that train the stages: pose autoencoder, samplers, critics.

Official code: charliememory/Disentangled-Person-Image-Generation at e470386 (`models.py`:
GaussianFCRes, PoseEncoderFCRes, PoseDecoderFCRes; `wgan_gp.py`: FCDiscriminator,
DCGANDiscriminator; `trainer.py`: how the Market-1501 runs put them together).

The idea of stage II: stage I leaves three code spaces (foreground, background, pose) that its
decoder renders, but no way to draw a new point in them. For each space a mapping network Phi
turns Gaussian noise into a code, z ~ N(0, 0.2^2 I) -> Phi(z), trained adversarially against the
codes the stage-I encoders give for real images: a critic D scores codes, and Phi learns to make
D(Phi(z)) as high as D(e(x)). Matching a distribution over 32- to 224-number vectors is far
easier than over images, and a sampled code is rendered by the frozen stage-I decoder.

The pose space is that of a separate fully connected autoencoder on the 54 numbers of a pose
(18 x (row, column, visibility), normalised to [-1, 1]), trained alone with an MSE loss (x20), so
that a sampled pose code decodes to keypoints, then to heatmaps (`keypoints.keypoint_heatmaps`).

Sizes (Market-1501, `trainer.py`): foreground mapper 224 -> 224 with width 512, background
128 -> 128 with width 256, pose 32 -> 32 with width 512, each 4 residual blocks of two linear
layers with LeakyReLU(0.2); critics: linear to 512, 3 more of 512 (LeakyReLU 0.2), linear to 1;
pose encoder 54 -> 32 and decoder 32 -> 36 coordinates + 18 visibilities, width 512, 4 blocks
(the decoder's first layer has no activation; visibilities are rounded with a straight-through
gradient). The stage-I discriminator is the DCGAN one of the WGAN-GP code: four 5x5 stride-2
convolutions (64, 128, 256, 512) with LeakyReLU(0.2), batch norm after the last three (always
with the batch's statistics: the official layer is built without a training flag), and a linear
layer to one logit.

What the released code trains them with, recorded for `method.py`: stage I, DCGAN loss + 20 x L1,
Adam(lr 2e-5, beta1 0.5), lr halved every 50k steps; stage II, the weight-clipping WGAN
(`MODE='wgan'`: clip 0.01, RMSProp lr 2e-5, 5 critic steps per mapper step), not WGAN-GP.

What is ours: a container (`Stage2`) keyed by the official variable scopes; the noise is drawn
by `sample` with an optional generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_config, check_dtype, ensure_finite, model_dtype
from sotazoo.papers.disentangled_person.keypoints import (
    NUM_KEYPOINTS,
    denormalise_keypoints,
    keypoint_heatmaps,
    normalise_keypoints,
)
from sotazoo.papers.disentangled_person.layers import Conv2dSame
from sotazoo.papers.disentangled_person.model import DpigConfig

NOISE_STD = 0.2  # GaussianFCRes: tf.random_normal(z_shape, mean=0.0, stddev=0.2)
SLOPE = 0.2  # wgan_gp.LeakyReLU, the one trainer.py's star imports bind


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE)


class ResidualMLP(nn.Module):
    """Linear to `width` (LeakyReLU unless `first_act` is False), then `blocks` x [two
    Linear + LeakyReLU, added to the block's input] (GaussianFCRes, Pose{En,De}coderFCRes)."""

    def __init__(self, d_in: int, width: int, blocks: int, *, first_act: bool = True) -> None:
        super().__init__()
        self.first_act = first_act
        self.fc_in = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(
            nn.ModuleList([nn.Linear(width, width), nn.Linear(width, width)]) for _ in range(blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc_in(x)
        x = _lrelu(x) if self.first_act else x
        for a, b in self.blocks:
            x = x + _lrelu(b(_lrelu(a(x))))
        return x


class MappingNet(nn.Module):
    """Phi: noise (B, dim) -> a code (B, dim) of one stage-I space (`GaussianFCRes`)."""

    def __init__(self, dim: int, width: int, blocks: int = 4) -> None:
        super().__init__()
        self.dim = dim
        self.body = ResidualMLP(dim, width, blocks)
        self.fc_out = nn.Linear(width, dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_vector("z", z, self.dim, model_dtype(self))
        return self.fc_out(self.body(z))

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from z ~ N(0, 0.2^2 I), the noise the official sampler draws."""
        p = next(self.parameters())
        z = torch.randn(n, self.dim, generator=generator, dtype=p.dtype).to(p.device) * NOISE_STD
        return self(z)


class EmbeddingCritic(nn.Module):
    """D: a code (B, dim) -> a score (B,) (`FCDiscriminator(FC_DIM=512, n_layers=3)`)."""

    def __init__(self, dim: int, width: int = 512, layers: int = 3) -> None:
        super().__init__()
        self.dim = dim
        self.fc_in = nn.Linear(dim, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.fc_out = nn.Linear(width, 1)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        _check_vector("code", code, self.dim, model_dtype(self))
        x = _lrelu(self.fc_in(code))
        for fc in self.hidden:
            x = _lrelu(fc(x))
        return self.fc_out(x)[:, 0]


class _RoundST(torch.autograd.Function):
    """round(x) forward, identity backward (`binaryRound`'s gradient override)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return grad


class PoseAutoencoder(nn.Module):
    """Keypoints (B, 18, 3) pixels <-> a pose code (B, code_dim) (scope PoseAE:
    `PoseEncoderFCRes` and `PoseDecoderFCRes`)."""

    def __init__(self, *, img_h: int, img_w: int, code_dim: int = 32, width: int = 512,
                 blocks: int = 4) -> None:  # fmt: skip
        super().__init__()
        self.img_h, self.img_w, self.code_dim = img_h, img_w, code_dim
        k = NUM_KEYPOINTS
        self.encoder = ResidualMLP(3 * k, width, blocks)
        self.encoder_out = nn.Linear(width, code_dim)
        self.decoder = ResidualMLP(code_dim, width, blocks, first_act=False)
        self.coords = nn.Linear(width, 2 * k)  # normalised (row, column) pairs, no activation
        self.visible = nn.Linear(width, k)  # sigmoid, then rounded

    def encode(self, rcv: torch.Tensor) -> torch.Tensor:
        """(B, 18, 3) (row, column, visibility) in pixels -> (B, code_dim)."""
        check_dtype(rcv, model_dtype(self), "keypoints")
        ensure_finite(rcv, "keypoints")
        return self.encoder_out(self.encoder(normalise_keypoints(rcv, self.img_h, self.img_w)))

    def decode_normalised(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(coords (B, 36) in [-1, 1] units, visibility (B, 18) of 0 / 1): what the MSE loss
        compares with the normalised input (coordinates interleaved with visibilities)."""
        _check_vector("code", code, self.code_dim, model_dtype(self))
        h = self.decoder(code)
        return self.coords(h), _RoundST.apply(torch.sigmoid(self.visible(h)))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """(B, code_dim) -> keypoints (B, 18, 3) in pixels, clamped into the image."""
        coords, vis = self.decode_normalised(code)
        return denormalise_keypoints(coords, vis, self.img_h, self.img_w)

    def heatmaps(self, code: torch.Tensor) -> torch.Tensor:
        """(B, code_dim) -> the stage-I pose input (B, 18, H, W) of +1 / -1 discs."""
        return keypoint_heatmaps(self.decode(code), self.img_h, self.img_w)


class DCGANDiscriminator(nn.Module):
    """The stage-I discriminator: image (B, C, H, W) -> logit (B,) (`wgan_gp.DCGANDiscriminator`,
    dim 64, `MODE='dcgan'` so batch norm, not layer norm)."""

    def __init__(self, *, img_h: int, img_w: int, in_chans: int = 3, dim: int = 64) -> None:
        super().__init__()
        hw = (img_h, img_w)
        widths = (in_chans, dim, 2 * dim, 4 * dim, 8 * dim)
        self.convs = nn.ModuleList()
        for a, b in zip(widths, widths[1:], strict=False):
            self.convs.append(Conv2dSame(a, b, 5, 2, hw))
            hw = self.convs[-1].out_hw
        # always the batch's statistics (the official BN gets no is_training), eps 1e-5
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(w, eps=1e-5, track_running_stats=False) for w in widths[2:]
        )
        self.fc = nn.Linear(8 * dim * hw[0] * hw[1], 1)  # NCHW flatten, as tflib's layers run

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = _lrelu(self.convs[0](image))
        for conv, norm in zip(self.convs[1:], self.norms, strict=True):
            x = _lrelu(norm(conv(x)))
        return self.fc(x.flatten(1))[:, 0]


@dataclass(frozen=True, kw_only=True)
class Stage2Config:
    """Widths of the stage-II networks (trainer.py's Market-1501 classes)."""

    fg_width: int = 512  # Gaussian_FC_Fg: GaussianFCRes(hidden_num=512)
    bg_width: int = 256  # Gaussian_FC_Bg: GaussianFCRes(hidden_num=256)
    pose_width: int = 512  # PoseGaussian and PoseAE: hidden_num=512
    blocks: int = 4  # repeat_num=4 everywhere
    pose_code_dim: int = 32  # PoseEncoderFCRes(z_num=32)
    critic_width: int = 512  # FCDiscriminator(FC_DIM=512)
    critic_layers: int = 3  # FCDiscriminator(n_layers=3)
    disc_dim: int = 64  # DCGANDiscriminator(dim=64)

    def __post_init__(self) -> None:
        check_config(self)


class Stage2(nn.Module):
    """Every network besides the stage-I generator, under the official scope names: the pose
    autoencoder (PoseAE), the three mappers (Gaussian_FC_Fg, Gaussian_FC_Bg, PoseGaussian), their
    critics (Fg_FCDis, Bg_FCDis, Pose_emb) and the stage-I discriminator."""

    def __init__(self, cfg: DpigConfig, s2: Stage2Config | None = None) -> None:
        super().__init__()
        s2 = s2 or Stage2Config()
        self.cfg, self.s2 = cfg, s2
        self.pose_ae = PoseAutoencoder(img_h=cfg.img_h, img_w=cfg.img_w, code_dim=s2.pose_code_dim,
                                       width=s2.pose_width, blocks=s2.blocks)  # fmt: skip
        self.fg_map = MappingNet(cfg.fg_dim, s2.fg_width, s2.blocks)
        self.bg_map = MappingNet(cfg.bg_dim, s2.bg_width, s2.blocks)
        self.pose_map = MappingNet(s2.pose_code_dim, s2.pose_width, s2.blocks)
        self.fg_critic = EmbeddingCritic(cfg.fg_dim, s2.critic_width, s2.critic_layers)
        self.bg_critic = EmbeddingCritic(cfg.bg_dim, s2.critic_width, s2.critic_layers)
        self.pose_critic = EmbeddingCritic(s2.pose_code_dim, s2.critic_width, s2.critic_layers)
        self.discriminator = DCGANDiscriminator(img_h=cfg.img_h, img_w=cfg.img_w,
                                                in_chans=cfg.in_chans, dim=s2.disc_dim)  # fmt: skip

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> dict:
        """New factors: {"fg": (n, 224), "bg": (n, 128), "heatmaps": (n, 18, H, W)}, each
        from its mapper and, for the pose, the pose decoder (`Stage2.sample` then
        `Dpig.decode(**...)` renders them)."""
        pose = self.pose_map.sample(n, generator=generator)
        return {"fg": self.fg_map.sample(n, generator=generator),
                "bg": self.bg_map.sample(n, generator=generator),
                "heatmaps": self.pose_ae.heatmaps(pose)}  # fmt: skip


def _check_vector(name: str, t: torch.Tensor, dim: int, dtype: torch.dtype) -> None:
    if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[1] != dim:
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise InputError(f"{name}: expected a (B, {dim}) batch, got {got}")
    check_dtype(t, dtype, name)
    ensure_finite(t, name)
