"""`sotazoo verify PAPER`: run a paper's checks and record what they measured, as evidence.

The status matrix (`sotazoo status`) reads these records, `results/verify/<id>.json`, instead of
looking for test names. Each check runs through the paper contract (`sotazoo.papers._contract`),
so a new paper is verified with no edit here:

| check     | what it measures                                                              | figure        |
|-----------|-------------------------------------------------------------------------------|---------------|
| params    | every paper variant's parameter count against its card (within 0.5 %),        | worst rel.    |
|           | counted on the meta device (no memory, no arithmetic)                         | difference    |
| export    | every model's small version exported to ONNX and run by onnxruntime against   | worst rel.    |
|           | PyTorch (`sotazoo.export`)                                                    | difference    |
| bad_input | every model's small version fed wrong dtypes, channel counts, ranks, NaN and  | clear / cases |
|           | inf: each must be an `InputError` that names the problem                       |               |
| weights   | every weights entry whose file is here (shipped, or in the cache) loaded by   | max abs diff  |
|           | its tag, saved, and loaded again by path: the same outputs                    |               |
| oracle    | the paper's oracle tests (`tests/papers/test_<id>.py -k oracle`) run by pytest | passed / run  |
|           | from the checkout, against the reference implementations                      |               |
| browser   | the paper's headless-Chromium tests (`tests/browser -k <id>`: its file, or its | passed / run  |
|           | parameter of a shared one), full runs only, where Chromium is installed       |               |

A record carries the commit (and whether the tree was clean), the versions, the machine and a
fingerprint of the paper's folder (`paper_fingerprint`): `sotazoo status` marks the record stale
when the folder changed after it. `--quick` runs the first four checks only and writes
`<id>.quick.json`, never the committed record; CI runs it for every paper and compares it with
the committed record (tests/test_verify.py), so a committed record never claims what the code at
its commit does not do.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sotazoo.errors import InputError, SotazooError
from sotazoo.fileio import write_json_atomic
from sotazoo.papers._contract import Paper, paper
from sotazoo.provenance import folder_fingerprint, git_commit, machine, repo_root

SCHEMA_VERSION = 1
CHECKS = ("params", "export", "bad_input", "weights", "oracle", "browser")
QUICK_CHECKS = ("params", "export", "bad_input", "weights")
PARAMS_TOLERANCE = 0.005  # the definition of done: parameter counts within 0.5 % of the paper's


def verify_dir() -> Path:
    from sotazoo.repro import results_dir

    return results_dir() / "verify"


def record_path(paper_id: str, quick: bool = False, out_dir: Path | None = None) -> Path:
    return (out_dir or verify_dir()) / (f"{paper_id}.quick.json" if quick else f"{paper_id}.json")


def paper_fingerprint(paper_id: str) -> str:
    """A hash of every file of the paper's folder (caches excepted): what a record was made of."""
    return folder_fingerprint(paper(paper_id).folder)


def load_record(paper_id: str) -> dict | None:
    path = record_path(paper_id)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def is_stale(record: dict) -> bool:
    return record.get("fingerprint") != paper_fingerprint(record["paper"])


# ---------------------------------------------------------------------- the checks


def tiny_model(name: str, **extra):
    """(model, input size without the batch, card entry) of a small version of `name`: the
    paper's `model.tiny_overrides`, then `extra`; images at most 64 x 64 where the model takes
    images alone."""
    from sotazoo.registry import create_model, model_entry

    pid, entry = model_entry(name)
    model = create_model(name, **{**paper(pid).tiny_overrides(name), **extra})
    if len(entry.input_size) != 3:  # a noise vector (Z,); a class label, if any, is extra
        return model, tuple(entry.input_size), entry
    c, h, w = entry.input_size
    size = (c, h, w) if entry.extra_inputs else (c, min(h, 64), min(w, 64))
    return model, size, entry


def _params(p: Paper) -> dict:
    import torch

    from sotazoo.registry import create_model

    rows = []
    for m in p.card.models:
        if m.laptop or m.params is None:
            continue
        with torch.device("meta"):
            counted = sum(t.numel() for t in create_model(m.name).parameters())
        rel = abs(counted - m.params) / m.params
        rows.append({"model": m.name, "counted": counted, "card": m.params,
                     "source": m.params_source, "rel_diff": round(rel, 6)})  # fmt: skip
    worst = max((r["rel_diff"] for r in rows), default=None)
    return {"ok": bool(rows) and worst <= PARAMS_TOLERANCE, "variants": len(rows),
            "worst_rel_diff": worst, "tolerance": PARAMS_TOLERANCE, "models": rows}  # fmt: skip


