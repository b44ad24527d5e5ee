"""SAGAN's training loop on the digits, and the demo recipe: `sotazoo train sagan_mini`.

The loop is the paper's (§4-5, `method.train_step`): hinge loss, one G step then one D step on
fresh noise, Adam(β1 0, β2 0.9), TTUR rates lr_D 4e-4 and lr_G 1e-4, spectral norm on every layer
of G and D, a conditional G (class-conditional BN) and a projection D. Data: the 1,438 training
digits of `sotazoo.data.digits` at 16x16 (split seed 0), batches drawn without replacement inside
a batch by a generator seeded from the run's seed; the 359 held-out digits are never trained on.

Scored by proxy FID (`sotazoo.train.gan`): 1,000 images from fixed latents (seed
`gan.FID_SEED`, classes balanced 100 each), G in eval mode (BN's running statistics), against
the held-out digits' statistics, every `eval_every` steps and at the end.

What is ours: the scale (`sagan_mini`: 16x16x1, z 64, 10 classes, attention on the 8x8 map;
batch 32 against the paper's 256, a few thousand steps against 1M), no moving average of G's
weights (neither the paper nor the official code keeps one).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from sotazoo.papers.sagan.method import (
    PAPER_BETAS,
    PAPER_LR_D,
    PAPER_LR_G,
    train_step,
    ttur_optimizers,
)
from sotazoo.train import gan
from sotazoo.train.recipes import Recipe

RNG_STREAM = 7919  # the data/noise generator of seed s is seeded with s * RNG_STREAM + 1


@dataclass(frozen=True, kw_only=True)
class GANTrainConfig:
    """One SAGAN training run; `model` holds `sagan_mini` overrides (the ablations' switches,
    e.g. {"attention": False} or {"g_spectral_norm": False}), given to G and D alike."""

    steps: int = 2000
    batch_size: int = 32  # the paper's: 256 (64 per GPU on 4 GPUs)
    lr_g: float = PAPER_LR_G
    lr_d: float = PAPER_LR_D
    betas: tuple[float, float] = PAPER_BETAS
    eval_every: int = 500  # steps between proxy FIDs; 0: at the end only
    fid_samples: int = gan.FID_SAMPLES
    model: dict[str, Any] = field(default_factory=dict)


def build_pair(seed: int, **overrides):
    """`sagan_mini` G and D, initialised from `seed` (G first, then D)."""
    from sotazoo.papers.sagan.model import sagan_mini, sagan_mini_discriminator

    torch.manual_seed(seed)
    return sagan_mini(**overrides), sagan_mini_discriminator(**overrides)


def evaluate(g_net, fid: gan.ProxyFID, n: int = gan.FID_SAMPLES) -> float:
    """Proxy FID of `g_net`'s images for the fixed evaluation latents."""
    z, y = gan.fixed_latents(n, g_net.cfg.z_dim, num_classes=g_net.cfg.num_classes)
    return fid(gan.generate(g_net, z, y))


def train_gan(
    cfg: GANTrainConfig,
    *,
    seed: int,
    fid: gan.ProxyFID | None = None,
    on_step=None,
) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """Train a `sagan_mini` pair from `seed`; returns (G, D, log). The log holds the mean losses
    every 50 steps, the proxy FID every `eval_every` steps (`fid_curve`: [step, FID]), the final
    FID, and `diverged` (a non-finite loss stops the run; its FID is then NaN)."""
    from sotazoo.data.digits import load_digits, real_batch

    images, labels = load_digits(size=16, split="train")
    fid = fid if fid is not None else gan.digits_fid("heldout")
    g_net, d_net = build_pair(seed, **cfg.model)
    opts = ttur_optimizers(g_net, d_net, lr_g=cfg.lr_g, lr_d=cfg.lr_d, betas=cfg.betas)
    rng = torch.Generator().manual_seed(seed * RNG_STREAM + 1)
    log: dict[str, Any] = {"losses": [], "fid_curve": [], "diverged": False, "diverged_at": None}
    window: dict[str, list[float]] = {}
    t0, eval_seconds = time.perf_counter(), 0.0
    for step in range(1, cfg.steps + 1):
        real, y = real_batch(images, labels, cfg.batch_size, generator=rng)
        terms = train_step(g_net, d_net, opts, real, y, rng=rng)
        if not all(math.isfinite(v) for v in terms.values()):
            log.update(diverged=True, diverged_at=step)
            break
        for k, v in terms.items():
            window.setdefault(k, []).append(v)
        if step % 50 == 0 or step == cfg.steps:
            log["losses"].append({"step": step, **{k: sum(v) / len(v) for k, v in window.items()}})
            window = {}
        if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
            e0 = time.perf_counter()
            log["fid_curve"].append([step, evaluate(g_net, fid, cfg.fid_samples)])
            eval_seconds += time.perf_counter() - e0
        if on_step is not None:
            on_step()
    if log["diverged"]:
        final = float("nan")
    else:
        final = evaluate(g_net, fid, cfg.fid_samples)
        log["fid_curve"].append([cfg.steps, final])
    log["final_fid"] = final
    log["train_seconds"] = round(time.perf_counter() - t0 - eval_seconds, 1)
    log["eval_seconds"] = round(eval_seconds, 1)
    return g_net, d_net, log


# ---------------------------------------------------------------- the demo recipe


@dataclass(frozen=True, kw_only=True)
class SAGANRecipe:
    """`sotazoo train sagan_mini`: the site's demo generator (`--budget N`: N hundred steps)."""

    hundred_steps: int = 20  # 2,000 steps: 334 s on one shared core (nice 19); proxy FID 0.66
    batch_size: int = 32  # as the reproduction (repro.py); the paper's: 256


def train_mini(*, seed: int, budget: int | None, progress: bool):
    from tqdm.auto import tqdm

    from sotazoo.errors import SotazooError
    from sotazoo.train.recipes import Trained

    r = SAGANRecipe(hundred_steps=budget or SAGANRecipe.hundred_steps)
    cfg = GANTrainConfig(steps=r.hundred_steps * 100, batch_size=r.batch_size, eval_every=250)
    with tqdm(total=cfg.steps, desc="train sagan_mini", disable=not progress) as bar:
        g_net, _, log = train_gan(cfg, seed=seed, on_step=lambda: bar.update(1))
    if log["diverged"]:
        raise SotazooError(f"sagan_mini diverged at step {log['diverged_at']}")
    fields = {"recipe": asdict(r), "train": asdict(cfg), "fid_against": "heldout digits (359)",
              "fid_samples": cfg.fid_samples, "fid_seed": gan.FID_SEED, **log}  # fmt: skip
    return Trained(model=g_net.eval(), metrics={"heldout_proxy_fid": log["final_fid"]}, log=fields)


RECIPES = {
    "sagan_mini": Recipe(train_mini, unit="hundred steps", default=SAGANRecipe.hundred_steps)
}
