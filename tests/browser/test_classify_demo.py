"""The classification demos in headless Chromium (SENet's and NASNet's pages): each classifies
its bundled images, and what the browser computes (pre-processed input and logits) matches
Python's pre-processing and onnxruntime."""

import json

import numpy as np
import pytest

DEMOS = [("senet", "seresnet_mini"), ("nasnet", "nasnet_mini")]


@pytest.mark.browser
@pytest.mark.parametrize(("paper", "model"), DEMOS, ids=[p for p, _ in DEMOS])
def test_classify_demo_matches_python(paper, model, built_site, site_url, browser_driver):
    import onnxruntime as ort

    from sotazoo.transforms import preprocess

    site, modules = built_site
    report = browser_driver(modules, site_url, "--demo", f"papers/{paper}.html")
    demo = report["demo"]
    assert demo["console_errors"] == [] and demo["page_errors"] == []
    assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
    assert report["isolated"] is True  # COOP/COEP honoured: threads are possible
    spec = json.loads((site / "models" / f"{model}.sotazoo.json").read_text())
    sess = ort.InferenceSession(
        str(site / "models" / spec["onnx"]), providers=["CPUExecutionProvider"]
    )
    assert len(demo["runs"]) == len(spec["samples"]) == 10
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        assert run["state"] == "done", run
        x = preprocess(site / "models" / sample["src"], spec["transforms"])
        browser_x = np.asarray(run["input"], dtype=np.float32).reshape(x.shape)
        # the same bilinear resize and normalisation in JS: float32 rounding only
        assert np.abs(browser_x - x).max() <= 1e-5, sample["name"]
        (logits,) = sess.run(None, {"input": x})
        # onnxruntime-web's WASM kernels sum in another order than native onnxruntime's; logits
        # are O(10), so 1e-3 is ~1e-4 relative, far above float32 reordering (~1e-6)
        assert np.abs(np.asarray(run["logits"]) - logits[0]).max() <= 1e-3, sample["name"]
        label = spec["labels"][int(np.argmax(logits))]
        assert run["top1"] == label and run["shown"].startswith(f"{sample['name']}: {label}")
