"""ProGAN's page in headless Chromium: the `generate` demo runs progan_mini (our EMA generator,
grown to 16x16, papers/progan/demo.py). For every sample seed the browser's noise must be what
`sotazoo.transforms.seeded_normal` gives, and its image what onnxruntime in Python and the
PyTorch generator compute for that noise.

Needs the demo weights (`papers/progan/weights.py`, tag "sotazoo"): without them the site build
fails, and with it this test, naming the missing entry.
"""

import json

import numpy as np
import pytest
import torch

from sotazoo.papers.progan import demo
from sotazoo.transforms import seeded_normal


@pytest.mark.browser
def test_progan_demo_matches_onnxruntime_and_torch(built_site, site_url, browser_driver):
    import onnxruntime as ort

    from sotazoo import create_model

    site, modules = built_site
    spec_path = site / json.loads((site / "site.json").read_text())["demos"]["progan"]
    spec = json.loads(spec_path.read_text())
    assert spec["kind"] == "generate" and spec["model"] == "progan_mini"
    assert spec["weights"] == "progan_mini.sotazoo" and spec["labels"] == []  # unconditional
    assert spec["latent_shape"] == [32] and spec["output"]["mean"] == [0.5] * 3
    report = browser_driver(modules, site_url, "--demo", "papers/progan.html")
    run_report = report["demo"]
    assert run_report["console_errors"] == [] and run_report["page_errors"] == [], run_report
    assert run_report["foreign_requests"] == [] and run_report["failed_requests"] == []
    sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    (name_in,), (name_out,) = [i.name for i in sess.get_inputs()], spec["onnx_outputs"]
    model = create_model("progan_mini", weights="sotazoo", progress=False).eval()
    runs = run_report["runs"]
    assert len(runs) == len(spec["samples"]) == len(demo.SAMPLE_SEEDS)
    images = []
    for run, sample in zip(runs, spec["samples"], strict=True):
        assert run["state"] == "done", run
        z = seeded_normal(sample["seed"], 32)[None]
        got_z = np.asarray(run["feeds"][name_in]["data"], dtype=np.float32).reshape(z.shape)
        assert np.abs(got_z - z).max() <= 1e-6, sample["name"]
        (want,) = sess.run(None, {name_in: z})
        got = np.asarray(run["outputs"][name_out]["data"], dtype=np.float32).reshape(want.shape)
        assert want.shape == (1, 1, 16, 16)
        assert np.abs(got - want).max() <= 1e-4, sample["name"]
        with torch.no_grad():
            torch_img = model(torch.from_numpy(z)).numpy()
        assert np.abs(got - torch_img).max() <= 1e-4, sample["name"]
        assert run["shown"].startswith(f"seed {sample['seed']}: 16x16")
        images.append(got)
    # different seeds draw different digits (the noise reaches the image)
    assert min(np.abs(a - b).max() for i, a in enumerate(images) for b in images[:i]) > 0.1
