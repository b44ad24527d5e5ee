"""The `browser_driver` fixture: headless Chromium over the served site (`sotazoo.site.browser`).

Where Chromium or node is missing the browser tests skip, except in CI, where `.ci/run` installs
both and a missing one is a failure."""

import os

import pytest

from sotazoo.site.browser import browser_available, chromium_path, run_check


@pytest.fixture
def browser_driver():
    if not browser_available():
        if os.environ.get("CI"):
            pytest.fail(f"CI must install Chromium ({chromium_path()}) and node; see .ci/run")
        pytest.skip(f"needs {chromium_path()} and node (apt-get install chromium nodejs)")
    return run_check


@pytest.fixture
def run_paper_demo(built_site, site_url, browser_driver):
    """Run a paper's demo page in Chromium and check it ran cleanly (no console or page error,
    no request off the site, none failed). Returns (spec, its path, the browser's report of the
    demo, an onnxruntime session on the same ONNX file, that session's input names). More
    arguments go to check.mjs (`--press SELECTOR`)."""

    def run(paper: str, *args: str):
        import json

        import onnxruntime as ort

        site, modules = built_site
        manifest = json.loads((site / "site.json").read_text())
        spec_path = site / manifest["demos"][paper]
        spec = json.loads(spec_path.read_text())
        demo = browser_driver(modules, site_url, "--demo", f"papers/{paper}.html", *args)["demo"]
        assert demo["console_errors"] == [] and demo["page_errors"] == []
        assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
        sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                    providers=["CPUExecutionProvider"])  # fmt: skip
        return spec, spec_path, demo, sess, [i.name for i in sess.get_inputs()]

    return run


@pytest.fixture
def check_sr_demo(built_site, site_url, browser_driver):
    """Run a super-resolution paper's image2image demo in Chromium on every bundled LR crop and
    check the browser's input tensor against Python's pre-processing (1e-5) and its output
    against onnxruntime in Python (1e-3). Returns the demo's spec."""

    def check(paper: str) -> dict:
        import json

        import numpy as np
        import onnxruntime as ort

        from sotazoo.transforms import preprocess

        site, modules = built_site
        manifest = json.loads((site / "site.json").read_text())
        spec_path = site / manifest["demos"][paper]
        spec = json.loads(spec_path.read_text())
        assert spec["kind"] == "image2image"
        scale = int(spec["model"].rsplit("x", 1)[1])
        report = browser_driver(modules, site_url, "--demo", f"papers/{paper}.html")
        demo = report["demo"]
        assert demo["console_errors"] == [] and demo["page_errors"] == []
        assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
        sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                    providers=["CPUExecutionProvider"])  # fmt: skip
        name_in, name_out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
        assert len(demo["runs"]) == len(spec["samples"]) >= 3
        for run, sample in zip(demo["runs"], spec["samples"], strict=True):
            assert run["state"] == "done", run
            x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
            got_x = np.asarray(run["feeds"][name_in]["data"], dtype=np.float32).reshape(x.shape)
            assert np.abs(got_x - x).max() <= 1e-5, sample["name"]  # the LR crop, untouched
            (want,) = sess.run(None, {name_in: x})
            out = run["outputs"][name_out]
            assert out["dims"] == [1, 3, scale * x.shape[2], scale * x.shape[3]]
            got = np.asarray(out["data"], dtype=np.float32).reshape(want.shape)
            assert np.abs(got - want).max() <= 1e-3, sample["name"]
            assert run["shown"].startswith(f"{sample['name']}: {scale * x.shape[3]}x")
        return spec

    return check


