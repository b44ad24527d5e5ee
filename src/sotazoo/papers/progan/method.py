"""ProGAN's training method: the WGAN-GP loss with a drift term, the growing schedule, the
optimiser settings and the generator's moving average (arXiv 1710.10196, App. A.1).

Loss (App. A.1, official `loss.py`): the critic D is trained with WGAN-GP (Gulrajani et al.
2017), i.e. L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad_x^ D(x^)||_2 - gamma)^2 / gamma^2]
with x^ = x + u (G(z) - x), u ~ U(0, 1) per sample, lambda = 10, gamma = 1 (750 for CIFAR-10,
§6.5), plus the paper's own drift term eps_drift * E[D(x)^2], eps_drift = 0.001, which keeps the
critic's output near zero so that it cannot drift away while the Wasserstein estimate is
unchanged. The generator minimises -E[D(G(z))].

Schedule (§2, App. A.1; official `train.py`, `TrainingSchedule`): training starts at 4x4 and
stabilises there; each later resolution is first faded in, alpha rising linearly with the
number of real images shown, then stabilised, 800k images each for CelebA-HQ (the official
default was 600k). Real images are blended between the two resolutions with the same alpha.

Optimiser (App. A.1): Adam, lr 0.001, betas (0, 0.99), eps 1e-8, one D step per G step; the
generator used for evaluation is an exponential moving average of G's weights with decay 0.999.
The learning rate is ramped up over the first 40k images (the Theano original's config.py and
`misc.rampup`), and the TF code resets the optimisers' state at every new resolution; applying
both is the training loop's job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WGAN_LAMBDA = 10.0  # weight of the gradient penalty
WGAN_TARGET = 1.0  # gamma: the target gradient norm (750 for CIFAR-10, §6.5)
DRIFT = 0.001  # eps_drift (App. A.1)
G_EMA_DECAY = 0.999  # official G_smoothing


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    target: float = WGAN_TARGET,
    mix: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample (||grad D(x^)|| - gamma)^2 / gamma^2 at x^ = lerp(real, fake, u), shape (B,).

    `mix` is u, one number per sample (drawn from U(0, 1) when not given). The gradient is taken
    with `create_graph=True`, so the penalty itself can be back-propagated into D's weights.
    """
    if mix is None:
        mix = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    u = mix.reshape(-1, *([1] * (real.ndim - 1)))  # (B, 1, 1, 1)
    x_hat = torch.lerp(real.detach(), fake.detach(), u).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)  # (B,)
    return (norms - target).square() / target**2


def critic_loss(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    gp_weight: float = WGAN_LAMBDA,
    target: float = WGAN_TARGET,
    drift: float = DRIFT,
    mix: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """D's loss (official `D_wgangp_acgan` without labels): the named terms and their sum.

    `fake` is detached here: this loss trains the critic only.
    """
    d_real = critic(real).reshape(-1)  # (B,)
    d_fake = critic(fake.detach()).reshape(-1)
    wasserstein = (d_fake - d_real).mean()  # minus the critic's estimate of W(P_r, P_g)
    gp = gradient_penalty(critic, real, fake, target=target, mix=mix).mean()
    drift_term = d_real.square().mean()  # keeps D(x) from drifting far from 0
    loss = wasserstein + gp_weight * gp + drift * drift_term
    return {"loss": loss, "wasserstein": wasserstein, "gradient_penalty": gp, "drift": drift_term}


def generator_loss(critic: Callable[[torch.Tensor], torch.Tensor], fake: torch.Tensor) -> dict:
    """G's loss, -E[D(G(z))] (official `G_wgan_acgan` without labels)."""
    loss = -critic(fake).mean()
    return {"loss": loss}


# ---------------------------------------------------------------- the schedule


@dataclass(frozen=True, kw_only=True)
class GrowthSchedule:
    """Stage and alpha as functions of the number of real images shown to D.

    Stage 0 (4x4) is trained for `stabilise_images`; every later stage is faded in over
    `fade_images` (alpha linear from 0 to 1) and then stabilised for `stabilise_images`; the
    final stage stays forever. This is the official `TrainingSchedule` with alpha = 1 - frac(lod).
    """

    final_stage: int  # ProGANConfig.max_stage
    fade_images: int = 800_000  # CelebA-HQ (the paper's 1-GPU preset, lod_transition_kimg)
    stabilise_images: int = 800_000  # lod_training_kimg

    def __post_init__(self) -> None:
        if self.fade_images < 0 or self.stabilise_images < 0 or self.final_stage < 0:
            raise ValueError("the schedule's image counts and final stage must be >= 0")

    def at(self, images: int) -> tuple[int, float]:
        """(stage, alpha) after `images` real images; alpha = 1 outside the fade-in phases."""
        phase = self.fade_images + self.stabilise_images
        if phase == 0:  # no growing: the full-size network from the start
            return self.final_stage, 1.0
        # phase i covers [i * phase, (i + 1) * phase): stabilise stage i, then fade in i + 1
        i, within = divmod(images, phase)
        if i >= self.final_stage:
            return self.final_stage, 1.0
        if within < self.stabilise_images:
            return int(i), 1.0
        return int(i) + 1, (within - self.stabilise_images) / max(self.fade_images, 1)

    def total_images(self) -> int:
        """Images until the final stage is stable: where the official run has lod = 0."""
        return self.final_stage * (self.fade_images + self.stabilise_images)


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Real images as D sees them during a fade-in: lerp(up2(pool2(x)), x, alpha), so that
    reals and fakes have the same mix of the two resolutions (official `process_reals`)."""
    if alpha >= 1.0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
    return torch.lerp(low, x, alpha)


# ---------------------------------------------------------------- optimiser and EMA


def adam(params, lr: float = 1e-3) -> torch.optim.Adam:
    """Adam with the paper's settings: lr 0.001, betas (0, 0.99), eps 1e-8 (App. A.1)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.0, 0.99), eps=1e-8)


def lr_rampup(images: int, rampup_images: int = 40_000) -> float:
    """The learning-rate multiplier of the Theano original (`misc.rampup`, rampup_kimg = 40):
    exp(-5 (1 - t)^2) with t = images / rampup_images, then 1."""
    if rampup_images <= 0 or images >= rampup_images:
        return 1.0
    return math.exp(-5.0 * (1.0 - images / rampup_images) ** 2)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float = G_EMA_DECAY) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter (official G_smoothing).

    Both networks must have the same parameters: grow the EMA copy whenever G grows (and call
    `end_fade` on both), or copy G again with `copy.deepcopy`.
    """
    src = dict(model.named_parameters())
    dst = dict(ema.named_parameters())
    if src.keys() != dst.keys():
        missing = sorted(src.keys() ^ dst.keys())[:4]
        raise ValueError(f"EMA and model differ in their parameters (e.g. {missing}); grow both")
    for name, p in src.items():
        dst[name].lerp_(p, 1.0 - decay)
