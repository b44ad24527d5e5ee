"""AutoAugment at laptop scale: do a published policy and the policy our own search finds beat
the standard augmentation when data is scarce, and does the published one still help on a
dataset it was not searched on?

The paper's search costs thousands of GPU-hours; its artefact is the published policies
(`policies.POLICIES`). Our laptop search (`search.py`, `sotazoo repro autoaugment --long`) ends
with a policy too (`policies.SEARCHED`). This experiment trains with them. Two datasets, both
generated offline; every arm of a dataset shares everything but the augmentation:
- "none": no augmentation at all;
- "baseline": the standard augmentation of the paper's CIFAR pipeline, scaled to the data: a
  random translation of up to ±2 px (zero padding, random crop); no flips (a flip changes a
  digit or a letter);
- "autoaugment": the baseline, then one sub-policy of the published SVHN policy per image, as
  the paper orders them on CIFAR (pad-and-crop, then the sub-policy; no Cutout, as on reduced
  SVHN). Ops, ranges and sampling are `method.AutoAugment`'s, fill 128;
- "searched" (digits only): the same with `policies.SEARCHED` in place of the SVHN policy.
The data:
- digits (claims `svhn_error`, the published policy on data like the data it was searched on,
  and `searched_policy`, the policy of our search on the kind of data it was searched on):
  scikit-learn's 8x8 handwritten digits (`sotazoo.data.digits`), upsampled to 32x32 and copied
  to three channels; per seed, 20 images per class (200) drawn for training and the other
  1,597 for test;
- letters (claim `stanford_cars_error`, transfer: the SVHN policy on a different dataset,
  without a new search, as the paper moves its ImageNet policy to Stanford Cars): the capitals
  A-J in random colours, sizes and slants (`sotazoo.data.letters`, 32x32 RGB), 300 training
  images per seed and one fixed held-out set of 1,000.
The child network is a 57,130-parameter CNN (three 3x3 conv-BN-ReLU layers of 32, 64 and 64
channels, max-pooling, global average pooling), trained from the same initialisation, the same
batch order and (for every arm but "none") the same translations in every arm of a seed: SGD
with Nesterov momentum 0.9, lr 0.05 with cosine decay, weight decay 5e-4, batch 32, 50 epochs.
Every random draw comes from a generator seeded from the seed.

The rules, written before any full run: per seed the effect is the test error of "baseline"
minus that of the policy's arm, in points, judged by `sotazoo.repro.RULE` on its sign only
(error points of a 57k-parameter CNN on a few hundred generated images are on another scale
than the paper's 1.3 -> 1.0% on full SVHN or 5.9 -> 5.2% on Stanford Cars). "none" is reported
beside them (the facts' expected order is autoaugment < baseline < none) and decides nothing.

History. The first design's transfer set was 300 shapes-in-clutter images (`sotazoo.data.
shapes`, with a horizontal flip in the baseline); in its full run (d29312c) every arm stayed
near chance there (79-84% error, chance 90%), which made that verdict say little. A pilot of
the "baseline" arm alone, seed 0 (no other arm was run), then gave 84% error on those shapes,
78% without clutter, 61% on 1,000 clean shapes, and 19% on 300 letters: the letters replaced
the shapes. The "searched" arm was added at the same time, with the policy the long run had
just found; the digits' arms and every training setting are unchanged.

Budget: 5 seeds x (4 digits arms + 3 letters arms) = 35 runs in two single-thread worker
processes. From one-thread timings on the busy 2-core machine: about 17 s a digits run and
27 s a letters run (50 epochs, 1 s to test), about 745 s on one thread, about 470 s on two
workers (taking them as 1.6x one thread).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sotazoo.repro import Outcome, judged_claim

DEFAULT_SEEDS = (0, 1, 2, 3, 4)
LONG_SEEDS = (0, 1, 2)  # `--long`: the search itself (search.long_run), past the 10-minute budget
TEST_SEED = 99_999  # the held-out letters: never a training seed
DATASETS = ("digits", "letters")
ARMS = {"digits": ("none", "baseline", "autoaugment", "searched"),
        "letters": ("none", "baseline", "autoaugment")}  # ablations first  # fmt: skip
ARM_LABEL = {"none": "no augmentation", "baseline": "baseline (translate)",
             "autoaugment": "baseline + AutoAugment (SVHN policy)",
             "searched": "baseline + AutoAugment (our searched policy)"}  # fmt: skip
# The claim each policy arm tests: (dataset, arm) -> the card's claim id
CLAIM = {("digits", "autoaugment"): "svhn_error", ("digits", "searched"): "searched_policy",
         ("letters", "autoaugment"): "stanford_cars_error"}  # fmt: skip
SIGN_ONLY = {
    "digits": "test error of a 57k-parameter CNN on 200 generated digits is on another scale "
    "than Shake-Shake's 1.3 -> 1.0% on full SVHN",
    "letters": "test error of a 57k-parameter CNN on 300 generated letters is on another scale "
    "than Inception v4's on Stanford Cars (and the card's 5.9% baseline is another model's)",
}


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    image_size: int = 32  # the facts' plan: digits upsampled to 32 px
    digits_per_class: int = 20  # 200 training digits (reduced SVHN had 1,000 images)
    digits_test: int | None = None  # None: every digit not drawn for training (1,597)
    letters_train: int = 300
    letters_test: int = 1000
    policy: str = "svhn"  # searched on reduced SVHN; used unchanged on both datasets
    shift: int = 2  # baseline translation, px (CIFAR's pad-4 crop at 32 px, halved for 8x8 digits)
    width: int = 32  # channels of the first conv; then 2x, 2x
    epochs: int = 50  # the paper's children: 120 epochs (WRN-40-2, reduced CIFAR-10)
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    workers: int = 2


QUICK = ReproConfig(digits_per_class=3, digits_test=100, letters_train=30, letters_test=50,
                    epochs=1, batch_size=16, workers=1)  # fmt: skip


def child_cnn(width: int = 32, classes: int = 10) -> nn.Sequential:
    """The child network: three 3x3 conv-BN-ReLU layers (width, 2 width, 2 width channels), 2x2
    max-pooling after the first two, global average pooling and a linear classifier (57,130
    parameters at width 32)."""

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True)]  # fmt: skip

    return nn.Sequential(
        *block(3, width), nn.MaxPool2d(2),  # (B, w, 16, 16) at 32 px
        *block(width, 2 * width), nn.MaxPool2d(2),  # (B, 2w, 8, 8)
        *block(2 * width, 2 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 2w)
        nn.Linear(2 * width, classes),
    )  # fmt: skip


# ---------------------------------------------------------------- data (uint8, (N, 3, H, W))


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


@lru_cache(maxsize=8)
def dataset(name: str, seed: int, cfg: ReproConfig) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) of one seed: uint8 (N, 3, S, S) images, int64 labels."""
    if name == "digits":
        from sotazoo.data.digits import load_digits

        x, y = load_digits(size=cfg.image_size, split="all")  # (N, 1, S, S) in [-1, 1]
        x = _to_uint8((x + 1) / 2).expand(-1, 3, -1, -1).contiguous()
        rng = np.random.default_rng(1000 + seed)
        train = np.concatenate([rng.permutation(np.flatnonzero(y.numpy() == c))
                                [: cfg.digits_per_class] for c in range(10)])  # fmt: skip
        test = np.setdiff1d(np.arange(len(y)), train)
        if cfg.digits_test is not None:
            test = np.sort(rng.permutation(test)[: cfg.digits_test])
        train, test = torch.from_numpy(np.sort(train)), torch.from_numpy(test)
        return x[train], y[train], x[test], y[test]
    if name == "letters":
        from sotazoo.data.letters import make_letters

        xs, ys = make_letters(cfg.letters_train, size=cfg.image_size, seed=1000 + seed)
        xt, yt = _letters_test(cfg.letters_test, cfg.image_size)
        return _to_uint8(torch.from_numpy(xs)), torch.from_numpy(ys), xt, yt
    raise ValueError(f"unknown dataset {name!r}")


