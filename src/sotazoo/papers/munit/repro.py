"""MUNIT at laptop scale: does sampling style codes give diverse translations of one input, and at
what cost in quality, against the same networks with the style path removed?

The paper (abstract, §1, Table 1): unsupervised translators that learn a deterministic mapping
give one output per input; MUNIT recombines the input's content code with random style codes of
the target domain and so gives many (edges->shoes LPIPS diversity 0.109, against 0.293 between
random pairs of real shoes; Table 1, whose quality column is a human preference test).

Here (`data.py`): domain A = edge maps of scikit-learn's digits, domain B = the same digits
painted in a random bright colour on a random dark background, 32x32, unpaired; B given A is
multimodal by construction (the colours are independent of the shape). Two arms per seed, with
the same networks, initial weights, batches, steps and optimiser, differing only in the loss
(`method.MunitLoss`):
- "munit": the official objective (edges2shoes weights: GAN 1, image 10, style 1, content 1);
- "deterministic": `style=False`, the style path removed: every style code decoded is zero
  (translations, reconstructions), no style reconstruction term (method.py says exactly what it
  is: the counterpart of the paper's deterministic baselines, not one of its Table 1 rows).
Scored (`evaluate.py`) on the 359 held-out digits, never trained on, in the FID proxy's feature
space taken per colour channel (192 numbers; LPIPS needs ImageNet weights that cannot be had
offline): diversity = mean distance between pairs of the 5 translations of one edge map with
random style codes, over 100 edge maps; quality = proxy FID of 2 translations of every held-out
edge map against 718 held-out real coloured digits; digit top-1 of the translations (content
kept) beside them. The deterministic arm is translated with its one style code, 0.

The rule, fixed before the full run: `style_code_diversity`'s effect per seed is the diversity of
MUNIT minus that of the deterministic arm, judged by `sotazoo.repro.RULE` on its sign only (a
distance in a digit classifier's features of 32x32 images is on another scale than LPIPS on
photographs). The deterministic arm's diversity is 0 by construction (one output per input, as
the paper says of such translators), so what the verdict decides is whether MUNIT's trained
decoder keeps using its style code in every seed, i.e. does not learn to ignore it (what §1
says generators fed extra noise usually do). Its size is reported beside the
paper's as a fraction of the real data's diversity over random pairs (the paper: 0.109 / 0.293 =
37%), with the real diversity given the shape (what a perfect translator would reach) as the
ceiling. Quality is measured and reported, not judged: the paper's quality figures are human
preferences from Table 1, which has not been read (the card's claims say so), so the card has no
number to put the proxy FID beside.

Budget: 2 arms x 3 seeds of `steps` iterations at batch 8 in two single-thread worker processes;
munit_mini at width 8 (dim 8, mlp_dim 32, one residual block, discriminators of width 8: 232k
generator parameters against munit_mini's 1.24M). Timed on the shared 2-core machine before the
full run: 0.14 s of CPU an iteration for MUNIT and 0.12 s for the ablation, 2-3 s an
evaluation, so about 6 minutes of both cores. The first full run used 883 s of CPU (7.4 minutes
of both cores); its wall time, 20 minutes, was that of a machine shared with four to six other
busy processes. The learning rate, 4e-4, was chosen by a pilot of the full method alone
(train.LAPTOP_LR); the ablation was not piloted.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from sotazoo.papers.munit.evaluate import EvalConfig
from sotazoo.papers.munit.method import MunitLoss
from sotazoo.repro import Outcome, judged_claim

DEFAULT_SEEDS = (0, 1, 2)
ARMS = ("deterministic", "munit")  # the ablation first
ARM_LABEL = {"munit": "MUNIT (random style codes)",
             "deterministic": "deterministic (style path removed)"}  # fmt: skip
ARM_COLOUR = {"munit": "#c0392b", "deterministic": "#7f8c8d"}
CLAIM_DIVERSITY = "style_code_diversity"
PAPER_DIVERSITY, PAPER_REAL_DIVERSITY = 0.109, 0.293  # Table 1, edges->shoes (card, unverified)
GRID_INPUTS, GRID_STYLES = 6, 5  # the figure's samples: first seed, first held-out edge maps


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    steps: int = 900
    batch_size: int = 8
    # munit_mini overrides: width 8, one residual block, discriminators of width 8
    model: dict = field(default_factory=lambda: {"dim": 8, "mlp_dim": 32, "n_res": 1,
                                                 "dis_dim": 8})  # fmt: skip
    eval: EvalConfig = field(default_factory=EvalConfig)
    workers: int = 2


QUICK = ReproConfig(steps=3, batch_size=4, eval=EvalConfig(inputs=12, k=3, fid_styles=1),
                    workers=1)  # fmt: skip


def arm_config(arm: str, cfg: ReproConfig):
    """The `train.MunitTrainConfig` of one arm: the same but for the loss's `style` switch."""
    from sotazoo.papers.munit.train import MunitTrainConfig

    return MunitTrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, model=dict(cfg.model),
                            loss=MunitLoss(style=arm == "munit"))  # fmt: skip


