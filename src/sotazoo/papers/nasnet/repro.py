"""NASNet at laptop scale: is the searched cell better than cells wired at random in the same
search space, and does ScheduledDropPath help when data are scarce?

The search itself (20,000 child networks on 500 GPUs) is out of reach; its artefact is the pair
of NASNet-A cells (`model.NORMAL`, `model.REDUCTION`). Two parts, each tied to a claim of the
card; the network is always `nasnet_mini`'s scaffold (CIFAR stem, N = 1, i.e. Normal, Reduction,
Normal, Reduction, Normal, 10 classes, one input channel), trained on scikit-learn's handwritten
digits (`sotazoo.data.digits`, 8x8 upsampled to 16x16: the 8x8 source holds no more detail, and
16 px costs a quarter of 32 px), per seed a stratified draw of training images and every other
digit held out for test.

1. Searched vs random cells (`rl_vs_random_search`, Section 4.4 / Figure 6): NASNet-A (F = 16)
   against, per seed, one pair of randomly wired cells. A random cell follows the paper's
   recipe (Section 3): for each of its 5 blocks, two inputs drawn uniformly among h0, h1 and the
   earlier blocks' outputs, an op for each drawn uniformly, combined by addition; the cell
   outputs the concatenation of the blocks no later block reads (the paper's rule; the released
   NASNet-A Normal cell also outputs h1, see model.py). The ops are the 6 that our
   layers implement (`OPS`: identity, 3x3 average and max pooling, 3x3/5x5/7x7 separable
   convolutions, each as in NASNet-A), not the paper's 13: the 7 left out (1x3-3x1, 1x7-7x1,
   dilated and plain 3x3, 1x1 convs, 5x5 and 7x7 max pooling) are ones the search did not pick,
   so these random cells draw only from ops the searched cells use: a harder baseline than the
   paper's random search. A Normal and a Reduction cell are drawn, then the first-stage filters
   F chosen so that the network's parameters come closest to NASNet-A's; a pair that no F brings
   within `param_tolerance` (5%) is drawn again. 500 training digits (the facts' plan), no
   drop path in either arm (an identity path is never dropped, so drop path would treat the
   arms differently). Effect per seed: random cells' test error minus NASNet-A's, in points.
   The paper compares the best of thousands of RL samples with the best of as many random ones
   (over 1 point on CIFAR-10); one random draw against the final NASNet-A at this scale is
   another comparison, so only the sign is judged.
2. ScheduledDropPath in the low-data regime (`scheduled_drop_path`, Sections 4 and A.5):
   NASNet-A trained on 200 digits with ScheduledDropPath (keep probability 0.6 for the last
   cell at the end of training, TF-Slim's CIFAR value; the drop rate grows linearly with the
   training step and with the cell's depth, `layers.ScheduledDropPath`) and without it (keep
   probability 1.0: the module returns its input). Same initial weights, same batches. Effect
   per seed: error without minus error with. The paper gives no figure for the gain: sign only.

The paper's third comparison, its RL controller against random search with equal compute
(Figure 6), trains 80 child networks per seed: past the budget, it is the long run
(`sotazoo repro nasnet --long`, `search.py`), curves without a verdict.

Training (both parts): `sotazoo.train.fit`, no flips (they change digits), SGD with Nesterov
momentum 0.9, the TF-Slim CIFAR config's learning rate 0.025 at batch 32 with cosine decay and
no warm-up, weight decay 5e-4; 15 epochs on 500 digits (240 steps), 30 on 200 (210 steps).
Channels-last memory (speed only, as in `train.py`).

Budget: 5 seeds x 4 runs in two single-thread worker processes (`sotazoo.train.parallel`),
135,000 training image-steps. Sized from timings only, before any error rate was looked at: on
one thread of the shared 2-core machine (load ~2), NASNet-A took 4.0 ms per training image at
16 px (13.4 ms at 32 px) and the random cells 1.0-1.4 times that, which gives about 5 minutes on
2 free cores. The first full run took 801 s beside another job that held about one of the two
cores throughout (our processes used 780 s of CPU time).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from sotazoo.papers.nasnet import model as nasnet_model
from sotazoo.repro import Outcome, judged_claim

DEFAULT_SEEDS = (0, 1, 2, 3, 4)
LONG_SEEDS = (0, 1, 2)  # `--long`: the controller against random search (search.long_run)
PARTS = {"cells": ("random", "nasnet_a"), "drop_path": ("off", "on")}  # ablation first
ARM_LABEL = {"random": "random cells", "nasnet_a": "NASNet-A",
             "off": "no drop path", "on": "ScheduledDropPath"}  # fmt: skip
CLAIM = {"cells": "rl_vs_random_search", "drop_path": "scheduled_drop_path"}
OPS = ("id", "avg3", "max3", "sep3", "sep5", "sep7")  # `model.make_op`'s names
BLOCKS = 5  # B = 5 (Section 3)


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    image_size: int = 16  # digits are 8x8: 16 px loses nothing and costs 1/4 of 32 px
    filters: int = 16  # NASNet-A's first-stage filters (nasnet_mini, the facts' plan)
    cells_train: int = 500  # part 1 (the facts' plan: 500 training images)
    drop_path_train: int = 200  # part 2 (the facts' plan: 200)
    test: int | None = None  # None: every digit not drawn for training
    param_tolerance: float = 0.05  # random cells' parameters within 5% of NASNet-A's
    keep_prob: float = 0.6  # TF-Slim cifar_config's drop_path_keep_prob
    cells_epochs: int = 15  # 240 steps
    drop_path_epochs: int = 30  # 210 steps
    batch_size: int = 32  # TF-Slim CIFAR
    lr: float = 0.025  # TF-Slim CIFAR, cosine decay
    weight_decay: float = 5e-4  # TF-Slim CIFAR
    workers: int = 2


QUICK = ReproConfig(cells_train=30, drop_path_train=20, test=50, cells_epochs=1,
                    drop_path_epochs=1, batch_size=10, workers=1)  # fmt: skip


# ---------------------------------------------------------------- cells and networks


def concat_of(blocks: tuple) -> tuple[int, ...]:
    """A cell's output (Section 3): the blocks (states 2..6) that no later block reads."""
    read = {k for _, i, _, j in blocks for k in (i, j)}
    return tuple(k for k in range(2, 2 + BLOCKS) if k not in read)


