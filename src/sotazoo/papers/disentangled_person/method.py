"""How DPIG trains its two stages: the losses as named terms, the optimisers, one step of each.

Official code: charliememory/Disentangled-Person-Image-Generation at e470386 (`trainer.py`:
`DPIG_Encoder_GAN_BodyROI_FgBg` for stage I, `DPIG_PoseRCV_AE_BodyROI` for the pose
autoencoder, `DPIG_Encoder_subSampleAppNetFgBg_GAN_BodyROI` and
`DPIG_subnetSamplePoseRCV_GAN_BodyROI` for stage II; `_gan_loss`, `_getOptimizer`).

Stage I (Sec. 3.1) reconstructs the input x from its factors, x_hat = G(e_fg, e_bg, P), with an
adversarial term and an L1 term. The released code (`MODE='dcgan'`) uses the non-saturating
DCGAN loss with a sigmoid discriminator D and weighs the L1 term by 20:

    L_G = BCE(D(x_hat), 1) + 20 * mean |x_hat - x|,
    L_D = (BCE(D(x), 1) + BCE(D(x_hat), 0)) / 2,

with Adam (beta1 0.5, TF's beta2 0.999) at 2e-5 for both, halved every 50k steps. The encoder's
and decoder's weights are G's. A pose-mask-weighted L1, mean(|x_hat - x| M), is computed and
logged but not added to L_G (`pose_mask_l1`). The loop runs, per step, one G update (none at
step 0) and then one D update.

The pose autoencoder (Sec. 3.1, `PoseAutoencoder`) is trained alone: MSE between the normalised
54 numbers of a pose (row, column, visibility per keypoint) and its reconstruction, x20, Adam
(beta1 0.5).

Stage II (Sec. 3.2) learns, for each factor, a mapping Phi from z ~ N(0, 0.2^2 I) to codes that a
critic D_e cannot tell from the frozen stage-I encoder's codes e(x). The released code
(`MODE='wgan'`) uses the weight-clipping WGAN of Arjovsky et al. (2017):

    L_D = mean D_e(Phi(z)) - mean D_e(e(x)),   L_Phi = -mean D_e(Phi(z)),

five critic updates per mapper update, each critic update followed by clipping every critic
weight to [-0.01, 0.01], and RMSProp (TF's: decay 0.9, epsilon 1e-10 inside the square root,
mean square initialised to 1, no momentum) at 2e-5. The loop runs, per step and per factor,
one mapper update (none at step 0) and then the five critic updates.

What is ours: the D update reuses the images G made before its update (TF's queue gave each
update its own batch and forward pass); a step draws its own real batch per critic update from
the codes it is given; the learning rate and the number of steps are arguments (the laptop
runs use more of the first and far fewer of the second).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError

L1_WEIGHT = 20.0  # trainer._define_loss_optim: g_loss += L1Loss * 20
POSE_MSE_WEIGHT = 20.0  # DPIG_PoseRCV_AE_BodyROI: reconstruct_loss * 20
PAPER_LR = 2e-5  # run_market_train.sh: --g_lr = --d_lr = 0.00002, every stage
LR_HALVE_EVERY = 50_000  # --lr_update_step=50000: both rates x0.5
ADAM_BETAS = (0.5, 0.999)  # config.py beta1 0.5; TF's default beta2
CLIP = 0.01  # _getOptimizer, MODE 'wgan': clip_by_value(-0.01, 0.01)
CRITIC_STEPS = 5  # WGAN_GP.CRITIC_ITERS
RMSPROP_DECAY, RMSPROP_EPS = 0.9, 1e-10  # tf.train.RMSPropOptimizer defaults


# ---------------------------------------------------------------- stage I


def stage1_generator_loss(fake_logits: torch.Tensor, output: torch.Tensor,
                          image: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
    """L_G as two weighted terms whose sum is the loss: the DCGAN term BCE(D(x_hat), 1) and
    20 x mean |x_hat - x| (`l1`, already weighted)."""
    _same("output", output, "image", image)
    ones = torch.ones_like(fake_logits)
    return {
        "adv": F.binary_cross_entropy_with_logits(fake_logits, ones),
        "l1": L1_WEIGHT * (output - image).abs().mean(),
    }


def stage1_discriminator_loss(real_logits: torch.Tensor,
                              fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
    """L_D as two terms whose sum is the loss: half the BCE of real images against 1 and half
    that of reconstructions against 0 (`_gan_loss` divides their sum by 2)."""
    return {
        "d_real": F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) / 2,
        "d_fake": F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        / 2,
    }


def pose_mask_l1(output: torch.Tensor, image: torch.Tensor, fg_mask: torch.Tensor) -> torch.Tensor:
    """mean(|x_hat - x| M) over every pixel and channel: logged by the official code, not part
    of L_G."""
    _same("output", output, "image", image)
    return ((output - image).abs() * fg_mask).mean()


class Stage1Optimizers(NamedTuple):
    g: torch.optim.Adam  # encoder and decoder
    d: torch.optim.Adam | None


def stage1_optimizers(model: nn.Module, disc: nn.Module | None, *, lr: float = PAPER_LR,
                      betas: tuple[float, float] = ADAM_BETAS) -> Stage1Optimizers:  # fmt: skip
    """Adam for G (the stage-I network: encoder and decoder) and for D, at the same rate."""
    d = None if disc is None else torch.optim.Adam(disc.parameters(), lr=lr, betas=betas)
    return Stage1Optimizers(g=torch.optim.Adam(model.parameters(), lr=lr, betas=betas), d=d)


def stage1_step(model: nn.Module, disc: nn.Module | None, opts: Stage1Optimizers,
                inputs: tuple[torch.Tensor, ...], *, update_g: bool = True,
                adv_weight: float = 1.0) -> dict[str, float]:  # fmt: skip
    """One stage-I step on a batch `inputs` = (image, heatmaps, fg_mask, boxes, box_vis): a G
    update (skipped with `update_g=False`, the official step 0), then a D update. Returns every
    term as a float, the logged pose-mask L1 among them.

    `adv_weight` scales the DCGAN term in G's loss (1: the official loss); with `disc=None` G
    learns from the L1 term alone and no D runs (the laptop reproduction's choice)."""
    image, _, fg_mask = inputs[:3]
    model.train()
    output = model(*inputs)  # reconstruct x from its own factors
    if disc is None:
        _same("output", output, "image", image)
        g_terms = {"l1": L1_WEIGHT * (output - image).abs().mean()}
        g_loss = g_terms["l1"]
    else:
        disc.train()
        g_terms = stage1_generator_loss(disc(output), output, image)
        g_loss = g_terms["l1"] + adv_weight * g_terms["adv"]
    if update_g:
        opts.g.zero_grad(set_to_none=True)
        g_loss.backward()
        opts.g.step()
    d_terms: dict[str, torch.Tensor] = {}
    if disc is not None:
        d_terms = stage1_discriminator_loss(disc(image), disc(output.detach()))
        opts.d.zero_grad(set_to_none=True)
        sum(d_terms.values()).backward()
        opts.d.step()
    logged = {"pose_mask_l1": pose_mask_l1(output.detach(), image, fg_mask)}
    return {k: float(v.detach()) for k, v in (g_terms | d_terms | logged).items()}


def lr_at(step: int, base: float = PAPER_LR, every: int = LR_HALVE_EVERY) -> float:
    """The rate at 0-based `step`: halved after every `every` steps (the official loop halves
    both rates after step every - 1, 2 every - 1, ...)."""
    return base * 0.5 ** (step // every)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


# ---------------------------------------------------------------- pose autoencoder


def pose_reconstruction_loss(target: torch.Tensor, coords: torch.Tensor,
                             visible: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
    """20 x the MSE between the normalised pose (B, 54), interleaved (r, c, v) per keypoint
    (`keypoints.normalise_keypoints`), and the decoder's (B, 36) coordinates and (B, 18)
    visibilities put in the same order."""
    b = coords.shape[0]
    rebuilt = torch.cat([coords.reshape(b, -1, 2), visible.reshape(b, -1, 1)], -1).flatten(1)
    _same("reconstruction", rebuilt, "target", target)
    return {"mse": POSE_MSE_WEIGHT * (rebuilt - target).square().mean()}


# ---------------------------------------------------------------- stage II


def wgan_critic_loss(real_scores: torch.Tensor,
                     fake_scores: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
    """The critic's loss, mean D(fake) - mean D(real), as two terms."""
    return {"d_fake": fake_scores.mean(), "d_real": -real_scores.mean()}


def wgan_mapper_loss(fake_scores: torch.Tensor) -> dict[str, torch.Tensor]:
    """The mapping network's loss: -mean D(Phi(z))."""
    return {"g_adv": -fake_scores.mean()}


@torch.no_grad()
def clip_weights_(critic: nn.Module, clip: float = CLIP) -> None:
    """Clip every parameter of `critic` into [-clip, clip] in place (the Lipschitz constraint of
    the weight-clipping WGAN)."""
    for p in critic.parameters():
        p.clamp_(-clip, clip)


class TFRMSprop(torch.optim.Optimizer):
    """RMSProp as TensorFlow 1 runs it (`tf.train.RMSPropOptimizer`, no momentum): the mean square
    starts at 1, not 0, and epsilon goes inside the square root:

        ms <- decay ms + (1 - decay) g^2,   w <- w - lr g / sqrt(ms + eps).

    (torch's RMSprop starts at 0 and adds eps outside: its first steps are ~3x lr sign(g).)"""

    def __init__(self, params, lr: float = PAPER_LR, decay: float = RMSPROP_DECAY,
                 eps: float = RMSPROP_EPS) -> None:  # fmt: skip
        if not lr > 0 or not 0 <= decay < 1 or not eps >= 0:
            raise InputError(f"TFRMSprop: need lr > 0, 0 <= decay < 1, eps >= 0; got {lr}, "
                             f"{decay}, {eps}")  # fmt: skip
        super().__init__(params, {"lr": lr, "decay": decay, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable | None = None):  # noqa: ANN201
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["ms"] = torch.ones_like(p)
                ms = state["ms"]
                ms.mul_(group["decay"]).addcmul_(p.grad, p.grad, value=1 - group["decay"])
                p.addcdiv_(p.grad, (ms + group["eps"]).sqrt(), value=-group["lr"])
        return loss


class Sampler(NamedTuple):
    """One factor's stage II: the mapping network, its critic and their optimisers."""

    mapper: nn.Module
    critic: nn.Module
    opt_mapper: torch.optim.Optimizer
    opt_critic: torch.optim.Optimizer


def make_sampler(mapper: nn.Module, critic: nn.Module, *, lr: float = PAPER_LR) -> Sampler:
    """A factor's networks with the official optimiser (RMSProp, TF's variant) for both."""
    return Sampler(mapper, critic, TFRMSprop(mapper.parameters(), lr=lr),
                   TFRMSprop(critic.parameters(), lr=lr))  # fmt: skip


def wgan_step(s: Sampler, real_codes: torch.Tensor, *, batch: int, update_mapper: bool = True,
              critic_steps: int = CRITIC_STEPS, clip: float = CLIP,
              generator: torch.Generator | None = None) -> dict[str, float]:  # fmt: skip
    """One stage-II step of one factor: a mapper update (skipped with `update_mapper=False`,
    the official step 0), then `critic_steps` critic updates, each on `batch` codes drawn from
    `real_codes` (N, dim), the stage-I encoder's codes of real images, and fresh noise, and each
    followed by clipping the critic's weights. Returns the last terms as floats, and the critic's
    estimate of the Wasserstein distance (mean D(real) - mean D(fake))."""
    if critic_steps < 1:
        raise InputError(f"critic_steps must be at least 1, got {critic_steps}")
    if real_codes.ndim != 2 or len(real_codes) < 1:
        raise InputError(f"real_codes: expected a non-empty (N, dim) batch, got "
                         f"{tuple(real_codes.shape)}")  # fmt: skip
    s.mapper.train()
    s.critic.train()
    out: dict[str, float] = {}
    if update_mapper:
        g_terms = wgan_mapper_loss(s.critic(s.mapper.sample(batch, generator=generator)))
        s.opt_mapper.zero_grad(set_to_none=True)
        sum(g_terms.values()).backward()
        s.opt_mapper.step()
        out |= {k: float(v.detach()) for k, v in g_terms.items()}
    for _ in range(critic_steps):
        idx = torch.randint(len(real_codes), (batch,), generator=generator)
        with torch.no_grad():
            fake = s.mapper.sample(batch, generator=generator)
        d_terms = wgan_critic_loss(s.critic(real_codes[idx]), s.critic(fake))
        s.opt_critic.zero_grad(set_to_none=True)
        sum(d_terms.values()).backward()
        s.opt_critic.step()
        clip_weights_(s.critic, clip)
    out |= {k: float(v.detach()) for k, v in d_terms.items()}
    out["wasserstein"] = -(out["d_fake"] + out["d_real"])
    return out


def _same(a: str, x: torch.Tensor, b: str, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise InputError(f"{a} and {b} differ in shape: {tuple(x.shape)} and {tuple(y.shape)}")