@dataclass(frozen=True)
class _Job:
    arm: str
    seed: int
    cfg: object  # MunitTrainConfig
    eval: EvalConfig
    grid: bool  # return the figure's samples


@lru_cache(maxsize=2)
def _evaluator(cfg: EvalConfig):
    from sotazoo.papers.munit.evaluate import Evaluator

    return Evaluator(cfg)


def _run_job(job: _Job) -> dict:
    from sotazoo.papers.munit.train import train_munit
    from sotazoo.train.parallel import tick

    model, _, log = train_munit(job.cfg, seed=job.seed, evaluator=_evaluator(job.eval),
                                on_step=tick)  # fmt: skip
    out = {"arm": job.arm, "seed": job.seed, **log["final"], "diverged": log["diverged"],
           "train_seconds": log["train_seconds"], "eval_seconds": log["eval_seconds"],
           "last_losses": log["losses"][-1] if log["losses"] else {}}  # fmt: skip
    if job.grid:
        out["grid"] = _samples(model, job.cfg.loss.style, job.eval)
    return out


def _samples(model, style: bool, cfg: EvalConfig) -> list:
    """GRID_INPUTS held-out edge maps, each followed by its translations with GRID_STYLES style
    codes: (inputs, 1 + styles, 3, H, W) as nested lists."""
    import torch

    from sotazoo.papers.munit.evaluate import eval_styles, translate

    x_a = _evaluator(cfg).x_a[:GRID_INPUTS]
    s = eval_styles(GRID_INPUTS * GRID_STYLES, model.cfg.style_dim, style=style)
    y = translate(model, x_a.repeat_interleave(GRID_STYLES, 0), s).clamp(-1, 1)
    y = y.reshape(GRID_INPUTS, GRID_STYLES, *y.shape[1:])
    return torch.cat([x_a[:, None], y], 1).tolist()


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from sotazoo.train.parallel import run_parallel

    cfg = QUICK if quick else ReproConfig()
    jobs = [_Job(arm, s, arm_config(arm, cfg), cfg.eval, s == seeds[0]) for s in seeds
            for arm in ARMS]  # fmt: skip
    logs = run_parallel(_run_job, jobs, steps=[cfg.steps] * len(jobs), workers=cfg.workers,
                        desc="munit repro", progress=progress)  # fmt: skip
    reference = _evaluator(cfg.eval).reference
    by = {(log["arm"], log["seed"]): log for log in logs}
    keys = ("diversity", "fid", "fid_luma", "content_top1", "train_seconds")
    per_arm = {arm: {"label": ARM_LABEL[arm], **{k: [by[arm, s][k] for s in seeds] for k in keys},
                     "diverged": sum(by[arm, s]["diverged"] for s in seeds),
                     "last_losses": [by[arm, s]["last_losses"] for s in seeds]}
               for arm in ARMS}  # fmt: skip
    grids = {arm: by[arm, seeds[0]]["grid"] for arm in ARMS}
    claims = [_diversity_claim(per_arm, reference, cfg, seeds)]
    details = {"per_arm": per_arm, "reference": reference, "seeds": list(seeds),
               "quality_gap_fid": [m - d for m, d in zip(per_arm["munit"]["fid"],
                                                         per_arm["deterministic"]["fid"],
                                                         strict=True)],
               "features": "FID proxy embedding of each colour channel (192-d), held-out digits"}  # fmt: skip

    def draw(path: Path) -> None:
        draw_figure(details, grids, path)

    config = asdict(cfg) | {"base_model": "munit_mini", "arms": {a: asdict(arm_config(a, cfg))
                                                                for a in ARMS}}  # fmt: skip
    return Outcome(claims=claims, config=config, details=details, draw=draw)


