"""The status matrix: for every paper, the eight columns of the definition of done, computed from
what exists — never set by hand.

| column    | done when                                                                            |
|-----------|--------------------------------------------------------------------------------------|
| card      | `papers/<id>/card.toml` exists and passes the schema                                 |
| model     | the card declares the paper's variants with reference params, their builders exist,  |
|           | and `tests/papers/test_<id>.py` has a `test_param_count*` test                       |
| oracle    | that file has a `test_oracle*` test                                                  |
| weights   | `papers/<id>/weights.py` lists checkpoints and the file has a `test_convert*` test    |
| repro     | `results/<id>.json` is a valid full (not --quick) run; shows claims reproduced/total  |
| bench     | `results/bench/<model>.json` exists for one of its models, with a reference ratio     |
| browser   | a model exports (`test_export*`) and the site runs it (`tests/browser/test_<id>*`)    |
| bad input | the file has a `test_bad_input*` test                                                |

Test-backed columns read the test files of the source checkout; installed without one, they
show "?".
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from sotazoo.cards import card_path, load_card, load_catalog
from sotazoo.errors import CardError
from sotazoo.repro import load_result, repo_root, results_dir, validate_result

COLUMNS = ("card", "model", "oracle", "weights", "repro", "bench", "browser", "bad input")
DONE, MISSING, UNKNOWN = "yes", "-", "?"


@dataclass
class Cell:
    done: bool
    text: str


def _test_functions(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def _has_test(funcs: set[str] | None, prefix: str) -> Cell:
    if funcs is None:
        return Cell(False, UNKNOWN)
    return Cell(True, DONE) if any(f.startswith(prefix) for f in funcs) else Cell(False, MISSING)


def paper_status(paper_id: str) -> dict[str, Cell]:
    """The eight cells of one paper."""
    root = repo_root()
    tests = root / "tests" if root else None
    funcs = _test_functions(tests / "papers" / f"test_{paper_id}.py") if tests else None
    row: dict[str, Cell] = {}
    if not card_path(paper_id).is_file():
        return {c: Cell(False, MISSING) for c in COLUMNS}
    try:
        card = load_card(paper_id)
        row["card"] = Cell(True, DONE)
    except CardError:
        return {"card": Cell(False, "invalid")} | {c: Cell(False, MISSING) for c in COLUMNS[1:]}

    variants = [m for m in card.models if not m.laptop]
    model_cell = _has_test(funcs, "test_param_count")
    if not variants:
        model_cell = Cell(False, MISSING)
    elif model_cell.done:
        model_cell = Cell(True, f"{len(variants)} variants")
    row["model"] = model_cell
    row["oracle"] = _has_test(funcs, "test_oracle")

    from sotazoo.registry import paper_weights

    n_weights = len(paper_weights(paper_id))
    w = _has_test(funcs, "test_convert")
    row["weights"] = Cell(w.done and n_weights > 0, f"{n_weights} ckpts" if w.done else w.text)

    result = load_result(paper_id)
    if result is None or result.get("quick") or validate_result(result):
        row["repro"] = Cell(False, MISSING if result is None else "invalid")
    else:
        n_ok = sum(c["verdict"] == "reproduced" for c in result["claims"])
        row["repro"] = Cell(True, f"{n_ok}/{len(result['claims'])} repro.")

    bench_dir = results_dir() / "bench"
    ratios = []
    for m in card.models:
        f = bench_dir / f"{m.name}.json"
        if f.is_file():
            r = json.loads(f.read_text(encoding="utf-8"))
            if r.get("latency_ratio") is not None:
                ratios.append(r["latency_ratio"])
    row["bench"] = Cell(bool(ratios), f"x{min(ratios):.2f} ref" if ratios else MISSING)

    export = _has_test(funcs, "test_export")
    browser_tests = (
        list((tests / "browser").glob(f"test_{paper_id}*.py"))
        if tests and (tests / "browser").is_dir()
        else []
    )
    if browser_tests and export.done:
        row["browser"] = Cell(True, DONE)
    elif export.done:
        row["browser"] = Cell(False, "onnx only")
    else:
        row["browser"] = export
    row["bad input"] = _has_test(funcs, "test_bad_input")
    return row


def status_table() -> list[tuple[str, str, dict[str, Cell]]]:
    return [(p.id, p.section, paper_status(p.id)) for p in load_catalog()]


def format_status(rows=None) -> str:
    rows = rows if rows is not None else status_table()
    widths = [max(len(c), 11) for c in COLUMNS]
    head = f"{'paper':<20}" + "".join(f"{c:<{w + 1}}" for c, w in zip(COLUMNS, widths, strict=True))
    lines = [head, "-" * len(head)]
    for pid, _section, row in rows:
        lines.append(
            f"{pid:<20}"
            + "".join(f"{row[c].text:<{w + 1}}" for c, w in zip(COLUMNS, widths, strict=True))
        )
    done = sum(all(r[c].done for c in COLUMNS) for _, _, r in rows)
    lines.append(f"{done}/{len(rows)} papers complete in every column")
    return "\n".join(lines)


def format_status_markdown(rows=None) -> str:
    rows = rows if rows is not None else status_table()
    lines = [
        "| paper | " + " | ".join(COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for pid, _section, row in rows:
        lines.append(f"| `{pid}` | " + " | ".join(row[c].text for c in COLUMNS) + " |")
    return "\n".join(lines)
