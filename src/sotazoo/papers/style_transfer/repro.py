"""The review's trade-off at laptop scale: feed-forward networks stylise orders of magnitude faster
than Gatys et al.'s optimisation at the same loss, and only the arbitrary-style one (AdaIN)
handles a style it was not trained on.

Feature network: the stand-in of `train.py` (a small VGG-like network we train first, in this
run, to tell photographs, textures and pattern families apart), shared by every arm and seed.
Per seed, two networks are trained on content crops of four scikit-image photographs at 64 px:
Johnson et al.'s (`johnson_mini`) for one style (`data.random_style(7)`), on the Gram-and-content
objective of `train.johnson_objective`, and AdaIN's decoder (`adain_mini`, the stand-in as its
encoder) on 1,000 random styles, none of which is the measured one; 600 and 1,000 Adam steps.

Measured, per seed, on crops of the three test photographs (never trained on), each stylised
with style 7, at 64 px (the claim at 256 px) and 128 px (the claims at 512 px), one thread:
- the feed-forward time: the median of 5 forward passes of one image;
- the feed-forward loss: `johnson_objective` of its output (for AdaIN too: the one objective all
  arms are scored on);
- Gatys et al.'s time to the same loss: L-BFGS on the pixels of the content image for that same
  objective (`method.gatys`), timed from the start to the first step whose loss is at most the
  network's; if it is not reached within `gatys_steps`, the whole run's time (so the ratio is
  then a lower bound, and the details say so).
The effect of a claim, per seed: Gatys's time to the network's loss over the network's time
(the mean over the test images of the log ratio, exponentiated), tested on its log against the
paper's ratio (the card's baseline over its value): a claim of speed at equal quality, as the
review's table is (its methods are run to their own usual quality, ours to equal loss).

Unseen styles (no claim in the card, in the details and the printed table): the style term of
the objective for 8 styles neither network was trained on, for Johnson's network (trained on
style 7 only), AdaIN, and the content image itself.

Budget: from a pilot run of one seed on the 2-core machine while other jobs shared it, the
stand-in (800 steps) trains in about 80 s, the two networks of a seed (600 and 1,000 steps) in
about 2 minutes on two single-thread workers, and the measurements take under a minute a seed.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from sotazoo.papers.style_transfer import data, method
from sotazoo.papers.style_transfer.train import (
    ADAIN_LR,
    JOHNSON_LR,
    JOHNSON_STYLE_SEED,
    TrainConfig,
    johnson_objective,
    standin,
    train_adain,
    train_johnson,
)
from sotazoo.repro import Outcome, card_effect, judged_claim

DEFAULT_SEEDS = (0, 1, 2)
ADAIN_STYLE_SEEDS = range(1000, 2000)
UNSEEN_STYLE_SEEDS = range(80_000, 80_008)


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    standin_steps: int = 800
    johnson_steps: int = 600
    adain_steps: int = 1000
    train_size: int = 64
    sizes: tuple[int, int] = (64, 128)  # the claims at 256 and at 512 px
    test_images: int = 2
    gatys_steps: int = 150
    timing_reps: int = 5
    workers: int = 2


QUICK = ReproConfig(standin_steps=3, johnson_steps=2, adain_steps=2, sizes=(32, 64), test_images=1,
                    gatys_steps=3, timing_reps=1, workers=1)  # fmt: skip


@dataclass(frozen=True)
class Job:
    kind: str  # "johnson" or "adain"
    seed: int
    cfg: ReproConfig
    features: dict  # the stand-in's state dict


def train_job(job: Job) -> dict:
    from sotazoo.train.parallel import tick

    feats = _features(job.features)
    if job.kind == "johnson":
        net, log = train_johnson(feats, data.random_style(JOHNSON_STYLE_SEED, job.cfg.train_size)[None],
                                 TrainConfig(steps=job.cfg.johnson_steps, size=job.cfg.train_size, lr=JOHNSON_LR),
                                 seed=job.seed, tick=tick)  # fmt: skip
    else:
        net, log = train_adain(feats, TrainConfig(steps=job.cfg.adain_steps, size=job.cfg.train_size, batch_size=8,
                                                  lr=ADAIN_LR), seed=job.seed, style_seeds=ADAIN_STYLE_SEEDS, tick=tick)  # fmt: skip
    return {"kind": job.kind, "seed": job.seed, "state": net.state_dict(), "final_loss": log["loss"][-1]}


def _features(state: dict):
    from sotazoo.papers.style_transfer.model import MINI_VGG
    from sotazoo.papers.style_transfer.vgg import VGGConfig, VGGFeatures

    feats = VGGFeatures(VGGConfig(widths=MINI_VGG, last="relu4_1"))
    feats.load_state_dict(state)
    for p in feats.parameters():
        p.requires_grad_(False)
    return feats.eval()


def _forward_time(fn, reps: int) -> float:
    with torch.no_grad():
        fn()  # warm-up
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gatys_to(content: torch.Tensor, style: torch.Tensor, feats, target: float, steps: int) -> dict:
    """Gatys et al. on `johnson_objective`'s layers and weights, timed until its loss reaches
    `target` (the first step at or below it), or for all `steps`."""
    from sotazoo.papers.style_transfer import train as tr

    stamps: list[float] = []
    t0 = time.perf_counter()
    _, losses = method.gatys(content, style, feats, content_layers=tr.CONTENT_LAYERS, style_layers=tr.STYLE_LAYERS,
                             content_weight=tr.CONTENT_WEIGHT, style_weight=tr.STYLE_WEIGHT, steps=steps,
                             progress=lambda i, loss: stamps.append(time.perf_counter() - t0))  # fmt: skip
    # losses[i] is the loss before step i's update; after step i it is losses[i + 1]
    reached = next((i for i in range(1, len(losses)) if losses[i] <= target), None)
    return {"reached": reached is not None, "steps": reached if reached is not None else steps,
            "seconds": stamps[reached - 1] if reached is not None else stamps[-1],
            "final_loss": losses[-1], "start_loss": losses[0]}  # fmt: skip


def measure(seed: int, nets: dict, feats, cfg: ReproConfig) -> dict:
    from sotazoo.papers.style_transfer.model import adain_mini, johnson_mini

    johnson, adain = johnson_mini().eval(), adain_mini().eval()
    johnson.load_state_dict(nets["johnson"])
    adain.load_state_dict(nets["adain"])
    g = torch.Generator().manual_seed(50_000 + seed)
    out: dict = {"seed": seed, "sizes": {}}
    for size in cfg.sizes:
        style = data.random_style(JOHNSON_STYLE_SEED, size)[None]
        objective = johnson_objective(feats, style)
        rows = []
        for content in data.crops(data.TEST_CONTENTS, cfg.test_images, size, g):
            c = content[None]
            row = {}
            for name, fn in (("johnson", lambda c=c: johnson(c)), ("adain", lambda c=c, s=style: adain(c, s))):
                with torch.no_grad():
                    loss = float(objective(fn().clamp(0, 1), c)[0])
                ff = _forward_time(fn, cfg.timing_reps)
                gat = gatys_to(c, style, feats, loss, cfg.gatys_steps)
                row[name] = {"loss": loss, "seconds": ff, "gatys": gat, "ratio": gat["seconds"] / ff}
            rows.append(row)
        out["sizes"][str(size)] = rows
    # unseen styles: the style term for styles neither network saw, at the training size
    x = data.crops(data.TEST_CONTENTS, len(UNSEEN_STYLE_SEEDS), cfg.train_size, g)
    terms = {"johnson": [], "adain": [], "content": []}
    with torch.no_grad():
        for i, s in enumerate(UNSEEN_STYLE_SEEDS):
            st = data.random_style(s, cfg.train_size)[None]
            objective = johnson_objective(feats, st)
            c = x[i : i + 1]
            for name, y in (("johnson", johnson(c)), ("adain", adain(c, st)), ("content", c)):
                terms[name].append(float(objective(y.clamp(0, 1), c)[2]))
    out["unseen_style_term"] = {k: statistics.fmean(v) for k, v in terms.items()}
    return out


def _geo(ratios: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(r) for r in ratios))


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # every arm and every timing on one thread, as the workers
    try:
        feats, feats_log = standin(seed=0, steps=cfg.standin_steps, progress=progress)
        jobs = [Job(kind, s, cfg, feats.state_dict()) for s in seeds for kind in ("johnson", "adain")]
        steps = [cfg.johnson_steps if j.kind == "johnson" else cfg.adain_steps for j in jobs]
        logs = run_parallel(train_job, jobs, steps=steps, workers=cfg.workers, desc="style_transfer repro",
                            progress=progress)  # fmt: skip
        nets = {(r["kind"], r["seed"]): r["state"] for r in logs}
        measured = [measure(s, {"johnson": nets["johnson", s], "adain": nets["adain", s]}, feats, cfg) for s in seeds]
    finally:
        torch.set_num_threads(threads)
    small, large = (str(s) for s in cfg.sizes)

    def ratios(size: str, arm: str) -> list[float]:
        return [_geo([row[arm]["ratio"] for row in m["sizes"][size]]) for m in measured]

    def reached(size: str, arm: str) -> str:
        rows = [row[arm]["gatys"]["reached"] for m in measured for row in m["sizes"][size]]
        return f"{sum(rows)} of {len(rows)}"

    def mean(size: str, arm: str, key: str) -> float:
        return statistics.fmean(row[arm][key] for m in measured for row in m["sizes"][size])

    def tested(size: str, arm: str, name: str, paper_px: int) -> str:
        return (f"{name} on {size} px crops of 3 held-out photographs (paper: {paper_px} px, GPU): "
                f"{1000 * mean(size, arm, 'seconds'):.2f} ms a forward pass, one thread; Gatys et al. "
                f"(L-BFGS on the same objective) reached the network's loss in {reached(size, arm)} runs "
                f"within {cfg.gatys_steps} steps")  # fmt: skip

    effect = "Gatys et al.'s time to the network's loss over the network's time (geometric mean over the test images)"
    claims = [
        judged_claim("style_transfer", "feedforward_256_time", ratios(small, "johnson"), effect=effect, log=True,
                     paper_effect=card_effect("style_transfer", "feedforward_256_time", lower_is_better=True, ratio=True),
                     tested=tested(small, "johnson", "Johnson et al.'s network", 256)),
        judged_claim("style_transfer", "feedforward_512_time", ratios(large, "johnson"), effect=effect, log=True,
                     paper_effect=card_effect("style_transfer", "feedforward_512_time", lower_is_better=True, ratio=True),
                     tested=tested(large, "johnson", "Johnson et al.'s network", 512)),
        judged_claim("style_transfer", "adain_512_time", ratios(large, "adain"), effect=effect, log=True,
                     paper_effect=card_effect("style_transfer", "adain_512_time", lower_is_better=True, ratio=True),
                     tested=tested(large, "adain", "AdaIN (a style it was not trained on)", 512)),
    ]  # fmt: skip
    unseen = {k: [m["unseen_style_term"][k] for m in measured] for k in ("johnson", "adain", "content")}
    details = {
        "standin": {"steps": cfg.standin_steps, "accuracy": feats_log["accuracy"]},
        "speed_ratio": {f"{arm} {size} px": ratios(size, arm) for size in (small, large) for arm in ("johnson", "adain")},
        "loss": {f"{arm} {size} px": mean(size, arm, "loss") for size in (small, large) for arm in ("johnson", "adain")},
        "unseen_style_term": unseen,
        "measured": measured,
    }  # fmt: skip
    summary = {"unseen styles: style term, Johnson (one style) / AdaIN / content image":
               [statistics.fmean(unseen[k]) for k in ("johnson", "adain", "content")]}  # fmt: skip
    return Outcome(claims=claims, config=asdict(cfg) | {"style_seed": JOHNSON_STYLE_SEED}, details=details | summary)
