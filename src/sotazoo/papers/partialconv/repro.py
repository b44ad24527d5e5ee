"""Partial convolutions at laptop scale: does the partial-convolution U-Net fill irregular holes
better than the same U-Net with ordinary convolutions fed the hole-filled image (Table 1's
"Conv" row), inside the holes, per hole-area band?

Data, generated offline from the photographs that ship with scikit-image (`sotazoo.data.
sr_photos`): training patches are random 64x64 crops of the training photographs, with one of
the 8 flips/rotations; the test set is 180 fixed 64x64 crops of the three held-out photographs
(astronaut, coffee, chelsea; 60 each), the same for every seed. Masks are `masks.
irregular_mask`'s brush strokes, the target hole ratio uniform in (0.01, 0.6) (Table 1's range),
drawn afresh for every training batch and fixed for the test set; a test patch counts in the
Table 1 bin its measured hole ratio falls in.

Arms, sharing everything but the convolution (initial weights are drawn per arm from the seed;
the batches, masks and order are the same): "conv", `pconv_mini(partial=False)` whose input has
its holes set to 0.5 (the paper's 127.5); "pconv", `pconv_mini()`. Both 212,580 parameters.
Loss: L_valid + 6 L_hole + 0.1 L_tv (`loss.pconv_loss` without the perceptual and style terms,
which need VGG-16 features that cannot be downloaded here; the facts' plan); Adam at lr 1e-3,
batch 16, 800 steps, BatchNorm in training mode throughout (the paper's frozen-BN fine-tune is
left out). Images in [0, 1]. (The paper's first stage uses lr 2e-4 for a far longer schedule; a
pilot of the Conv arm alone, seed 0, 500 steps, gave training loss 0.256 at 2e-4 and 0.239 at
1e-3, and no PConv run was looked at before these settings were fixed.)

Measured on I_comp inside the hole only, as Table 1 does: L1 (% of the range, mean absolute error
over hole pixels), PSNR over hole pixels, and SSIM (scikit-image's SSIM map, averaged over hole
pixels); per bin, the mean over that bin's test patches. scikit-image's `inpaint_biharmonic` is
reported beside them (no training, no verdict).

The rules, written before any full run: per seed, the effect of a claim is PConv minus Conv in
hole PSNR (dB) in that claim's bin, or Conv minus PConv in hole L1 (points of %), judged by
`sotazoo.repro.RULE` on its sign only (a 64x64 patch network trained minutes on seven
photographs is not the paper's 512x512 network on Places2, whose absolute figures the claims
give).

Budget: 5 seeds x 2 arms = 10 runs in two single-thread worker processes. From timings on the
busy 2-core machine: one step at batch 16 takes 0.12-0.17 s on one thread for either arm,
testing a run about 5 s. 800 steps: about 100-140 s a run, about 500-700 s on two workers.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from sotazoo.repro import Outcome, judged_claim

DEFAULT_SEEDS = (0, 1, 2, 3, 4)
TEST_SEED = 99_999  # the test crops and masks: never a training seed
ARMS = ("conv", "pconv")  # ablation first
ARM_LABEL = {"conv": "Conv (ordinary convolutions, holes filled)", "pconv": "PConv"}
# claim id -> (Table 1 bin index, metric); the bins are masks.HOLE_BINS
CLAIMS = {"pconv_psnr_places2_10_20": (1, "psnr"), "pconv_psnr_places2_20_30": (2, "psnr"),
          "pconv_psnr_places2_30_40": (3, "psnr"), "pconv_l1_places2_30_40": (3, "l1")}  # fmt: skip
SIGN_ONLY = ("a 64x64 patch network trained minutes on seven photographs is on another scale "
             "than the paper's 512x512 network on Places2")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    patch: int = 64
    test_per_photo: int = 60
    hole_ratio: tuple[float, float] = (0.01, 0.6)  # Table 1's range of bins
    steps: int = 800
    batch_size: int = 16
    lr: float = 1e-3  # Adam; the paper's first stage: 2e-4 over a far longer schedule
    workers: int = 2


QUICK = ReproConfig(test_per_photo=4, steps=2, batch_size=4, workers=1)


# ---------------------------------------------------------------- data


@lru_cache(maxsize=2)
def test_set(cfg: ReproConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, p, p) in [0, 1], masks (N, 1, p, p)): fixed crops of the held-out
    photographs and their masks, the same for every seed."""
    from sotazoo.data.sr_photos import TEST_NAMES, photograph
    from sotazoo.papers.partialconv.masks import irregular_mask

    rng = np.random.default_rng(TEST_SEED)
    p, crops, masks = cfg.patch, [], []
    for name in TEST_NAMES:
        img = photograph(name)
        for _ in range(cfg.test_per_photo):
            y = int(rng.integers(0, img.shape[0] - p + 1))
            x = int(rng.integers(0, img.shape[1] - p + 1))
            crops.append(img[y : y + p, x : x + p])
            masks.append(irregular_mask(p, rng, ratio=cfg.hole_ratio))
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    return x.contiguous(), torch.from_numpy(np.stack(masks))[:, None]


