import json

import pytest

from sotazoo.cards import load_card
from sotazoo.provenance import repo_root
from sotazoo.repro import Measured, format_result, full_result_paths, validate_result
from sotazoo.status import COLUMNS, paper_status, status_table


def test_measured_summary():
    m = Measured.of([1.0, 2.0, 3.0], "pts")
    assert m.mean == 2.0 and m.std == 1.0 and m.per_seed == [1.0, 2.0, 3.0]
    assert Measured.of([5.0]).std == 0.0


def test_validate_result_finds_problems():
    assert "no claims" in validate_result({"claims": []})
    bad = {"claims": [{"id": "x", "verdict": "maybe", "measured": {}}]}
    problems = "\n".join(validate_result(bad))
    assert "verdict 'maybe'" in problems and "measured lacks mean" in problems


COMMITTED = full_result_paths(repo_root() / "results") if repo_root() else []


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_results_are_valid_full_runs(path):
    data = json.loads(path.read_text())
    assert validate_result(data) == []
    assert data["quick"] is False and len(data["seeds"]) >= 3
    assert data["paper"] == path.stem
    assert data["wall_seconds"] <= 600, "a full reproduction must fit in 10 minutes"
    assert format_result(data).count("paper    :") == len(data["claims"])


def test_status_is_computed_for_every_paper():
    rows = status_table()
    assert len(rows) == 27
    for pid, _section, row in rows:
        assert list(row) == list(COLUMNS)
        assert row["card"].done  # every paper of the list has a card
        if not load_card(pid).models:  # a card alone completes no other column
            assert [c for c in COLUMNS if row[c].done] == ["card"], pid


def test_senet_status_follows_what_exists():
    row = paper_status("senet")
    for col in ("card", "model", "oracle", "weights", "bad input"):
        assert row[col].done, col
    assert row["browser"].done  # tests/browser/test_senet_demo.py and the export test


def test_readme_tables_are_up_to_date():
    """README's status, repro and bench tables are generated: `python -m sotazoo.readme`."""
    from sotazoo.readme import render

    readme = repo_root() / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert render(text) == text, "README is stale: run `python -m sotazoo.readme`"
