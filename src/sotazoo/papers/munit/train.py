"""MUNIT's training loop on the synthetic domains, and the demo recipe: `sotazoo train munit_mini`.

The loop is the official train.py's: per iteration one D update and one G update
(`method.train_step`), each with fresh style codes, then the learning-rate schedulers step;
Adam betas (0.5, 0.999), weight decay 1e-4, lr halved every 100k iterations (a schedule a laptop
run never reaches); the losses of edges2shoes_folder.yaml (`method.MunitLoss`). Data: unpaired
batches of `data.Unpaired` (edge maps of the training digits as domain A, the digits painted in
random colours as domain B), seeded from the run's seed; the 359 held-out digits are never
trained on. Scored by `evaluate.Evaluator`: diversity of one input's translations, proxy FID
against held-out coloured digits, digit top-1 of the translations.

What is ours: the scale (32x32 images; batch 8 against the paper's 1, so that a thousand
iterations see ten thousand images of each domain; no random crops or flips); the learning rate,
4e-4 against the paper's 1e-4 (`LAPTOP_LR`: a schedule of a few hundred to a few thousand steps
against 1M); no VGG perceptual loss (vgg_w 0 in edges2shoes as well); the models'
initialisation drawn from the run's seed.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from sotazoo.papers.munit import method
from sotazoo.papers.munit.evaluate import EvalConfig
from sotazoo.papers.munit.method import MunitLoss
from sotazoo.train.gan import LossLog
from sotazoo.train.recipes import Recipe

RNG_STREAM = 7919  # the data and style generators of seed s are seeded from s * RNG_STREAM + 1
# 4x the paper's 1e-4. Piloted on the full method only (seed 0, munit_mini at width 8, batch 8,
# 1,500 steps, one shared core), before any ablation ran: held-out proxy FID (colour) 19.8 at
# 1e-4 and 6.9 at 4e-4, FID 8.6 already at step 1,000.
LAPTOP_LR = 4e-4
STEPS_PER_UNIT = 100  # the recipe's budget is counted in hundreds of iterations
RECIPE_EVAL = EvalConfig()  # how the recipe scores its weights (the reproduction's evaluation)


@dataclass(frozen=True, kw_only=True)
class MunitTrainConfig:
    """One training run; `model` holds `munit_mini` overrides (G and D widths)."""

    steps: int = 1500
    batch_size: int = 8  # the paper's: 1
    lr: float = LAPTOP_LR  # the paper's: 1e-4 (method.PAPER_LR)
    betas: tuple[float, float] = method.PAPER_BETAS
    weight_decay: float = method.PAPER_WEIGHT_DECAY
    loss: MunitLoss = field(default_factory=MunitLoss)
    model: dict[str, Any] = field(default_factory=dict)
    eval_every: int = 0  # steps between evaluations; 0: at the end only


def build(seed: int, **overrides):
    """`munit_mini` (both generators) and its two discriminators, initialised from `seed`."""
    from sotazoo.papers.munit.discriminator import MsImageDis
    from sotazoo.papers.munit.model import munit_mini

    torch.manual_seed(seed)
    model = munit_mini(**overrides)
    dis = method.Discriminators(MsImageDis(model.cfg, model.cfg.input_dim_a),
                                MsImageDis(model.cfg, model.cfg.input_dim_b))  # fmt: skip
    return model, dis


def train_munit(cfg: MunitTrainConfig, *, seed: int, evaluator=None, on_step=None):
    """Train `munit_mini(**cfg.model)` from `seed`; returns (model, discriminators, log). The log
    holds the mean loss terms every 50 steps, the evaluations (`evals`: {"step", **metrics}),
    the last one under `final`, and `diverged` (a non-finite loss stops the run)."""
    from sotazoo.papers.munit.data import Unpaired
    from sotazoo.papers.munit.evaluate import Evaluator

    evaluator = evaluator if evaluator is not None else Evaluator()
    model, dis = build(seed, **cfg.model)
    opts = method.optimizers(model, dis, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheds = [torch.optim.lr_scheduler.StepLR(o, method.PAPER_LR_STEP, method.PAPER_LR_GAMMA)
              for o in opts]  # fmt: skip
    batches = Unpaired(seed * RNG_STREAM + 1, cfg.batch_size)
    rng = torch.Generator().manual_seed(seed * RNG_STREAM + 2)
    losses = LossLog(every=50, last=cfg.steps)
    log: dict[str, Any] = {"losses": losses.rows, "evals": [], "diverged": False,
                           "diverged_at": None}  # fmt: skip
    t0, eval_seconds = time.perf_counter(), 0.0

    def evaluate(step: int) -> None:
        nonlocal eval_seconds
        e0 = time.perf_counter()
        log["evals"].append({"step": step, **evaluator(model, style=cfg.loss.style)})
        eval_seconds += time.perf_counter() - e0

    for step in range(1, cfg.steps + 1):
        terms = method.train_step(model, dis, opts, *batches.batch(), cfg.loss, generator=rng)
        for s in scheds:
            s.step()
        if not losses.add(step, terms):
            log.update(diverged=True, diverged_at=step)
            break
        if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
            evaluate(step)
        if on_step is not None:
            on_step()
    if log["diverged"]:
        log["final"] = {"step": log["diverged_at"], "diversity": math.nan, "fid": math.nan,
                        "fid_luma": math.nan, "content_top1": math.nan}  # fmt: skip
    else:
        evaluate(cfg.steps)
        log["final"] = log["evals"][-1]
    log["train_seconds"] = round(time.perf_counter() - t0 - eval_seconds, 1)
    log["eval_seconds"] = round(eval_seconds, 1)
    return model, dis, log


# ---------------------------------------------------------------- the demo recipe


@dataclass(frozen=True, kw_only=True)
class MunitRecipe:
    """`sotazoo train munit_mini`: the site's demo translator (`--budget N`: N hundred steps)."""

    # 3,000 iterations of munit_mini at width 16 (1.24M generator parameters), about 0.32 s an
    # iteration on one thread (a 1,200-iteration run: 385 s of training, held-out proxy FID 6.1,
    # content top-1 still rising from 33 % at 900 iterations to 43 % at 1,200); the committed
    # weights' log says what this run took
    hundred_steps: int = 30
    batch_size: int = 8  # as the reproduction (repro.py); the paper's: 1


