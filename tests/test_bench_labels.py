"""What a benchmark ratio is against, said wherever it is shown: a `sotazoo:` spec is one of our
own models ("ours"), any other library's is an independent implementation. Checked on results
written by hand and on the saved results/bench files, for the label, the short table cell, the
CLI's printout and the site's table and chart. Nothing here runs a model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sotazoo import bench
from sotazoo.bench import BenchResult, Measurement, format_bench
from sotazoo.bench_labels import reference_cell, reference_kind, reference_label
from sotazoo.errors import SotazooError
from sotazoo.registry import model_entry
from sotazoo.repro import results_dir


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("sotazoo:edsr_x4", "ours"),
        ("sotazoo:sagan_128:attention=False", "ours"),
        ("timm:legacy_seresnet50", "independent"),
        ("torchvision:retinanet_resnet50_fpn:raw=True,frozen_bn=True", "independent"),
        ("torchsr:edsr_baseline:scale=2", "independent"),
        ("opencv:yolov3_416", "independent"),
    ],
)
def test_a_sotazoo_spec_is_ours_any_other_library_independent(spec, kind):
    assert reference_kind(spec) == kind


def test_labels_import_no_torch_and_bench_re_exports_them():
    """`sotazoo status` labels its bench cells without importing torch (1-2 s)."""
    code = (
        "import sys\n"
        "from sotazoo.bench_labels import reference_cell, reference_label\n"
        "r = {'model': 'ddbpn_x4', 'reference': {'name': 'sotazoo:edsr_x4'}, 'latency_ratio': 1}\n"
        "print(reference_cell(r), reference_label(r)[:14], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "x1.00 vs ours vs our edsr_x4 False"
    assert bench.reference_cell is reference_cell and bench.reference_label is reference_label


def _result(model: str, spec: str | None, ratio: float | None = 0.5896, **extra) -> dict:
    """A bench result as a saved JSON holds it (the fields the labels read)."""
    ref = {"name": spec, "latency_ms": 2.0} if spec else None
    return {"model": model, "reference": ref, "latency_ratio": ratio, **extra}


def test_labels_of_our_own_references_quote_the_card():
    note = model_entry("ddbpn_x4")[1].reference_note
    assert note.startswith("no installable DBPN")
    r = _result("ddbpn_x4", "sotazoo:edsr_x4")
    assert reference_label(r) == f"vs our edsr_x4 ({note})"
    assert reference_cell(r) == "x0.59 vs ours"
    r = _result("sagan_128", "sotazoo:sagan_128:attention=False", 1.0164)
    assert reference_label(r).startswith("vs our sagan_128 with attention=False (no installable")
    assert reference_cell(r) == "x1.02 vs ours"
    # a model without a card note (a laptop model): still said to be ours
    r = _result("sagan_mini", "sotazoo:sagan_mini:attention=False")
    assert reference_label(r) == (
        "vs our sagan_mini with attention=False (our own code, not an independent one)"
    )


def test_labels_of_independent_references():
    r = _result("yolov3_416", "opencv:yolov3_416", 1.184)
    assert reference_label(r) == "vs OpenCV's yolov3_416 (independent implementation)"
    assert reference_cell(r) == "x1.18 ref"
    r = _result("seresnet50", "timm:legacy_seresnet50", 1.034)
    assert reference_label(r) == "vs timm's legacy_seresnet50 (independent implementation)"
    assert reference_cell(r) == "x1.03 ref"


def test_recorded_fields_win_and_no_reference_has_no_label():
    r = _result("ddbpn_x4", "sotazoo:edsr_x4", reference_label="as recorded")
    assert reference_label(r) == "as recorded"
    r = _result("ddbpn_x4", "sotazoo:edsr_x4", reference_kind="ours")
    assert reference_cell(r) == "x0.59 vs ours"
    assert reference_label(_result("ddbpn_x4", None)) == ""
    assert reference_cell(_result("ddbpn_x4", None, None)) == ""


def _saved() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results_dir() / "bench").glob("*.json"))]


@pytest.mark.skipif(not _saved(), reason="no results/bench files in this checkout")
def test_every_saved_result_says_what_it_is_against():
    """The committed results, with or without the recorded fields: a ratio against our own
    model reads "vs ours" and its label quotes the card; never "ref" for our own code, nor for
    another library's other model (the card's note says what it is: "vs other")."""
    for r in _saved():
        spec = r["reference"]["name"]
        ours = spec.startswith("sotazoo:")
        try:
            entry = model_entry(r["model"])[1]
        except SotazooError:  # a method's result (AutoAugment's policies): no card note
            entry = None
        other = not ours and entry is not None and entry.reference == spec and bool(entry.reference_note)
        want = " vs ours" if ours else (" vs other" if other else " ref")
        assert reference_cell(r).endswith(want), r["model"]
        label = reference_label(r)
        assert label.startswith("vs our " if ours else "vs "), (r["model"], label)
        if ours:
            assert model_entry(r["model"])[1].reference_note in label


def _bench_result(spec: str) -> BenchResult:
    def m(name: str, ms: float) -> Measurement:
        return Measurement(name, 10, 1.0, ms, 0.1, 100.0 / ms, 8)

    r = BenchResult(model="ddbpn_x4", input_size=(3, 32, 32), device="cpu", threads=2,
                    torch="2", cpu="cpu", ours=m("ddbpn_x4", 1.0), reference=m(spec, 2.0),
                    latency_ratio=0.5, throughput_ratio=2.0, reference_kind=reference_kind(spec))  # fmt: skip
    r.reference_label = reference_label(r.to_dict())
    return r


def test_cli_printout_says_when_the_comparison_is_ours():
    text = format_bench(_bench_result("sotazoo:edsr_x4"))
    assert "ddbpn_x4 vs our edsr_x4 (no installable DBPN" in text
    assert "latency ratio 0.500" in text and "ours/reference" not in text
    text = format_bench(_bench_result("torchsr:edsr:scale=4"))
    assert "ddbpn_x4 vs torchsr's edsr (independent implementation): latency ratio" in text


def test_site_table_and_chart_label_the_comparison(tmp_path):
    """site.build._benches adds the kind and the label to results saved without them; the
    paper page's table prints the label above the spec, the chart marks our own models apart."""
    from sotazoo.cards import load_card
    from sotazoo.site import charts, pages
    from sotazoo.site.build import _benches

    ours, independent = _bench_result("sotazoo:edsr_x4"), _bench_result("timm:x")
    rows = [ours.to_dict(), independent.to_dict()]
    html = pages._bench_table(rows)
    assert "compared with" in html and "ours/ref." not in html
    assert "vs our edsr_x4 (no installable DBPN" in html and "vs timm&#x27;s x" in html
    assert '<code class="meta">sotazoo:edsr_x4</code>' in html
    charts.draw_measured(rows, tmp_path / "measured.svg")
    assert (tmp_path / "measured.svg").stat().st_size > 0
    if (results_dir() / "bench" / "ddbpn_x4.json").is_file():
        (b,) = [b for b in _benches(load_card("dbpn")) if b["model"] == "ddbpn_x4"]
        assert b["reference_kind"] == "ours" and b["reference_label"].startswith("vs our edsr_x4")
