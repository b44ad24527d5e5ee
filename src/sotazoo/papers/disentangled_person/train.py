"""DPIG's training loops on the synthetic persons, and the demo recipe `sotazoo train dpig_mini`.

The loops follow the official schedule's structure (`method.py`): stage I (`train_stage1`:
encoder and decoder on the reconstruction, with or without the DCGAN discriminator), the pose
autoencoder (`train_pose_autoencoder`), then stage II (`train_samplers`: one weight-clipping WGAN
per factor on the frozen stage-I codes of real images, each factor's mapper update followed by
its five critic updates, factor after factor, as `DPIG_Encoder_subSampleAppNetFgBg_GAN_BodyROI`
alternates fg and bg). Batches are drawn with replacement by a generator seeded from the run's
seed; the official runs read shuffled TF records.

The recipe (`train_mini`) trains stage I of `dpig_mini` (64x32, width 16) on 1,024 synthetic
persons, budget in hundreds of steps; the stage-II networks are not part of `dpig_mini`'s weights
and are not trained by it. What is ours: L1 only (no discriminator), Adam at 1e-3, batch 8 and a
few hundred steps, where the paper trains 120k steps at 2e-5 with the DCGAN term: at these step
counts the discriminator wins outright within ~200 steps (its losses near 1e-3) and its term then
stalls the L1 (pilots at 32x16, the training batches' L1 per pixel: 0.35 after 1,500 steps with
the DCGAN term at weight 1, 0.37 after 800 at weight 0.1, 0.22 after 1,500 without it). Scored
on 128 held-out persons: the mean absolute error per pixel in [-1, 1].
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from sotazoo.papers.disentangled_person.method import (
    CLIP,
    CRITIC_STEPS,
    LR_HALVE_EVERY,
    PAPER_LR,
    lr_at,
    make_sampler,
    pose_reconstruction_loss,
    set_lr,
    stage1_optimizers,
    stage1_step,
    wgan_step,
)
from sotazoo.papers.disentangled_person.persons import Persons
from sotazoo.train.gan import LossLog
from sotazoo.train.recipes import Recipe

RNG_STREAM = 104_729  # the batch generator of seed s is seeded with s * RNG_STREAM + 1


@dataclass(frozen=True, kw_only=True)
class Stage1Config:
    steps: int
    batch_size: int = 16  # run_market_train.sh, the fg/bg autoencoder
    lr: float = PAPER_LR
    adv_weight: float = 1.0  # 1: the official loss; 0: L1 only, no discriminator is built
    disc_dim: int = 64  # DCGANDiscriminator(dim=64)
    lr_halve_every: int = LR_HALVE_EVERY


def train_stage1(model: nn.Module, persons: Persons, cfg: Stage1Config, *, seed: int,
                 on_step=None) -> dict[str, Any]:  # fmt: skip
    """Train the stage-I network `model` in place on `persons`; returns the log (mean terms
    every 100 steps, `diverged` when a loss stops being finite)."""
    from sotazoo.papers.disentangled_person.stage2 import DCGANDiscriminator

    torch.manual_seed(seed * RNG_STREAM)
    disc = None
    if cfg.adv_weight:
        c = model.cfg
        disc = DCGANDiscriminator(img_h=c.img_h, img_w=c.img_w, in_chans=c.in_chans,
                                  dim=cfg.disc_dim)  # fmt: skip
    opts = stage1_optimizers(model, disc, lr=cfg.lr)
    g = torch.Generator().manual_seed(seed * RNG_STREAM + 1)
    inputs = persons.inputs()
    losses = LossLog(every=100, last=cfg.steps, digits=5)
    log: dict[str, Any] = {"losses": losses.rows, "diverged": False}
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        lr = lr_at(step, cfg.lr, cfg.lr_halve_every)
        for opt in (o for o in opts if o is not None):
            set_lr(opt, lr)
        idx = torch.randint(len(persons), (cfg.batch_size,), generator=g)
        terms = stage1_step(model, disc, opts, tuple(t[idx] for t in inputs),
                            update_g=step > 0 or disc is None, adv_weight=cfg.adv_weight)  # fmt: skip
        if not losses.add(step + 1, terms):
            log.update(diverged=True, diverged_at=step)
            break
        if on_step is not None:
            on_step()
    log["seconds"] = round(time.perf_counter() - t0, 1)
    model.eval()
    return log


def train_pose_autoencoder(pose_ae: nn.Module, keypoints: torch.Tensor, *, steps: int,
                           batch_size: int = 64, lr: float = PAPER_LR, seed: int) -> dict:  # fmt: skip
    """Train `stage2.PoseAutoencoder` in place on (N, 18, 3) keypoints: 20 x MSE of the 54
    normalised numbers, Adam(beta1 0.5) (`DPIG_PoseRCV_AE_BodyROI`; batch 64 there)."""
    from sotazoo.papers.disentangled_person.keypoints import normalise_keypoints
    from sotazoo.papers.disentangled_person.method import ADAM_BETAS

    torch.manual_seed(seed * RNG_STREAM + 2)
    opt = torch.optim.Adam(pose_ae.parameters(), lr=lr, betas=ADAM_BETAS)
    g = torch.Generator().manual_seed(seed * RNG_STREAM + 3)
    target_all = normalise_keypoints(keypoints, pose_ae.img_h, pose_ae.img_w)
    pose_ae.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(keypoints), (batch_size,), generator=g)
        coords, visible = pose_ae.decode_normalised(pose_ae.encode(keypoints[idx]))
        loss = pose_reconstruction_loss(target_all[idx], coords, visible)["mse"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    pose_ae.eval()
    return {"final_mse_x20": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 5)}


@dataclass(frozen=True, kw_only=True)
class Stage2TrainConfig:
    steps: int
    batch_size: int = 32  # run_market_train.sh, the fg/bg sampler (the pose sampler: 64)
    lr: float = PAPER_LR
    critic_steps: int = CRITIC_STEPS
    clip: float = CLIP


def train_samplers(codes: dict[str, torch.Tensor], mappers: dict[str, nn.Module],
                   critics: dict[str, nn.Module], cfg: Stage2TrainConfig, *, seed: int,
                   on_step=None) -> dict[str, Any]:  # fmt: skip
    """Train, per factor name of `codes` ((N, dim) real codes from the frozen encoder), its
    mapper against its critic, in place; returns the critics' last Wasserstein estimates."""
    samplers = {k: make_sampler(mappers[k], critics[k], lr=cfg.lr) for k in codes}
    g = torch.Generator().manual_seed(seed * RNG_STREAM + 4)
    last: dict[str, float] = {}
    for step in range(cfg.steps):
        for k, real in codes.items():
            terms = wgan_step(samplers[k], real, batch=cfg.batch_size, update_mapper=step > 0,
                              critic_steps=cfg.critic_steps, clip=cfg.clip, generator=g)  # fmt: skip
            last[k] = round(terms["wasserstein"], 6)
        if on_step is not None:
            on_step()
    for m in mappers.values():
        m.eval()
    return {"wasserstein": last}


