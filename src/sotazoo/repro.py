"""The reproduction runner: run a paper's laptop-scale experiment, print the paper's claim beside
what we measured, and write the result as JSON (and a figure).

An experiment lives in `papers/<id>/repro.py` (the paper contract, `sotazoo.papers._contract`):
- `DEFAULT_SEEDS` and `run(*, quick, seeds, progress) -> Outcome`: the full run, one
  `ClaimResult` per claim it tests, each decided by the one rule below (`RULE`, `judge`) on its
  per-seed effects; counts of our own model go in `Outcome.checks`, not in the claims;
- optionally `LONG_SEEDS` and `long_run(...) -> LongOutcome`: the same arms past the 10-minute
  budget, as learning curves (`sotazoo repro ID --long`, `results/long/<id>.json`).

Results schema (`SCHEMA_VERSION` 2). One file per paper and mode: `results/<id>.json` (full),
`results/long/<id>.json` (long) and `<id>.quick.json` (quick smoke runs, never committed). A full
or long run writes into `results/` only from a clean checkout (`check_clean`):

    {
      "schema": 2,
      "paper": "senet",
      "mode": "full" | "quick" | "long",
      "quick": false,
      "seeds": [0, 1, 2, 3, 4],
      "wall_seconds": 412.7,
      "command": "sotazoo repro senet",  # what to run to make this file again
      "git_commit": "3f2c…", "git_dirty": false,
      "fingerprint": "…",               # of the experiment's files: a later change makes it stale
      "versions": {"sotazoo": …, "torch": …, "torchvision": …, "numpy": …, "python": …},
      "machine": {"cpu": "…", "cores": 2, "threads": 2, "torch": "…", "python": "…", …},
      "config": {…},                    # the experiment's config dataclass
      # full and quick runs:
      "claims": [
        {"id": "…",                     # the claim's id in the paper's card
         "statement": "…",              # the paper's claim, from the card
         "paper_value": 23.29, "paper_baseline": 24.8, "unit": "%", "source": "Table 2",
         "tested": "…",                 # what we measured at laptop scale, in words
         "measured": {"mean": …, "std": …, "per_seed": […], "unit": "…"},
         "verdict": "reproduced" | "partly" | "not reproduced" | "inconclusive",
         "rule": "…",                   # the effect, and the figures RULE decided on
         "test": {"n": …, "mean": …, "lower": …, "upper": …, "p": …, …}}
      ],
      "checks": [{"id": …, "measured": …, "paper_value": …, "ok": …, "how": …}],
      "details": {…},                   # per-arm numbers the figure is drawn from
      "figure": "senet.svg",
      # long runs instead: "what", "curves" {arm: {"step": […], metric: […]}}, "summary", "details"
    }
"""

from __future__ import annotations

import json
import math
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

SCHEMA_VERSION = 2
VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive")
Verdict = Literal["reproduced", "partly", "not reproduced", "inconclusive"]

# ---------------------------------------------------------------- the one verdict rule

LEVEL = 0.05  # one-sided significance level of the test on the per-seed effects
MIN_SEEDS = 3  # fewer seeds than this cannot be tested: the verdict is "inconclusive"
BAND = (0.5, 2.0)  # measured effect / paper's effect that counts as "the paper's size"

RULE = f"""Every claim is tested on its per-seed effects: one number per seed, oriented so that a
positive value goes the paper's way (method minus ablation in the unit of the claim; for speed-ups,
the log of the ratio). With n seeds, mean m and standard error s/sqrt(n), the one-sided
{100 * (1 - LEVEL):.0f}% bounds are m -/+ t(n-1) s/sqrt(n) (Student's t, level {LEVEL}).
- reproduced: the lower bound is above zero (the effect has the paper's sign and is told apart
  from zero), and m is within x{BAND[0]:g} to x{BAND[1]:g} of the paper's effect, unless the claim
  says why only its sign is comparable at laptop scale.
- partly: the lower bound is above zero but m is outside that band.
- not reproduced: the upper bound is below the smallest effect that would count (x{BAND[0]:g} the
  paper's, or zero for a sign-only claim): the effect is shown to be absent, too small or reversed.
- inconclusive: neither, i.e. too noisy for the seeds run; and always with fewer than {MIN_SEEDS}
  seeds (a --quick run is never a verdict).
A claim "level with" a baseline has a stated margin d: its effect is tested against -d instead of
zero, and its size is not compared. Counts of our own model (parameters, multiply-adds) are checks
of the model, listed apart; they are not reproductions."""


