"""Learning to See in the Dark at laptop scale: does the U-Net fed the raw sensor data of a dark,
short exposure beat a traditional pipeline with a classic denoiser, and the same network fed
that pipeline's 8-bit sRGB render?

Data, simulated offline from the photographs that ship with scikit-image (`sotazoo.data.
sr_photos`): each sample is a 128x128 sRGB crop (the long-exposure reference) and the Bayer raw
of a short exposure of it (`raw.simulate_short_exposure`: the sRGB transfer function inverted,
the white balance undone, RGGB mosaic, Poisson shot noise at 4 DN per electron, Gaussian read
noise of 6 DN, 14 bits, black level 512), the exposure ratio drawn from the paper's x100, x250
and x300. Training crops come from the seven training photographs with one of the 8 flips and
rotations, fresh noise each time; the test set is 20 fixed crops of each held-out photograph
(astronaut, coffee, chelsea) at each of the three ratios (180 pairs), the same for every seed.

Arms:
- "raw": `sid_mini` (485,868 parameters) on the packed, amplified raw (`raw.pack_bayer`,
  `raw.amplify`: 4 x 64 x 64), as the paper;
- "srgb": the same network fed the traditional pipeline's 8-bit render (below) rearranged 2x2
  into 12 channels at 64 x 64 (only its first convolution is wider: 486,444 parameters), the
  paper's "sRGB input" ablation;
- "pipeline": no network: the amplified raw demosaiced (bilinear), the white balance applied
  (the simulator's gains, known exactly: a help the paper's baseline did not have), the sRGB
  transfer function, 8-bit rounding, then scikit-image's non-local means (`denoise_nl_means`,
  fast mode, 5x5 patches, search distance 6) with its strength h chosen per ratio from
  (0.02, 0.05, 0.1, 0.2) by PSNR on 16 training crops. Not BM3D, the paper's denoiser: its PyPI
  package is licensed for non-commercial use only, which this MIT project cannot depend on.
Both networks: L1 loss, Adam at 1e-3, the rate divided by 10 halfway (the paper: 1e-4, then
1e-5 after half of its 4,000 epochs), batch 8, 600 steps; outputs clipped to [0, 1] at test.

Measured: PSNR and SSIM (scikit-image, RGB, data range 1) against the sRGB reference, means
over the 180 test pairs (and per ratio in the details).

The rules, written before any full run: per seed, the effect of `sony_psnr` is the raw arm's
PSNR minus the better of the two others' (the "srgb" arm of the same seed, the seed-independent
"pipeline"), in dB; of `sony_ssim` the same in SSIM; judged by `sotazoo.repro.RULE` on the sign
only (simulated 128 px crops are not the SID Sony test set, whose absolute figures the claims
give). The card has no verified figure for the sRGB-input ablation; it decides through "the
better of the two" and is shown on its own in the details.

Budget: 5 seeds x 2 networks = 10 runs in two single-thread worker processes, and the pipeline
once in the parent. From timings on the busy 2-core machine, before any result was seen: a step
at batch 8 takes about 0.11 s on one thread for either network, simulating a batch 0.01 s;
600 steps about 70 s a run with its test, about 6 minutes on two workers, plus the pipeline's
non-local means (about 1-2 minutes).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from sotazoo.repro import Outcome, judged_claim

DEFAULT_SEEDS = (0, 1, 2, 3, 4)
LONG_SEEDS = (0, 1, 2)  # `--long`: the same arms 4x longer, as curves (long_run)
LONG_STEPS = 2400
LONG_EVALS = (300, 600, 1200, 1800, 2400)  # steps at which the test set is scored
TEST_SEED = 99_999  # the test crops and their noise: never a training seed
RATIOS = (100, 250, 300)  # the paper's amplification ratios (Sony)
NETS = ("srgb", "raw")  # the trained arms, ablation first
ARM_LABEL = {"pipeline": "pipeline + non-local means", "srgb": "U-Net on the 8-bit sRGB render",
             "raw": "U-Net on raw (SID)"}  # fmt: skip
H_GRID = (0.02, 0.05, 0.1, 0.2)
SIGN_ONLY = ("simulated 128 px crops of bundled photographs are on another scale than the SID "
             "Sony test set")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    crop: int = 128  # sRGB side; the packed input is half
    test_per_photo: int = 20
    tune_crops: int = 16  # training crops that choose the pipeline's denoiser strength
    steps: int = 600
    batch_size: int = 8
    lr: float = 1e-3
    workers: int = 2


QUICK = ReproConfig(test_per_photo=1, tune_crops=2, steps=2, batch_size=2, workers=1)


# ---------------------------------------------------------------- data


def _to_input(srgb: np.ndarray, ratio: int, rng: np.random.Generator) -> np.ndarray:
    """The raw arm's input for one sRGB crop: (4, h/2, w/2) packed and amplified."""
    from sotazoo.papers.sid import raw

    return raw.amplify(raw.pack_bayer(raw.simulate_short_exposure(srgb, ratio, rng)), ratio)


