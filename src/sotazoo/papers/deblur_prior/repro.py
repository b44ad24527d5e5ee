"""The discriminative deblurring prior at laptop scale: does the learned classifier tell clear
images from blurred ones far better than the L0 count of gradients (Figure 1), and does the
blind solver with it beat the same solver without it (Section 7.2, Figure 10b)?

Data, made offline from the photographs that ship with scikit-image (`sotazoo.data.sr_photos`,
in grayscale): training crops from the seven training photographs, test crops from the three
held-out ones (astronaut, coffee, chelsea), the same for every seed. Blur (`blur.py`): a bank of
random camera-shake kernels (the paper: 200 Boracchi-Foi kernels of 7x7 to 51x51 on 200 px
crops; here 200 kernels of 7x7 to 21x21 on 64 px crops), valid convolution, Gaussian noise of
sigma 0.01 (the paper's).

The classifier (`deblur_prior_mini`: the paper's layers at 16 channels, since the solver
back-propagates through it some 5,000 times per image): binary cross-entropy, label 1 = blurred,
batches of 32 crops, half blurred, each batch shrunk by a random factor in [0.25, 1] (the
paper's multi-scale training, Section 3.4); Adam at 1e-3 for 1,500 steps (the paper: SGD with
momentum for 150+ epochs of 100,000 images, which 10 minutes cannot hold).

Claim `clear_blurred_ratio` (Figure 1): on 60 test pairs (a 64 px clear crop and its blurred
version, both rounded to 8 bits as image files are), the mean over pairs of f(clear) / f(blurred)
for the learned prior and of ||grad clear||_0 / ||grad blurred||_0 (pixels whose forward
differences are not both zero) for the L0 gradient prior. Effect per seed: the L0 ratio minus
the learned one (the paper: 0.85 - 0.03 = 0.82 on its one example).

Claim `prior_ablation` (Figure 10b): 10 test images of 96 px, each blurred by its own 15x15
kernel, deblurred blind (`solver.deblur`, 15x15 support) with and without the learned prior
(lambda = 0.004 against 0, everything else equal). Measured on each: the PSNR of the final
image against the clear one, at the best integer shift within 3 pixels (a blind estimate is
defined up to a translation) and without a 15-pixel border; the kernel similarity of Hu and Yang
(`blur.kernel_similarity`); and Levin's error ratio (the squared error of the final image over
that of the same deconvolution with the true kernel). Effect per seed: the mean PSNR with the
prior minus without it, in dB, judged on the sign only (the paper's Figure 10b gives success
rates over error ratios on Levin's set, another measure on other images). The solver without
the prior is deterministic and the same for every seed; the seeds train different classifiers.

Budget: 4 seeds in two single-thread worker processes, each training its classifier (1,500
steps, about 1 minute) and deblurring the 10 images with it (about 16 s each with the prior's
4,800 back-propagations); the solver without the prior (about 1 s an image) and the L0 ratios
once in the parent. A trial run with 600 training steps took 340 s on the 2-core machine; its
classifiers scored the clear crops 0.53-0.74 times the blurred ones (the paper: 0.03), and a
classifier of twice the width, which separated them better, would have made the solver too
slow for four seeds.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from sotazoo.repro import Outcome, judged_claim

DEFAULT_SEEDS = (0, 1, 2, 3)
TEST_SEED = 99_999  # test crops, kernels and noise: never a training seed
BANK_SIZES = (7, 9, 11, 13, 15, 17, 19, 21)  # the training kernels' sides
SHIFT = 3  # PSNR at the best integer shift within this many pixels
PAPER_L0_RATIO, PAPER_LEARNED_RATIO = 0.85, 0.03  # Figure 1's caption
SIGN_ONLY = ("Figure 10b gives success rates over error ratios on Levin's set; ours is the PSNR "
             "of simulated 96 px crops")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    crop: int = 64  # classifier training crops (the paper: 200)
    bank: int = 200  # training kernels (the paper's count)
    steps: int = 1500
    batch_size: int = 32  # the paper: 50
    lr: float = 1e-3
    noise: float = 0.01  # the paper's
    pairs: int = 60  # clear/blurred test pairs for the score ratios
    test_size: int = 96  # deblurred test images' side
    test_images: int = 10
    kernel_size: int = 15  # the test kernels' and the solver's support
    workers: int = 2


QUICK = ReproConfig(crop=32, bank=4, steps=2, batch_size=4, pairs=2, test_size=32,
                    test_images=1, kernel_size=7, workers=1)  # fmt: skip


# ---------------------------------------------------------------- data


@cache
def gray(name: str) -> np.ndarray:
    """A bundled photograph in grayscale, float64 in [0, 1] (scikit-image's rgb2gray)."""
    from skimage.color import rgb2gray

    from sotazoo.data.sr_photos import photograph

    return rgb2gray(photograph(name))


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    y = int(rng.integers(0, img.shape[0] - size + 1))
    x = int(rng.integers(0, img.shape[1] - size + 1))
    return img[y : y + size, x : x + size]


def kernel_bank(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    from sotazoo.papers.deblur_prior.blur import shake_kernel

    return [shake_kernel(int(rng.choice(BANK_SIZES)), rng) for _ in range(n)]


def blurred_pair(img: np.ndarray, size: int, kernel: np.ndarray, noise: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A (clear, blurred) pair of `size` crops at the same place: the blur is real blur of the
    larger crop around it (valid convolution), plus noise."""
    from sotazoo.papers.deblur_prior.blur import blur

    k = kernel.shape[0]
    big = _crop(img, size + k - 1, rng)
    return big[k // 2 : k // 2 + size, k // 2 : k // 2 + size], blur(big, kernel, noise, rng)


class Patches:
    """The classifier's training batches of one seed: (x (B, 1, s, s) float32, y (B,)), the odd
    positions blurred, the whole batch shrunk by a random factor in [0.25, 1]."""

    def __init__(self, cfg: ReproConfig, seed: int) -> None:
        from sotazoo.data.sr_photos import TRAIN_NAMES

        self.cfg, self.rng = cfg, np.random.default_rng(seed)
        self.bank = kernel_bank(cfg.bank, self.rng)
        self.photos = [gray(n) for n in TRAIN_NAMES]

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, rng = self.cfg, self.rng
        xs, ys = [], []
        for i in range(cfg.batch_size):
            img = self.photos[int(rng.integers(len(self.photos)))]
            clear, blurred = blurred_pair(img, cfg.crop, self.bank[int(rng.integers(len(self.bank)))],
                                          cfg.noise, rng)  # fmt: skip
            xs.append(blurred if i % 2 else clear)
            ys.append(float(i % 2))
        x = torch.from_numpy(np.stack(xs)).float()[:, None]
        scale = float(rng.uniform(0.25, 1.0))
        size = max(8, round(cfg.crop * scale))
        if size < cfg.crop:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        return x, torch.tensor(ys)


def _to_8bit(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0, 1) * 255) / 255


@lru_cache(maxsize=2)
def score_pairs(cfg: ReproConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """The fixed (clear, blurred) test pairs of the score ratios, rounded to 8 bits."""
    from sotazoo.data.sr_photos import TEST_NAMES

    rng = np.random.default_rng(TEST_SEED)
    bank = kernel_bank(max(8, cfg.pairs // 4), rng)
    out = []
    for i in range(cfg.pairs):
        clear, blurred = blurred_pair(gray(TEST_NAMES[i % 3]), cfg.crop, bank[i % len(bank)],
                                      cfg.noise, rng)  # fmt: skip
        out.append((_to_8bit(clear), _to_8bit(blurred)))
    return out


@lru_cache(maxsize=2)
def test_set(cfg: ReproConfig) -> list[dict]:
    """The fixed deblurring test images: clear, blurred and the true kernel."""
    from sotazoo.data.sr_photos import TEST_NAMES
    from sotazoo.papers.deblur_prior.blur import shake_kernel

    rng = np.random.default_rng(TEST_SEED + 1)
    out = []
    for i in range(cfg.test_images):
        k = shake_kernel(cfg.kernel_size, rng)
        clear, blurred = blurred_pair(gray(TEST_NAMES[i % 3]), cfg.test_size, k, cfg.noise, rng)
        out.append({"photo": TEST_NAMES[i % 3], "clear": clear, "blurred": blurred, "kernel": k})
    return out


# ---------------------------------------------------------------- metrics


def l0_count(img: np.ndarray) -> int:
    """||grad img||_0: pixels whose forward differences (x and y, last row and column
    excluded) are not both zero."""
    dx, dy = np.diff(img, axis=1)[:-1], np.diff(img, axis=0)[:, :-1]
    return int(((dx != 0) | (dy != 0)).sum())


def aligned_psnr(clear: np.ndarray, est: np.ndarray, border: int) -> float:
    """PSNR (data range 1) at the best integer shift within SHIFT pixels, without `border`."""
    from skimage.metrics import peak_signal_noise_ratio

    c = clear[border:-border, border:-border]
    return max(peak_signal_noise_ratio(c, np.roll(est, (dy, dx), (0, 1))[border:-border, border:-border],
                                       data_range=1.0)
               for dy in range(-SHIFT, SHIFT + 1) for dx in range(-SHIFT, SHIFT + 1))  # fmt: skip


def deblur_scores(cfg: ReproConfig, prior=None) -> list[dict]:
    """Blind deblurring of every test image (with `prior`, or without: lambda = 0)."""
    from sotazoo.papers.deblur_prior.blur import kernel_similarity
    from sotazoo.papers.deblur_prior.solver import SolverConfig, deblur, deconvolve
    from sotazoo.train.parallel import tick

    scfg = SolverConfig(kernel_size=cfg.kernel_size, lam=0.004 if prior is not None else 0.0)
    out = []
    for t in test_set(cfg):
        r = deblur(t["blurred"], scfg, prior)
        b = cfg.kernel_size
        psnr = aligned_psnr(t["clear"], r.image, b)
        ref = aligned_psnr(t["clear"], deconvolve(t["blurred"], t["kernel"], scfg.final_weight).clip(0, 1), b)
        out.append({"psnr": psnr, "ks": kernel_similarity(r.kernel, t["kernel"]),
                    "error_ratio": 10 ** ((ref - psnr) / 10)})  # fmt: skip
        tick()
    return out


def _summary(runs: list[dict]) -> dict:
    return {"psnr": statistics.fmean(r["psnr"] for r in runs),
            "ks": statistics.fmean(r["ks"] for r in runs),
            "success_er2": statistics.fmean(r["error_ratio"] <= 2 for r in runs)}  # fmt: skip


# ---------------------------------------------------------------- the arms


def train_classifier(cfg: ReproConfig, seed: int):
    from sotazoo.papers.deblur_prior.model import deblur_prior_mini
    from sotazoo.train.parallel import tick

    torch.manual_seed(seed)
    model = deblur_prior_mini()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data = Patches(cfg, seed)
    loss = float("nan")
    for _ in range(cfg.steps):
        x, y = data.batch()
        total = F.binary_cross_entropy_with_logits(model.logit(x), y)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        loss = float(total.detach())
        tick()
    return model.eval(), loss


def learned_ratios(model, cfg: ReproConfig) -> list[float]:
    with torch.no_grad():
        return [float(model.score(torch.from_numpy(c).float()[None, None])
                      / model.score(torch.from_numpy(b).float()[None, None]))
                for c, b in score_pairs(cfg)]  # fmt: skip


def seed_job(job: tuple[int, ReproConfig]) -> dict:
    """One seed: train its classifier, its score ratios, the solver with it on the test set."""
    import time

    from sotazoo.papers.deblur_prior.solver import classifier_prior

    seed, cfg = job
    t0 = time.perf_counter()
    model, loss = train_classifier(cfg, seed)
    ratios = learned_ratios(model, cfg)
    runs = deblur_scores(cfg, classifier_prior(model))
    return {"seed": seed, "final_loss": loss, "learned_ratio": statistics.fmean(ratios),
            "runs": runs, **_summary(runs), "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    steps = cfg.steps + cfg.test_images
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as run_parallel's workers; `workers=1` runs in this process
    try:
        logs = run_parallel(seed_job, [(s, cfg) for s in seeds], steps=[steps] * len(seeds),
                            workers=cfg.workers, desc="deblur_prior repro", progress=progress)  # fmt: skip
        base_runs = deblur_scores(cfg)
    finally:
        torch.set_num_threads(threads)
    base = _summary(base_runs)
    l0 = statistics.fmean(l0_count(c) / l0_count(b) for c, b in score_pairs(cfg))
    by = {r["seed"]: r for r in logs}
    claims = [
        judged_claim(
            "deblur_prior",
            "clear_blurred_ratio",
            [l0 - by[s]["learned_ratio"] for s in seeds],
            effect="the L0 gradient prior's ratio ||grad clear||_0 / ||grad blurred||_0 minus the "
            "learned prior's f(clear) / f(blurred), means over the test pairs",
            paper_effect=PAPER_L0_RATIO - PAPER_LEARNED_RATIO,
            tested=f"{len(score_pairs(cfg))} pairs of {cfg.crop} px crops of three held-out "
            f"photographs, clear and blurred (8-bit): L0 ratio {l0:.3f}, learned ratio per seed "
            + ", ".join(f"{by[s]['learned_ratio']:.3f}" for s in seeds)
            + f" (paper, one example: {PAPER_L0_RATIO} and {PAPER_LEARNED_RATIO})",
        ),
        judged_claim(
            "deblur_prior",
            "prior_ablation",
            [by[s]["psnr"] - base["psnr"] for s in seeds],
            effect="mean PSNR of the blind solver's final image with the learned prior minus "
            "without it (lambda = 0.004 against 0), dB",
            sign_only=SIGN_ONLY,
            tested=f"{cfg.test_images} simulated blurred {cfg.test_size} px crops of three "
            f"held-out photographs, {cfg.kernel_size}x{cfg.kernel_size} kernels: without the "
            f"prior {base['psnr']:.2f} dB, kernel similarity {base['ks']:.3f}; with it "
            f"{statistics.fmean(by[s]['psnr'] for s in seeds):.2f} dB, kernel similarity "
            f"{statistics.fmean(by[s]['ks'] for s in seeds):.3f} (paper: Levin's set, success "
            f"rates over error ratios)",
        ),
    ]
    details = {
        "l0_ratio": l0,
        "learned_ratio": [by[s]["learned_ratio"] for s in seeds],
        "without_prior": base | {"runs": base_runs},
        "with_prior": {str(s): {k: v for k, v in by[s].items() if k != "seed"} for s in seeds},
        "kernel_similarity_gain": [by[s]["ks"] - base["ks"] for s in seeds],
    }

    def draw(path: Path) -> None:
        _figure(by, base, base_runs, seeds, path)

    return Outcome(claims=claims, config=asdict(cfg), details=details, draw=draw)


def _figure(by: dict, base: dict, base_runs: list[dict], seeds: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ks", "kernel similarity")):
        xs = [r[key] for r in base_runs]
        for s in seeds:
            ax.scatter(xs, [r[key] for r in by[s]["runs"]], s=10, label=f"seed {s}")
        lo, hi = min(xs + [r[key] for s in seeds for r in by[s]["runs"]]), max(
            xs + [r[key] for s in seeds for r in by[s]["runs"]])  # fmt: skip
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"{label}, L0 only", fontsize=8)
        ax.set_ylabel(f"{label}, L0 + learned prior", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
