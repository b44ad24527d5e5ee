"""SENet at laptop scale: do SE blocks lower a ResNet's error for ~10% more parameters and <1% more
multiply-adds?

Three parts, each checked against a claim of the card:
1. Accuracy (Table 2, `se_resnet50_top1`): a small SE-ResNet and the same network without SE
   (`se="none"`, the paper's own ablation) are trained with the same budget on shapes-in-clutter
   (`sotazoo.data.shapes`), one fresh training set per seed, one fixed held-out test set. We
   compare test error per seed.
2. Cost (Table 10 and Table 2, `se_resnet50_params`, `se_resnet50_gflops`): the real SE-ResNet-50
   and ResNet-50 (the same builder with `se="none"`) are counted: parameters, and multiply-adds
   with torch.utils.flop_counter. These are exact, so there are no seeds.
3. Speed (§4, `se_resnet50_cpu_ms`): CPU latency of both at batch 1, 224×224, timed interleaved.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from sotazoo.bench import count_gmacs, count_params, time_interleaved
from sotazoo.data import make_shapes
from sotazoo.repro import Measured, Outcome, claim_result
from sotazoo.train import TrainConfig, evaluate, fit

DEFAULT_SEEDS = (0, 1, 2, 3, 4)
TEST_SEED = 99_999  # the held-out set: never a training seed


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    n_train: int = 3000
    n_test: int = 2000
    image_size: int = 32
    clutter: int = 2
    noise: float = 0.05
    layers: tuple[int, ...] = (2, 2, 2)  # seresnet_mini: a 20-layer SE-ResNet
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=20, batch_size=64, lr=0.05, warmup_epochs=2)
    )
    timing_reps: int = 15


QUICK = ReproConfig(
    n_train=200,
    n_test=200,
    layers=(1, 1, 1),
    train=TrainConfig(epochs=1, batch_size=50, lr=0.05, warmup_epochs=0),
    timing_reps=2,
)
ARMS = ("none", "standard")  # ablation first
ARM_LABEL = {"none": "ResNet (no SE)", "standard": "SE-ResNet"}


def _data(cfg: ReproConfig, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_shapes(n, size=cfg.image_size, seed=seed, clutter=cfg.clutter, noise=cfg.noise)
    return torch.from_numpy(x), torch.from_numpy(y)


def _normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x - mean) / std


def _accuracy_part(cfg: ReproConfig, seeds: list[int], bar) -> dict[str, list[float]]:
    from sotazoo.registry import create_model

    x_test, y_test = _data(cfg, cfg.n_test, TEST_SEED)
    errors: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for seed in seeds:
        x, y = _data(cfg, cfg.n_train, 1000 + seed)
        mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
        x, xt = _normalise(x, mean, std), _normalise(x_test, mean, std)
        for arm in ARMS:
            torch.manual_seed(seed)  # same seed, same init for the layers both arms share
            model = create_model("seresnet_mini", se=arm, layers=cfg.layers)
            fit(model, x, y, cfg.train, seed=seed, on_step=lambda: bar.update(1))
            errors[arm].append(100.0 * (1.0 - evaluate(model, xt, y_test)))
    return errors


def _cost_part(cfg: ReproConfig, bar) -> dict[str, dict[str, float]]:
    from sotazoo.registry import create_model

    nets = {arm: create_model("seresnet50", se=arm).eval() for arm in ARMS}
    cost = {
        arm: {"params_m": count_params(m) / 1e6, "gmacs": count_gmacs(m, (3, 224, 224))}
        for arm, m in nets.items()
    }
    x = torch.randn(1, 3, 224, 224)
    times = time_interleaved(list(nets.values()), x, warmup=2, reps=cfg.timing_reps,
                             progress=bar.update)  # fmt: skip
    for arm, t in zip(ARMS, times, strict=True):
        cost[arm]["latency_ms"] = 1e3 * statistics.median(t)
        cost[arm]["latency_per_rep_ms"] = [1e3 * v for v in t]
    return cost


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from tqdm.auto import tqdm

    cfg = QUICK if quick else ReproConfig()
    steps = len(seeds) * len(ARMS) * cfg.train.epochs * -(-cfg.n_train // cfg.train.batch_size)
    with tqdm(total=steps + cfg.timing_reps, desc="senet repro", disable=not progress) as bar:
        errors = _accuracy_part(cfg, seeds, bar)
        cost = _cost_part(cfg, bar)

    # 1. Accuracy. Rule: the error drop (ResNet − SE-ResNet, in points) must be positive on
    # average, in at least 80% of the seeds, and larger than one standard error of the mean.
    drops = [b - s for b, s in zip(errors["none"], errors["standard"], strict=True)]
    m = Measured.of(drops, "points of test error removed by SE (ResNet − SE-ResNet)")
    wins = sum(d > 0 for d in drops) / len(drops)
    sem = m.std / len(drops) ** 0.5 if len(drops) > 1 else float("inf")
    if m.mean > 0 and wins >= 0.8 and m.mean > sem:
        verdict = "reproduced"
    elif m.mean > 0:
        verdict = "partly"
    else:
        verdict = "not reproduced"
    acc = claim_result(
        "senet",
        "se_resnet50_top1",
        tested=(
            f"test error of a {sum(cfg.layers) * 3 + 2}-layer SE-ResNet vs the same network "
            f"without SE on shapes-in-clutter ({cfg.n_train} training / {cfg.n_test} held-out "
            f"32x32 images, {cfg.train.epochs} epochs); ResNet "
            f"{statistics.fmean(errors['none']):.1f}% -> SE-ResNet "
            f"{statistics.fmean(errors['standard']):.1f}% (paper: drop of 1.51 points)"
        ),
        measured=m,
        verdict=verdict,
        rule="reproduced if the mean drop > 0, SE wins in >= 80% of seeds and the mean drop "
        "exceeds its standard error; partly if only the mean drop > 0; else not reproduced",
    )

    # 2. Cost, exact. Params: within 1 point of the paper's +9.8% (28.1M vs 25.6M);
    # multiply-adds: under the 1% the paper states.
    base, se = cost["none"], cost["standard"]
    p_over = 100 * (se["params_m"] / base["params_m"] - 1)
    paper_p = 100 * (28.1 / 25.6 - 1)
    params = claim_result(
        "senet",
        "se_resnet50_params",
        tested=f"parameters of our SE-ResNet-50 vs ResNet-50 (se='none'): "
        f"{base['params_m']:.3f}M -> {se['params_m']:.3f}M",
        measured=Measured.of([p_over], "% more parameters"),
        verdict="reproduced" if abs(p_over - paper_p) <= 1.0 else "not reproduced",
        rule=f"reproduced if the overhead is within 1 point of the paper's {paper_p:.2f}%",
    )
    f_over = 100 * (se["gmacs"] / base["gmacs"] - 1)
    flops = claim_result(
        "senet",
        "se_resnet50_gflops",
        tested=f"multiply-adds at 224x224 (flop_counter / 2): {base['gmacs']:.4f} -> "
        f"{se['gmacs']:.4f} GMACs",
        measured=Measured.of([f_over], "% more multiply-adds"),
        verdict="reproduced" if 0 <= f_over < 1.0 else "not reproduced",
        rule="reproduced if SE adds between 0% and 1% multiply-adds",
    )

    # 3. Speed. The paper measured +1.8% (164 -> 167 ms); timing on a shared 2-core machine is
    # noisy, so: reproduced within 5%, partly within 15%, else not reproduced.
    t_med = 100 * (se["latency_ms"] / base["latency_ms"] - 1)
    speed = claim_result(
        "senet",
        "se_resnet50_cpu_ms",
        tested=f"CPU latency at batch 1, 224x224, interleaved: ResNet-50 "
        f"{base['latency_ms']:.1f} ms -> SE-ResNet-50 {se['latency_ms']:.1f} ms "
        f"(median overhead {t_med:+.1f}%)",
        measured=Measured.of([t_med], "% more latency (median of interleaved runs)"),
        verdict="reproduced" if t_med <= 5 else "partly" if t_med <= 15 else "not reproduced",
        rule="paper: +1.8%; reproduced if the median overhead <= 5%, partly if <= 15%",
    )

    details = {
        "test_error_percent": {ARM_LABEL[a]: errors[a] for a in ARMS},
        "seresnet50_cost": {ARM_LABEL[a]: cost[a] for a in ARMS},
    }

    def draw(path: Path) -> None:
        _figure(errors, cost, path)

    config = asdict(cfg) | {"arms": list(ARMS)}
    return Outcome(claims=[acc, params, flops, speed], config=config, details=details, draw=draw)


def _figure(errors: dict[str, list[float]], cost: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
    for i, arm in enumerate(ARMS):
        vals = errors[arm]
        ax1.bar(i, statistics.fmean(vals), color=("#999999", "#d62728")[i], alpha=0.6)
        ax1.plot([i] * len(vals), vals, "ko", ms=3)
    for vals in zip(*(errors[a] for a in ARMS), strict=True):
        ax1.plot(range(len(ARMS)), vals, "k-", lw=0.5, alpha=0.5)  # one line per seed
    ax1.set_xticks(range(len(ARMS)), [ARM_LABEL[a] for a in ARMS])
    ax1.set_ylabel("test error (%)")
    ax1.set_title("shapes-in-clutter, same budget", fontsize=9)
    labels = ["params (M)", "GMACs", "latency (ms)"]
    keys = ["params_m", "gmacs", "latency_ms"]
    base = [cost["none"][k] for k in keys]
    rel = [100 * (cost["standard"][k] / b - 1) for k, b in zip(keys, base, strict=True)]
    ax2.bar(labels, rel, color="#d62728", alpha=0.6)
    ax2.axhline(0, color="k", lw=0.5)
    ax2.set_ylabel("SE-ResNet-50 over ResNet-50 (%)")
    ax2.set_title("cost of SE at full size (224x224)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