def render_srgb(packed: np.ndarray) -> np.ndarray:
    """The traditional pipeline without denoising: amplified packed raw (4, h, w) -> (2h, 2w, 3)
    uint8 sRGB (bilinear demosaic of the RGGB mosaic, the simulator's white balance, the sRGB
    transfer function)."""
    from scipy.ndimage import convolve

    from sotazoo.papers.sid import raw

    mosaic = raw.unpack_bayer(packed).astype(np.float64)
    h, w = mosaic.shape
    masks = np.zeros((3, h, w))
    masks[0, 0::2, 0::2] = 1
    masks[1, 0::2, 1::2] = masks[1, 1::2, 0::2] = 1
    masks[2, 1::2, 1::2] = 1
    k_rb = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    k_g = np.array([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])
    rgb = np.stack([convolve(mosaic * masks[c], k_g if c == 1 else k_rb, mode="mirror")
                    for c in range(3)], axis=2)  # fmt: skip
    rgb = rgb * np.asarray(raw.WHITE_BALANCE)
    return np.round(raw.linear_to_srgb(np.clip(rgb, 0, 1)) * 255).astype(np.uint8)


def space_to_depth(img: np.ndarray) -> np.ndarray:
    """(2h, 2w, 3) uint8 -> (12, h, w) float32 in [0, 1]: the sRGB arm's input."""
    x = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255
    return F.pixel_unshuffle(x, 2)[0].numpy()


def _crops(names, n: int, size: int, rng: np.random.Generator, augment: bool) -> list:
    from sotazoo.data.sr_photos import photograph

    photos = [photograph(p) for p in names]
    areas = np.array([p.shape[0] * p.shape[1] for p in photos], dtype=np.float64)
    out = []
    for k in rng.choice(len(photos), size=n, p=areas / areas.sum()):
        img = photos[k]
        y = int(rng.integers(0, img.shape[0] - size + 1))
        x = int(rng.integers(0, img.shape[1] - size + 1))
        a = img[y : y + size, x : x + size]
        if augment:
            t = int(rng.integers(0, 8))
            a = np.rot90(a[:, ::-1] if t & 1 else a, t >> 1)
        out.append(np.ascontiguousarray(a))
    return out


@lru_cache(maxsize=2)
def test_set(cfg: ReproConfig) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(ratio, packed amplified raw, sRGB reference uint8) for every test crop and ratio."""
    from sotazoo.data.sr_photos import TEST_NAMES

    rng = np.random.default_rng(TEST_SEED)
    crops = []
    for name in TEST_NAMES:
        crops += _crops((name,), cfg.test_per_photo, cfg.crop, rng, augment=False)
    return [(r, _to_input(c, r, rng), c) for r in RATIOS for c in crops]


class Batches:
    """Training batches from one seed: (raw input, sRGB-arm input, target) float32 tensors."""

    def __init__(self, cfg: ReproConfig, seed: int) -> None:
        self.cfg, self.rng = cfg, np.random.default_rng(seed)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from sotazoo.data.sr_photos import TRAIN_NAMES

        crops = _crops(TRAIN_NAMES, self.cfg.batch_size, self.cfg.crop, self.rng, augment=True)
        ratios = self.rng.choice(RATIOS, size=len(crops))
        raws = [_to_input(c, int(r), self.rng) for c, r in zip(crops, ratios, strict=True)]
        srgb = [space_to_depth(render_srgb(p)) for p in raws]
        target = np.stack([c.transpose(2, 0, 1) for c in crops]).astype(np.float32) / 255
        return (torch.from_numpy(np.stack(raws)), torch.from_numpy(np.stack(srgb)),
                torch.from_numpy(target))  # fmt: skip


# ---------------------------------------------------------------- metrics


def scores(outputs: list[np.ndarray], cfg: ReproConfig) -> dict:
    """PSNR and SSIM of (H, W, 3) outputs in [0, 1] against the test references: means overall
    and per ratio."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    per = {"psnr": [], "ssim": []}
    for out, (_, _, ref) in zip(outputs, test_set(cfg), strict=True):
        gt = ref.astype(np.float64) / 255
        per["psnr"].append(peak_signal_noise_ratio(gt, out, data_range=1.0))
        per["ssim"].append(structural_similarity(gt, out, channel_axis=2, data_range=1.0))
    ratios = [r for r, _, _ in test_set(cfg)]
    return {
        **{k: statistics.fmean(v) for k, v in per.items()},
        "per_ratio": {str(r): {k: statistics.fmean(x for x, rr in zip(v, ratios, strict=True)
                                                   if rr == r) for k, v in per.items()}
                      for r in RATIOS},  # fmt: skip
    }


