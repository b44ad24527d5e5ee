"""`sotazoo verify` and the status matrix read from its records (sotazoo.verify, sotazoo.status).

The committed records (results/verify/<id>.json) are evidence only while they describe the code:
every paper with models has one, made by a full run from a clean commit, whose fingerprint is
that of the paper's folder as it is now, and whose quick checks a fresh quick run here repeats
(CI runs this on every landing)."""

from __future__ import annotations

import dataclasses
import json

import pytest

import sotazoo
from sotazoo import status as status_mod
from sotazoo import verify as verify_mod
from sotazoo.papers._contract import paper
from sotazoo.verify import checks_of, load_record, paper_fingerprint, verify_paper

PAPERS = [p for p in sotazoo.list_papers()
          if sotazoo.list_models(paper=p) or sotazoo.list_methods(paper=p)]  # fmt: skip


@pytest.mark.parametrize("paper_id", PAPERS)
def test_the_committed_record_is_current_and_repeats_here(paper_id, tmp_path):
    record = load_record(paper_id)
    assert record is not None, f"no results/verify/{paper_id}.json: run `sotazoo verify {paper_id}`"
    assert not record["quick"] and not record["git_dirty"] and record["git_commit"] != "unknown"
    assert record["fingerprint"] == paper_fingerprint(paper_id), (
        f"papers/{paper_id} changed after its record: run `sotazoo verify {paper_id}` again"
    )
    fresh = verify_paper(paper_id, quick=True, out_dir=tmp_path, progress=False)
    assert set(fresh["checks"]) == set(checks_of(paper(paper_id), quick=True))
    assert set(fresh["checks"]) <= set(record["checks"])  # the full run ran every quick check
    for name in fresh["checks"]:
        assert fresh["checks"][name]["ok"] == record["checks"][name]["ok"], name
    assert (tmp_path / f"{paper_id}.quick.json").is_file()


def test_params_check_compares_with_the_card(monkeypatch):
    """The params check is the card's number against a count: a card off by 1 % fails it."""
    from sotazoo.papers._contract import paper

    p = paper("senet")
    assert verify_mod._params(p)["ok"]
    models = tuple(
        m if m.laptop else dataclasses.replace(m, params=int(m.params * 1.01))
        for m in p.card.models
    )
    monkeypatch.setattr(p, "card", dataclasses.replace(p.card, models=models))
    got = verify_mod._params(p)
    assert not got["ok"] and got["worst_rel_diff"] > 0.009


def _record(tmp_path, monkeypatch, paper_id: str, **checks) -> None:
    record = {"schema": 1, "paper": paper_id, "quick": False, "git_commit": "x", "git_dirty": False,
              "fingerprint": paper_fingerprint(paper_id), "checks": {
                  "params": {"ok": True, "variants": 6}, "export": {"ok": True},
                  "bad_input": {"ok": True}, "weights": {"ok": True, "entries": 7},
                  "oracle": {"ok": True}, "browser": {"ok": True}} | checks}  # fmt: skip
    (tmp_path / "verify").mkdir(exist_ok=True)
    (tmp_path / "verify" / f"{paper_id}.json").write_text(json.dumps(record))
    monkeypatch.setenv("SOTAZOO_RESULTS", str(tmp_path))


def test_status_reads_the_record(tmp_path, monkeypatch):
    _record(tmp_path, monkeypatch, "senet")
    row = status_mod.paper_status("senet")
    assert row["model"].text == "6 variants" and row["weights"].text == "7 ckpts"
    assert all(row[c].done for c in ("card", "model", "oracle", "weights", "browser", "bad input"))
    _record(tmp_path, monkeypatch, "senet", browser={"ok": None}, oracle={"ok": False})
    row = status_mod.paper_status("senet")
    assert row["browser"].text == "onnx only" and row["oracle"].text == "failed"
    assert not row["browser"].done and not row["oracle"].done


def test_a_record_older_than_the_papers_files_is_stale(tmp_path, monkeypatch):
    _record(tmp_path, monkeypatch, "senet")
    monkeypatch.setattr(verify_mod, "paper_fingerprint", lambda pid: "changed")
    row = status_mod.paper_status("senet")
    assert row["model"].text == "6 variants (stale)" and not row["model"].done
    assert row["card"].done  # the card column reads the card itself


def test_without_records_the_evidence_columns_are_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("SOTAZOO_RESULTS", str(tmp_path))
    row = status_mod.paper_status("senet")
    assert row["card"].done and not any(row[c].done for c in ("model", "oracle", "bad input"))


