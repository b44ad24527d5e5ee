"""SENet's page in headless Chromium: the demo classifies the bundled images, and what the browser
computes (pre-processed input and logits) matches Python's pre-processing and onnxruntime."""

import json

import numpy as np
import pytest


@pytest.mark.browser
def test_senet_demo_matches_python(built_site, site_url, browser_driver):
    import onnxruntime as ort

    from sotazoo.transforms import preprocess

    site, modules = built_site
    report = browser_driver(modules, site_url, "--demo", "papers/senet.html")
    demo = report["demo"]
    assert demo["console_errors"] == [] and demo["page_errors"] == []
    assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
    assert report["isolated"] is True  # COOP/COEP honoured: threads are possible
    spec = json.loads((site / "models" / "seresnet_mini.sotazoo.json").read_text())
    sess = ort.InferenceSession(
        str(site / "models" / spec["onnx"]), providers=["CPUExecutionProvider"]
    )
    assert len(demo["runs"]) == len(spec["samples"]) == 10
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        assert run["state"] == "done", run
        x = preprocess(site / "models" / sample["src"], spec["transforms"])
        browser_x = np.asarray(run["input"], dtype=np.float32).reshape(x.shape)
        assert np.abs(browser_x - x).max() <= 1e-5, sample["name"]  # same pre-processing
        (logits,) = sess.run(None, {"input": x})
        assert np.abs(np.asarray(run["logits"]) - logits[0]).max() <= 1e-3, sample["name"]
        label = spec["labels"][int(np.argmax(logits))]
        assert run["top1"] == label and run["shown"].startswith(f"{sample['name']}: {label}")