# ---------------------------------------------------------------- the arms


@dataclass(frozen=True)
class Job:
    arm: str
    seed: int
    cfg: ReproConfig
    evals: tuple[int, ...] = ()  # the long run: also score the test set after these steps


def _test_scores(model, arm: str, cfg: ReproConfig) -> dict:
    """The network's PSNR/SSIM on the test set (outputs clipped to [0, 1])."""
    outputs = []
    with torch.no_grad():
        for _, packed, _ in test_set(cfg):
            x = packed if arm == "raw" else space_to_depth(render_srgb(packed))
            y = model(torch.from_numpy(x)[None])[0].clamp(0, 1)
            outputs.append(y.permute(1, 2, 0).double().numpy())
    return scores(outputs, cfg)


def train_job(job: Job) -> dict:
    """Train one network for one seed; its scores on the test set."""
    import time

    from sotazoo.papers.sid.model import sid_mini
    from sotazoo.train.parallel import tick

    cfg = job.cfg
    torch.manual_seed(job.seed)
    model = sid_mini(in_chans=4 if job.arm == "raw" else 12)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [cfg.steps // 2], gamma=0.1)
    data = Batches(cfg, seed=job.seed)  # the same crops, ratios and noise for both networks
    t0, loss, curve = time.perf_counter(), float("nan"), []
    for step in range(1, cfg.steps + 1):
        raw_in, srgb_in, target = data.batch()
        out = model(raw_in if job.arm == "raw" else srgb_in)
        total = (out - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        sched.step()
        loss = float(total.detach())
        if step in job.evals and step < cfg.steps:  # no BatchNorm or dropout: no mode switch
            curve.append({"step": step, **_test_scores(model, job.arm, cfg)})
        tick()
    seconds = time.perf_counter() - t0
    final = _test_scores(model, job.arm, cfg)
    if job.evals:
        curve.append({"step": cfg.steps, **final})
    return {"arm": job.arm, "seed": job.seed, "final_loss": loss,
            "train_seconds": round(seconds, 1), **final, "curve": curve}  # fmt: skip


def _denoise(img: np.ndarray, h: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(img.astype(np.float64) / 255, h=h, fast_mode=True, patch_size=5,
                            patch_distance=6, channel_axis=2)  # fmt: skip


def pipeline(cfg: ReproConfig) -> dict:
    """The traditional pipeline + non-local means, its strength chosen per ratio on training
    crops (seeded apart from every training seed); its scores on the test set."""
    from skimage.metrics import peak_signal_noise_ratio

    from sotazoo.data.sr_photos import TRAIN_NAMES

    rng = np.random.default_rng(TEST_SEED + 1)
    tune = _crops(TRAIN_NAMES, cfg.tune_crops, cfg.crop, rng, augment=False)
    chosen = {}
    for r in RATIOS:
        rendered = [(render_srgb(_to_input(c, r, rng)), c) for c in tune]
        psnr = {h: statistics.fmean(peak_signal_noise_ratio(c / 255, _denoise(x, h), data_range=1)
                                    for x, c in rendered) for h in H_GRID}  # fmt: skip
        chosen[r] = max(H_GRID, key=psnr.__getitem__)
    outputs = [_denoise(render_srgb(p), chosen[r]) for r, p, _ in test_set(cfg)]
    return {"arm": "pipeline", "h": {str(r): h for r, h in chosen.items()}, **scores(outputs, cfg)}


# ---------------------------------------------------------------- the experiment


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    jobs = [Job(arm, s, cfg) for s in seeds for arm in NETS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as run_parallel's workers; `workers=1` trains in this process
    try:
        logs = run_parallel(train_job, jobs, steps=[cfg.steps] * len(jobs), workers=cfg.workers,
                            desc="sid repro", progress=progress)  # fmt: skip
        base = pipeline(cfg)
    finally:
        torch.set_num_threads(threads)
    by = {(r["arm"], r["seed"]): r for r in logs}
    claims = [_claim(cid, metric, by, base, seeds, cfg)
              for cid, metric in (("sony_psnr", "psnr"), ("sony_ssim", "ssim"))]  # fmt: skip
    details = {
        "psnr": {ARM_LABEL[a]: [by[a, s]["psnr"] for s in seeds] for a in NETS}
        | {ARM_LABEL["pipeline"]: base["psnr"]},
        "ssim": {ARM_LABEL[a]: [by[a, s]["ssim"] for s in seeds] for a in NETS}
        | {ARM_LABEL["pipeline"]: base["ssim"]},
        "srgb_ablation_psnr_gap": [by["raw", s]["psnr"] - by["srgb", s]["psnr"] for s in seeds],
        "pipeline": base,
        "runs": logs,
    }

    def draw(path: Path) -> None:
        _figure(by, base, seeds, path)

    config = asdict(cfg) | {"ratios": list(RATIOS), "nlm_h_grid": list(H_GRID)}
    return Outcome(claims=claims, config=config, details=details, draw=draw)


def long_run(*, quick: bool, seeds: list[int], progress: bool = True):
    """`sotazoo repro sid --long`: the two networks trained LONG_STEPS steps (4x the full
    run's, the rate divided by 10 halfway), scored on the same test set along the way; the
    pipeline beside them. Curves, no verdict: it says whether the full run's ordering holds
    with more training."""
    from dataclasses import replace

    from sotazoo.repro import LongOutcome
    from sotazoo.train.parallel import run_parallel

    cfg = replace(QUICK if quick else ReproConfig(), steps=4 if quick else LONG_STEPS)
    evals = (2, 4) if quick else LONG_EVALS
    jobs = [Job(arm, s, cfg, evals) for s in seeds for arm in NETS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        logs = run_parallel(train_job, jobs, steps=[cfg.steps] * len(jobs), workers=cfg.workers,
                            desc="sid long run", progress=progress)  # fmt: skip
        base = pipeline(cfg)
    finally:
        torch.set_num_threads(threads)
    curves = {
        f"{ARM_LABEL[log['arm']]}, seed {log['seed']}": {
            "step": [c["step"] for c in log["curve"]],
            "psnr": [c["psnr"] for c in log["curve"]],
            "ssim": [c["ssim"] for c in log["curve"]],
        }
        for log in logs
    }
    curves[ARM_LABEL["pipeline"]] = {"step": [0], "psnr": [base["psnr"]], "ssim": [base["ssim"]]}
    summary = [
        f"{ARM_LABEL[arm]}: PSNR after {cfg.steps} steps per seed "
        + ", ".join(f"{log['psnr']:.2f}" for log in logs if log["arm"] == arm)
        + " dB; SSIM "
        + ", ".join(f"{log['ssim']:.3f}" for log in logs if log["arm"] == arm)
        for arm in NETS
    ] + [f"{ARM_LABEL['pipeline']}: PSNR {base['psnr']:.2f} dB, SSIM {base['ssim']:.3f}"]
    return LongOutcome(
        what=f"the full run's two networks trained {cfg.steps} steps (the full run: "
        f"{ReproConfig().steps}), scored on its {len(test_set(cfg))} simulated test exposures "
        f"after {', '.join(map(str, evals))} steps; the pipeline + non-local means beside them",
        config=asdict(cfg) | {"evals": list(evals)},
        curves=curves,
        summary=summary,
        details={"runs": logs, "pipeline": base},
    )


def _claim(cid: str, metric: str, by: dict, base: dict, seeds: list[int], cfg: ReproConfig):
    raw_ = [by["raw", s][metric] for s in seeds]
    srgb = [by["srgb", s][metric] for s in seeds]
    effects = [r - max(g, base[metric]) for r, g in zip(raw_, srgb, strict=True)]
    unit = ", dB" if metric == "psnr" else ""
    fmt = (lambda v: f"{v:.2f} dB") if metric == "psnr" else (lambda v: f"{v:.3f}")
    return judged_claim(
        "sid",
        cid,
        effects,
        effect=f"{metric.upper()} of the raw-input U-Net minus the better of the two baselines "
        f"(the same U-Net on the 8-bit sRGB render, the pipeline + non-local means){unit}",
        sign_only=SIGN_ONLY,
        tested=(
            f"{metric.upper()} on {len(test_set(cfg))} simulated short exposures (x100, x250, x300) "
            f"of 128 px crops of three held-out photographs, after {cfg.steps} Adam steps of "
            f"batch {cfg.batch_size}: U-Net on raw {fmt(statistics.fmean(raw_))}, the same on "
            f"the sRGB render {fmt(statistics.fmean(srgb))}, pipeline + non-local means "
            f"{fmt(base[metric])} (paper: the SID Sony test set, the card's figure)"
        ),
    )


def _figure(by: dict, base: dict, seeds: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, metric in zip(axes, ("psnr", "ssim"), strict=True):
        xs = [str(r) for r in RATIOS]
        for arm, colour in (("srgb", "#777777"), ("raw", "#d62728")):
            vals = [statistics.fmean(by[arm, s]["per_ratio"][x][metric] for s in seeds) for x in xs]
            ax.plot(xs, vals, "o-", color=colour, label=ARM_LABEL[arm])
        ax.plot(xs, [base["per_ratio"][x][metric] for x in xs], "s--", color="#1f77b4",
                label=ARM_LABEL["pipeline"])  # fmt: skip
        ax.set_xlabel("amplification ratio", fontsize=8)
        ax.set_ylabel(metric.upper(), fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