RULE_ZH = f"""每条结论都按各随机种子上的"效应"来检验：每个种子一个数，方向取论文的方向为正（方法减去消融，
单位与结论相同；加速比取对数）。对 n 个种子的均值 m 和标准误 s/sqrt(n)，单侧 {100 * (1 - LEVEL):.0f}%
界为 m -/+ t(n-1)·s/sqrt(n)（Student t 分布，显著性水平 {LEVEL}）。
- 复现（reproduced）：下界大于零（方向与论文一致且可与零区分），且 m 在论文效应的
  {BAND[0]:g} 到 {BAND[1]:g} 倍之间；若结论注明在笔记本规模下只能比较方向，则不比大小。
- 部分复现（partly）：下界大于零，但 m 不在该区间内。
- 未复现（not reproduced）：上界低于"算数"的最小效应（论文效应的 {BAND[0]:g} 倍；只比方向时为零），
  即效应被证明不存在、太小或方向相反。
- 无定论（inconclusive）：以上都不成立，即在所跑的种子数下噪声太大；种子少于 {MIN_SEEDS} 个时总是如此
  （--quick 快速运行从不给出结论）。
"与基线持平"类结论有一个事先写明的容差 d：检验效应是否大于 -d，不比较大小。我们自己模型的计数（参数量、
乘加次数）是对模型的检查，单独列出，不算复现。"""


@dataclass(frozen=True)
class Test:
    """The figures one verdict was decided on (see RULE)."""

    n: int
    mean: float
    lower: float  # one-sided lower bound of the mean effect at LEVEL
    upper: float  # one-sided upper bound
    p: float  # one-sided p-value of "effect > threshold"
    threshold: float  # zero, or minus the margin of a "level with" claim
    paper_effect: float | None  # in the same unit (log for ratios); None when sign-only
    size: str  # "compared with the paper's", or why only the sign (or a margin) is tested
    log: bool = False  # effects are log-ratios


def judge(
    effects: list[float],
    *,
    paper_effect: float | None = None,
    sign_only: str | None = None,
    margin: float = 0.0,
    log: bool = False,
) -> tuple[Verdict, Test]:
    """The verdict of RULE on per-seed `effects` (positive = the paper's way).

    Args:
        effects: one effect per seed; with `log`, positive ratios (method's gain over the ablation,
            e.g. a speed-up) whose logs are tested.
        paper_effect: the paper's effect in the same unit (a ratio with `log`); must be positive.
        sign_only: why only the sign is comparable at laptop scale (then the size is not compared).
        margin: for a claim "level with" a baseline, the stated margin (same unit as effects).
        log: test log(effects) and compare with log(paper_effect).
    """
    from scipy import stats

    if paper_effect is None and sign_only is None and not margin:
        raise ValueError("a claim compares its size with paper_effect or says why only the sign")
    if paper_effect is not None and paper_effect <= (1.0 if log else 0.0):
        raise ValueError(f"paper_effect {paper_effect} does not go the paper's way")
    xs = [float(v) for v in effects]
    if log:
        if any(not v > 0 for v in xs):
            raise ValueError(f"log effects need positive ratios, got {xs}")
        xs = [math.log(v) for v in xs]
        paper = math.log(paper_effect) if paper_effect is not None else None
    else:
        paper = paper_effect
    threshold = -abs(margin) if margin else 0.0
    compared = paper is not None and sign_only is None and not margin
    size = (
        "compared with the paper's" if compared
        else f"level within a margin of {abs(margin):g}" if margin
        else f"sign only: {sign_only}" if sign_only else "sign only"
    )  # fmt: skip
    n = len(xs)
    if n == 0 or not all(math.isfinite(v) for v in xs):
        nan = float("nan")
        return "inconclusive", Test(n, nan, nan, nan, nan, threshold, paper, size, log)
    mean = statistics.fmean(xs)
    if n < 2:
        return "inconclusive", Test(n, mean, -math.inf, math.inf, 1.0, threshold, paper, size, log)
    se = statistics.stdev(xs) / math.sqrt(n)
    t_crit = float(stats.t.ppf(1 - LEVEL, n - 1))
    lower, upper = mean - t_crit * se, mean + t_crit * se
    if se > 0:
        p = float(stats.t.sf((mean - threshold) / se, n - 1))
    else:
        p = 0.0 if mean > threshold else 1.0
    test = Test(n, mean, lower, upper, p, threshold, paper, size, log)
    floor = BAND[0] * paper if compared else threshold
    if n < MIN_SEEDS:
        verdict: Verdict = "inconclusive"
    elif lower > threshold:
        in_band = not compared or BAND[0] * paper <= mean <= BAND[1] * paper
        verdict = "reproduced" if in_band else "partly"
    elif upper < floor:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    return verdict, test