def train_mini(*, seed: int, budget: int | None, progress: bool):
    from tqdm.auto import tqdm

    from sotazoo.errors import SotazooError
    from sotazoo.papers.munit.evaluate import EVAL_SEED, Evaluator
    from sotazoo.train.recipes import Trained

    r = MunitRecipe(hundred_steps=budget or MunitRecipe.hundred_steps)
    steps = r.hundred_steps * STEPS_PER_UNIT
    cfg = MunitTrainConfig(steps=steps, batch_size=r.batch_size, eval_every=steps // 4)
    with tqdm(total=cfg.steps, desc="train munit_mini", disable=not progress) as bar:
        model, _, log = train_munit(cfg, seed=seed, evaluator=Evaluator(RECIPE_EVAL),
                                    on_step=lambda: bar.update(1))  # fmt: skip
    if log["diverged"]:
        raise SotazooError(f"munit_mini diverged at step {log['diverged_at']}")
    final = log["final"]
    metrics = {"heldout_proxy_fid": final["fid"], "heldout_diversity": final["diversity"],
               "heldout_content_top1": final["content_top1"]}  # fmt: skip
    fields = {"recipe": asdict(r), "train": asdict(cfg), "eval": asdict(RECIPE_EVAL),
              "eval_seed": EVAL_SEED,
              "evaluated_on": "the 359 held-out digits (edge maps -> coloured digits)", **log}  # fmt: skip
    return Trained(model=model.eval(), metrics=metrics, log=fields)


RECIPES = {
    "munit_mini": Recipe(train_mini, unit="hundred steps", default=MunitRecipe.hundred_steps)
}