class Patches:
    """Random training crops (one of 8 flips/rotations) and fresh masks, from one seed."""

    def __init__(self, cfg: ReproConfig, seed: int) -> None:
        from sotazoo.data.sr_photos import TRAIN_NAMES, photograph

        self.cfg = cfg
        self.photos = [photograph(n) for n in TRAIN_NAMES]
        areas = np.array([p.shape[0] * p.shape[1] for p in self.photos], dtype=np.float64)
        self.p = areas / areas.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        from sotazoo.papers.partialconv.masks import irregular_mask

        s, out, masks = self.cfg.patch, [], []
        for k in self.rng.choice(len(self.photos), size=self.cfg.batch_size, p=self.p):
            img = self.photos[k]
            y = int(self.rng.integers(0, img.shape[0] - s + 1))
            x = int(self.rng.integers(0, img.shape[1] - s + 1))
            a = img[y : y + s, x : x + s]
            t = int(self.rng.integers(0, 8))
            a = np.rot90(a[:, ::-1] if t & 1 else a, t >> 1)
            out.append(np.ascontiguousarray(a))
            masks.append(irregular_mask(s, self.rng, ratio=self.cfg.hole_ratio))
        x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255
        return x.contiguous(), torch.from_numpy(np.stack(masks))[:, None]


# ---------------------------------------------------------------- metrics inside the hole


def hole_metrics(comp: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict:
    """Per image: L1 (% of the range), PSNR (dB) and SSIM over the hole's pixels (mask 0) of
    `comp` against `target`, all (N, 3, H, W) in [0, 1]."""
    from skimage.metrics import structural_similarity

    out = {"l1": [], "psnr": [], "ssim": [], "ratio": []}
    for c, t, m in zip(comp, target, mask, strict=True):
        hole = m[0] == 0
        err = (c - t)[:, hole]
        mse = float((err**2).mean())
        out["l1"].append(100 * float(err.abs().mean()))
        out["psnr"].append(10 * np.log10(1 / max(mse, 1e-10)))
        _, smap = structural_similarity(t.permute(1, 2, 0).numpy(), c.permute(1, 2, 0).numpy(),
                                        channel_axis=2, data_range=1.0, full=True)  # fmt: skip
        out["ssim"].append(float(smap.mean(axis=2)[hole.numpy()].mean()))
        out["ratio"].append(float(hole.float().mean()))
    return out


def by_bin(metrics: dict) -> dict[int, dict[str, float]]:
    """Means of each metric per Table 1 bin (bins with no test patch are left out)."""
    from sotazoo.papers.partialconv.masks import hole_bin

    bins: dict[int, dict[str, list[float]]] = {}
    for i, r in enumerate(metrics["ratio"]):
        b = hole_bin(r)
        if b is not None:
            for k in ("l1", "psnr", "ssim"):
                bins.setdefault(b, {}).setdefault(k, []).append(metrics[k][i])
    return {b: {k: statistics.fmean(v) for k, v in d.items()} | {"n": len(d["l1"])}
            for b, d in sorted(bins.items())}  # fmt: skip


# ---------------------------------------------------------------- one training run


@dataclass(frozen=True)
class Job:
    arm: str
    seed: int
    cfg: ReproConfig


def train_job(job: Job) -> dict:
    """Train one arm for one seed; its hole metrics on the test set, per patch and per bin."""
    import time

    from sotazoo.papers.partialconv.loss import pconv_loss
    from sotazoo.papers.partialconv.model import composite, pconv_mini
    from sotazoo.train.parallel import tick

    cfg = job.cfg
    torch.manual_seed(job.seed)
    model = pconv_mini(partial=job.arm == "pconv")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data = Patches(cfg, seed=job.seed)  # the same batches and masks for both arms
    t0, loss = time.perf_counter(), float("nan")
    model.train()
    for _ in range(cfg.steps):
        x, m = data.batch()
        total, _ = pconv_loss(model(x * m, m), x, m)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        loss = float(total.detach())
        tick()
    seconds = time.perf_counter() - t0
    x, m = test_set(cfg)
    model.eval()
    with torch.no_grad():
        comp = torch.cat([composite(x[i : i + 60], model(x[i : i + 60] * m[i : i + 60],
                                                         m[i : i + 60]), m[i : i + 60])
                          for i in range(0, len(x), 60)]).clamp(0, 1)  # fmt: skip
    metrics = hole_metrics(comp, x, m)
    return {"arm": job.arm, "seed": job.seed, "bins": by_bin(metrics), "final_loss": loss,
            "train_seconds": round(seconds, 1), "mean": {k: statistics.fmean(v)
                                                          for k, v in metrics.items()}}  # fmt: skip


def biharmonic(cfg: ReproConfig) -> dict:
    """scikit-image's `inpaint_biharmonic` on the test set: per-bin hole metrics."""
    from skimage.restoration import inpaint_biharmonic

    x, m = test_set(cfg)
    filled = [inpaint_biharmonic(img.permute(1, 2, 0).numpy(), (mk[0] == 0).numpy(),
                                 channel_axis=2) for img, mk in zip(x, m, strict=True)]  # fmt: skip
    comp = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).float().clamp(0, 1)
    return by_bin(hole_metrics(comp, x, m))


