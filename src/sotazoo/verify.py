"""`sotazoo verify PAPER`: run a paper's checks and record what they measured, as evidence.

The status matrix (`sotazoo status`) reads these records, `results/verify/<id>.json`, instead of
looking for test names. Each check runs through the paper contract (`sotazoo.papers._contract`),
so a new paper is verified with no edit here:

| check     | what it measures                                                              | figure        |
|-----------|-------------------------------------------------------------------------------|---------------|
| params    | every paper variant's parameter count against its card (within 0.5 %),        | worst rel.    |
|           | counted on the meta device (no memory, no arithmetic)                         | difference    |
| methods   | every method of the card (`[[methods]]`, a paper whose artefact is a          | methods       |
|           | procedure) runs on tensors and PIL images, keeps their kind, size and dtype,  |               |
|           | and replays from its seed; full runs add the paper's non-oracle tests         |               |
| export    | every model's small version exported to ONNX and run by onnxruntime against   | worst rel.    |
|           | PyTorch (`sotazoo.export`)                                                    | difference    |
| bad_input | every model's small version (and every method) fed wrong dtypes, channel      | clear / cases |
|           | counts, ranks, NaN and inf: each must be an `InputError` that names it        |               |
| weights   | every weights entry whose file is here (shipped, or in the cache) loaded by   | max abs diff  |
|           | its tag, saved, and loaded again by path: the same outputs                    |               |
| oracle    | the paper's oracle tests (`tests/papers/test_<id>.py -k oracle`) run by pytest | passed / run  |
|           | from the checkout, against the reference implementations                      |               |
| browser   | the paper's headless-Chromium tests (`tests/browser -k <id>`: its file, or its | passed / run  |
|           | parameter of a shared one), full runs only, where Chromium is installed       |               |

A record carries the commit (and whether the tree was clean), the versions, the machine and a
fingerprint of the paper's folder (`paper_fingerprint`): `sotazoo status` marks the record stale
when the folder changed after it. A paper runs the checks that apply to it (`checks_of`): params,
export and weights where its card has models, methods where it has methods. `--quick` runs the
checks before the oracle only and writes
`<id>.quick.json`, never the committed record; CI runs it for every paper and compares it with
the committed record (tests/test_verify.py), so a committed record never claims what the code at
its commit does not do.
"""

from __future__ import annotations

import functools
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
CHECKS = ("params", "methods", "export", "bad_input", "weights", "oracle", "browser")
QUICK_CHECKS = ("params", "methods", "export", "bad_input", "weights")
MODEL_CHECKS = ("params", "export", "weights")  # run where the card has models
METHOD_CHECKS = ("methods",)  # run where the card has methods
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


def checks_of(p: Paper, *, quick: bool = False) -> tuple[str, ...]:
    """The checks that apply to paper `p`, in order: the model checks where its card has models,
    the method check where it has methods, the others always (the first ones with `quick`)."""
    card = p.card
    return tuple(
        name for name in (QUICK_CHECKS if quick else CHECKS)
        if (name not in MODEL_CHECKS or card.models) and (name not in METHOD_CHECKS or card.methods)
    )  # fmt: skip


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


def method_images(n: int = 6) -> list:
    """Images a method must take: (3, H, W) uint8 and float tensors, and PIL RGB images, of a
    non-square size, from a fixed seed."""
    import torch
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    images = []
    for _ in range(n):
        x = torch.randint(0, 256, (3, 24, 32), generator=g, dtype=torch.uint8)
        images += [x, x.float() / 255, Image.fromarray(x.permute(1, 2, 0).numpy())]
    return images


def _kind(x) -> tuple:
    """What a method must keep of its input: the type, and the shape and dtype (a tensor) or the
    size and mode (a PIL image)."""
    import torch

    return (type(x), *((x.shape, x.dtype) if isinstance(x, torch.Tensor) else (x.size, x.mode)))


def _same(a, b) -> bool:
    import numpy as np

    return _kind(a) == _kind(b) and np.array_equal(np.asarray(a), np.asarray(b))


