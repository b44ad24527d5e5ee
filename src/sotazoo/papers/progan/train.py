"""ProGAN on the digits: the training loop of the reproduction's two arms, and the demo recipe
`sotazoo train progan_mini`.

What is the paper's (§2-§4, App. A.1; official TF `train.py`, `loss.py`): the generator and the
critic grow in lockstep from 4x4 to 16x16, each new resolution faded in with alpha rising
linearly in images shown and then stabilised (`method.GrowthSchedule`); the reals D sees are
average-pooled to the current resolution and blended the same way (`method.fade_reals`);
WGAN-GP with the drift term, one critic step per generator step, Adam(1e-3, betas (0, 0.99),
eps 1e-8), minibatch 16, the minibatch stddev layer in D (groups of 4), and a moving average of
G's weights that is what gets evaluated and shipped. As the TF code does
(`reset_opt_for_new_lod`), both optimisers start afresh at every new resolution; like the TF
code (and unlike the Theano original) there is no learning-rate ramp-up.

Scaled to a CPU budget (ours, and listed in the card's deviations): each fade-in and each
stabilisation lasts `phase_images` (the paper: 800k on CelebA-HQ, 600k in the official default),
and training goes on at 16x16 after the schedule ends, to `total_images` in all (the paper's
CelebA-HQ run: 12.8M images to reach 1024x1024, 19M in all, the same proportion as our 4 of
6 phases). The EMA decay is 0.99 instead of 0.999: with 0.999 the average's half-life is ~700
steps, more than a whole phase here, so the evaluated generator would still mostly be the
previous stage's. The "non-progressive" arm is the same full-size network (`progan_mini()`,
16x16 from the start) with the same loss, optimiser, batch, data order and images shown.

Evaluation (ours): the proxy FID (`sotazoo.metrics.fid`, the shipped digit classifier) of
`eval_samples` images from the EMA generator for a fixed noise batch (`sotazoo.train.gan.fixed_latents`)
against the HELD-OUT digits (never trained on), at the current stage and alpha (images below
16x16 are resized by the proxy's own resampling). Outputs are clipped to [-1, 1] first, as the
official code clips before converting to 8-bit. The clock counts training only: it stops while
an evaluation runs. Wall-clock (`perf_counter`) and the process's CPU time are both logged.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from sotazoo.errors import InputError
from sotazoo.papers.progan.method import (
    GrowthSchedule,
    adam,
    critic_loss,
    ema_update,
    fade_reals,
    generator_loss,
)
from sotazoo.papers.progan.model import Generator, progan_mini, progan_mini_discriminator
from sotazoo.train.gan import FID_SAMPLES, FID_SEED
from sotazoo.train.recipes import Recipe

SIZE = 16  # progan_mini's final side


@dataclass(frozen=True, kw_only=True)
class ProGANTrainConfig:
    """One training run of `progan_mini` on the training digits."""

    progressive: bool = True  # False: the full 16x16 network from the first step
    phase_images: int = 6_000  # each fade-in and each stabilisation (paper: 800k, CelebA-HQ)
    total_images: int = 36_000  # real images shown to D in all (6 phases' worth)
    batch_size: int = 16  # App. A.1 (up to 128x128)
    lr: float = 1e-3  # App. A.1
    ema_decay: float = 0.99  # paper and official code: 0.999 (see the module docstring)
    eval_every_images: int = 1_536  # a multiple of batch_size
    eval_samples: int = FID_SAMPLES

    def __post_init__(self) -> None:
        if self.eval_every_images % self.batch_size or self.total_images % self.batch_size:
            raise ValueError("eval_every_images and total_images must be multiples of batch_size")

    def schedule(self, final_stage: int) -> GrowthSchedule:
        if not self.progressive:  # no phases: (final stage, alpha 1) from the start
            return GrowthSchedule(final_stage=final_stage, fade_images=0, stabilise_images=0)
        p = self.phase_images
        return GrowthSchedule(final_stage=final_stage, fade_images=p, stabilise_images=p)


class FIDProbe:
    """Proxy FID of a generator's samples for fixed latents against the held-out digits
    (`sotazoo.train.gan`: the latents and statistics SAGAN's runs use too)."""

    def __init__(self, n: int = FID_SAMPLES, *, latent_dim: int = 32) -> None:
        from sotazoo.train.gan import digits_fid, fixed_latents

        self.fid = digits_fid("heldout", size=SIZE)
        self.net, self.real = self.fid.net, self.fid.real_stats
        self.z, _ = fixed_latents(n, latent_dim)

    def samples(self, g: Generator, n: int | None = None) -> torch.Tensor:
        """The generator's images for the first `n` fixed latents, clipped to [-1, 1]."""
        from sotazoo.train.gan import generate

        return generate(g, self.z[:n]).clamp(-1.0, 1.0)

    def __call__(self, g: Generator) -> float:
        return round(self.fid(self.samples(g)), 4)


def reals_at(x: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
    """Real 16x16 images as D sees them at `stage`: average-pooled to 4 * 2^stage pixels, then
    blended with their own 2x-coarser version during a fade-in (official `process_reals`)."""
    factor = x.shape[-1] // (4 * 2**stage)
    if factor > 1:
        x = F.avg_pool2d(x, factor)
    return fade_reals(x, alpha) if stage > 0 else x


def _set_alpha(alpha: float, *nets) -> None:
    for net in nets:
        net.alpha = alpha


def train_progan(
    cfg: ProGANTrainConfig,
    *,
    seed: int,
    probe: FIDProbe | None = None,
    on_step: Callable[[], None] | None = None,
) -> tuple[Generator, dict[str, Any]]:
    """Train `progan_mini` on the training digits; returns the EMA generator (at its final
    stage and alpha) and the log: config, losses every 50 steps, the evaluations (images shown,
    training seconds, stage, alpha, proxy FID) and whether training diverged."""
    from sotazoo.data.digits import load_digits, real_batch

    torch.manual_seed(seed)  # initial weights, the blocks grown later, the GP's mixing weights
    data = torch.Generator().manual_seed(seed)  # real batches and latents: same for both arms
    images, labels = load_digits(size=SIZE, split="train")
    stage0 = 0 if cfg.progressive else None
    g, d = progan_mini(stage=stage0), progan_mini_discriminator(stage=stage0)
    ema = copy.deepcopy(g)
    sched = cfg.schedule(g.cfg.max_stage)
    opt_g, opt_d = adam(g.parameters(), cfg.lr), adam(d.parameters(), cfg.lr)
    log: dict[str, Any] = {"config": asdict(cfg), "seed": seed, "losses": [], "evals": [],
                           "diverged": False}  # fmt: skip
    wall = cpu = 0.0

    def evaluate(shown: int) -> None:
        if probe is not None:
            log["evals"].append({"images": shown, "seconds": round(wall, 3),
                                 "cpu_seconds": round(cpu, 3), "stage": ema.stage,
                                 "alpha": round(ema.alpha, 4), "fid": probe(ema)})  # fmt: skip

    evaluate(0)
    shown, step = 0, 0
    while shown < cfg.total_images:
        t0, c0 = time.perf_counter(), time.process_time()
        stage, alpha = sched.at(shown)
        if stage > g.stage:  # a new resolution: grow all three, fresh optimisers (TF code)
            before = set(g.state_dict())
            for net in (g, d, ema):
                net.grow()
            new = {k: v for k, v in g.state_dict().items() if k not in before}
            ema.load_state_dict({**ema.state_dict(), **new})  # the EMA starts from G's new layers
            opt_g, opt_d = adam(g.parameters(), cfg.lr), adam(d.parameters(), cfg.lr)
        elif alpha == 1.0 and g.alpha < 1.0:  # the fade-in is over: drop the old RGB layers
            for net in (g, d, ema):
                net.end_fade()
        _set_alpha(alpha, g, d, ema)
        real, _ = real_batch(images, labels, cfg.batch_size, generator=data)
        real = reals_at(real, stage, alpha)
        z = torch.randn(cfg.batch_size, g.cfg.latent_dim, generator=data)
        z2 = torch.randn(cfg.batch_size, g.cfg.latent_dim, generator=data)
        try:
            with torch.no_grad():  # D's step trains D only: no graph through G
                fake = g(z)
            d_terms = critic_loss(d, real, fake)
            opt_d.zero_grad(set_to_none=True)
            d_terms["loss"].backward()
            opt_d.step()
            d.requires_grad_(False)  # G's step needs gradients through D, not for D
            g_terms = generator_loss(d, g(z2))
            opt_g.zero_grad(set_to_none=True)
            g_terms["loss"].backward()
            opt_g.step()
            d.requires_grad_(True)
        except InputError:  # the networks refuse NaN/inf activations: training diverged
            log["diverged"], log["diverged_at_images"] = True, shown
            break
        ema_update(ema, g, cfg.ema_decay)
        shown += cfg.batch_size
        step += 1
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if step % 50 == 1:
            terms = {f"d_{k}": v for k, v in d_terms.items()} | {"g_loss": g_terms["loss"]}
            log["losses"].append({"images": shown} | {k: round(float(v.detach()), 5)
                                                      for k, v in terms.items()})  # fmt: skip
        if shown % cfg.eval_every_images == 0 or shown >= cfg.total_images:
            evaluate(shown)
        if on_step is not None:
            on_step()
    log["images"] = shown
    log["train_seconds"], log["train_cpu_seconds"] = round(wall, 2), round(cpu, 2)
    if ema.alpha == 1.0:
        ema.end_fade()
    return ema.eval(), log


# ---------------------------------------------------------------- the demo recipe


@dataclass(frozen=True, kw_only=True)
class ProGANRecipe:
    """`sotazoo train progan_mini`: the progressive arm of the reproduction, run longer."""

    kimg: int = 48  # thousands of real images shown (`sotazoo train --budget`; even: batch 16)
    phase_kimg: float = 6.0  # each fade-in and stabilisation, as in the reproduction


def train_mini(*, seed: int, budget: int | None, progress: bool):
    """Train the demo generator; its metric is the proxy FID against the held-out digits."""
    from tqdm.auto import tqdm

    from sotazoo.train.recipes import Trained

    r = ProGANRecipe(kimg=budget or ProGANRecipe.kimg)
    cfg = ProGANTrainConfig(phase_images=int(r.phase_kimg * 1000), total_images=r.kimg * 1000,
                            eval_every_images=4096)  # fmt: skip
    probe = FIDProbe()
    steps = cfg.total_images // cfg.batch_size
    with tqdm(total=steps, desc="train progan_mini", disable=not progress) as bar:
        g, log = train_progan(cfg, seed=seed, probe=probe, on_step=lambda: bar.update(1))
    if log["diverged"] or g.stage != g.cfg.max_stage or g.alpha != 1.0:
        raise RuntimeError(f"progan_mini did not finish at 16x16: {log.get('diverged_at_images')}")
    metrics = {"heldout_fid_proxy": log["evals"][-1]["fid"]}
    fields = {"recipe": asdict(r), "eval": {"samples": cfg.eval_samples, "noise_seed":
              FID_SEED, "against": "held-out digits (split seed 0)",
              "features": "proxy"}, **log}  # fmt: skip
    return Trained(model=g, metrics=metrics, log=fields)


RECIPES = {
    "progan_mini": Recipe(
        train_mini, unit="kimg (thousands of real images shown)", default=ProGANRecipe.kimg
    )
}