# ---------------------------------------------------------------- the experiment


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.papers.partialconv.masks import HOLE_BINS
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    jobs = [Job(arm, s, cfg) for s in seeds for arm in ARMS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as run_parallel's workers; `workers=1` trains in this process
    try:
        logs = run_parallel(train_job, jobs, steps=[cfg.steps] * len(jobs), workers=cfg.workers,
                            desc="partialconv repro", progress=progress)  # fmt: skip
        classic = biharmonic(cfg)
    finally:
        torch.set_num_threads(threads)
    by = {(r["arm"], r["seed"]): r for r in logs}
    claims = [_claim(cid, b, metric, by, seeds, cfg, classic)
              for cid, (b, metric) in CLAIMS.items()]  # fmt: skip
    label = {i: f"({lo}, {hi}]" for i, (lo, hi) in enumerate(HOLE_BINS)}
    details = {
        "per_bin": {ARM_LABEL[a]: {str(s): {label[int(b)]: v for b, v in by[a, s]["bins"].items()}
                                   for s in seeds} for a in ARMS},  # fmt: skip
        "biharmonic": {label[b]: v for b, v in classic.items()},
        "runs": logs,
    }

    def draw(path: Path) -> None:
        _figure(by, seeds, classic, path)

    config = asdict(cfg) | {"arms": list(ARMS), "claims": {k: list(v) for k, v in CLAIMS.items()}}
    return Outcome(claims=claims, config=config, details=details, draw=draw)


def _value(log: dict, b: int, metric: str) -> float:
    bins = {int(k): v for k, v in log["bins"].items()}
    return bins[b][metric] if b in bins else float("nan")


def _claim(cid: str, b: int, metric: str, by: dict, seeds: list[int], cfg: ReproConfig,
           classic: dict):  # fmt: skip
    from sotazoo.papers.partialconv.masks import HOLE_BINS

    conv = [_value(by["conv", s], b, metric) for s in seeds]
    pconv = [_value(by["pconv", s], b, metric) for s in seeds]
    sign = 1 if metric == "psnr" else -1  # PSNR: higher is better; L1: lower
    effects = [sign * (p - c) for p, c in zip(pconv, conv, strict=True)]
    lo, hi = HOLE_BINS[b]
    unit = "dB" if metric == "psnr" else "% of the range"
    n = by["pconv", seeds[0]]["bins"].get(b, {})
    bih = classic.get(b, {}).get(metric, float("nan"))
    return judged_claim(
        "partialconv",
        cid,
        effects,
        effect=("hole PSNR of PConv − Conv, dB" if metric == "psnr"
                else "hole L1 of Conv − PConv, points of % of the range")
        + f", test patches with hole ratio in ({lo}, {hi}]",
        sign_only=SIGN_ONLY,
        tested=(
            f"inside the holes of {n.get('n', 0)} held-out 64x64 crops (of "
            f"{3 * cfg.test_per_photo}) whose hole ratio is in ({lo}, {hi}], after "
            f"{cfg.steps} Adam steps of batch {cfg.batch_size} on random crops of seven "
            f"photographs: hole {metric.upper()} Conv {statistics.fmean(conv):.2f} {unit}, "
            f"PConv {statistics.fmean(pconv):.2f} {unit}; scikit-image's biharmonic "
            f"inpainting {bih:.2f} {unit} (paper, Places2 at 512x512: PConv's figure in the "
            "card)"
        ),
    )


def _figure(by: dict, seeds: list[int], classic: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sotazoo.papers.partialconv.masks import HOLE_BINS

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric, ylabel in ((axes[0], "psnr", "hole PSNR (dB)"),
                               (axes[1], "l1", "hole L1 (% of range)")):  # fmt: skip
        bins = sorted({int(b) for a in ARMS for s in seeds for b in by[a, s]["bins"]})
        xs = [f"{HOLE_BINS[b][0]}-{HOLE_BINS[b][1]}" for b in bins]
        for arm, colour in (("conv", "#777777"), ("pconv", "#d62728")):
            vals = [statistics.fmean(_value(by[arm, s], b, metric) for s in seeds) for b in bins]
            ax.plot(xs, vals, "o-", color=colour, label=ARM_LABEL[arm].split(" (")[0])
        ax.plot(xs, [classic.get(b, {}).get(metric, float("nan")) for b in bins], "s--",
                color="#1f77b4", label="biharmonic")  # fmt: skip
        ax.set_xlabel("hole ratio", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
