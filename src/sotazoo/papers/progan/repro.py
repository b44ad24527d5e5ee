"""ProGAN at laptop scale: does growing progressively reach a given quality sooner than training
the full-size network from the start?

The paper (§6.2, Fig. 4a-b): at 128x128 on CelebA, adding progressive growing to Gulrajani et
al.'s WGAN-GP setup roughly halves the training time and converges to a better optimum (SWD);
toward 1024x1024 the progressive run has shown 6.4M images after 96 hours where the
non-progressive one would need about 520 (Fig. 4c). Here: `progan_mini` (16x16x1, latent 32) on
the training digits of `sotazoo.data.digits`, two arms per seed with the same loss, optimiser,
batch, data order and number of real images shown (`total_images`):
- "progressive": grown 4x4 -> 8x8 -> 16x16, each fade-in and stabilisation `phase_images` long,
  then trained on at 16x16 (`train.ProGANTrainConfig`);
- "full-size": the builder's default 16x16 network from the first step.
Every `eval_every_images` the EMA generator's proxy FID (1,000 samples, fixed latents) against
the HELD-OUT digits is recorded with the training wall-clock time (evaluation excluded) of that
run. Runs go two at a time in single-thread worker processes, so each run's clock is its own
(both arms share the machine with one other run alike).

The rules, written before the full run:
- target FID = `target_factor` x the proxy FID of 1,000 training digits reduced to 4x4 and
  enlarged back (real digits with only 4x4 detail: what the progressive arm's first stage can at
  best draw), against the same held-out statistics; computed in the run, not hard-coded.
- `progressive_128_time_factor`: per seed, the speed-up = the full-size arm's training time to
  first reach the target / the progressive arm's (an arm that never reaches it counts its whole
  run: a bound), judged by the one rule of `sotazoo.repro.RULE` as a log-ratio against the
  paper's 2x. (Until the rule, this claim also asked for the target reached in every seed and a
  lower final FID; those are still reported in the claim's text.)
- `speedup_1024_hours`: per seed, the full-size arm's training time for `total_images` / the
  progressive arm's, judged by the same rule against the paper's 520/96 = 5.4x. The paper's
  factor comes from 8 doublings and ours from 2, so a smaller factor is expected: the rule then
  says "partly", which is what it is.
Stability (reported, not judged): the spread of the final FID over seeds, the worst FID of the
last third of each run, and divergences.

Piloted before the rules were fixed, on the method only (the progressive arm, seed 0, the
config below, one thread on a shared machine; the full-size arm was not piloted): proxy FID 21
at initialisation, 19-35 at 4x4, 15 at best at 8x8, 12.6 when the schedule ends (24,576 images),
8.3 at 26,112, 5.1 after 36,000 images; 129 s of training wall-clock (99 s CPU) and digits that
read as digits. The 4x4-detail reference was 35.5, so a target of a quarter of it (8.9) asks for
16x16 detail that no low-resolution stage reaches, and the pilot reached it at 72% of its images
with room to spare. The budget: three seeds of both arms (about 100 s and, from the step times,
about 140 s of single-thread CPU per run, plus ~12 s of evaluation) in two workers is about 7
minutes on 2 idle cores.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sotazoo.repro import Measured, Outcome, card_effect, judged_claim

DEFAULT_SEEDS = (0, 1, 2)
ARMS = ("full", "progressive")  # the baseline first
ARM_LABEL = {"full": "full-size 16x16 from the start", "progressive": "progressive 4→8→16"}
ARM_COLOUR = {"full": "#7f8c8d", "progressive": "#c0392b"}
GRID = 6  # the figure's sample grids: GRID x GRID images of the first seed


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    phase_images: int = 6_000  # each fade-in and stabilisation of the progressive arm
    total_images: int = 36_000  # both arms; the progressive schedule ends after 24,000
    eval_every_images: int = 1_536
    eval_samples: int = 1_000
    target_factor: float = 0.25  # target FID = factor x FID(4x4-detail digits)
    workers: int = 2  # single-thread processes running at once


QUICK = ReproConfig(phase_images=64, total_images=384, eval_every_images=64, eval_samples=100,
                    workers=1)  # fmt: skip


def blurred_reference(probe, n: int) -> float:
    """Proxy FID of `n` training digits with only 4x4 detail against the probe's held-out set."""
    from sotazoo.data.digits import load_digits, resample
    from sotazoo.metrics.fid import fid

    x, _ = load_digits(size=16, split="train")
    blurred = resample(resample(x[:n], 4), 16).clamp(-1.0, 1.0)
    return round(fid(probe.real, blurred, features=probe.net), 4)


