"""The Relation Networks page in headless Chromium: the demo answers the default question about
every bundled scene, and the browser's inputs and logits match Python's."""


import numpy as np
import pytest

from sotazoo.data.sort_of_clevr import encode_question


@pytest.mark.browser
def test_relation_networks_demo_matches_python(run_paper_demo):
    from sotazoo.transforms import preprocess

    spec, spec_path, demo, sess, names = run_paper_demo("relation_networks")
    assert spec["kind"] == "vqa" and spec["question_format"] == "sort_of_clevr"
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