def random_cell(rng: random.Random) -> dict:
    """A cell drawn uniformly from the search space (Section 3, with `OPS`): per block two
    inputs among h0, h1 and the earlier blocks, an op for each, addition; the output
    concatenates the blocks that no later block reads (`model.NORMAL`'s format)."""
    blocks = []
    for b in range(BLOCKS):
        i, j = rng.randrange(2 + b), rng.randrange(2 + b)  # states: h0, h1, blocks 1..b
        blocks.append((rng.choice(OPS), i, rng.choice(OPS), j))
    return {"blocks": tuple(blocks), "concat": concat_of(tuple(blocks))}


def build(
    cells: tuple[dict, dict] | None, *, filters: int, keep_prob: float = 1.0
) -> torch.nn.Module:
    """`nasnet_mini` (one input channel, 10 classes) with `filters` first-stage filters and the
    (Normal, Reduction) `cells` in place of NASNet-A's (None: NASNet-A itself); the scaffold,
    the wiring and ScheduledDropPath are the model's own."""
    kw = {"num_conv_filters": filters, "drop_path_keep_prob": keep_prob, "in_chans": 1}
    return nasnet_model.nasnet_mini(**kw, cells=cells)


def count_params(cells: tuple[dict, dict] | None, filters: int) -> int:
    with torch.device("meta"):  # shapes only
        return sum(p.numel() for p in build(cells, filters=filters).parameters())


@lru_cache(maxsize=8)
def random_cells(seed: int, cfg: ReproConfig) -> tuple[tuple[dict, dict], int, int]:
    """(Normal, Reduction) cells drawn for `seed`, the filters that bring the network's
    parameters closest to NASNet-A's at `cfg.filters`, and how many pairs were drawn (pairs
    that no number of filters brings within `cfg.param_tolerance` are drawn again)."""
    target = count_params(None, cfg.filters)
    rng = random.Random(seed)
    for draws in range(1, 101):
        cells = (random_cell(rng), random_cell(rng))
        lo, hi = 1, 8 * cfg.filters  # parameters grow with the filters: bisect
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if count_params(cells, mid) < target else (lo, mid)
        best = min((f for f in (lo - 1, lo) if f >= 1),
                   key=lambda f: abs(count_params(cells, f) - target))  # fmt: skip
        if abs(count_params(cells, best) / target - 1) <= cfg.param_tolerance:
            return cells, best, draws
    raise RuntimeError("no random cell pair within the parameter tolerance in 100 draws")


# ---------------------------------------------------------------- data


