"""AutoAugment's page in headless Chromium: the demo applies a published policy to each bundled
photo in the page's own JavaScript, and every image it shows is the one Python's `method.py`
(PIL back-end, which the JS port matches) makes from the same draws."""

import json

import numpy as np
import pytest
from PIL import Image


@pytest.mark.browser
def test_autoaugment_demo_matches_python(built_site, site_url, browser_driver):
    from sotazoo.papers.autoaugment.method import AutoAugment, Draws

    site, modules = built_site
    report = browser_driver(modules, site_url, "--demo", "papers/autoaugment.html")
    demo = report["demo"]
    assert demo["console_errors"] == [] and demo["page_errors"] == []
    assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
    spec = json.loads((site / "models" / "autoaugment_imagenet.json").read_text())
    assert spec["kind"] == "augment" and spec["method"] and "onnx" not in spec
    assert len(demo["runs"]) == len(spec["samples"]) == 3
    ran = 0
    for k, (run, sample) in enumerate(zip(demo["runs"], spec["samples"], strict=True)):
        assert run["state"] == "done", run
        assert run["policy"] == "imagenet" and run["seed"] == k  # one draw per click, seeded
        img = Image.open(site / "models" / sample["src"]).convert("RGB")
        w, h = img.size
        rgba = np.asarray(run["input"], dtype=np.uint8).reshape(h, w, 4)
        assert np.array_equal(rgba[..., :3], np.asarray(img))  # the PNG decoded as PIL does
        d = run["draws"]
        draws = Draws(index=d["index"], apply=tuple(d["apply"]), signs=tuple(d["signs"]),
                      centers=tuple(tuple(c) for c in d["centers"]))  # fmt: skip
        want = np.asarray(AutoAugment("imagenet", rng=0, fill=spec["fill"]).apply(img, draws))
        got = np.asarray(run["output"], dtype=np.uint8).reshape(h, w, 4)[..., :3]
        # the JS port replays PIL's integer and float32 arithmetic (test_autoaugment_js.py):
        # every pixel equal, not within a tolerance
        assert np.array_equal(got, want), (sample["name"], d)
        ran += any(d["apply"])
        assert run["shown"].startswith(f"{sample['name']}: imagenet sub-policy {d['index'] + 1}")
    assert ran >= 1  # at least one click ran an op: the comparison compared something
