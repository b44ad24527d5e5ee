"""EDSR's page in headless Chromium: the image-to-image demo upscales every bundled LR crop x4,
and what the browser computes (input tensor and super-resolved output) matches Python's
pre-processing and onnxruntime (`check_sr_demo` in conftest.py)."""

import pytest


@pytest.mark.browser
def test_edsr_demo_matches_python(check_sr_demo):
    spec = check_sr_demo("edsr")
    assert spec["model"] == "edsr_baseline_x4" and spec["weights"] == "edsr_baseline_x4.sotazoo"


@pytest.mark.browser
def test_a_photo_is_cropped_at_its_own_resolution_where_the_reader_clicks(
    built_site, site_url, browser_driver, tmp_path
):
    """A 200 x 150 photo is not shrunk to the 64 x 64 input: the model sees a 64 x 64 crop of
    its pixels, the centre first, then where the thumbnail is clicked (its top-left corner)."""
    import json

    import numpy as np

    from sotazoo.transforms import load_image, save_png

    site, modules = built_site
    spec = json.loads(
        (site / json.loads((site / "site.json").read_text())["demos"]["edsr"]).read_text()
    )
    size = spec["transforms"]["size"]
    rng = np.random.default_rng(3)
    photo = save_png(rng.random((3, 150, 200)).astype(np.float32), tmp_path / "photo.png")
    pixels = load_image(photo)  # what the browser decodes, 8-bit values
    report = browser_driver(modules, site_url, "--demo", "papers/edsr.html", "--samples", "0",
                            "--upload", str(photo), "--upload-click", "0.02,0.02")  # fmt: skip
    centre, corner = report["demo"]["uploads"]
    assert report["demo"]["console_errors"] == [] and report["demo"]["page_errors"] == []
    for run, (left, top) in ((centre, ((200 - size) // 2, (150 - size) // 2)), (corner, (0, 0))):
        assert run["state"] == "done", run
        assert run["crop"] == [left, top]
        fed = np.asarray(next(iter(run["feeds"].values()))["data"], np.float32)
        want = pixels[:, top : top + size, left : left + size]  # mean 0, std 1: the pixels
        assert np.abs(fed.reshape(want.shape) - want).max() <= 1e-6  # the same 8-bit values
