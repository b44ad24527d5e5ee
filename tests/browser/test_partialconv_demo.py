"""Partial convolutions' page in headless Chromium: the inpainting demo fills the default hole
of every bundled crop with our pconv_mini; the browser's two inputs (the image with its hole
zeroed, and the mask) match Python's pre-processing, and its output matches onnxruntime in
Python on the same inputs. The known pixels come back unchanged (the exported graph is the
paper's composite)."""

import numpy as np
import pytest


@pytest.mark.browser
def test_partialconv_demo_matches_python(run_paper_demo):
    from sotazoo.transforms import hole_mask, mask_image, preprocess

    spec, spec_path, demo, sess, names = run_paper_demo("partialconv")
    assert spec["kind"] == "inpaint" and spec["weights"] == "pconv_mini.sotazoo"
    assert len(demo["runs"]) == len(spec["samples"]) >= 3
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        assert run["state"] == "done", run
        x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
        m = hole_mask(x.shape[-1])
        feeds = [mask_image(x, m), m[None, None]]
        for name, want in zip(names, feeds, strict=True):
            got = np.asarray(run["feeds"][name]["data"], dtype=np.float32).reshape(want.shape)
            assert np.abs(got - want).max() <= 1e-5, (sample["name"], name)  # pixels, 0/1 mask
        (want,) = sess.run(None, dict(zip(names, feeds, strict=True)))
        out = next(iter(run["outputs"].values()))
        got = np.asarray(out["data"], dtype=np.float32).reshape(want.shape)
        # onnxruntime-web's wasm kernels against native onnxruntime: float32 sums in another
        # order, through 8 convolution layers; 1e-3 of a [0, 1] pixel range
        assert np.abs(got - want).max() <= 1e-3, sample["name"]
        known = np.broadcast_to(m[None, None] == 1, want.shape)
        assert np.abs(got[known] - np.clip(x, 0, 1)[known]).max() <= 1e-6  # I_comp keeps them
