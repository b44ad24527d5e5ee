"""Relation Networks at laptop scale: on Sort-of-CLEVR, does a CNN with a relation module answer
relational questions that the same CNN with an MLP cannot, while both handle the others?

The paper (§5.3, App. D): CNN+RN above 94% on both kinds of question; CNN+MLP as good on
non-relational questions but stuck at 63% on relational ones. Here both models are the laptop
versions (`rn_mini`, `cnn_mlp_mini`: the same 24-kernel CNN, g/f widths 128), trained with the
paper's optimiser (Adam, lr 1e-4, batch 64) for the same number of steps on the same generated
scenes, a fresh training set per seed and one fixed held-out set of 200 scenes (4,000 questions),
relational and non-relational accuracy reported apart. Learning curves are recorded, so the
result says how far each model got in the time it had.

`python -m sotazoo.papers.relation_networks.repro --steps N --out PATH` runs one seed of the same
experiment for longer, to measure how long the separation takes on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from sotazoo.data.sort_of_clevr import QUESTION_DIM, make_sort_of_clevr
from sotazoo.repro import Measured, Outcome, claim_result

DEFAULT_SEEDS = (0, 1, 2)
TEST_SEED = 99_999  # the held-out scenes: never a training seed
ARMS = ("mlp", "rn")  # baseline first
ARM_LABEL = {"mlp": "CNN+MLP", "rn": "CNN+RN"}
MODEL = {"mlp": "cnn_mlp_mini", "rn": "rn_mini"}


@dataclass(frozen=True, kw_only=True)
class ReproConfig:
    n_train_images: int = 4000  # x 20 questions
    n_test_images: int = 200
    steps: int = 1500  # per arm and seed; the MLP is ~4x cheaper per step than the RN
    batch_size: int = 64  # App. D
    lr: float = 1e-4  # App. D (Adam)
    eval_every: int = 500


QUICK = ReproConfig(n_train_images=40, n_test_images=10, steps=4, eval_every=2)


def as_tensors(data: dict) -> dict[str, torch.Tensor]:
    return {
        "images": torch.from_numpy(data["images"]),
        "questions": torch.from_numpy(data["questions"]).reshape(-1, QUESTION_DIM),
        "answers": torch.from_numpy(data["answers"]).reshape(-1),
        "relational": torch.from_numpy(data["relational"]).reshape(-1),
        "per_image": data["questions"].shape[1],
    }


@torch.inference_mode()
def evaluate(model: torch.nn.Module, test: dict, batch: int = 500) -> tuple[float, float]:
    """(relational, non-relational) accuracy in % on every question of `test`."""
    model.eval()
    k = test["per_image"]
    preds = []
    for i in range(0, len(test["questions"]), batch):
        idx = torch.arange(i, min(i + batch, len(test["questions"])))
        preds.append(model(test["images"][idx // k], test["questions"][idx]).argmax(1))
    ok = torch.cat(preds) == test["answers"]
    rel = test["relational"]
    return 100 * ok[rel].float().mean().item(), 100 * ok[~rel].float().mean().item()


def train_arm(
    arm: str, cfg: ReproConfig, train: dict, test: dict, seed: int, on_step=None, on_eval=None
) -> dict:
    """Train one model; return its learning curve and final accuracies."""
    from sotazoo.registry import create_model

    torch.manual_seed(seed)
    model = create_model(MODEL[arm])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(seed)
    k = train["per_image"]
    curve, seconds = [], 0.0
    for step in range(1, cfg.steps + 1):
        model.train()
        t0 = time.perf_counter()
        idx = torch.randint(0, len(train["questions"]), (cfg.batch_size,), generator=g)
        loss = F.cross_entropy(
            model(train["images"][idx // k], train["questions"][idx]), train["answers"][idx]
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - t0
        if step % cfg.eval_every == 0 or step == cfg.steps:
            rel, non = evaluate(model, test)
            curve.append({"step": step, "train_seconds": round(seconds, 1), "relational": rel,
                          "non_relational": non, "loss": round(loss.item(), 4)})  # fmt: skip
            if on_eval is not None:
                on_eval(arm, curve[-1])
        if on_step is not None:
            on_step()
    return {"curve": curve, "relational": curve[-1]["relational"],
            "non_relational": curve[-1]["non_relational"], "train_seconds": seconds,
            "model": model}  # fmt: skip


def run(*, quick: bool, seeds: list[int], progress: bool = True) -> Outcome:
    from tqdm.auto import tqdm

    cfg = QUICK if quick else ReproConfig()
    test = as_tensors(make_sort_of_clevr(cfg.n_test_images, seed=TEST_SEED))
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    total = len(seeds) * len(ARMS) * cfg.steps
    with tqdm(total=total, desc="relation_networks repro", disable=not progress) as bar:
        for seed in seeds:
            train = as_tensors(make_sort_of_clevr(cfg.n_train_images, seed=1000 + seed))
            for arm in ARMS:
                r = train_arm(arm, cfg, train, test, seed, on_step=lambda: bar.update(1))
                r.pop("model")
                runs[arm].append(r)

    def acc(arm: str, kind: str) -> list[float]:
        return [r[kind] for r in runs[arm]]

    # 1. Relational questions. The direction: the RN's accuracy minus the MLP's, per seed, is
    # positive on average, in at least 80% of the seeds, and larger than its standard error.
    # The level: the paper's RN is above 94%; ours must reach 90% to count as reproduced.
    gaps = [a - b for a, b in zip(acc("rn", "relational"), acc("mlp", "relational"), strict=True)]
    m = Measured.of(gaps, "points of relational accuracy, CNN+RN − CNN+MLP")
    sem = m.std / len(gaps) ** 0.5 if len(gaps) > 1 else float("inf")
    wins = sum(g > 0 for g in gaps) / len(gaps)
    direction = m.mean > 0 and wins >= 0.8 and m.mean > sem
    level = statistics.fmean(acc("rn", "relational")) >= 90
    verdict = "reproduced" if direction and level else "partly" if m.mean > 0 else "not reproduced"
    n_q = cfg.n_test_images * 20
    rel = claim_result(
        "relation_networks",
        "sort_of_clevr_relational",
        tested=(
            f"relational accuracy on {n_q // 2} held-out questions after {cfg.steps} steps of "
            f"batch {cfg.batch_size} each ({cfg.n_train_images} training scenes): CNN+MLP "
            f"{statistics.fmean(acc('mlp', 'relational')):.1f}% vs CNN+RN "
            f"{statistics.fmean(acc('rn', 'relational')):.1f}% (paper: 63% vs >94%, trained "
            "to convergence)"
        ),
        measured=m,
        verdict=verdict,
        rule="reproduced if the RN wins by more than the standard error of the mean gap, in >= 80% "
        "of seeds, and reaches 90% relational accuracy (the paper: >94%); partly if the mean gap "
        "> 0 only; else not reproduced",
    )
    # 2. Non-relational questions: the paper's point is that the gap is specific to relational
    # questions, with both models above 94% on the others. Reproduced: the non-relational gap
    # is smaller than the relational one by more than their standard errors together, and both
    # models reach 90%; partly: smaller on average only.
    non_gaps = [
        a - b
        for a, b in zip(acc("rn", "non_relational"), acc("mlp", "non_relational"), strict=True)
    ]
    mn = Measured.of(non_gaps, "points of non-relational accuracy, CNN+RN − CNN+MLP")
    sem_n = mn.std / len(non_gaps) ** 0.5 if len(non_gaps) > 1 else float("inf")
    both_high = min(statistics.fmean(acc(a, "non_relational")) for a in ARMS) >= 90
    if m.mean - mn.mean > sem + sem_n and both_high:
        non_verdict = "reproduced"
    elif mn.mean < m.mean:
        non_verdict = "partly"
    else:
        non_verdict = "not reproduced"
    non = claim_result(
        "relation_networks",
        "sort_of_clevr_non_relational",
        tested=(
            f"non-relational accuracy on {n_q // 2} held-out questions, same runs: CNN+MLP "
            f"{statistics.fmean(acc('mlp', 'non_relational')):.1f}% vs CNN+RN "
            f"{statistics.fmean(acc('rn', 'non_relational')):.1f}% (paper: both >94%)"
        ),
        measured=mn,
        verdict=non_verdict,
        rule="reproduced if the RN's non-relational advantage is smaller than its relational one "
        "by more than both standard errors and both models reach 90%; partly if it is smaller on "
        "average only; else not reproduced",
    )
    details = {
        "curves": {ARM_LABEL[a]: [r["curve"] for r in runs[a]] for a in ARMS},
        "train_seconds": {
            ARM_LABEL[a]: [round(r["train_seconds"], 1) for r in runs[a]] for a in ARMS
        },  # fmt: skip
    }

    def draw(path: Path) -> None:
        _figure(runs, path)

    config = asdict(cfg) | {"arms": [MODEL[a] for a in ARMS]}
    return Outcome(claims=[rel, non], config=config, details=details, draw=draw)


def _figure(runs: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, kind, title in zip(axes, ("relational", "non_relational"),
                               ("relational questions", "non-relational questions"), strict=True):  # fmt: skip
        for arm, colour in zip(ARMS, ("#999999", "#d62728"), strict=True):
            for i, r in enumerate(runs[arm]):
                xs = [p["step"] for p in r["curve"]]
                ax.plot(xs, [p[kind] for p in r["curve"]], color=colour, alpha=0.8,
                        label=ARM_LABEL[arm] if i == 0 else None)  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training steps (batch 64)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """One long seed: how many steps (and seconds) until CNN+RN pulls away from CNN+MLP."""
    from sotazoo.fileio import write_json_atomic
    from sotazoo.provenance import git_commit, machine

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--train-images", type=int, default=9800)  # App. D: 9,800 training scenes
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    cfg = ReproConfig(n_train_images=a.train_images, steps=a.steps, eval_every=a.eval_every)
    test = as_tensors(make_sort_of_clevr(cfg.n_test_images, seed=TEST_SEED))
    train = as_tensors(make_sort_of_clevr(cfg.n_train_images, seed=1000 + a.seed))
    path = Path(a.out)
    # Arms run separately (or by `sotazoo train rn_mini`) land in the same file: keep the others.
    out = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"curves": {}}
    out.update(config=asdict(cfg), seed=a.seed, machine=machine())
    commit, _ = git_commit()
    for arm in a.arms:
        out.setdefault("git_commit", {})[ARM_LABEL[arm]] = commit
    for arm in a.arms:
        r = train_arm(arm, cfg, train, test, a.seed,
                      on_eval=lambda arm, point: print(ARM_LABEL[arm], point, flush=True))  # fmt: skip
        r.pop("model")
        out["curves"][ARM_LABEL[arm]] = r["curve"]
        write_json_atomic(out, path)  # after each arm: an interrupted run keeps the first
        print(f"{ARM_LABEL[arm]}: {r['curve'][-1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