@lru_cache(maxsize=1)
def _digits(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sotazoo.data.digits import load_digits

    return load_digits(size=size, split="all")  # (1797, 1, S, S) in [-1, 1]


def digits(n_train: int, seed: int, cfg: ReproConfig) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) of one seed: n_train / 10 digits of each class drawn
    for training, the others (or `cfg.test` of them) held out; standardised with the training
    images' mean and standard deviation."""
    x, y = _digits(cfg.image_size)
    rng = np.random.default_rng(1000 + seed)
    train = np.concatenate([rng.permutation(np.flatnonzero(y.numpy() == c))[: n_train // 10]
                            for c in range(10)])  # fmt: skip
    test = np.setdiff1d(np.arange(len(y)), train)
    if cfg.test is not None:
        test = rng.permutation(test)[: cfg.test]
    train, test = torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(test))
    mean, std = x[train].mean(), x[train].std()
    return (x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test]


# ---------------------------------------------------------------- one training run


@dataclass(frozen=True)
class Job:
    part: str  # "cells" or "drop_path"
    arm: str
    seed: int
    cfg: ReproConfig


def _sizes(job: Job) -> tuple[int, int]:
    cfg = job.cfg
    if job.part == "cells":
        return cfg.cells_train, cfg.cells_epochs
    return cfg.drop_path_train, cfg.drop_path_epochs


def steps_of(job: Job) -> int:
    n, epochs = _sizes(job)
    return epochs * -(-n // job.cfg.batch_size)


def network(job: Job) -> tuple[torch.nn.Module, int]:
    """The job's freshly initialised network (weights drawn from its seed) and its filters."""
    cfg = job.cfg
    cells, filters = None, cfg.filters
    if job.arm == "random":
        cells, filters, _ = random_cells(job.seed, cfg)
    keep = cfg.keep_prob if job.arm == "on" else 1.0
    torch.manual_seed(job.seed)
    return build(cells, filters=filters, keep_prob=keep), filters


def train_job(job: Job) -> dict:
    """Train one network (one part, arm and seed); its test error and what it cost."""
    from sotazoo.bench import count_gmacs
    from sotazoo.train import TrainConfig, evaluate, fit
    from sotazoo.train.parallel import tick

    cfg = job.cfg
    n, epochs = _sizes(job)
    x, y, x_test, y_test = digits(n, job.seed, cfg)
    model, filters = network(job)
    params = sum(p.numel() for p in model.parameters())
    gmacs = count_gmacs(model, (1, cfg.image_size, cfg.image_size))
    model = model.to(memory_format=torch.channels_last)
    total, done = steps_of(job), 0

    def after_step() -> None:  # ScheduledDropPath: the fraction of training done
        nonlocal done
        done += 1
        model.set_drop_path_progress(done / total)
        tick()

    train = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                        weight_decay=cfg.weight_decay, warmup_epochs=0, flips=False)  # fmt: skip
    log = fit(model, x, y, train, seed=job.seed, on_step=after_step)
    error = 100.0 * (1.0 - evaluate(model, x_test, y_test, batch_size=100))
    return {"part": job.part, "arm": job.arm, "seed": job.seed, "error": error,
            "params": params, "filters": filters, "gmacs": gmacs, "n_train": len(x),
            "n_test": len(x_test), "final_loss": log["epoch_loss"][-1],
            "train_seconds": round(log["seconds"], 2)}  # fmt: skip


# ---------------------------------------------------------------- the experiment


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    jobs = [Job(part, arm, s, cfg) for s in seeds for part, arms in PARTS.items() for arm in arms]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as run_parallel's workers; `workers=1` trains in this process
    try:
        logs = run_parallel(
            train_job,
            jobs,
            steps=[steps_of(j) for j in jobs],
            workers=cfg.workers,
            desc="nasnet repro",
            progress=progress,
        )
    finally:
        torch.set_num_threads(threads)
    by = {(r["part"], r["arm"], r["seed"]): r for r in logs}
    errors = {part: {arm: [by[part, arm, s]["error"] for s in seeds] for arm in arms}
              for part, arms in PARTS.items()}  # fmt: skip
    claims = [_cells_claim(errors["cells"], by, seeds, cfg),
              _drop_path_claim(errors["drop_path"], by, seeds, cfg)]  # fmt: skip
    details = {
        "test_error_percent": {
            part: {ARM_LABEL[a]: errors[part][a] for a in arms} for part, arms in PARTS.items()
        },
        "random_cells": {str(s): _drawn(s, cfg) for s in seeds},
        "runs": logs,
    }

    def draw(path: Path) -> None:
        _figure(errors, path)

    config = asdict(cfg) | {"parts": {p: list(a) for p, a in PARTS.items()}, "ops": list(OPS)}
    return Outcome(claims=claims, config=config, details=details, draw=draw)


