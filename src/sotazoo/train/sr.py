"""Training and evaluating super-resolution networks on the bundled photographs.

One loop for every SR paper's reproduction and demo recipe: L1 loss (EDSR §4.2, DBPN's code),
Adam, random aligned patches (`sotazoo.data.sr_photos.PatchSampler`), the learning rate halved
at fixed fractions of the run (EDSR halves it every 2x10^5 of 10^6 updates, DBPN divides it by
10 at half the run); evaluation on the held-out photographs with the benchmark protocol: output
rounded to uint8, PSNR and SSIM on Y with `scale` border pixels cropped
(`sotazoo.metrics.sr`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True, kw_only=True)
class SRTrainConfig:
    steps: int = 1000
    batch_size: int = 16  # EDSR §4.2, DBPN main.py
    lr_patch: int = 24  # LR side of a training patch (EDSR: 48, DBPN: 32)
    lr: float = 1e-4  # Adam (EDSR §4.2: 1e-4, beta 0.9/0.999, eps 1e-8)
    halve_at: tuple[float, ...] = (0.5, 0.75)  # fractions of the run where lr is halved
    eval_every: int = 0  # 0: evaluate only at the end

    def to_dict(self) -> dict:
        return asdict(self)


def _mean_scores(pairs: list[tuple[str, np.ndarray, np.ndarray]], scale: int, upscale) -> dict:
    """Mean PSNR / SSIM (Y, border `scale`) of `upscale(LR uint8) -> SR uint8` over the
    (name, LR, HR) uint8 pairs."""
    from sotazoo.metrics.sr import psnr_y, ssim_y

    psnr, ssim = [], []
    for _, lr, hr in pairs:
        sr = upscale(lr)
        psnr.append(psnr_y(sr, hr, scale=scale))
        ssim.append(ssim_y(sr, hr, scale=scale))
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim))}


@torch.inference_mode()
def evaluate_sr(
    model: nn.Module, pairs: list[tuple[str, np.ndarray, np.ndarray]], scale: int
) -> dict[str, float]:
    """Mean PSNR / SSIM of `model` on the pairs, its output rounded to uint8 first."""
    from sotazoo.data.sr_photos import to_tensor
    from sotazoo.metrics.sr import tensor_to_uint8

    model.eval()
    device = next(model.parameters()).device
    return _mean_scores(
        pairs, scale, lambda lr: tensor_to_uint8(model(to_tensor(lr)[None].to(device))[0])
    )


def evaluate_bicubic(pairs: list[tuple[str, np.ndarray, np.ndarray]], scale: int) -> dict:
    """The papers' 'Bicubic' row: the LR image upscaled by MATLAB-style bicubic."""
    from sotazoo.resize import imresize_matlab, to_uint8

    return _mean_scores(
        pairs,
        scale,
        lambda lr: to_uint8(imresize_matlab(lr, float(scale), quantize_between_passes=True)),
    )