def _export(p: Paper) -> dict:
    import torch

    from sotazoo.export import export_onnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in p.card.models:
            torch.manual_seed(0)  # the output's scale, and so the figure, the same every run
            model, size, entry = tiny_model(m.name)
            try:
                r = export_onnx(model.eval(), size, Path(tmp) / f"{m.name}.onnx",
                                extra_inputs=entry.extra_inputs, task=entry.task)  # fmt: skip
                rows.append({"model": m.name, "ok": True, "max_rel_diff": r.max_rel_diff,
                             "tolerance": r.tolerance})  # fmt: skip
            except SotazooError as e:
                rows.append({"model": m.name, "ok": False, "error": str(e)[:300]})
    worst = max((r.get("max_rel_diff", math.inf) for r in rows), default=None)
    return {"ok": bool(rows) and all(r["ok"] for r in rows), "models": len(rows),
            "worst_rel_diff": worst, "rows": rows}  # fmt: skip


def bad_inputs(name: str) -> list[tuple[str, Callable[[], Any]]]:
    """The generic bad inputs of model `name` (its small version): each call must raise an
    `InputError`. The registry-wide corpus (tests/bad_input/test_models.py) covers more."""
    import torch

    from sotazoo.registry import example_inputs

    model, size, entry = tiny_model(name)
    model.eval()
    xs = list(example_inputs(entry, 2, size=size))

    def call(i: int, fn) -> Callable[[], Any]:
        def run():
            ys = list(xs)
            ys[i] = fn(ys[i])
            with torch.no_grad():
                return model(*ys)

        return run

    cases = [
        ("float64", call(0, lambda x: x.double())),
        ("float16", call(0, lambda x: x.half())),
        ("bfloat16", call(0, lambda x: x.bfloat16())),
        ("nan", call(0, lambda x: x.clone().index_put_((torch.tensor([0]),), torch.tensor(math.nan)))),
        ("inf", call(0, lambda x: x.clone().index_put_((torch.tensor([0]),), torch.tensor(math.inf)))),
        ("no batch axis", call(0, lambda x: x[0])),
    ]  # fmt: skip
    if len(size) == 3:  # images: channels and 8-bit input
        cases += [
            ("one channel too many", call(0, lambda x: torch.cat([x, x[:, :1]], 1))),
            ("uint8 image", call(0, lambda x: (x.clamp(0, 1) * 255).to(torch.uint8))),
        ]
    for k, extra in enumerate(entry.extra_inputs, start=1):
        if extra.dtype == "int64":
            cases.append((f"{extra.name} out of range", call(k, lambda q, h=extra.high: q + h)))
    return cases


def _bad_input(p: Paper) -> dict:
    failures, n = [], 0
    for m in p.card.models:
        for what, run in bad_inputs(m.name):
            n += 1
            try:
                run()
                failures.append(f"{m.name}, {what}: no error")
            except InputError:
                pass
            except Exception as e:  # noqa: BLE001 - any other outcome is the finding
                failures.append(f"{m.name}, {what}: {type(e).__name__}: {str(e)[:120]}")
    return {"ok": n > 0 and not failures, "cases": n, "clear": n - len(failures),
            "failures": failures}  # fmt: skip


def _weights(p: Paper) -> dict:
    import torch

    from sotazoo.registry import create_model, example_inputs, model_entry
    from sotazoo.weights import cache_path, save_safetensors

    rows = []
    for w in p.weights:
        if not w.packaged and not cache_path(w).is_file():
            rows.append({"weights": w.name, "ok": None, "note": "not here (not downloaded)"})
            continue
        _, entry = model_entry(w.model)
        with tempfile.TemporaryDirectory() as tmp:
            a = create_model(w.model, weights=w.tag, progress=False)
            path = Path(tmp) / "round_trip.safetensors"
            save_safetensors(a.state_dict(), path, model=w.model)
            b = create_model(w.model, weights=path)
            xs = example_inputs(entry, 1)
            with torch.no_grad():
                ya, yb = a(*xs), b(*xs)
            diff = float((ya.float() - yb.float()).abs().max())
        rows.append({"weights": w.name, "ok": diff == 0.0, "max_abs_diff": diff})
    checked = [r for r in rows if r["ok"] is not None]
    return {"ok": bool(checked) and all(r["ok"] for r in checked), "entries": len(rows),
            "checked": len(checked), "rows": rows}  # fmt: skip