def run_arm(job: tuple[str, int, ReproConfig]) -> dict[str, Any]:
    """One training run (arm, seed, config); its log, the FID reference and the final samples."""
    from sotazoo.papers.progan.train import FIDProbe, ProGANTrainConfig, train_progan
    from sotazoo.train.parallel import tick

    arm, seed, cfg = job
    probe = FIDProbe(cfg.eval_samples)
    tcfg = ProGANTrainConfig(progressive=arm == "progressive", phase_images=cfg.phase_images,
                             total_images=cfg.total_images, eval_every_images=cfg.eval_every_images,
                             eval_samples=cfg.eval_samples)  # fmt: skip
    g, log = train_progan(tcfg, seed=seed, probe=probe, on_step=tick)
    log["arm"] = arm
    log["blurred_fid"] = blurred_reference(probe, cfg.eval_samples)
    log["grid"] = probe.samples(g, GRID * GRID)[:, 0].numpy()  # (N, 16, 16), not in the JSON
    return log


def time_to(evals: list[dict], target: float) -> float | None:
    """Training seconds at the first evaluation with FID <= target (None: never)."""
    return next((e["seconds"] for e in evals if e["fid"] <= target), None)


def _fid_at_time(evals: list[dict], seconds: float) -> float:
    """FID of the last evaluation made by `seconds` of training."""
    return [e for e in evals if e["seconds"] <= seconds + 1e-9][-1]["fid"]