def long_run(*, quick: bool, seeds: list[int], progress: bool = True):
    """`sotazoo repro nasnet --long`: the controller against random search (`search.long_run`)."""
    from sotazoo.papers.nasnet.search import long_run as search_long_run

    return search_long_run(quick=quick, seeds=seeds, progress=progress)


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' * (n != 1)}"


def _drawn(seed: int, cfg: ReproConfig) -> dict:
    (normal, reduction), filters, draws = random_cells(seed, cfg)
    return {"normal": normal, "reduction": reduction, "filters": filters, "pairs_drawn": draws}


def _cells_claim(errors: dict[str, list[float]], by: dict, seeds: list[int], cfg: ReproConfig):
    gaps = [r - a for r, a in zip(errors["random"], errors["nasnet_a"], strict=True)]
    nas = by["cells", "nasnet_a", seeds[0]]
    rand = [by["cells", "random", s] for s in seeds]
    spread = 100 * max(abs(r["params"] / nas["params"] - 1) for r in rand)
    return judged_claim(
        "nasnet",
        CLAIM["cells"],
        gaps,
        effect="points of test error, random cells − NASNet-A (one random pair per seed)",
        sign_only="the paper compares the best of thousands of RL cells with the best of as "
        "many random ones on CIFAR-10; here the final NASNet-A meets one random draw per seed "
        "on a few hundred digits",
        tested=(
            f"test error of nasnet_mini's scaffold (N = 1) on {nas['n_train']} digits at "
            f"{cfg.image_size} px ({nas['n_test']} held out), {_epochs(cfg.cells_epochs)}, no "
            f"drop path: NASNet-A (F = {cfg.filters}, {nas['params']:,} parameters) "
            f"{statistics.fmean(errors['nasnet_a']):.1f}% vs randomly wired Normal and "
            f"Reduction cells from {len(OPS)} of the paper's 13 ops (F = "
            f"{', '.join(str(r['filters']) for r in rand)}; parameters within {spread:.1f}% of "
            f"NASNet-A's) {statistics.fmean(errors['random']):.1f}% (paper: best RL cell over "
            "1 point above the best random-search cell, Figure 6)"
        ),
    )


def _drop_path_claim(errors: dict[str, list[float]], by: dict, seeds: list[int], cfg: ReproConfig):
    gaps = [off - on for off, on in zip(errors["off"], errors["on"], strict=True)]
    log = by["drop_path", "on", seeds[0]]
    return judged_claim(
        "nasnet",
        CLAIM["drop_path"],
        gaps,
        effect="points of test error removed by ScheduledDropPath (without − with, per seed)",
        sign_only="the paper reports no figure for the gain, only that it is significant",
        tested=(
            f"test error of NASNet-A (nasnet_mini, F = {cfg.filters}) on {log['n_train']} "
            f"digits at {cfg.image_size} px ({log['n_test']} held out), "
            f"{_epochs(cfg.drop_path_epochs)}: without drop path "
            f"{statistics.fmean(errors['off']):.1f}%, with ScheduledDropPath (keep probability "
            f"{cfg.keep_prob} for the last cell at the end) {statistics.fmean(errors['on']):.1f}%"
        ),
    )


def _figure(errors: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    titles = {"cells": "searched vs random cells (equal params)",
              "drop_path": "ScheduledDropPath, 200 digits"}  # fmt: skip
    for ax, (part, arms) in zip(axes, PARTS.items(), strict=True):
        for i, arm in enumerate(arms):
            vals = errors[part][arm]
            ax.bar(i, statistics.fmean(vals), color=("#999999", "#d62728")[i], alpha=0.6)
            ax.plot([i] * len(vals), vals, "ko", ms=3)
        for vals in zip(*(errors[part][a] for a in arms), strict=True):
            ax.plot(range(len(arms)), vals, "k-", lw=0.5, alpha=0.5)  # one line per seed
        ax.set_xticks(range(len(arms)), [ARM_LABEL[a] for a in arms])
        ax.set_title(titles[part], fontsize=9)
    axes[0].set_ylabel("test error (%)")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
