"""The Relation Networks page in headless Chromium: the demo answers the default question about
every bundled scene, and the browser's inputs and logits match Python's."""

import json

import numpy as np
import pytest

from sotazoo.data.sort_of_clevr import encode_question


@pytest.mark.browser
def test_relation_networks_demo_matches_python(built_site, site_url, browser_driver):
    import onnxruntime as ort

    from sotazoo.transforms import preprocess

    site, modules = built_site
    manifest = json.loads((site / "site.json").read_text())
    spec_path = site / manifest["demos"]["relation_networks"]
    spec = json.loads(spec_path.read_text())
    assert spec["kind"] == "vqa" and spec["question_format"] == "sort_of_clevr"
    report = browser_driver(modules, site_url, "--demo", "papers/relation_networks.html")
    demo = report["demo"]
    assert demo["console_errors"] == [] and demo["page_errors"] == []
    assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
    sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    names = [i.name for i in sess.get_inputs()]
    question = encode_question(0, False, 0)[None]  # the widget's default: shape of the red object
    assert len(demo["runs"]) == len(spec["samples"]) == 12
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        assert run["state"] == "done", run
        image = preprocess(spec_path.parent / sample["src"], spec["transforms"])
        for name, want in zip(names, (image, question), strict=True):
            got = np.asarray(run["feeds"][name]["data"], dtype=np.float32).reshape(want.shape)
            assert np.abs(got - want).max() <= 1e-5, (sample["name"], name)
        (logits,) = sess.run(None, {names[0]: image, names[1]: question})
        got = np.asarray(run["outputs"][sess.get_outputs()[0].name]["data"])
        assert np.abs(got - logits[0]).max() <= 1e-3
        answer = spec["answers"][int(np.argmax(logits))]
        assert run["shown"].startswith(answer)
        assert sample["answers"]["0,0"] in ("square", "circle")  # the truth the page shows
