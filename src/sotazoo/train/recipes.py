"""`sotazoo train MODEL`: run a paper's training recipe and write its weights and log.

A paper's `train.py` provides `RECIPES: dict[model name, Recipe]` (the paper contract): the
training function, which takes `seed`, `budget` (None: the recipe's) and `progress` and returns a
`Trained`, and the one unit its budget is counted in ("epochs", "thousand steps", "kimg", ...),
which `sotazoo train --help` lists. This module writes `<model>.sotazoo.safetensors` and
`<model>.sotazoo.log.json` (config, losses, held-out metrics, sha256, commit, machine) into the
output folder, each atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sotazoo.errors import SotazooError


@dataclass
class Trained:
    model: Any  # torch.nn.Module
    metrics: dict[str, float]
    log: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """A demo-weights recipe: `train(*, seed, budget, progress) -> Trained`, and its budget's
    unit and default (the budget of the committed weights)."""

    train: Callable[..., Trained]
    unit: str  # plural, as the budget is read: "--budget 4" = 4 {unit}
    default: int

    def __call__(self, *, seed: int, budget: int | None, progress: bool) -> Trained:
        return self.train(seed=seed, budget=budget, progress=progress)


def all_recipes() -> dict[str, Recipe]:
    """Every model with a recipe, across the papers (imports their `train.py`)."""
    from sotazoo.papers._contract import paper
    from sotazoo.registry import list_papers

    return {name: r for pid in list_papers() for name, r in paper(pid).recipes.items()}


def run_recipe(
    model_name: str,
    *,
    out_dir: Path | None = None,
    seed: int = 0,
    budget: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    from sotazoo.fileio import write_json_atomic
    from sotazoo.papers._contract import paper
    from sotazoo.provenance import git_commit, machine, versions
    from sotazoo.registry import model_entry
    from sotazoo.weights import home, save_safetensors

    if budget is not None and (not isinstance(budget, int) or budget < 1):
        raise SotazooError(f"budget must be at least 1 (or None for the recipe's), got {budget!r}")
    pid, _ = model_entry(model_name)
    recipes = paper(pid).recipes
    if model_name not in recipes:
        raise SotazooError(
            f"{model_name!r} has no training recipe; models with one: {sorted(recipes) or 'none'}"
        )
    out_dir = out_dir or home() / "trained" / model_name / f"seed{seed}"  # seeds run in parallel
    t0 = time.perf_counter()
    trained: Trained = recipes[model_name](seed=seed, budget=budget, progress=progress)
    weights = out_dir / f"{model_name}.sotazoo.safetensors"
    sha = save_safetensors(trained.model.state_dict(), weights, model=model_name, seed=str(seed))
    commit, dirty = git_commit()
    log = {
        "model": model_name,
        "paper": pid,
        "seed": seed,
        "command": f"sotazoo train {model_name} --seed {seed}"
        + (f" --budget {budget}" if budget else ""),
        "budget": {
            "value": budget or recipes[model_name].default,
            "unit": recipes[model_name].unit,
        },
        "sha256": sha,
        "size_bytes": weights.stat().st_size,
        "metrics": trained.metrics,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": versions(),
        "machine": machine(),
        **trained.log,
    }
    log_path = out_dir / f"{model_name}.sotazoo.log.json"
    write_json_atomic(log, log_path)
    return {"weights": weights, "log": log_path, "sha256": sha, "metrics": trained.metrics}
