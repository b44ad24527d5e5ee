"""DeepLabv3+'s page in headless Chromium: the segment demo colours every bundled scene with our
deeplabv3plus_mini; the browser's input matches Python's pre-processing, its logits match
onnxruntime in Python, and its class map is their per-pixel argmax wherever the two best
classes are told apart by more than the logits' tolerance."""

import numpy as np
import pytest


@pytest.mark.browser
def test_deeplabv3plus_demo_matches_python(run_paper_demo):
    from sotazoo.transforms import preprocess

    spec, spec_path, demo, sess, names = run_paper_demo("deeplabv3plus")
    assert spec["kind"] == "segment" and spec["weights"] == "deeplabv3plus_mini.sotazoo"
    assert spec["labels"] == ["background", "square", "circle", "triangle", "cross"]
    assert len(demo["runs"]) == len(spec["samples"]) >= 3
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        assert run["state"] == "done", run
        x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
        got_x = np.asarray(run["feeds"][names[0]]["data"], dtype=np.float32).reshape(x.shape)
        assert np.abs(got_x - x).max() <= 1e-5, sample["name"]  # 96 px scenes: no resize
        (want,) = sess.run(None, {names[0]: x})
        out = next(iter(run["outputs"].values()))
        got = np.asarray(out["data"], dtype=np.float32).reshape(want.shape)
        # onnxruntime-web's wasm kernels against native onnxruntime: float32 sums in another
        # order through 15 convolutions; logits are O(10), 1e-3 is far above that rounding
        assert np.abs(got - want).max() <= 1e-3, sample["name"]
        classes = np.asarray(run["classes"]).reshape(want.shape[2:])
        top2 = np.sort(want[0], axis=0)[-2:]
        clear = (top2[1] - top2[0]) > 2e-3  # pixels whose argmax cannot flip within 1e-3
        assert np.array_equal(classes[clear], want[0].argmax(0)[clear]), sample["name"]
        assert len(np.unique(classes)) >= 2  # the scene is not painted one class
