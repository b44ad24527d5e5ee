"""MUNIT's objective and one training iteration, as the official trainer computes them.

Paper §3.2 and NVlabs/MUNIT a82e222 (`trainer.py` MUNIT_Trainer.gen_update / dis_update,
`networks.py` MsImageDis.calc_dis_loss / calc_gen_loss, `configs/edges2shoes_folder.yaml`).

Each domain i has an auto-encoder (content encoder E^c_i, style encoder E^s_i, decoder G_i) and a
discriminator D_i. One iteration draws style codes s_a, s_b ~ N(0, I) and computes, for both
directions (written here for a; b is symmetric):

    c_a, s_a' = E^c_a(x_a), E^s_a(x_a)           encode
    x_a_recon = G_a(c_a, s_a')                    within-domain reconstruction
    x_ba      = G_a(c_b, s_a)                     translation b -> a with a random style
    c_b_recon, s_a_recon = E^c_a(x_ba), E^s_a(x_ba)   encode the translation again

    L_recon^x = |x_a_recon - x_a|_1      (image reconstruction, Eq. 2)
    L_recon^s = |s_a_recon - s_a|_1      (style reconstruction, Eq. 3: the decoder must put the
                                          random style into the image, where E^s can find it)
    L_recon^c = |c_b_recon - c_b|_1      (content reconstruction, Eq. 3)
    L_GAN^x   = sum over D's scales of mean (D_a(x_ba) - 1)^2      (LSGAN, Mao et al. 2017)

    L_G = gan_w (L_GAN^a + L_GAN^b) + recon_x_w (..) + recon_s_w (..) + recon_c_w (..)
          [+ recon_x_cyc_w |G_a(E^c_b(x_ab), s_a') - x_a|_1 + (b), the optional explicit cycle]
    L_D = gan_w sum_i sum over scales [mean D_i(fake)^2 + mean (D_i(real) - 1)^2]

"|.|_1" is the mean absolute difference over every element (trainer.recon_criterion), the GAN
terms are means over each scale's patch map, summed over the scales. Weights of the edges2shoes
config: gan_w 1, recon_x_w 10, recon_s_w 1, recon_c_w 1, recon_x_cyc_w 0 (the VGG perceptual
term, vgg_w 0 there, is not implemented). Adam lr 1e-4, betas (0.5, 0.999), weight decay 1e-4
(L2 in the gradient, torch's Adam), lr halved every 100k iterations. The training loop calls
`dis_update` then `gen_update`, each with its own fresh style codes, as train.py does.

Ours, with the same arithmetic: the fakes of the D step are made under no_grad (the official
code detaches them after building the graph); D's parameters are frozen during the G step (the
official code lets gradients reach them and clears them before the next D step, so neither
optimiser ever sees them); the style codes come from an explicit torch.Generator.

The deterministic ablation, `MunitLoss(style=False)`: the style path removed. Every style code
a generator decodes with is zero: the translations use s_a = s_b = 0 instead of N(0, I) draws,
the within-domain reconstructions decode G_a(c_a, 0) instead of G_a(c_a, E^s_a(x_a)), and the
style reconstruction terms are dropped (their target would be the constant 0). Nothing reaches
the style encoders; the style MLP sees one input, so it only learns one fixed set of AdaIN
scales and shifts. What is left (shared content space, image and content reconstruction, GAN)
is a deterministic unsupervised translator with MUNIT's networks: the counterpart of the
deterministic baselines the paper compares with (UNIT and CycleGAN in Table 1, "one-to-one
mapping" in the abstract), NOT one of Table 1's ablation rows. Those rows ("w/o L_recon^x",
"w/o L_recon^c", "w/o L_recon^s") keep the random style codes and zero one weight:
`MunitLoss(recon_s_w=0)` is "w/o L_recon^s".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

PAPER_LR = 1e-4  # edges2shoes_folder.yaml
PAPER_BETAS = (0.5, 0.999)
PAPER_WEIGHT_DECAY = 1e-4
PAPER_LR_STEP, PAPER_LR_GAMMA = 100_000, 0.5  # lr_policy step


@dataclass(frozen=True, kw_only=True)
class MunitLoss:
    """The loss weights of edges2shoes_folder.yaml, and the ablation's switch."""

    gan_w: float = 1.0
    recon_x_w: float = 10.0
    recon_s_w: float = 1.0
    recon_c_w: float = 1.0
    recon_x_cyc_w: float = 0.0  # the explicit cycle term (10 in the Yosemite / SYNTHIA configs)
    style: bool = True  # False: the deterministic ablation (module docstring)


# ---------------------------------------------------------------------- the terms


def lsgan_dis_loss(fake: Sequence[torch.Tensor], real: Sequence[torch.Tensor]) -> torch.Tensor:
    """D's LSGAN loss over its scales: sum_k [mean(fake_k^2) + mean((real_k - 1)^2)]."""
    return sum(f.square().mean() + (r - 1).square().mean() for f, r in zip(fake, real, strict=True))


