"""DBPN's page in headless Chromium: the image-to-image demo upscales every bundled LR crop x4
with our laptop-scale DBPN, and what the browser computes (input tensor and super-resolved
output) matches Python's pre-processing and onnxruntime (`check_sr_demo` in conftest.py)."""

import pytest


@pytest.mark.browser
def test_dbpn_demo_matches_python(check_sr_demo):
    spec = check_sr_demo("dbpn")
    assert spec["model"] == "dbpn_mini_x4" and spec["weights"] == "dbpn_mini_x4.sotazoo"