def _summary(log: dict, target: float) -> dict[str, Any]:
    evals = log["evals"]
    late = [e["fid"] for e in evals if e["images"] >= 2 * log["images"] / 3]
    t = time_to(evals, target)
    return {"final_fid": evals[-1]["fid"], "train_seconds": log["train_seconds"],
            "train_cpu_seconds": log["train_cpu_seconds"], "time_to_target": t,
            "reached_target": t is not None, "worst_late_fid": max(late),
            "best_fid": min(e["fid"] for e in evals), "diverged": log["diverged"],
            "images": log["images"], "blurred_fid": log["blurred_fid"],
            "evals": evals, "losses": log["losses"]}  # fmt: skip


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    cfg = QUICK if quick else ReproConfig()
    from sotazoo.train.parallel import run_parallel

    # Two single-thread workers (as sotazoo.train.detection.run_jobs): each run's clock is its
    # own, and each shares the machine with one other run, whichever arm that is.
    jobs = [(arm, seed, cfg) for seed in seeds for arm in ARMS]
    logs = run_parallel(run_arm, jobs, steps=[cfg.total_images // 16] * len(jobs),
                        workers=cfg.workers, desc="progan repro", progress=progress)  # fmt: skip
    ref = statistics.fmean(log["blurred_fid"] for log in logs)  # the same in every run
    target = round(cfg.target_factor * ref, 4)
    runs = {arm: [_summary(log, target) for log in logs if log["arm"] == arm] for arm in ARMS}
    grids = {arm: next(log["grid"] for log in logs if log["arm"] == arm) for arm in ARMS}

    # ---- time to the target FID
    speedups, bounds = [], []
    for full, prog in zip(runs["full"], runs["progressive"], strict=True):
        t_full = full["train_seconds"] if full["time_to_target"] is None else full["time_to_target"]
        t_prog = prog["train_seconds"] if prog["time_to_target"] is None else prog["time_to_target"]
        speedups.append(round(max(t_full, 1e-3) / max(t_prog, 1e-3), 4))
        bounds.append(not (full["reached_target"] and prog["reached_target"]))
    final = {arm: [r["final_fid"] for r in runs[arm]] for arm in ARMS}
    mean_final = {arm: statistics.fmean(final[arm]) for arm in ARMS}
    gm = _geomean(speedups)
    reached = {arm: sum(r["reached_target"] for r in runs[arm]) for arm in ARMS}
    n = len(seeds)
    claims = [
        judged_claim(
            "progan",
            "progressive_128_time_factor",
            speedups,
            effect="speed-up to the target FID, full-size time / progressive time (per seed)",
            paper_effect=card_effect("progan", "progressive_128_time_factor", ratio=True),
            log=True,
            tested=(
                f"progan_mini on the digits, {cfg.total_images:,} real images per run: training "
                f"time to a proxy FID <= {target:.3g} ({cfg.target_factor} x {ref:.3g}, the FID of "
                f"real digits with 4x4 detail), reached by {reached['progressive']}/{n} "
                f"progressive and {reached['full']}/{n} full-size runs; final FID (held-out, "
                f"{cfg.eval_samples:,} samples) {mean_final['progressive']:.3g} progressive vs "
                f"{mean_final['full']:.3g} full-size; geometric-mean speed-up {gm:.3g}"
                + (" (a bound where an arm never reached the target)" if any(bounds) else "")
            ),
            measured=Measured.of(speedups, "x (time to target: full-size / progressive)"),
        )
    ]

    # ---- wall-clock for the same number of images
    ratios = [round(f["train_seconds"] / p["train_seconds"], 4)
              for f, p in zip(runs["full"], runs["progressive"], strict=True)]  # fmt: skip
    m = Measured.of(ratios, "x (training time for the same images: full-size / progressive)")
    claims.append(
        judged_claim(
            "progan",
            "speedup_1024_hours",
            ratios,
            effect="training time for the same images, full-size / progressive (per seed)",
            paper_effect=card_effect(
                "progan", "speedup_1024_hours", lower_is_better=True, ratio=True
            ),  # fmt: skip
            log=True,
            measured=m,
            tested=(
                f"training wall-clock of each run to show {cfg.total_images:,} real images at "
                f"16x16 (2 doublings; the paper: 8, to 1024x1024), evaluation excluded: "
                f"{statistics.fmean(r['train_seconds'] for r in runs['progressive']):.0f} s "
                f"progressive vs {statistics.fmean(r['train_seconds'] for r in runs['full']):.0f}"
                " s full-size, one thread per run; the paper's factor comes from 8 doublings, "
                "ours from 2, and is compared with it as the rule says"
            ),
        )
    )

    t_end = [p["train_seconds"] for p in runs["progressive"]]
    details = {
        "target_fid": target,
        "blurred_4x4_fid": ref,
        "speedup_per_seed": speedups,
        "speedup_is_bound": bounds,
        "fid_at_equal_time": {  # both arms when the progressive one has finished
            "seconds": t_end,
            "progressive": final["progressive"],
            "full": [_fid_at_time(r["evals"], t) for r, t in zip(runs["full"], t_end, strict=True)],
        },
        "stability": {
            arm: {
                "final_fid_mean": round(mean_final[arm], 4),
                "final_fid_std": round(statistics.stdev(final[arm]), 4) if n > 1 else 0.0,
                "worst_late_fid": [r["worst_late_fid"] for r in runs[arm]],
                "diverged": sum(r["diverged"] for r in runs[arm]),
            }
            for arm in ARMS
        },  # fmt: skip
        "arms": {ARM_LABEL[arm]: {"seeds": list(seeds), "runs": runs[arm]} for arm in ARMS},
    }

    def draw(path: Path) -> None:
        draw_figure(details, grids, path, seeds[0])

    config = asdict(cfg) | {"model": "progan_mini", "seeds": list(seeds),
                            "data": "sotazoo.data.digits 16x16, train split (seed 0)",
                            "fid": f"proxy, EMA generator, {cfg.eval_samples:,} fixed latents, "
                            "held-out split"}  # fmt: skip
    return Outcome(claims=claims, config=config, details=details, draw=draw)


def draw_figure(details: dict, grids: dict, path: Path, seed: int = 0) -> None:
    """FID vs training wall-clock and vs images shown (one line per seed), the target, and the
    final samples of the first seed of each arm."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13.5, 4.2))
    ax_t = fig.add_axes((0.06, 0.13, 0.28, 0.75))
    ax_i = fig.add_axes((0.39, 0.13, 0.28, 0.75), sharey=ax_t)
    for arm in ARMS:
        for k, r in enumerate(details["arms"][ARM_LABEL[arm]]["runs"]):
            fids = [e["fid"] for e in r["evals"]]
            label = ARM_LABEL[arm] if k == 0 else None
            ax_t.plot([e["seconds"] for e in r["evals"]], fids, color=ARM_COLOUR[arm], lw=1.2,
                      alpha=0.85, label=label)  # fmt: skip
            ax_i.plot([e["images"] / 1000 for e in r["evals"]], fids, color=ARM_COLOUR[arm],
                      lw=1.2, alpha=0.85, label=label)  # fmt: skip
    for ax, xlabel in ((ax_t, "training wall-clock (s, one thread)"),
                       (ax_i, "real images shown (thousands)")):  # fmt: skip
        ax.axhline(details["target_fid"], color="#2c3e50", ls="--", lw=0.9)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(labelsize=8)
    ax_t.set_ylabel("proxy FID vs held-out digits (log)", fontsize=9)
    ax_t.legend(fontsize=8, frameon=False, loc="upper right")
    ax_t.set_title(f"time to quality (dashed: target FID {details['target_fid']:.3g})", fontsize=9)
    ax_i.set_title("the same runs against images shown", fontsize=9)
    for j, arm in enumerate(ARMS):  # GRID x GRID samples, one dark pixel between them
        g = np.pad(grids[arm], ((0, 0), (0, 1), (0, 1)), constant_values=-1.0)
        tiles = g.reshape(GRID, GRID, *g.shape[1:]).transpose(0, 2, 1, 3)
        img = tiles.reshape(GRID * g.shape[1], GRID * g.shape[2])
        ax = fig.add_axes((0.70 + 0.15 * j, 0.16, 0.14, 0.66))
        ax.imshow(np.clip((img + 1) / 2, 0, 1), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")  # fmt: skip
        ax.set_title(f"{ARM_LABEL[arm]}\nfinal samples, seed {seed}", fontsize=8)
        ax.axis("off")
    fig.savefig(path, format="svg")