def rule_text(test: Test, effect: str) -> str:
    """One line for a claim: what its effect is and the figures RULE decided on."""
    unit = "log-ratio" if test.log else ""
    paper = (
        f"; paper's effect {math.exp(test.paper_effect) if test.log else test.paper_effect:.4g}"
        f"{'x' if test.log else ''}"
        if test.paper_effect is not None else ""
    )  # fmt: skip
    return (
        f"effect = {effect}; {test.size}{paper}; n = {test.n}, one-sided {100 * (1 - LEVEL):.0f}% "
        f"bounds [{test.lower:.3g}, {test.upper:.3g}] {unit}".rstrip()
        + f" against {test.threshold:g}, p = {test.p:.3g} (sotazoo.repro.RULE)"
    )


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
    test: dict[str, Any] | None = None  # the figures RULE decided on (asdict of a Test)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


@dataclass
class Check:
    """A count of our own model set beside the paper's (parameters, multiply-adds): a check of the
    model, not a reproduction, so it has no verdict and stays out of the repro column."""

    id: str  # the claim's id in the card
    statement: str
    paper_value: float
    unit: str
    measured: float
    ok: bool
    how: str  # what was counted and the tolerance


@dataclass
class Outcome:
    claims: list[ClaimResult]
    config: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    draw: Callable[[Path], None] | None = None  # writes the figure to the given path
    checks: list[Check] = field(default_factory=list)


@dataclass
class LongOutcome:
    """What an experiment's `long_run` returns: the arms trained past the 10-minute budget, as
    learning curves. It has no verdicts (those stay the full run's); it says whether the picture
    of the full run holds later in training."""

    what: str  # the experiment, in words
    config: dict[str, Any]
    curves: dict[str, dict[str, list]]  # arm -> {"step": [...], <metric>: [...], ...}
    summary: list[str]  # the lines printed at the end
    details: dict[str, Any] = field(default_factory=dict)


def claim_result(
    paper_id: str,
    claim_id: str,
    *,
    tested: str,
    measured: Measured,
    verdict: Verdict,
    rule: str,
    test: Test | None = None,
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
        test=asdict(test) if test is not None else None,
    )


def judged_claim(
    paper_id: str,
    claim_id: str,
    effects: list[float],
    *,
    effect: str,
    tested: str,
    measured: Measured | None = None,
    **judge_kw: Any,
) -> ClaimResult:
    """A claim decided by RULE on its per-seed `effects` (see `judge` for `judge_kw`); `effect`
    says in words what one effect is; `measured` defaults to the effects themselves."""
    verdict, test = judge(effects, **judge_kw)
    return claim_result(
        paper_id,
        claim_id,
        tested=tested,
        measured=measured or Measured.of(effects, effect),
        verdict=verdict,
        rule=rule_text(test, effect),
        test=test,
    )


def card_effect(
    paper_id: str, claim_id: str, *, lower_is_better: bool = False, ratio: bool = False
) -> float:
    """The paper's effect for a claim, from its card: method minus baseline (baseline minus method
    when lower is better), or with `ratio` their quotient, oriented the paper's way."""
    from sotazoo.cards import load_card

    c = load_card(paper_id).claim(claim_id)
    if c.baseline_value is None:
        raise ValueError(f"claim {claim_id!r} of {paper_id} has no baseline value in its card")
    a, b = (c.baseline_value, c.value) if lower_is_better else (c.value, c.baseline_value)
    return a / b if ratio else a - b


def model_check(paper_id: str, claim_id: str, measured: float, *, ok: bool, how: str) -> Check:
    """A Check whose paper side is read from the card."""
    from sotazoo.cards import load_card

    c = load_card(paper_id).claim(claim_id)
    return Check(c.id, c.statement, c.value, c.unit, float(measured), bool(ok), how)