def test_quick_records_never_replace_the_committed_one(tmp_path):
    verify_paper("progan", quick=True, out_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progan.quick.json"]


def test_the_oracle_check_records_each_oracles_figure():
    """The oracle check runs the paper's oracle tests and keeps their figures: the largest
    difference from the reference and its bound (tests/papers/oracle.py), the worst beside."""
    from sotazoo.papers._contract import paper

    got = verify_mod._oracle(paper("relation_networks"))
    assert got["ok"] and got["figures"] == len(got["rows"]) >= 1
    assert 0 <= got["worst_max_diff"] <= got["worst_bound"]
    assert all(
        r["test"].startswith("tests/papers/test_relation_networks.py::") for r in got["rows"]
    )


def _result(tmp_path, monkeypatch, paper_id: str, **fields) -> None:
    from sotazoo.repro import SCHEMA_VERSION, experiment_fingerprint

    claim = {"id": "c", "statement": "s", "paper_value": 1.0, "tested": "t", "rule": "r",
             "verdict": "reproduced", "measured": {"mean": 1.0, "std": 0.1, "per_seed": [1] * 3}}  # fmt: skip
    data = {"schema": SCHEMA_VERSION, "paper": paper_id, "mode": "full", "quick": False,
            "seeds": [0, 1, 2], "wall_seconds": 1.0, "command": f"sotazoo repro {paper_id}",
            "git_commit": "x", "git_dirty": False, "fingerprint": experiment_fingerprint(paper_id),
            "versions": {}, "machine": {}, "claims": [claim, {**claim, "verdict": "partly"}]}  # fmt: skip
    (tmp_path / f"{paper_id}.json").write_text(json.dumps(data | fields))
    monkeypatch.setenv("SOTAZOO_RESULTS", str(tmp_path))


def test_the_repro_cell_counts_verdicts_of_clean_current_results_only(tmp_path, monkeypatch):
    _result(tmp_path, monkeypatch, "senet")
    cell = status_mod.paper_status("senet")["repro"]
    assert cell.done and cell.text == "1/2 repro."
    _result(tmp_path, monkeypatch, "senet", git_dirty=True)
    assert status_mod.paper_status("senet")["repro"].text == "1/2 repro. (dirty)"
    _result(tmp_path, monkeypatch, "senet", fingerprint="older")
    cell = status_mod.paper_status("senet")["repro"]
    assert cell.text == "1/2 repro. (stale)" and not cell.done
    _result(tmp_path, monkeypatch, "senet", schema=1)
    assert status_mod.paper_status("senet")["repro"].text == "old rule"


# ---------------------------------------------------------------------- papers of methods


def test_status_of_a_paper_of_methods(tmp_path, monkeypatch):
    """AutoAugment's artefacts are methods: the model column reads the methods check, weights
    are not applicable by its card, and the browser column is the browser check alone (there
    is no network to export)."""
    checks = {"methods": {"ok": True, "variants": 3}, "bad_input": {"ok": True},
              "oracle": {"ok": True}, "browser": {"ok": True}}  # fmt: skip
    record = {"schema": 1, "paper": "autoaugment", "quick": False, "git_commit": "x",
              "git_dirty": False, "fingerprint": paper_fingerprint("autoaugment"),
              "checks": checks}  # fmt: skip
    (tmp_path / "verify").mkdir()
    (tmp_path / "verify" / "autoaugment.json").write_text(json.dumps(record))
    monkeypatch.setenv("SOTAZOO_RESULTS", str(tmp_path))
    row = status_mod.paper_status("autoaugment")
    assert row["model"].text == "3 methods" and row["model"].done
    assert row["weights"].text == "n/a" and row["weights"].done
    assert row["browser"].done and row["bad input"].done and row["oracle"].done
    checks["browser"] = {"ok": None, "note": "Chromium is not installed here"}
    (tmp_path / "verify" / "autoaugment.json").write_text(json.dumps(record))
    assert not status_mod.paper_status("autoaugment")["browser"].done


def test_the_checks_that_apply_follow_the_card():
    assert checks_of(paper("autoaugment")) == ("methods", "bad_input", "oracle", "browser")
    assert checks_of(paper("senet"), quick=True) == ("params", "export", "bad_input", "weights")


def test_the_methods_check_catches_hidden_randomness_and_changed_kinds(monkeypatch):
    import random

    import torch

    p = paper("autoaugment")
    honest = p.method_builder("autoaugment_svhn")
    assert verify_mod._methods(p, quick=True)["ok"]

    def global_random(*, rng, **kw):  # ignores its seed: two builds differ
        return honest(rng=random.randrange(10**9), **kw)

    monkeypatch.setattr(p, "method_builder", lambda name: global_random)
    got = verify_mod._methods(p, quick=True)
    assert not got["ok"] and "the same seed gave another image" in str(got["rows"])

    def to_float(*, rng, **kw):
        m = honest(rng=rng, **kw)
        return lambda img: m(img).float() if isinstance(img, torch.Tensor) else m(img)

    monkeypatch.setattr(p, "method_builder", lambda name: to_float)
    got = verify_mod._methods(p, quick=True)
    assert not got["ok"] and "returned another kind, size or dtype" in str(got["rows"])


def test_a_method_that_takes_anything_fails_the_bad_input_check(monkeypatch):
    p = paper("autoaugment")
    assert verify_mod._bad_input(p)["ok"]
    monkeypatch.setattr(p, "method_builder", lambda name: lambda *, rng: lambda img: img)
    got = verify_mod._bad_input(p)
    assert not got["ok"] and got["clear"] == 0 and "nan: no error" in str(got["failures"])


def test_the_worst_oracle_figure_is_the_one_nearest_its_bound(monkeypatch):
    """An exact comparison (bound 0) that holds uses none of its bound: it is not the worst."""
    rows = [{"test": "a", "what": "exact", "max_diff": 0.0, "bound": 0.0},
            {"test": "b", "what": "one level", "max_diff": 1.0, "bound": 1.0},
            {"test": "c", "what": "loose", "max_diff": 1e-6, "bound": 1e-5}]  # fmt: skip

    def fake_pytest(selection, env=None, **kw):
        with open(env["SOTAZOO_ORACLE_LOG"], "w") as f:
            f.write("\n".join(json.dumps(r) for r in rows))
        return {"ok": True, "passed": 3, "ran": 3, "skipped": 0, "selection": selection}

    monkeypatch.setattr(verify_mod, "_pytest", fake_pytest)
    got = verify_mod._oracle(paper("autoaugment"))
    assert got["worst_case"] == "one level" and got["figures"] == 3
