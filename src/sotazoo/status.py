"""The status matrix: for every paper, the eight columns of the definition of done, computed from
recorded evidence — never set by hand, never inferred from the names of tests.

| column    | done when                                                                            |
|-----------|--------------------------------------------------------------------------------------|
| card      | `papers/<id>/card.toml` exists and passes the schema                                 |
| model     | the verify record's `params` check passed: every paper variant's parameter count     |
|           | within 0.5 % of its card's; for a paper of methods only (`[[methods]]`), its         |
|           | `methods` check passed                                                               |
| oracle    | its `oracle` check passed: the paper's oracle tests ran and passed                    |
| weights   | its `weights` check passed: the weights entries here load by tag and round-trip      |
| repro     | `results/<id>.json` is a valid full (not --quick) run of the current schema, made    |
|           | from a clean commit; shows claims reproduced/total under the one rule of             |
|           | `sotazoo.repro.RULE`; "stale" when the paper's folder changed since                  |
| bench     | `results/bench/<model>.json` exists for one of its models, with a latency ratio: "ref" |
|           | against an independent implementation, "vs ours" against one of our own models,      |
|           | "vs other" against another library's other model (`sotazoo.bench_labels`)            |
| browser   | its `export` check passed (onnxruntime agrees with PyTorch) and its `browser` check  |
|           | (the headless-Chromium tests of the demo) ran and passed; "onnx only" without that  |
| bad input | its `bad_input` check passed: every generic bad input is a clear `InputError`        |

A card may declare a column not applicable (`[[not_applicable]]`: weights, browser), with the
reason in both languages: the cell reads "n/a" and counts as done; the paper's page gives the
reason. A paper of methods only has no network to export: its browser cell is its `browser`
check alone (the demo computes the method in the page).

The verify record is `results/verify/<id>.json`, written by `sotazoo verify <id>`
(`sotazoo.verify`). A record made before the paper's folder last changed is stale: its cells say
"stale" and are not done until the paper is verified again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sotazoo.bench_labels import reference_cell
from sotazoo.cards import card_path, load_card, load_catalog
from sotazoo.errors import CardError
from sotazoo.repro import SCHEMA_VERSION, is_stale, load_result, results_dir, validate_result

COLUMNS = ("card", "model", "oracle", "weights", "repro", "bench", "browser", "bad input")
DONE, MISSING, NOT_APPLICABLE = "yes", "-", "n/a"


@dataclass
class Cell:
    done: bool
    text: str


def _check(record: dict | None, name: str, stale: bool, done_text: str = DONE) -> Cell:
    """The cell of the verify check `name`: done when it passed in a record that is not stale."""
    if record is None:
        return Cell(False, MISSING)
    check = record["checks"].get(name)
    if check is None or check.get("ok") is None:
        return Cell(False, MISSING)
    if not check["ok"]:
        return Cell(False, "failed")
    return Cell(not stale, f"{done_text} (stale)" if stale else done_text)


def _repro_cell(result: dict | None) -> Cell:
    if result is None:
        return Cell(False, MISSING)
    if result.get("schema") != SCHEMA_VERSION:
        return Cell(False, "old rule")  # made before the verdict rule: rerun it
    if result.get("quick") or validate_result(result):
        return Cell(False, "invalid")
    n_ok = sum(c["verdict"] == "reproduced" for c in result["claims"])
    text = f"{n_ok}/{len(result['claims'])} repro."
    if result["git_dirty"]:
        return Cell(False, f"{text} (dirty)")
    if is_stale(result):
        return Cell(False, f"{text} (stale)")
    return Cell(True, text)


def paper_status(paper_id: str) -> dict[str, Cell]:
    """The eight cells of one paper."""
    from sotazoo.verify import is_stale, load_record

    if not card_path(paper_id).is_file():
        return {c: Cell(False, MISSING) for c in COLUMNS}
    try:
        card = load_card(paper_id)
    except CardError:
        return {"card": Cell(False, "invalid")} | {c: Cell(False, MISSING) for c in COLUMNS[1:]}
    row: dict[str, Cell] = {"card": Cell(True, DONE)}
    record = load_record(paper_id)
    if record is not None and record.get("quick"):
        record = None  # only a full run is evidence for the matrix
    stale = record is not None and is_stale(record)
    checks = record["checks"] if record else {}

    methods_only = bool(card.methods) and not card.models
    model_check, noun = ("methods", "methods") if methods_only else ("params", "variants")
    variants = checks.get(model_check, {}).get("variants", 0)
    row["model"] = (
        _check(record, model_check, stale, f"{variants} {noun}")
        if variants
        else Cell(False, MISSING)
    )
    row["oracle"] = _check(record, "oracle", stale)
    entries = checks.get("weights", {}).get("entries", 0)
    row["weights"] = (
        _check(record, "weights", stale, f"{entries} ckpts") if entries else Cell(False, MISSING)
    )
    if card.not_applicable_reason("weights"):
        row["weights"] = Cell(True, NOT_APPLICABLE)

    row["repro"] = _repro_cell(load_result(paper_id))

    bench_dir = results_dir() / "bench"
    benches = []
    for m in (*card.models, *card.methods):
        f = bench_dir / f"{m.name}.json"
        if f.is_file():
            r = json.loads(f.read_text(encoding="utf-8"))
            if r.get("latency_ratio") is not None:
                benches.append(r)
    # "ref" only against an independent implementation; "vs ours" / "vs other" say otherwise
    best = min(benches, key=lambda r: r["latency_ratio"], default=None)
    row["bench"] = Cell(best is not None, reference_cell(best) if best else MISSING)

    export, browser = _check(record, "export", stale), _check(record, "browser", stale)
    if card.not_applicable_reason("browser"):
        row["browser"] = Cell(True, NOT_APPLICABLE)
    elif methods_only or (export.done and browser.done):  # a method: nothing to export
        row["browser"] = browser
    elif export.done:
        row["browser"] = Cell(False, "onnx only")
    else:
        row["browser"] = export
    row["bad input"] = _check(record, "bad_input", stale)
    return row


def status_table() -> list[tuple[str, str, dict[str, Cell]]]:
    return [(p.id, p.section, paper_status(p.id)) for p in load_catalog()]


def format_status(rows=None) -> str:
    rows = rows if rows is not None else status_table()
    # each column as wide as its widest cell, so no cell runs into the next
    widths = [max([len(c), 11, *(len(r[c].text) for _, _, r in rows)]) for c in COLUMNS]
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
