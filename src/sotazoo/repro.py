"""The reproduction runner: run a paper's laptop-scale experiment, print the paper's claim beside
what we measured, and write the result as JSON (and a figure).

An experiment lives in `papers/<id>/repro.py` and provides:
- `DEFAULT_SEEDS`: the seeds of a full run;
- `run(*, quick, seeds, progress) -> Outcome`: trains/evaluates and returns one `ClaimResult`
  per claim it tests, each with a verdict decided by a rule written in the experiment.

Results schema (`SCHEMA_VERSION` 1; one file per paper, `results/<id>.json`; quick runs write
`<id>.quick.json` so that they never replace a committed full result):

    {
      "schema": 1,
      "paper": "senet",                 # paper id
      "quick": false,                   # --quick smoke run?
      "seeds": [0, 1, 2, 3, 4],
      "wall_seconds": 412.7,
      "git_commit": "3f2c…", "git_dirty": false,
      "machine": {"cpu": "…", "threads": 2, "torch": "2.14.1", "python": "3.11.7",
                  "platform": "Linux-…"},
      "config": {…},                    # the experiment's config dataclass
      "claims": [
        {"id": "…",                     # the claim's id in the paper's card
         "statement": "…",              # the paper's claim, from the card
         "paper_value": 23.29, "paper_baseline": 24.8, "unit": "%", "source": "Table 2",
         "tested": "…",                 # what we measured at laptop scale, in words
         "measured": {"mean": …, "std": …, "per_seed": […], "unit": "…"},
         "verdict": "reproduced" | "partly" | "not reproduced",
         "rule": "…"}                   # the rule that decided the verdict
      ],
      "details": {…},                   # per-arm numbers the figure is drawn from
      "figure": "senet.svg"
    }
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sotazoo.errors import SotazooError
from sotazoo.fileio import atomic_path, write_json_atomic
from sotazoo.provenance import git_commit, machine, repo_root

SCHEMA_VERSION = 1
VERDICTS = ("reproduced", "partly", "not reproduced")
Verdict = Literal["reproduced", "partly", "not reproduced"]


@dataclass
class Measured:
    mean: float
    std: float
    per_seed: list[float]
    unit: str = ""

    @classmethod
    def of(cls, values: list[float], unit: str = "") -> Measured:
        values = [float(v) for v in values]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(mean=statistics.fmean(values), std=std, per_seed=values, unit=unit)


@dataclass
class ClaimResult:
    id: str
    statement: str
    paper_value: float
    paper_baseline: float | None
    unit: str
    source: str
    tested: str
    measured: Measured
    verdict: Verdict
    rule: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


@dataclass
class Outcome:
    claims: list[ClaimResult]
    config: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    draw: Callable[[Path], None] | None = None  # writes the figure to the given path


def claim_result(
    paper_id: str, claim_id: str, *, tested: str, measured: Measured, verdict: Verdict, rule: str
) -> ClaimResult:
    """A ClaimResult whose paper side (statement, value, source) is read from the card."""
    from sotazoo.cards import load_card

    c = load_card(paper_id).claim(claim_id)
    return ClaimResult(
        id=c.id,
        statement=c.statement,
        paper_value=c.value,
        paper_baseline=c.baseline_value,
        unit=c.unit,
        source=c.source,
        tested=tested,
        measured=measured,
        verdict=verdict,
        rule=rule,
    )


def results_dir() -> Path:
    """`$SOTAZOO_RESULTS`, else `results/` of the checkout, else `./results`."""
    env = os.environ.get("SOTAZOO_RESULTS")
    if env:
        return Path(env)
    root = repo_root()
    return (root / "results") if root else Path("results")


def result_path(paper_id: str, quick: bool, out_dir: Path | None = None) -> Path:
    out = out_dir or results_dir()
    return out / (f"{paper_id}.quick.json" if quick else f"{paper_id}.json")


def run_repro(
    paper_id: str,
    *,
    quick: bool = False,
    seeds: list[int] | None = None,
    out_dir: Path | None = None,
    progress: bool = True,
) -> dict:
    """Run the experiment of `paper_id`, write its JSON and figure, and return the JSON dict."""
    from sotazoo.papers._contract import paper
    from sotazoo.registry import get_paper

    get_paper(paper_id)  # unknown ids fail here, with suggestions
    exp = paper(paper_id).experiment
    if exp is None:
        raise SotazooError(f"paper {paper_id!r} has no reproduction experiment yet")
    seeds = list(seeds) if seeds else list(exp.DEFAULT_SEEDS[:1] if quick else exp.DEFAULT_SEEDS)
    t0 = time.perf_counter()
    outcome: Outcome = exp.run(quick=quick, seeds=seeds, progress=progress)
    wall = time.perf_counter() - t0
    commit, dirty = git_commit()
    path = result_path(paper_id, quick, out_dir)
    data = {
        "schema": SCHEMA_VERSION,
        "paper": paper_id,
        "quick": quick,
        "seeds": seeds,
        "wall_seconds": round(wall, 1),
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": machine(),
        "config": outcome.config,
        "claims": [asdict(c) for c in outcome.claims],
        "details": outcome.details,
        "figure": None,
    }
    if outcome.draw is not None:
        fig = path.with_suffix(".svg")
        with atomic_path(fig) as tmp:
            outcome.draw(tmp)
        data["figure"] = fig.name
    problems = validate_result(data)
    if problems:
        raise SotazooError(f"{paper_id} produced an invalid result: {problems}")
    write_json_atomic(data, path)
    data["_path"] = str(path)
    return data


def validate_result(data: dict) -> list[str]:
    """Problems of a results JSON against the schema above (empty when valid)."""
    problems = []
    required = {
        "schema": int,
        "paper": str,
        "quick": bool,
        "seeds": list,
        "wall_seconds": (int, float),
        "git_commit": str,
        "machine": dict,
        "claims": list,
    }
    for key, typ in required.items():
        if not isinstance(data.get(key), typ):
            problems.append(f"{key} missing or not {typ}")
    for i, c in enumerate(data.get("claims") or []):
        for key in ("id", "statement", "paper_value", "tested", "measured", "verdict", "rule"):
            if key not in c:
                problems.append(f"claims[{i}] lacks {key}")
        if c.get("verdict") not in VERDICTS:
            problems.append(f"claims[{i}] verdict {c.get('verdict')!r} not in {VERDICTS}")
        m = c.get("measured") or {}
        for key in ("mean", "std", "per_seed"):
            if key not in m:
                problems.append(f"claims[{i}].measured lacks {key}")
    if not data.get("claims"):
        problems.append("no claims")
    return problems


def full_result_paths(out_dir: Path | None = None) -> list[Path]:
    """The full-run result files (never the `.quick.json` smoke runs), sorted by paper."""
    out = out_dir or results_dir()
    return sorted(p for p in out.glob("*.json") if not p.name.endswith(".quick.json"))


def load_result(paper_id: str, *, quick: bool = False, out_dir: Path | None = None) -> dict | None:
    path = result_path(paper_id, quick, out_dir)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _fmt(value: float, unit: str) -> str:
    return f"{value:.4g}{unit if unit in ('%', '') else ' ' + unit}"


def format_result(data: dict) -> str:
    """The claim-vs-measured table, for the terminal and the README."""
    lines = [
        f"{data['paper']}: {'quick smoke run' if data['quick'] else 'full run'}, "
        f"seeds {data['seeds']}, {data['wall_seconds']:.0f} s on {data['machine']['cpu']} "
        f"({data['machine']['threads']} threads)",
        "",
    ]
    for c in data["claims"]:
        m = c["measured"]
        paper = _fmt(c["paper_value"], c["unit"])
        if c.get("paper_baseline") is not None:
            paper = f"{_fmt(c['paper_baseline'], c['unit'])} -> {paper}"
        spread = f" ± {m['std']:.3g}" if len(m["per_seed"]) > 1 else ""
        lines += [
            f"[{c['verdict'].upper()}] {c['id']}",
            f"  paper    : {c['statement']} ({paper}; {c['source']})",
            f"  tested   : {c['tested']}",
            f"  measured : {m['mean']:.4g}{spread} {m.get('unit', '')}".rstrip()
            + f"  (per seed: {', '.join(f'{v:.4g}' for v in m['per_seed'])})",
            f"  rule     : {c['rule']}",
            "",
        ]
    return "\n".join(lines).rstrip()
