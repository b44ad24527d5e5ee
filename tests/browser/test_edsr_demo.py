"""EDSR's page in headless Chromium: the image-to-image demo upscales every bundled LR crop x4,
and what the browser computes (input tensor and super-resolved output) matches Python's
pre-processing and onnxruntime (`check_sr_demo` in conftest.py)."""

import pytest


@pytest.mark.browser
def test_edsr_demo_matches_python(check_sr_demo):
    spec = check_sr_demo("edsr")
    assert spec["model"] == "edsr_baseline_x4" and spec["weights"] == "edsr_baseline_x4.sotazoo"