def _pytest(selection: list[str], *, timeout: int = 1800, env: dict | None = None) -> dict:
    """Run a pytest selection of the checkout's tests; the counts from its JUnit report."""
    import os
    import xml.etree.ElementTree as ET

    root = repo_root()
    if root is None or not (root / "tests").is_dir():
        return {"ok": None, "note": "no checkout with tests beside this installation"}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}", *selection]  # fmt: skip
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})  # fmt: skip
        if not report.is_file():
            return {"ok": False, "note": f"pytest exited {done.returncode}: {done.stderr[-300:]}"}
        suite = ET.parse(report).getroot()
        suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
        n = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
    ran = n - skipped
    return {"ok": ran > 0 and failed == 0, "passed": ran - failed, "ran": ran,
            "skipped": skipped, "selection": selection}  # fmt: skip


def _oracle(p: Paper) -> dict:
    """The paper's oracle tests, with each one's figure: its largest difference from the
    reference and the bound it is held to (tests/papers/oracle.py records them)."""
    test = Path("tests") / "papers" / f"test_{p.id}.py"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "oracle.jsonl"
        result = _pytest([str(test), "-k", "oracle"], env={"SOTAZOO_ORACLE_LOG": str(log)})
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    if rows:
        worst = max(rows, key=lambda r: r["max_diff"] / r["bound"] if r["bound"] else math.inf)
        result |= {"figures": len(rows), "worst_max_diff": worst["max_diff"],
                   "worst_bound": worst["bound"], "worst_case": worst["what"] or worst["test"],
                   "rows": rows}  # fmt: skip
    return result


def _browser(p: Paper) -> dict:
    from sotazoo.site.browser import browser_available

    if p.card.demo is None:
        return {"ok": None, "note": "the card declares no demo"}
    if not browser_available():
        return {"ok": None, "note": "Chromium or node is not installed here"}
    # the tests that name the paper: its own file, or its parameter of a shared one
    return _pytest([str(Path("tests") / "browser"), "-k", p.id])


_RUN = {"params": _params, "export": _export, "bad_input": _bad_input, "weights": _weights,
        "oracle": _oracle, "browser": _browser}  # fmt: skip


def verify_paper(
    paper_id: str, *, quick: bool = False, out_dir: Path | None = None, progress: bool = True
) -> dict:
    """Run the checks of `paper_id` (the first four with `quick`), write the record, return it."""
    import onnx
    import onnxruntime
    import torch
    from tqdm.auto import tqdm

    from sotazoo.registry import get_paper

    get_paper(paper_id)  # unknown ids fail here, with suggestions
    p = paper(paper_id)
    names = QUICK_CHECKS if quick else CHECKS
    commit, dirty = git_commit()
    checks = {}
    t0 = time.perf_counter()
    for name in tqdm(names, desc=f"verify {paper_id}", disable=not progress):
        t = time.perf_counter()
        checks[name] = _RUN[name](p) if p.card.models else {"ok": None, "note": "no models"}
        checks[name]["seconds"] = round(time.perf_counter() - t, 1)
    record = {
        "schema": SCHEMA_VERSION,
        "paper": paper_id,
        "quick": quick,
        "command": f"sotazoo verify {paper_id}" + (" --quick" if quick else ""),
        "git_commit": commit,
        "git_dirty": dirty,
        "fingerprint": paper_fingerprint(paper_id),
        "versions": {
            "sotazoo": __import__("sotazoo").__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },  # fmt: skip
        "machine": machine(),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "checks": checks,
    }
    write_json_atomic(record, record_path(paper_id, quick, out_dir))
    return record


def format_record(record: dict) -> str:
    lines = [f"{record['paper']}: {record['command']} at {record['git_commit'][:10]}"
             + (" (uncommitted changes)" if record["git_dirty"] else "")]  # fmt: skip
    for name, c in record["checks"].items():
        state = {True: "ok", False: "FAILED", None: "not run"}[c["ok"]]
        figure = {k: v for k, v in c.items() if k not in ("ok", "rows", "models", "seconds")
                  and not isinstance(v, list | dict)}  # fmt: skip
        detail = ", ".join(f"{k} {v}" for k, v in figure.items())
        lines.append(f"  {name:<10} {state:<8} {detail}")
        lines += [f"    {f}" for f in c.get("failures", [])[:10]]
    return "\n".join(lines)