# ---------------------------------------------------------------- the demo recipe


@dataclass(frozen=True, kw_only=True)
class MiniRecipe:
    """`sotazoo train dpig_mini` (`--budget N`: N hundred steps)."""

    # 4,000 steps, about 0.24 s each on one thread (16 minutes); renders sharpen with steps (a
    # pilot at width 32: held-out L1 0.286 after 1,000 steps, silhouettes still blurred)
    hundred_steps: int = 40
    steps_per_unit: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    train_persons: int = 1024
    test_persons: int = 128
    data_seed: int = 0  # the training persons (the test persons: 99_999)
    model: dict[str, Any] = field(default_factory=dict)  # dpig_mini overrides (tests: tiny)


def train_mini(*, seed: int, budget: int | None, progress: bool,
               recipe: MiniRecipe | None = None):  # fmt: skip
    """Train `dpig_mini` by `recipe` (the default `MiniRecipe`) for `budget` units."""
    from tqdm.auto import tqdm

    from sotazoo.errors import SotazooError
    from sotazoo.papers.disentangled_person.model import dpig_mini
    from sotazoo.papers.disentangled_person.persons import make_persons
    from sotazoo.train.recipes import Trained

    r = recipe or MiniRecipe()
    r = replace(r, hundred_steps=budget or r.hundred_steps)
    cfg = Stage1Config(steps=r.steps_per_unit * r.hundred_steps, batch_size=r.batch_size,
                       lr=r.lr, adv_weight=0.0)  # fmt: skip
    persons = make_persons(r.train_persons, seed=r.data_seed)
    test = make_persons(r.test_persons, seed=99_999)
    torch.manual_seed(seed)
    model = dpig_mini(**r.model)
    with tqdm(total=cfg.steps, desc="train dpig_mini", disable=not progress) as bar:
        log = train_stage1(model, persons, cfg, seed=seed, on_step=lambda: bar.update(1))
    if log["diverged"]:
        raise SotazooError(f"dpig_mini diverged at step {log['diverged_at']}")
    with torch.no_grad():
        out = model(*test.inputs())
    l1 = float((out - test.images).abs().mean())
    fields = {"recipe": asdict(r), "stage1": asdict(cfg), **log}
    return Trained(model=model.eval(), metrics={"heldout_l1": round(l1, 4)}, log=fields)


RECIPES = {"dpig_mini": Recipe(train_mini, unit="hundred steps", default=MiniRecipe.hundred_steps)}