@pytest.fixture
def check_detect_demo(built_site, site_url, browser_driver):
    """Run a detection paper's `detect` demo in Chromium on every bundled scene and check, per
    scene: the browser's input tensor against Python's pre-processing (1e-5); its three outputs
    (boxes, scores, labels, decoded and NMS-filtered inside the graph) against onnxruntime in
    Python (same count; boxes 1e-3 px + 1e-5 relative, scores 1e-4, labels equal); and the boxes
    the widget drew against the paper's `method.postprocess` in PyTorch on the same input, with
    the graph's thresholds. Returns the spec and, per scene, the boxes drawn."""

    def check(paper: str) -> tuple[dict, list[dict]]:
        import json

        import numpy as np
        import onnxruntime as ort
        import torch

        from sotazoo import create_model
        from sotazoo.papers import _contract as contract
        from sotazoo.transforms import preprocess

        site, modules = built_site
        manifest = json.loads((site / "site.json").read_text())
        spec_path = site / manifest["demos"][paper]
        spec = json.loads(spec_path.read_text())
        assert spec["kind"] == "detect" and spec["onnx_outputs"] == ["boxes", "scores", "labels"]
        report = browser_driver(modules, site_url, "--demo", f"papers/{paper}.html")
        demo = report["demo"]
        assert demo["console_errors"] == [] and demo["page_errors"] == [], demo
        assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
        sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                    providers=["CPUExecutionProvider"])  # fmt: skip
        # The PyTorch side: the trained model, the graph's settings, the paper's postprocess
        # (through the paper contract's `method.detector`).
        model = create_model(spec["model"], weights="sotazoo", progress=False).eval()
        settings = contract.paper(paper).demo.export_module(model).postprocess_kwargs()
        size = spec["transforms"]["size"]
        det = contract.paper(paper).detector(model, size=size)
        assert len(demo["runs"]) == len(spec["samples"]) >= 3
        drawn_all = []
        for run, sample in zip(demo["runs"], spec["samples"], strict=True):
            name = sample["name"]
            assert run["state"] == "done", run
            x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
            got_x = np.asarray(run["feeds"]["input"]["data"], dtype=np.float32).reshape(x.shape)
            assert np.abs(got_x - x).max() <= 1e-5, name  # the widget's pre-processing
            want = dict(zip(spec["onnx_outputs"], sess.run(None, {"input": x}), strict=True))
            # wasm's exp differs from the native one by a few ulp: boxes get 1e-5 relative too.
            for key, atol, rtol in (("boxes", 1e-3, 1e-5), ("scores", 1e-4, 0), ("labels", 0, 0)):
                out = run["outputs"][key]
                assert out["dims"] == list(want[key].shape), (name, key)
                got = np.asarray(out["data"]).reshape(want[key].shape)
                np.testing.assert_allclose(got, want[key], atol=atol, rtol=rtol, err_msg=name)
            with torch.no_grad():
                ref = det.postprocess(model(torch.from_numpy(x)), **settings)[0]
            shown = ref["scores"] >= spec["score_threshold"]
            drawn = run["drawn"]
            assert len(drawn) == int(shown.sum()), name
            if drawn:
                np.testing.assert_allclose([d["box"] for d in drawn], ref["boxes"][shown].numpy(),
                                           atol=1e-3, rtol=1e-5, err_msg=name)  # fmt: skip
                np.testing.assert_allclose([d["score"] for d in drawn],
                                           ref["scores"][shown].numpy(), atol=1e-4, rtol=0)  # fmt: skip
                assert [d["label"] for d in drawn] == ref["labels"][shown].tolist(), name
            n = len(drawn)
            # coinciding boxes of two classes share one tag: every drawn box is in one group
            assert sum(run["groups"]) == n and all(k >= 1 for k in run["groups"])
            assert run["shown"].startswith(f"{name}: {n} {'box' if n == 1 else 'boxes'} (")
            assert f"{name}：{n} 个框" in run["shown"]  # the Chinese line beside it
            drawn_all.append({"name": name, "boxes": drawn})
        assert sum(len(d["boxes"]) for d in drawn_all) > 0  # not a comparison of empty sets
        return spec, drawn_all

    return check


