"""The learned deblurring prior's page in headless Chromium: the classify demo scores every
bundled image (clear and blurred crops, and scikit-image's motion-blurred clock) with our
deblur_prior_mini; the browser's input matches Python's pre-processing and its two logits
(clear, blurred) match onnxruntime in Python, whose exported graph turns RGB to grayscale as
scikit-image's rgb2gray does."""

import numpy as np
import pytest


@pytest.mark.browser
def test_deblur_prior_demo_matches_python(run_paper_demo):
    from sotazoo.transforms import preprocess

    spec, spec_path, demo, sess, names = run_paper_demo("deblur_prior")
    assert spec["kind"] == "classify" and spec["weights"] == "deblur_prior_mini.sotazoo"
    assert spec["labels"] == ["clear", "blurred"] and names == ["input"]
    assert len(demo["runs"]) == len(spec["samples"]) == 5
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        assert run["state"] == "done", run
        x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
        got_x = np.asarray(run["input"], dtype=np.float32).reshape(x.shape)
        assert np.abs(got_x - x).max() <= 1e-5, sample["name"]  # 128 px samples: no resize
        (logits,) = sess.run(None, {"input": x})
        assert logits[0, 0] == 0.0  # the clear logit is 0: softmax = (1 - f, f)
        # onnxruntime-web's wasm kernels against native onnxruntime: float32 sums in another
        # order through 6 convolutions; the logit is O(1), so 1e-3 is far above that rounding
        assert np.abs(np.asarray(run["logits"]) - logits[0]).max() <= 1e-3, sample["name"]
        assert run["top1"] == spec["labels"][int(np.argmax(logits))]
