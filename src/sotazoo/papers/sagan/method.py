"""SAGAN's training method: the hinge loss, the two time-scale update rule, one training step.

The hinge version of the adversarial loss (§4, Eq. 4; Lim & Ye 2017, Tran et al. 2017), as the
official model.py writes it (`_get_d_real_loss`, `_get_d_fake_loss`, `_get_g_loss`):

    L_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z, y), y))],   L_G = -E[D(G(z, y), y)].

D is pushed to score real images above +1 and generated ones below -1 and then stops caring;
G simply raises D's score of its images.

TTUR (§4, after Heusel et al. 2017): separate learning rates for the two networks, 4e-4 for D and
1e-4 for G, with Adam β1 = 0, β2 = 0.9 (§5), so that a slowly learning regularised D needs no
extra D steps: one D step per G step. The official flags match the rates and β1 (model.py:
`discriminator_learning_rate` 0.0004, `generator_learning_rate` 0.0001, `beta1` 0.0) but leave β2
at TensorFlow's default 0.999; we follow the paper's 0.9 (`betas` is an argument).

The step: the official training (train_imagenet.py, `tfgan.get_sequential_train_hooks` with
g_step = d_step = 1) runs one G update, then one D update, each on freshly drawn noise (z from
N(0, I), classes uniform: model.py's `tf.multinomial` over zero logits). Ours follows that order.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

PAPER_LR_G = 1e-4  # §5 and official flags
PAPER_LR_D = 4e-4
PAPER_BETAS = (0.0, 0.9)  # §5 (the official code: β2 = 0.999, TF's default)


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """The discriminator's hinge loss, as two named terms (their sum is L_D)."""
    return {
        "d_real": F.relu(1.0 - real_logits).mean(),
        "d_fake": F.relu(1.0 + fake_logits).mean(),
    }


def g_hinge_loss(fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """The generator's loss: minus D's mean score of generated images."""
    return {"g_adv": -fake_logits.mean()}


class TTUROptimizers(NamedTuple):
    g: torch.optim.Adam
    d: torch.optim.Adam


def ttur_optimizers(
    generator: nn.Module,
    discriminator: nn.Module,
    *,
    lr_g: float = PAPER_LR_G,
    lr_d: float = PAPER_LR_D,
    betas: tuple[float, float] = PAPER_BETAS,
) -> TTUROptimizers:
    """One Adam per network, D's learning rate 4x G's (TTUR, §4-5). `lr_d = lr_g` gives the
    paper's equal-rate ablation (Fig. 3)."""
    return TTUROptimizers(
        g=torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas),
        d=torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas),
    )


def sample_latents(
    batch: int,
    z_dim: int,
    num_classes: int,
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise z ~ N(0, I) of shape (B, z_dim) and class ids uniform in [0, num_classes)."""
    z = torch.randn(batch, z_dim, generator=generator)
    y = torch.randint(0, num_classes, (batch,), generator=generator)
    return z.to(device), y.to(device)


def train_step(
    g_net: nn.Module,
    d_net: nn.Module,
    opts: TTUROptimizers,
    real: torch.Tensor,
    labels: torch.Tensor,
    *,
    rng: torch.Generator | None = None,
) -> dict[str, float]:
    """One G update, then one D update on a batch of real images and their labels; returns the
    loss terms. `g_net` and `d_net` are a `Generator` and `Discriminator` of model.py (anything
    with `cfg.z_dim`, `cfg.num_classes` and the same call signatures)."""
    b, cfg = real.shape[0], g_net.cfg
    g_net.train()
    d_net.train()

    z, y = sample_latents(b, cfg.z_dim, cfg.num_classes, generator=rng, device=real.device)
    g_terms = g_hinge_loss(d_net(g_net(z, y), y))
    opts.g.zero_grad(set_to_none=True)
    sum(g_terms.values()).backward()
    opts.g.step()  # only G's parameters move; D's gradients are cleared below before use

    z, y = sample_latents(b, cfg.z_dim, cfg.num_classes, generator=rng, device=real.device)
    with torch.no_grad():
        fake = g_net(z, y)
    d_terms = d_hinge_loss(d_net(real, labels), d_net(fake, y))
    opts.d.zero_grad(set_to_none=True)
    sum(d_terms.values()).backward()
    opts.d.step()
    return {k: v.item() for k, v in {**g_terms, **d_terms}.items()}
