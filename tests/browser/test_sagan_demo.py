"""SAGAN's page in headless Chromium: the `generate` demo runs sagan_mini (our weights) with its
attention map as a second output (papers/sagan/demo.py). For every sample seed the browser's
noise and class must be what `sotazoo.transforms.seeded_normal` gives, its image and attention
map what onnxruntime in Python computes, and a simulated click on a pixel of the enlarged image
must show the attention row of the query cell that covers that pixel (checked against Python's
attention map from the PyTorch generator, and the painted heat map against `attention_heat`).

Needs the demo weights (`papers/sagan/weights.py`, tag "sotazoo"): without them the site build
fails, and with it these tests, naming the missing entry.
"""

import json

import numpy as np
import pytest
import torch

from sotazoo.papers.sagan import demo
from sotazoo.transforms import seeded_normal

CLICK = (11.5 / 16, 4.5 / 16)  # the centre of pixel (x 11, y 4) of the 16x16 image


@pytest.mark.browser
def test_sagan_demo_matches_python_and_shows_the_clicked_pixels_attention(
    built_site, site_url, browser_driver
):
    import onnxruntime as ort

    from sotazoo import create_model

    site, modules = built_site
    spec_path = site / json.loads((site / "site.json").read_text())["demos"]["sagan"]
    spec = json.loads(spec_path.read_text())
    assert spec["kind"] == "generate" and spec["onnx_outputs"] == ["image", "attention"]
    assert spec["model"] == "sagan_mini" and spec["weights"] == "sagan_mini.sotazoo"
    assert spec["labels"] == [str(d) for d in range(10)]
    a = spec["attention"]
    (qh, qw), (kh, kw), (h, w) = a["query_grid"], a["key_grid"], a["image_size"]
    report = browser_driver(modules, site_url, "--demo", "papers/sagan.html",
                            "--click", f"{CLICK[0]},{CLICK[1]}")  # fmt: skip
    run_report = report["demo"]
    assert run_report["console_errors"] == [] and run_report["page_errors"] == [], run_report
    assert run_report["foreign_requests"] == [] and run_report["failed_requests"] == []
    sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    model = create_model("sagan_mini", weights="sotazoo", progress=False).eval()
    px, py = int(CLICK[0] * w), int(CLICK[1] * h)
    query = (py * qh // h) * qw + px * qw // w  # the 8x8 cell over the pixel, row-major
    runs = run_report["runs"]
    assert len(runs) == len(spec["samples"]) == len(demo.SAMPLES)
    for run, sample in zip(runs, spec["samples"], strict=True):
        assert run["state"] == "done", run
        z = seeded_normal(sample["seed"], spec["latent_shape"][0])[None]
        y = np.array([sample["label"]], dtype=np.int64)
        got_z = np.asarray(run["feeds"]["input"]["data"], dtype=np.float32).reshape(z.shape)
        assert np.abs(got_z - z).max() <= 1e-6, sample["name"]
        assert run["feeds"]["label"]["data"] == [sample["label"]]
        want_img, want_attn = sess.run(None, {"input": z, "label": y})
        got_img = np.asarray(run["outputs"]["image"]["data"]).reshape(want_img.shape)
        got_attn = np.asarray(run["outputs"]["attention"]["data"]).reshape(want_attn.shape)
        assert want_img.shape == (1, 1, h, w) and want_attn.shape == (1, qh * qw, kh * kw)
        assert np.abs(got_img - want_img).max() <= 1e-4, sample["name"]
        assert np.abs(got_attn - want_attn).max() <= 1e-5, sample["name"]
        with torch.no_grad():
            _, torch_attn = model.forward_with_attention(torch.from_numpy(z), torch.from_numpy(y))
        clicked = run["clicked"]
        assert clicked["pixel"] == [px, py] and clicked["query"] == query, sample["name"]
        row = torch_attn[0, query].numpy()
        np.testing.assert_allclose(clicked["row"], row, atol=1e-5, err_msg=sample["name"])
        heat = demo.attention_heat(row, (kh, kw), (h, w)).ravel()
        np.testing.assert_allclose(clicked["heat"], heat, atol=1e-4, err_msg=sample["name"])
        assert run["shown"].startswith(f"seed {sample['seed']}: {w}x{h}")