def lsgan_gen_loss(fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """G's LSGAN loss over D's scales: sum_k mean((fake_k - 1)^2)."""
    return sum((f - 1).square().mean() for f in fake)


def recon_l1(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over every element (trainer.recon_criterion)."""
    return (x - target).abs().mean()


def style_codes(
    batch: int, style_dim: int, *, style: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(batch, style_dim, 1, 1) style codes: N(0, I) draws, or zeros for the ablation."""
    if not style:
        return torch.zeros(batch, style_dim, 1, 1)
    return torch.randn(batch, style_dim, 1, 1, generator=generator)


# ---------------------------------------------------------------------- one iteration


class Discriminators(NamedTuple):
    a: nn.Module
    b: nn.Module


class Optimizers(NamedTuple):
    gen: torch.optim.Adam
    dis: torch.optim.Adam


def optimizers(
    model: nn.Module,
    dis: Discriminators,
    *,
    lr: float = PAPER_LR,
    betas: tuple[float, float] = PAPER_BETAS,
    weight_decay: float = PAPER_WEIGHT_DECAY,
) -> Optimizers:
    """Adam over both generators and over both discriminators (trainer.py's gen_opt, dis_opt)."""
    kw = {"lr": lr, "betas": betas, "weight_decay": weight_decay}
    d_params = [*dis.a.parameters(), *dis.b.parameters()]
    return Optimizers(torch.optim.Adam(model.parameters(), **kw), torch.optim.Adam(d_params, **kw))


@contextlib.contextmanager
def _frozen(*modules: nn.Module) -> Iterator[None]:
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def gen_losses(
    model: nn.Module,
    dis: Discriminators,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    loss: MunitLoss,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Every named term of L_G (weighted sum under "total") for one batch of each domain."""
    gen_a, gen_b, dim = model.gen_a, model.gen_b, model.cfg.style_dim
    s_a = style_codes(len(x_a), dim, style=loss.style, generator=generator)
    s_b = style_codes(len(x_b), dim, style=loss.style, generator=generator)
    c_a, c_b = gen_a.enc_content(x_a), gen_b.enc_content(x_b)
    if loss.style:
        s_a_prime, s_b_prime = gen_a.enc_style(x_a), gen_b.enc_style(x_b)
    else:  # the ablation decodes every image with the zero code
        s_a_prime, s_b_prime = torch.zeros_like(s_a), torch.zeros_like(s_b)
    x_a_recon, x_b_recon = gen_a.decode(c_a, s_a_prime), gen_b.decode(c_b, s_b_prime)
    x_ba, x_ab = gen_a.decode(c_b, s_a), gen_b.decode(c_a, s_b)
    c_b_recon, c_a_recon = gen_a.enc_content(x_ba), gen_b.enc_content(x_ab)
    terms = {
        "recon_x_a": recon_l1(x_a_recon, x_a),
        "recon_x_b": recon_l1(x_b_recon, x_b),
        "recon_c_a": recon_l1(c_a_recon, c_a),
        "recon_c_b": recon_l1(c_b_recon, c_b),
    }
    if loss.style:
        terms["recon_s_a"] = recon_l1(gen_a.enc_style(x_ba), s_a)
        terms["recon_s_b"] = recon_l1(gen_b.enc_style(x_ab), s_b)
    if loss.recon_x_cyc_w > 0:
        terms["cyc_x_a"] = recon_l1(gen_a.decode(c_a_recon, s_a_prime), x_a)
        terms["cyc_x_b"] = recon_l1(gen_b.decode(c_b_recon, s_b_prime), x_b)
    terms["adv_a"] = lsgan_gen_loss(dis.a(x_ba))
    terms["adv_b"] = lsgan_gen_loss(dis.b(x_ab))
    weight = {"recon_x": loss.recon_x_w, "recon_c": loss.recon_c_w, "recon_s": loss.recon_s_w,
              "cyc_x": loss.recon_x_cyc_w, "adv": loss.gan_w}  # fmt: skip
    terms["total"] = sum(weight[k.rsplit("_", 1)[0]] * v for k, v in terms.items())
    return terms


def dis_losses(
    model: nn.Module,
    dis: Discriminators,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    loss: MunitLoss,
    *,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """D_a's and D_b's LSGAN losses on the translations of fresh style codes, and "total"."""
    dim = model.cfg.style_dim
    s_a = style_codes(len(x_a), dim, style=loss.style, generator=generator)
    s_b = style_codes(len(x_b), dim, style=loss.style, generator=generator)
    with torch.no_grad():
        x_ba = model.gen_a.decode(model.gen_b.enc_content(x_b), s_a)
        x_ab = model.gen_b.decode(model.gen_a.enc_content(x_a), s_b)
    terms = {"dis_a": lsgan_dis_loss(dis.a(x_ba), dis.a(x_a)),
             "dis_b": lsgan_dis_loss(dis.b(x_ab), dis.b(x_b))}  # fmt: skip
    terms["total"] = loss.gan_w * (terms["dis_a"] + terms["dis_b"])
    return terms


def _step(opt: torch.optim.Optimizer, terms: dict[str, torch.Tensor]) -> dict[str, float]:
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    opt.step()
    return {k: float(v.detach()) for k, v in terms.items()}


def dis_update(model, dis, opts, x_a, x_b, loss, *, generator=None) -> dict[str, float]:
    """One Adam step of both discriminators; returns the named terms (floats)."""
    return _step(opts.dis, dis_losses(model, dis, x_a, x_b, loss, generator=generator))


def gen_update(model, dis, opts, x_a, x_b, loss, *, generator=None) -> dict[str, float]:
    """One Adam step of both generators (discriminators frozen); returns the named terms."""
    with _frozen(dis.a, dis.b):
        return _step(opts.gen, gen_losses(model, dis, x_a, x_b, loss, generator=generator))


def train_step(model, dis, opts, x_a, x_b, loss, *, generator=None) -> dict[str, float]:
    """One iteration of the official train.py: the D update, then the G update."""
    d = dis_update(model, dis, opts, x_a, x_b, loss, generator=generator)
    g = gen_update(model, dis, opts, x_a, x_b, loss, generator=generator)
    return {**{f"d_{k}": v for k, v in d.items()}, **{f"g_{k}": v for k, v in g.items()}}
