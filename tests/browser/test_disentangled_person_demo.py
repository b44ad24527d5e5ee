"""Disentangled person generation's page in headless Chromium: the `recombine` demo, with person
A the first sample and B each sample in turn, asks the graph for A, B and A with each factor of B
(demo.pick_rows), and shows what onnxruntime in Python computes for the same rows (the encoder's
crops are a GridSample in the graph); a click on another person A asks for that A."""

import numpy as np
import pytest


@pytest.mark.browser
def test_disentangled_person_demo_matches_python(run_paper_demo):
    from sotazoo.papers.disentangled_person.demo import FACTORS, pick_rows

    spec, spec_path, demo, sess, names = run_paper_demo(
        "disentangled_person", "--press", '[data-person-a="person2"]')
    assert spec["kind"] == "recombine" and spec["weights"] == "dpig_mini.sotazoo"
    assert names == ["pick"] and [f["name"] for f in spec["factors"]] == [f["name"] for f in FACTORS]
    assert len(demo["runs"]) == len(spec["samples"]) >= 4

    def check(run, a, b):
        assert run["state"] == "done" and (run["a"], run["b"]) == (a, b), run
        pick = np.array(pick_rows(a, b), dtype=np.int64)
        got = np.array([int(v) for v in run["feeds"]["pick"]["data"]]).reshape(pick.shape)
        assert np.array_equal(got, pick)
        (want,) = sess.run(None, {"pick": pick})
        out = np.asarray(run["outputs"]["image"]["data"], dtype=np.float32).reshape(want.shape)
        # onnxruntime-web's wasm kernels against native onnxruntime: float32 sums in another order
        # through about 40 convolutions and the crops' bilinear sampling; 2e-3 of the [-1, 1] range
        assert np.abs(out - want).max() <= 2e-3, (a, b)

    for b, run in enumerate(demo["runs"]):
        check(run, 0, b)
    check(demo["pressed"][0], 2, len(demo["runs"]) - 1)