def _methods(p: Paper, *, quick: bool = False) -> dict:
    """Every method of the card runs on tensors and PIL images, returns an image of the same
    kind, size and dtype, and replays exactly from its seed (its only randomness); a full run
    also runs the paper's own tests of its methods (tests/papers/test_<id>.py, the oracle ones
    excepted: those are the oracle check)."""
    from sotazoo.registry import create_method

    rows = []
    for m in p.card.methods:
        problems = []
        try:
            first, again = create_method(m.name, rng=0), create_method(m.name, rng=0)
            for i, img in enumerate(method_images()):
                a, b = first(img), again(img)
                if _kind(a) != _kind(img):
                    problems.append(f"image {i}: returned another kind, size or dtype")
                if not _same(a, b):
                    problems.append(f"image {i}: the same seed gave another image")
        except Exception as e:  # noqa: BLE001 - any failure to run is the finding
            problems.append(f"{type(e).__name__}: {str(e)[:200]}")
        rows.append({"method": m.name, "ok": not problems, "problems": problems[:5]})
    result = {"ok": bool(rows) and all(r["ok"] for r in rows), "variants": len(rows),
              "rows": rows}  # fmt: skip
    if not quick:
        test = Path("tests") / "papers" / f"test_{p.id}.py"
        tests = _pytest([str(test), "-k", "not oracle"])
        result["tests"] = tests
        result["ok"] = result["ok"] and tests["ok"] is not False
    return result


def bad_method_inputs(name: str) -> list[tuple[str, Callable[[], Any]]]:
    """The generic bad inputs of method `name`: each call must raise an `InputError`."""
    import torch
    from PIL import Image

    from sotazoo.registry import create_method

    method = create_method(name, rng=0)
    x = torch.rand(3, 24, 32)
    nan = x.clone()
    nan[0, 0, 0] = math.nan
    cases = {
        "float64 out of [0, 1]": x.double() * 255,
        "float in 0..255": x * 255,
        "nan": nan,
        "int32": (x * 255).to(torch.int32),
        "two channels": x[:2],
        "a batch": x[None],
        "no channel axis": x[0],
        "empty": x[:, :0],
        "CMYK image": Image.new("CMYK", (32, 24)),
        "a list": x.tolist(),
    }
    return [(what, functools.partial(method, bad)) for what, bad in cases.items()]


def _bad_input(p: Paper) -> dict:
    cases = [(m.name, c) for m in p.card.models for c in bad_inputs(m.name)]
    cases += [(m.name, c) for m in p.card.methods for c in bad_method_inputs(m.name)]
    failures = []
    for name, (what, run) in cases:
        try:
            run()
            failures.append(f"{name}, {what}: no error")
        except InputError:
            pass
        except Exception as e:  # noqa: BLE001 - any other outcome is the finding
            failures.append(f"{name}, {what}: {type(e).__name__}: {str(e)[:120]}")
    n = len(cases)
    return {"ok": n > 0 and not failures, "cases": n, "clear": n - len(failures),
            "failures": failures}  # fmt: skip


def _weights(p: Paper) -> dict:
    import torch

    from sotazoo.registry import create_model, example_inputs, model_entry
    from sotazoo.weights import cache_path, save_safetensors

    rows = []
    for w in p.weights:
        files = [cache_path(f) for f in (w, *w.parts)]
        if not w.packaged and not all(f.is_file() for f in files):
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
        def used(r: dict) -> float:  # the share of its bound a figure uses; an exact one, 0
            if r["bound"]:
                return r["max_diff"] / r["bound"]
            return 0.0 if r["max_diff"] == 0 else math.inf

        worst = max(rows, key=used)
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
    names = checks_of(p, quick=quick)
    commit, dirty = git_commit()
    checks = {}
    t0 = time.perf_counter()
    for name in tqdm(names, desc=f"verify {paper_id}", disable=not progress):
        t = time.perf_counter()
        if not (p.card.models or p.card.methods):
            checks[name] = {"ok": None, "note": "no models or methods"}
        elif name == "methods":  # the one check whose quick run does less
            checks[name] = _methods(p, quick=quick)
        else:
            checks[name] = _RUN[name](p)
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
