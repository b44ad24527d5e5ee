"""`sotazoo train MODEL`: run a paper's training recipe and write its weights and log.

A paper's `train.py` provides `RECIPES: dict[model name, callable]`; each callable takes
`seed`, `epochs` (None: the recipe's) and `progress`, and returns a `Trained`. This module writes
`<model>.sotazoo.safetensors` and `<model>.sotazoo.log.json` (config, losses, held-out metrics,
sha256, commit, machine) into the output folder, each atomically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sotazoo.errors import SotazooError


@dataclass
class Trained:
    model: Any  # torch.nn.Module
    metrics: dict[str, float]
    log: dict[str, Any] = field(default_factory=dict)


def run_recipe(
    model_name: str,
    *,
    out_dir: Path | None = None,
    seed: int = 0,
    epochs: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    from sotazoo.fileio import write_json_atomic
    from sotazoo.registry import has_module, model_entry, paper_module
    from sotazoo.repro import git_commit, machine
    from sotazoo.weights import home, save_safetensors

    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise SotazooError(f"epochs must be at least 1 (or None for the recipe's), got {epochs!r}")
    pid, _ = model_entry(model_name)
    recipes = paper_module(pid, "train").RECIPES if has_module(pid, "train") else {}
    if model_name not in recipes:
        raise SotazooError(
            f"{model_name!r} has no training recipe; models with one: {sorted(recipes) or 'none'}"
        )
    out_dir = out_dir or home() / "trained" / model_name / f"seed{seed}"  # seeds run in parallel
    t0 = time.perf_counter()
    trained: Trained = recipes[model_name](seed=seed, epochs=epochs, progress=progress)
    weights = out_dir / f"{model_name}.sotazoo.safetensors"
    sha = save_safetensors(trained.model.state_dict(), weights, model=model_name, seed=str(seed))
    commit, dirty = git_commit()
    log = {
        "model": model_name,
        "paper": pid,
        "seed": seed,
        "command": f"sotazoo train {model_name} --seed {seed}"
        + (f" --epochs {epochs}" if epochs else ""),
        "sha256": sha,
        "size_bytes": weights.stat().st_size,
        "metrics": trained.metrics,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": machine(),
        **trained.log,
    }
    log_path = out_dir / f"{model_name}.sotazoo.log.json"
    write_json_atomic(log, log_path)
    return {"weights": weights, "log": log_path, "sha256": sha, "metrics": trained.metrics}