def train_sr(
    model: nn.Module,
    cfg: SRTrainConfig,
    *,
    scale: int,
    seed: int,
    test_pairs: list | None = None,
    on_step=None,
) -> dict:
    """Train `model` with L1 on patches of the training photographs (build it with
    `sotazoo.train.seeded_model` so that its initialisation is seeded too); returns its log (losses
    every 50 steps, held-out PSNR every `eval_every` steps, seconds spent training). Runs on
    the GPU when torch sees one (the model is moved there)."""
    from sotazoo.data.sr_photos import PatchSampler

    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    sampler = PatchSampler(scale, cfg.lr_patch, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    milestones = {int(f * cfg.steps) for f in cfg.halve_at}
    log: dict = {"config": cfg.to_dict(), "seed": seed, "loss": [], "curve": []}
    seconds, running = 0.0, 0.0
    for step in range(1, cfg.steps + 1):
        model.train()
        t0 = time.perf_counter()
        lr, hr = (t.to(device) for t in sampler.batch(cfg.batch_size))
        loss = (model(lr) - hr).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in milestones:
            for group in opt.param_groups:
                group["lr"] /= 2
        seconds += time.perf_counter() - t0
        running += loss.item()
        if step % 50 == 0:
            log["loss"].append({"step": step, "l1": round(running / 50, 5)})
            running = 0.0
        if test_pairs and cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            log["curve"].append({"step": step, **evaluate_sr(model, test_pairs, scale)})
        if on_step is not None:
            on_step()
    log["train_seconds"] = round(seconds, 1)
    log["device"] = str(device)
    if test_pairs:
        log["final"] = evaluate_sr(model, test_pairs, scale)
        log["curve"].append({"step": cfg.steps, **log["final"]})
    return log


def recipe_summary(log: dict, bicubic: dict, scale: int) -> tuple[dict, dict]:
    """(metrics, log fields) of a demo-weights recipe: held-out PSNR/SSIM beside bicubic's."""
    metrics = {
        "heldout_psnr_y": round(log["final"]["psnr"], 3),
        "heldout_ssim_y": round(log["final"]["ssim"], 4),
        "bicubic_psnr_y": round(bicubic["psnr"], 3),
        "bicubic_ssim_y": round(bicubic["ssim"], 4),
    }
    fields = {
        "held_out": "astronaut, coffee, chelsea (whole images, LR by MATLAB-style bicubic); "
        f"PSNR/SSIM on Y, {scale} border pixels cropped",
        "train_seconds": log["train_seconds"],
        "loss": log["loss"],
        "curve": log["curve"],
    }
    return metrics, fields


def psnr_bars(details: dict, arms: list[tuple[str, str]], path) -> None:
    """A reproduction's figure: one panel per scale, bicubic then each arm, bars at the mean
    PSNR over seeds and one dot per seed. `details[scale]` holds "bicubic" and, per arm, the
    list of its runs under `arms[i][0]`; `arms[i][1]` is its short label."""
    import statistics

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(details), figsize=(4 * len(details), 3.2))
    axes = axes if len(details) > 1 else [axes]
    for ax, (scale, d) in zip(axes, details.items(), strict=True):
        labels = ["bicubic", *(short for _, short in arms)]
        values = [[d["bicubic"]["psnr"]]] + [[r["psnr"] for r in d[key]] for key, _ in arms]
        colours = ["#999999", "#1f77b4", "#d62728"]
        for i, (vals, c) in enumerate(zip(values, colours, strict=True)):
            ax.bar(i, statistics.fmean(vals), color=c, alpha=0.5, width=0.6)
            ax.plot([i] * len(vals), vals, "o", color=c, markersize=4)
        lo = min(min(v) for v in values)
        hi = max(max(v) for v in values)
        ax.set_ylim(lo - 0.3, hi + 0.2)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_title(f"{scale}: held-out photographs", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("PSNR on Y (dB)")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def repro_details(results: dict[int, dict], seeds: list[int], labels: dict[str, str]) -> dict:
    """The `details` of an SR reproduction's result: per scale, bicubic's metrics and, under
    each arm's label, one entry per seed (final PSNR/SSIM, training seconds, losses, and the
    self-ensemble's metrics where the run has them). `results[scale]` holds "bicubic" and
    "runs" (arm -> the `train_sr` logs of the seeds)."""
    details = {}
    for scale, r in results.items():
        per_arm = {}
        for arm, label in labels.items():
            per_arm[label] = [
                {"seed": s, **log["final"], "train_seconds": log["train_seconds"],
                 "loss": log["loss"], **({"ensemble": log["ensemble"]} if "ensemble" in log
                                         else {})}
                for s, log in zip(seeds, r["runs"][arm], strict=True)
            ]  # fmt: skip
        details[f"x{scale}"] = {"bicubic": r["bicubic"], **per_arm}
    return details