@lru_cache(maxsize=2)
def _letters_test(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sotazoo.data.letters import make_letters

    x, y = make_letters(n, size=size, seed=TEST_SEED)
    return _to_uint8(torch.from_numpy(x)), torch.from_numpy(y)


def baseline_augment(
    xb: torch.Tensor, *, shift: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """The standard augmentation on a uint8 batch: a horizontal flip with probability 1/2 (when
    `flip`), then a translation of up to ±`shift` px in x and y (pad with zeros, crop)."""
    n, _, h, w = xb.shape
    if flip:
        flipped = torch.rand(n, generator=generator) < 0.5
        xb = torch.where(flipped[:, None, None, None], xb.flip(3), xb)
    offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=generator).tolist()
    padded = F.pad(xb, (shift, shift, shift, shift))
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w]
                        for i, (dy, dx) in enumerate(offsets)])  # fmt: skip


# ---------------------------------------------------------------- one training run


@dataclass(frozen=True)
class Job:
    dataset: str
    arm: str
    seed: int
    cfg: ReproConfig


def steps_of(job: Job) -> int:
    """Optimiser steps of one run (its `tick()`s)."""
    cfg = job.cfg
    n = 10 * cfg.digits_per_class if job.dataset == "digits" else cfg.letters_train
    return cfg.epochs * -(-n // cfg.batch_size)


@torch.inference_mode()
def test_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm, batch: int = 500) -> float:
    """Test error in % of `model` on uint8 images `x`."""
    model.eval()
    pred = torch.cat([model(norm(x[i : i + batch])).argmax(1) for i in range(0, len(x), batch)])
    return 100.0 * (pred != y).float().mean().item()


