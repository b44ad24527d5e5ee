"""Mask R-CNN's page in headless Chromium: the instances demo runs maskrcnn_mini (our weights) on
every bundled scene. The exported graph is the whole model, the demo's score threshold and the
mask paste (papers/mask_rcnn/demo.py), so the browser's four outputs are checked against
onnxruntime in Python, the detections against PyTorch (the model, `method.unpack` and
`method.paste_masks`), and the pixels the widget painted against the masks' own count above the
threshold."""

import numpy as np
import pytest


@pytest.mark.browser
def test_mask_rcnn_demo_matches_python(run_paper_demo):
    import torch

    from sotazoo import create_model
    from sotazoo.papers.mask_rcnn import demo as mask_demo
    from sotazoo.papers.mask_rcnn.method import paste_masks, unpack
    from sotazoo.transforms import preprocess

    spec, spec_path, demo, sess, names = run_paper_demo("mask_rcnn")
    assert spec["kind"] == "instances" and spec["weights"] == "maskrcnn_mini.sotazoo"
    assert spec["onnx_outputs"] == ["boxes", "scores", "labels", "masks"]
    assert spec["labels"] == ["square", "circle", "triangle", "cross"]
    assert spec["score_threshold"] == mask_demo.SCORE_THRESHOLD
    assert [r["name"] for r in demo["runs"]] == [*(f"scene{i + 1}" for i in range(5)), "clutter"]
    model = create_model("maskrcnn_mini", weights="sotazoo", progress=False).eval()
    found = 0
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        name = sample["name"]
        assert run["state"] == "done", run
        x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
        got_x = np.asarray(run["feeds"][names[0]]["data"], dtype=np.float32).reshape(x.shape)
        assert np.abs(got_x - x).max() <= 1e-5, name  # 128 px scenes: no resize
        want = dict(zip(spec["onnx_outputs"], sess.run(None, {names[0]: x}), strict=True))
        # wasm's exp and summation order differ from native onnxruntime's by a few ulp: boxes
        # get 1e-5 relative too; masks are probabilities in [0, 1]
        for key, atol, rtol in (("boxes", 1e-3, 1e-5), ("scores", 1e-4, 0), ("labels", 0, 0),
                                ("masks", 1e-3, 0)):  # fmt: skip
            out = run["outputs"][key]
            assert out["dims"] == list(want[key].shape), (name, key)
            got = np.asarray(out["data"]).reshape(want[key].shape)
            np.testing.assert_allclose(got, want[key], atol=atol, rtol=rtol, err_msg=name)
        with torch.no_grad():
            d = unpack(model(torch.from_numpy(x)))[0]
        shown = d["scores"] > spec["score_threshold"]
        drawn = run["drawn"]
        assert len(drawn) == int(shown.sum()), name
        if drawn:
            np.testing.assert_allclose([r["box"] for r in drawn], d["boxes"][shown].numpy(),
                                       atol=1e-3, rtol=1e-5, err_msg=name)  # fmt: skip
            assert [r["label"] for r in drawn] == (d["labels"][shown] - 1).tolist(), name
            pasted = paste_masks(d["masks"][shown], d["boxes"][shown], (128, 128)).numpy()
            thr = spec["mask_threshold"]
            for r, p in zip(drawn, pasted, strict=True):
                sure = np.abs(p - thr) > 1e-3  # pixels no rounding above can move across it
                lo, hi = int((p > thr)[sure].sum()), int((p > thr).sum() + (~sure).sum())
                assert lo <= r["pixels"] <= hi, name
                assert r["pixels"] > 0
        found += len(drawn)
        n = len(drawn)
        assert run["shown"].startswith(f"{name}: {n} {'object' if n == 1 else 'objects'} (")
    assert found >= 5  # the scenes' objects are found: not a comparison of empty sets
    assert demo["runs"][-1]["drawn"] == []  # the clutter scene has no object