def _diversity_claim(per_arm: dict, reference: dict, cfg: ReproConfig, seeds: list[int]):
    munit, det = per_arm["munit"], per_arm["deterministic"]
    gaps = [m - d for m, d in zip(munit["diversity"], det["diversity"], strict=True)]
    div, div_sd = _stats(munit["diversity"])
    fid = {a: _stats(per_arm[a]["fid"]) for a in ARMS}
    top1 = {a: statistics.fmean(per_arm[a]["content_top1"]) for a in ARMS}
    real_pairs, ceiling = reference["diversity_random_pairs"], reference["diversity_given_shape"]
    paper_frac = PAPER_DIVERSITY / PAPER_REAL_DIVERSITY
    return judged_claim(
        "munit",
        CLAIM_DIVERSITY,
        gaps,
        effect=f"diversity of {cfg.eval.k} translations of one edge map (mean pairwise "
        "distance, proxy features per colour channel), MUNIT − deterministic (per seed)",
        sign_only="a distance in a digit classifier's features of 32x32 images is on another "
        "scale than LPIPS on photographs",
        tested=(
            f"munit_mini at width 8, edge maps -> coloured digits (32x32, unpaired), "
            f"{cfg.steps} iterations of batch {cfg.batch_size}, {len(seeds)} seeds; on the 359 "
            f"held-out digits: diversity MUNIT {div:.3g} ± {div_sd:.3g}, deterministic "
            f"{statistics.fmean(det['diversity']):.3g} (one output per input), i.e. "
            f"{100 * div / real_pairs:.0f}% of the real images' diversity over random pairs "
            f"({real_pairs:.3g}; the paper: {100 * paper_frac:.0f}%) and "
            f"{100 * div / ceiling:.0f}% of the real diversity given the shape ({ceiling:.3g}); "
            f"quality, reported, not judged: proxy FID (colour) MUNIT {fid['munit'][0]:.3g} ± "
            f"{fid['munit'][1]:.3g}, deterministic {fid['deterministic'][0]:.3g} ± "
            f"{fid['deterministic'][1]:.3g} (real vs real {reference['fid']:.3g}); digit "
            f"top-1 of the translations MUNIT {top1['munit']:.0f}%, deterministic "
            f"{top1['deterministic']:.0f}% (real {reference['content_top1']:.0f}%)"
        ),
    )


def draw_figure(details: dict, grids: dict, path: Path) -> None:
    """Diversity and proxy FID per arm (a dot per seed, the mean as a bar, the real data's
    references dashed), and the first seed's translations of the first held-out edge maps."""
    import numpy as np
    from matplotlib.figure import Figure

    per_arm, ref = details["per_arm"], details["reference"]
    fig = Figure(figsize=(12.0, 4.2))
    panels = (("diversity", "diversity (higher: more varied)", 0.05),
              ("fid", "proxy FID, colour (lower: closer to real)", 0.23))  # fmt: skip
    for key, title, x0 in panels:
        ax = fig.add_axes((x0, 0.14, 0.14, 0.72))
        for i, arm in enumerate(ARMS):
            vals = per_arm[arm][key]
            ax.bar(i, statistics.fmean(vals), color=ARM_COLOUR[arm], alpha=0.5, width=0.6)
            ax.plot([i] * len(vals), vals, "o", color=ARM_COLOUR[arm], markersize=4)
        lines = ({"diversity": [("real, given shape", ref["diversity_given_shape"]),
                                ("real, random pairs", ref["diversity_random_pairs"])],
                  "fid": [("real vs real", ref["fid"])]}[key])  # fmt: skip
        for (label, v), style in zip(lines, ("--", ":"), strict=False):
            ax.axhline(v, color="#2c3e50", ls=style, lw=0.9, label=label)
        ax.set_xticks(range(len(ARMS)), ["determ.", "MUNIT"], fontsize=8)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, frameon=False, loc="best")
    for j, arm in enumerate(("munit", "deterministic")):
        imgs = (np.asarray(grids[arm], dtype=np.float32) + 1) / 2  # (inputs, styles, 3, H, W)
        n, k, _, h, w = imgs.shape
        canvas = np.ones((n * (h + 2), k * (w + 2), 3), dtype=np.float32)
        for a in range(n):
            for b in range(k):
                canvas[a * (h + 2) : a * (h + 2) + h, b * (w + 2) : b * (w + 2) + w] = \
                    imgs[a, b].transpose(1, 2, 0)  # fmt: skip
        ax = fig.add_axes((0.42 + 0.29 * j, 0.05, 0.27, 0.85))
        ax.imshow(canvas.clip(0, 1), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{ARM_LABEL[arm]}:\nan edge map, then its translations by style code",
                     fontsize=8)  # fmt: skip
    fig.savefig(path, format="svg")