def normaliser(x: torch.Tensor):
    """uint8 batch -> float, standardised per channel with the mean and std of `x`."""
    xf = x.float() / 255
    mean, std = xf.mean(dim=(0, 2, 3), keepdim=True), xf.std(dim=(0, 2, 3), keepdim=True)

    def norm(xb: torch.Tensor) -> torch.Tensor:
        return (xb.float() / 255 - mean) / std

    return norm


def fit_child(
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: ReproConfig,
    *,
    seed: int,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_step: Callable[[], None] | None = None,
) -> tuple[nn.Module, float]:
    """Train a fresh `child_cnn` on uint8 images `x`; `augment` maps each uint8 batch to its
    augmented copy. Returns the model and its last training loss. `seed` fixes the initial
    weights and the batch order (`augment` brings its own generators)."""
    norm = normaliser(x)
    torch.manual_seed(seed)
    model = child_cnn(cfg.width)
    order_g = torch.Generator().manual_seed(seed)
    decay = [p for p in model.parameters() if p.ndim > 1]  # no decay on biases and BN
    rest = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                           {"params": rest, "weight_decay": 0.0}],
                          lr=cfg.lr, momentum=cfg.momentum, nesterov=True)  # fmt: skip
    per_epoch = -(-len(x) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * per_epoch)
    loss = torch.tensor(float("nan"))
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(x), generator=order_g)
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb = x[idx] if augment is None else augment(x[idx])
            loss = F.cross_entropy(model(norm(xb)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if on_step is not None:
                on_step()
    return model, loss.item()


def train_job(job: Job) -> dict:
    """Train one child network (one dataset, arm and seed); its test error and wall time."""
    import time

    from sotazoo.papers.autoaugment.method import AutoAugment
    from sotazoo.papers.autoaugment.policies import SEARCHED
    from sotazoo.train.parallel import tick

    cfg = job.cfg
    x, y, x_test, y_test = dataset(job.dataset, job.seed, cfg)
    # The same seed gives every arm the same initial weights, batch order, and (every arm but
    # "none") the same shifts; AutoAugment draws from a stream of its own.
    base_g = torch.Generator().manual_seed(10_000 + job.seed)
    policy = {"autoaugment": cfg.policy, "searched": SEARCHED}.get(job.arm)
    aa = AutoAugment(policy, rng=random.Random(20_000 + job.seed)) if policy else None

    def augment(xb: torch.Tensor) -> torch.Tensor:
        if job.arm == "none":
            return xb
        xb = baseline_augment(xb, shift=cfg.shift, flip=False, generator=base_g)
        return xb if aa is None else torch.stack([aa(img) for img in xb])

    t0 = time.perf_counter()
    model, loss = fit_child(x, y, cfg, seed=job.seed, augment=augment, on_step=tick)
    seconds = time.perf_counter() - t0
    return {"dataset": job.dataset, "arm": job.arm, "seed": job.seed,
            "error": test_error(model, x_test, y_test, normaliser(x)), "train_loss": loss,
            "train_seconds": round(seconds, 2), "n_train": len(x), "n_test": len(x_test)}  # fmt: skip


# ---------------------------------------------------------------- the experiment


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    jobs = [Job(ds, arm, s, cfg) for s in seeds for ds in DATASETS for arm in reversed(ARMS[ds])]
    logs = run_parallel(train_job, jobs, steps=[steps_of(j) for j in jobs], workers=cfg.workers,
                        desc="autoaugment repro", progress=progress)  # fmt: skip
    by = {(r["dataset"], r["arm"], r["seed"]): r for r in logs}
    errors = {ds: {arm: [by[ds, arm, s]["error"] for s in seeds] for arm in ARMS[ds]}
              for ds in DATASETS}  # fmt: skip
    claims = [_claim(ds, arm, errors[ds], cfg, by[ds, "none", seeds[0]]) for ds, arm in CLAIM]
    details = {
        "test_error_percent": {
            ds: {ARM_LABEL[a]: errors[ds][a] for a in ARMS[ds]} for ds in DATASETS
        },
        "train_seconds": {
            ds: {ARM_LABEL[a]: [by[ds, a, s]["train_seconds"] for s in seeds] for a in ARMS[ds]}
            for ds in DATASETS
        },  # fmt: skip
        "parameters": sum(p.numel() for p in child_cnn(cfg.width).parameters()),
    }

    def draw(path: Path) -> None:
        _figure(errors, path)

    from sotazoo.papers.autoaugment.policies import SEARCHED
    from sotazoo.papers.autoaugment.search import to_json

    config = asdict(cfg) | {"arms": {ds: list(a) for ds, a in ARMS.items()},
                            "searched_policy": to_json(SEARCHED)}  # fmt: skip
    return Outcome(claims=claims, config=config, details=details, draw=draw)


def long_run(*, quick: bool, seeds: list[int], progress: bool = True):
    """`sotazoo repro autoaugment --long`: the controller against random search in the paper's
    search space (`search.long_run`)."""
    from sotazoo.papers.autoaugment.search import long_run as search_long_run

    return search_long_run(quick=quick, seeds=seeds, progress=progress)


def _claim(ds: str, arm: str, errors: dict[str, list[float]], cfg: ReproConfig, log: dict):
    """The claim of one policy arm: the error drop baseline -> baseline + the policy, per seed."""
    drops = [b - a for b, a in zip(errors["baseline"], errors[arm], strict=True)]
    mean = {a: statistics.fmean(v) for a, v in errors.items()}
    data = {
        "digits": f"{log['n_train']} generated 32x32 digits (sklearn's 8x8, upsampled), "
        f"{log['n_test']} held-out",
        "letters": f"{log['n_train']} generated letters A-J, {log['n_test']} held-out "
        "(transfer: a dataset the SVHN policy was not searched on)",
    }[ds]
    paper = {"svhn_error": "paper: 1.3 -> 1.0% on full SVHN",
             "searched_policy": "paper: its reduced-SVHN search's policy, 1.3 -> 1.0% on full "
             "SVHN; ours: seed 0's controller search of the long run, 40 policies scored by a "
             "seconds-long child on 100 digits",
             "stanford_cars_error": "paper: the ImageNet policy on Stanford Cars, 6.4 -> 5.2% "
             "from scratch, Table 4"}[CLAIM[ds, arm]]  # fmt: skip
    arms = ", ".join(f"{ARM_LABEL[a]} {mean[a]:.1f}%" for a in ARMS[ds])
    return judged_claim(
        "autoaugment",
        CLAIM[ds, arm],
        drops,
        effect=f"points of test error removed by the {'SVHN' if arm == 'autoaugment' else 'searched'}"
        " policy (baseline − baseline + the policy, per seed)",
        sign_only=SIGN_ONLY[ds],
        tested=(
            f"test error of a {sum(p.numel() for p in child_cnn(cfg.width).parameters()):,}"
            f"-parameter CNN trained {cfg.epochs} epoch{'s' * (cfg.epochs != 1)} on {data}: "
            f"{arms} ({paper})"
        ),
    )


def _figure(errors: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"none": "#bbbbbb", "baseline": "#777777", "autoaugment": "#d62728",
               "searched": "#1f77b4"}  # fmt: skip
    ticks = {"none": "none", "baseline": "baseline", "autoaugment": "+ SVHN policy",
             "searched": "+ searched"}  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, ds in zip(axes, DATASETS, strict=True):
        arms = ARMS[ds]
        for i, arm in enumerate(arms):
            vals = errors[ds][arm]
            ax.bar(i, statistics.fmean(vals), color=colours[arm], alpha=0.7)
            ax.plot([i] * len(vals), vals, "ko", ms=3)
        for vals in zip(*(errors[ds][a] for a in arms), strict=True):
            ax.plot(range(len(arms)), vals, "k-", lw=0.5, alpha=0.5)  # one line per seed
        ax.set_xticks(range(len(arms)), [ticks[a] for a in arms], fontsize=8)
        ax.set_title({"digits": "digits (the policies' own domain)",
                      "letters": "letters (transfer)"}[ds], fontsize=9)  # fmt: skip
    axes[0].set_ylabel("test error (%)")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