def results_dir() -> Path:
    """`$SOTAZOO_RESULTS`, else `results/` of the checkout, else `./results`."""
    env = os.environ.get("SOTAZOO_RESULTS")
    if env:
        return Path(env)
    root = repo_root()
    return (root / "results") if root else Path("results")


MODES = ("full", "quick", "long")


def result_path(
    paper_id: str, quick: bool = False, out_dir: Path | None = None, *, mode: str | None = None
) -> Path:
    """`results/<id>.json` (full), `<id>.quick.json` (quick, never committed) or
    `results/long/<id>.json` (long; `long/<id>.quick.json` for its smoke run)."""
    mode = mode or ("quick" if quick else "full")
    out = out_dir or results_dir()
    name = f"{paper_id}.quick.json" if quick or mode == "quick" else f"{paper_id}.json"
    return out / "long" / name if mode == "long" else out / name


class DirtyTreeError(SotazooError):
    """A committed result would not say which code made it."""


# What a laptop reproduction never reads (the contract: repro.py imports none of them): the
# paper's packaged and official weights, its demo, converters, references and card figure.
# Retraining the demo weights or fixing the demo leaves the reproduction current.
NOT_IN_EXPERIMENT = ("weights.py", "checkpoints", "demo.py", "convert.py", "reference.py",
                     "figure.py")  # fmt: skip


def experiment_fingerprint(paper_id: str) -> str:
    """A hash of the files of the paper's folder a reproduction is made of (the card's data,
    the model, method, training and repro code; not `NOT_IN_EXPERIMENT`)."""
    from sotazoo.papers._contract import paper
    from sotazoo.provenance import folder_fingerprint

    return folder_fingerprint(paper(paper_id).folder, leave_out=NOT_IN_EXPERIMENT)


def _provenance(paper_id: str, command: str) -> dict:
    from sotazoo.provenance import versions

    commit, dirty = git_commit()
    return {
        "command": command,
        "git_commit": commit,
        "git_dirty": dirty,
        "fingerprint": experiment_fingerprint(paper_id),
        "versions": versions(),
        "machine": machine(),
    }


def check_clean(out_dir: Path | None, allow_dirty: bool) -> None:
    """Refuse to write into the committed results from a checkout with uncommitted changes: the
    result would name a commit that did not make it. `allow_dirty` writes it elsewhere."""
    if out_dir is not None or allow_dirty or os.environ.get("SOTAZOO_RESULTS"):
        return
    commit, dirty = git_commit()
    if dirty:
        raise DirtyTreeError(
            f"the checkout has uncommitted changes (git status), so a result written to "
            f"{results_dir()} would not say which code made it (HEAD is {commit[:10]}). Commit "
            "first, or pass --allow-dirty to write it under results/dirty/, marked dirty."
        )


