"""EDSR's page in headless Chromium: the image-to-image demo upscales every bundled LR crop, and
what the browser computes (input tensor and super-resolved output) matches Python's
pre-processing and onnxruntime."""

import json

import numpy as np
import pytest


@pytest.mark.browser
def test_edsr_demo_matches_python(built_site, site_url, browser_driver):
    import onnxruntime as ort

    from sotazoo.transforms import preprocess

    site, modules = built_site
    manifest = json.loads((site / "site.json").read_text())
    spec_path = site / manifest["demos"]["edsr"]
    spec = json.loads(spec_path.read_text())
    assert spec["kind"] == "image2image" and spec["model"].startswith("edsr_baseline_x")
    scale = int(spec["model"].rsplit("x", 1)[1])
    report = browser_driver(modules, site_url, "--demo", "papers/edsr.html")
    demo = report["demo"]
    assert demo["console_errors"] == [] and demo["page_errors"] == []
    assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
    sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    name_in, name_out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    assert len(demo["runs"]) == len(spec["samples"]) >= 3
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        assert run["state"] == "done", run
        x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
        got_x = np.asarray(run["feeds"][name_in]["data"], dtype=np.float32).reshape(x.shape)
        assert np.abs(got_x - x).max() <= 1e-5, sample["name"]  # the LR crop, untouched
        (want,) = sess.run(None, {name_in: x})
        out = run["outputs"][name_out]
        assert out["dims"] == [1, 3, scale * x.shape[2], scale * x.shape[3]]
        got = np.asarray(out["data"], dtype=np.float32).reshape(want.shape)
        assert np.abs(got - want).max() <= 1e-3, sample["name"]
        assert run["shown"].startswith(f"{sample['name']}: {scale * x.shape[3]}x")
