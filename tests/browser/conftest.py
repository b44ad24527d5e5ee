"""The `browser_driver` fixture: headless Chromium over the served site (`sotazoo.site.browser`).

Where Chromium or node is missing the browser tests skip, except in CI, where `.ci/run` installs
both and a missing one is a failure."""

import os

import pytest

from sotazoo.site.browser import browser_available, chromium_path, run_check


@pytest.fixture
def browser_driver():
    if not browser_available():
        if os.environ.get("CI"):
            pytest.fail(f"CI must install Chromium ({chromium_path()}) and node; see .ci/run")
        pytest.skip(f"needs {chromium_path()} and node (apt-get install chromium nodejs)")
    return run_check


@pytest.fixture
def check_sr_demo(built_site, site_url, browser_driver):
    """Run a super-resolution paper's image2image demo in Chromium on every bundled LR crop and
    check the browser's input tensor against Python's pre-processing (1e-5) and its output
    against onnxruntime in Python (1e-3). Returns the demo's spec."""

    def check(paper: str) -> dict:
        import json

        import numpy as np
        import onnxruntime as ort

        from sotazoo.transforms import preprocess

        site, modules = built_site
        manifest = json.loads((site / "site.json").read_text())
        spec_path = site / manifest["demos"][paper]
        spec = json.loads(spec_path.read_text())
        assert spec["kind"] == "image2image"
        scale = int(spec["model"].rsplit("x", 1)[1])
        report = browser_driver(modules, site_url, "--demo", f"papers/{paper}.html")
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
        return spec

    return check