def run_repro(
    paper_id: str,
    *,
    quick: bool = False,
    long: bool = False,
    seeds: list[int] | None = None,
    out_dir: Path | None = None,
    progress: bool = True,
    allow_dirty: bool = False,
    command: str | None = None,
) -> dict:
    """Run the experiment of `paper_id` (its full run, `quick` smoke run or `long` run), write
    its JSON (and figure) and return the JSON dict.

    A full or long run writes into the committed `results/` only from a clean checkout; with
    `allow_dirty` it goes to `results/dirty/` instead (`out_dir` overrides both)."""
    from sotazoo.papers._contract import paper
    from sotazoo.registry import get_paper

    get_paper(paper_id)  # unknown ids fail here, with suggestions
    mode = "long" if long else "quick" if quick else "full"
    exp = paper(paper_id).experiment
    if exp is None:
        raise SotazooError(f"paper {paper_id!r} has no reproduction experiment yet")
    if long and not paper(paper_id).has_long_run:
        have = ", ".join(papers_with_long_run())
        raise SotazooError(f"paper {paper_id!r} has no long run (papers with one: {have})")
    if not quick:
        check_clean(out_dir, allow_dirty)
        if allow_dirty and out_dir is None:
            out_dir = results_dir() / "dirty"
    default = exp.LONG_SEEDS if long else exp.DEFAULT_SEEDS
    default = default[:1] if quick else default
    seeds = list(seeds) if seeds else list(default)
    if command is None:
        command = (f"sotazoo repro {paper_id}" + (" --long" if long else "")
                   + (" --quick" if quick else ""))  # fmt: skip
        if seeds != list(default):
            command += "".join(f" --seed {x}" for x in seeds)
    t0 = time.perf_counter()
    outcome = (exp.long_run if long else exp.run)(quick=quick, seeds=seeds, progress=progress)
    wall = time.perf_counter() - t0
    path = result_path(paper_id, quick, out_dir, mode=mode)
    data = {
        "schema": SCHEMA_VERSION,
        "paper": paper_id,
        "mode": mode,
        "quick": quick,
        "seeds": seeds,
        "wall_seconds": round(wall, 1),
        **_provenance(paper_id, command),
        "config": outcome.config,
    }
    if long:
        data |= {"what": outcome.what, "curves": outcome.curves, "summary": outcome.summary,
                 "details": outcome.details}  # fmt: skip
    else:
        data |= {
            "claims": [asdict(c) for c in outcome.claims],
            "checks": [asdict(c) for c in outcome.checks],
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


def papers_with_long_run() -> list[str]:
    from sotazoo.cards import load_catalog
    from sotazoo.papers._contract import paper

    return [e.id for e in load_catalog() if paper(e.id).has_long_run]


def validate_result(data: dict) -> list[str]:
    """Problems of a results JSON against the schema above (empty when valid)."""
    problems = []
    required = {
        "schema": int,
        "paper": str,
        "mode": str,
        "seeds": list,
        "wall_seconds": (int, float),
        "command": str,
        "git_commit": str,
        "git_dirty": bool,
        "fingerprint": str,
        "versions": dict,
        "machine": dict,
    }
    if data.get("schema") != SCHEMA_VERSION:
        problems.append(f"schema {data.get('schema')!r} is not {SCHEMA_VERSION}: rerun it")
    for key, typ in required.items():
        if not isinstance(data.get(key), typ):
            problems.append(f"{key} missing or not {typ}")
    if data.get("mode") not in MODES:
        problems.append(f"mode {data.get('mode')!r} not in {MODES}")
    if data.get("mode") == "long":
        if not isinstance(data.get("curves"), dict) or not data.get("curves"):
            problems.append("a long run without curves")
        return problems
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


def is_stale(data: dict) -> bool:
    """Whether the files the experiment is made of changed after the result was made (its
    fingerprint differs: `experiment_fingerprint`)."""
    return data.get("fingerprint") != experiment_fingerprint(data["paper"])


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
    """The claim-vs-measured table (or a long run's summary), for the terminal and the README."""
    mode = {"full": "full run", "quick": "quick smoke run (never a verdict)", "long": "long run"}
    if data["mode"] == "long" and data["quick"]:
        mode["long"] = "quick smoke run of the long run"
    lines = [
        f"{data['paper']}: {mode[data['mode']]}, seeds {data['seeds']}, "
        f"{data['wall_seconds']:.0f} s on {data['machine']['cpu']} "
        f"({data['machine']['threads']} threads), at {data['git_commit'][:10]}"
        + (" with uncommitted changes" if data["git_dirty"] else ""),
        "",
    ]
    if data["mode"] == "long":
        return "\n".join([*lines, data["what"], "", *data["summary"]]).rstrip()
    for c in data["claims"]:
        m = c["measured"]
        paper = _fmt(c["paper_value"], c["unit"])
        if c.get("paper_baseline") is not None:
            paper = f"{_fmt(c['paper_baseline'], c['unit'])} -> {paper}"
        spread = f" ± {m['std']:.3g}" if len(m["per_seed"]) > 1 else ""
        # a smoke run checks that the experiment runs: its numbers decide nothing
        label = "SMOKE RUN, NO VERDICT" if data["quick"] else c["verdict"].upper()
        lines += [
            f"[{label}] {c['id']}",
            f"  paper    : {c['statement']} ({paper}; {c['source']})",
            f"  tested   : {c['tested']}",
            f"  measured : {m['mean']:.4g}{spread} {m.get('unit', '')}".rstrip()
            + f"  (per seed: {', '.join(f'{v:.4g}' for v in m['per_seed'])})",
            *([] if data["quick"] else [f"  rule     : {c['rule']}"]),
            "",
        ]
    for k in data.get("checks", []):
        state = "ok" if k["ok"] else "OFF"
        lines += [f"[CHECK {state}] {k['id']}: {k['measured']:.4g} {k['unit']} vs the paper's "
                  f"{k['paper_value']:.4g} ({k['how']})"]  # fmt: skip
    return "\n".join(lines).rstrip()