@pytest.fixture
def check_detect_demo_empty(built_site, site_url, browser_driver):
    """The `detect` widget when the graph keeps nothing: the paper's demo graph with a score
    threshold of 1 (no sigmoid exceeds it), exported beside the site with the demo's spec and
    samples, run in Chromium: every scene ends "done" with (0, 4), (0,), (0,) outputs and no box
    drawn (onnxruntime-web through NonZero on nothing and NMS's empty branch)."""

    def check(paper: str) -> None:
        import json
        import warnings

        import torch

        from sotazoo import create_model
        from sotazoo.papers._contract import paper as contract_paper
        from sotazoo.site import pages

        site, modules = built_site
        spec = json.loads((site / json.loads((site / "site.json").read_text())["demos"][paper])
                          .read_text())  # fmt: skip
        model = create_model(spec["model"], weights="sotazoo", progress=False)
        graph = contract_paper(paper).module("demo").Detections(model, score_thresh=1.0)
        out = site / "empty"
        out.mkdir(exist_ok=True)
        size = spec["transforms"]["size"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, (torch.zeros(1, 3, size, size),), str(out / f"{paper}.onnx"),
                              dynamo=False, opset_version=17, input_names=["input"],
                              output_names=list(graph.output_names),
                              dynamic_axes=graph.dynamic_axes)  # fmt: skip
        (out / f"{paper}.json").write_text(json.dumps({**spec, "onnx": f"{paper}.onnx"}))
        body = f'<div class="demo" data-demo data-spec="{paper}.json"></div>'
        (out / f"{paper}.html").write_text(pages.layout(paper, body, "../"))
        report = browser_driver(modules, site_url, "--demo", f"empty/{paper}.html")
        demo = report["demo"]
        assert demo["console_errors"] == [] and demo["page_errors"] == [], demo
        assert len(demo["runs"]) == len(spec["samples"])
        for run, sample in zip(demo["runs"], spec["samples"], strict=True):
            assert run["state"] == "done", run
            dims = [run["outputs"][k]["dims"] for k in ("boxes", "scores", "labels")]
            assert dims == [[0, 4], [0], [0]] and run["drawn"] == []
            assert run["shown"].startswith(f"{sample['name']}: 0 boxes")

    return check


@pytest.fixture
def check_detect_recall(built_site):
    """The exported detection graph of a paper's demo (onnxruntime, what the browser runs) on its
    bundled scenes: at least 40% of their annotated objects are found by a box of the right class
    at IoU >= 0.5 (held-out recall at the demo threshold is 0.5-0.6,
    tests/test_detection_train.py); the scenes' ground truth is regenerated from their seed."""

    def check(paper: str) -> None:
        import json

        import onnxruntime as ort
        import torch
        from torchvision.ops import box_iou

        from sotazoo.data.detection_shapes import make_detection_scenes
        from sotazoo.papers._contract import paper as contract_paper
        from sotazoo.transforms import preprocess

        demo = contract_paper(paper).module("demo")
        site, _ = built_site
        spec_path = site / json.loads((site / "site.json").read_text())["demos"][paper]
        spec = json.loads(spec_path.read_text())
        sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                    providers=["CPUExecutionProvider"])  # fmt: skip
        truth = make_detection_scenes(demo.N_SCENES, size=demo.SIZE, seed=demo.SAMPLE_SEED)
        found = total = 0
        for i, sample in enumerate(spec["samples"][: demo.N_SCENES]):
            x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
            boxes, scores, labels = sess.run(None, {"input": x})
            shown = scores >= spec["score_threshold"]
            gt_boxes, gt_labels = truth["boxes"][i], truth["labels"][i]
            total += len(gt_boxes)
            if shown.any() and len(gt_boxes):
                iou = box_iou(torch.from_numpy(gt_boxes), torch.from_numpy(boxes[shown])).numpy()
                same = gt_labels[:, None] == labels[shown][None, :]
                found += int(((iou >= 0.5) & same).any(1).sum())
        assert total > 0 and found >= 0.4 * total, f"found {found} of {total} objects"

    return check
