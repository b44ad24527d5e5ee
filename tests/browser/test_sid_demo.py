"""Learning to See in the Dark's page in headless Chromium: the raw2image demo brightens every
bundled dark mosaic with our sid_mini at the sample's ratio, then a photograph of the reader's,
darkened in the page. The browser's inputs match Python's (the sample PNG's digital numbers, and
`demo.darken` of the photograph as `sotazoo.transforms.preprocess` crops it), and its outputs
match onnxruntime in Python on the same inputs."""

import numpy as np
import pytest


def _output_close(run, sess, names, feeds, what):
    (want,) = sess.run(None, dict(zip(names, feeds, strict=True)))
    out = next(iter(run["outputs"].values()))
    got = np.asarray(out["data"], dtype=np.float32).reshape(want.shape)
    # onnxruntime-web's wasm kernels against native onnxruntime: float32 sums in another order,
    # through 23 convolution layers; 1e-3 of a [0, 1] pixel range
    assert np.abs(got - want).max() <= 1e-3, what


@pytest.mark.browser
def test_sid_demo_matches_python(run_paper_demo, browser_driver, built_site, site_url, tmp_path):
    import json

    from PIL import Image

    from sotazoo.data.sr_photos import photograph
    from sotazoo.papers.sid.demo import darken
    from sotazoo.transforms import preprocess

    spec, spec_path, demo, sess, names = run_paper_demo("sid")
    assert spec["kind"] == "raw2image" and spec["weights"] == "sid_mini.sotazoo"
    assert names == ["mosaic", "ratio"] and len(demo["runs"]) == len(spec["samples"]) >= 3
    for run, sample in zip(demo["runs"], spec["samples"], strict=True):
        assert run["state"] == "done", run
        mosaic = np.asarray(Image.open(spec_path.parent / sample["src"]), dtype=np.float32)
        feeds = [mosaic[None, None], np.array([sample["ratio"]], dtype=np.float32)]
        for name, want in zip(names, feeds, strict=True):
            got = np.asarray(run["feeds"][name]["data"], dtype=np.float32).reshape(want.shape)
            assert np.array_equal(got, want), (sample["name"], name)  # whole numbers, exact
        _output_close(run, sess, names, feeds, sample["name"])

    # a photograph of the reader's (not square, larger than the input): cropped, resized, darkened
    photo = tmp_path / "mine.png"
    Image.fromarray(photograph("chelsea")[:, 40:380]).save(photo)
    site, modules = built_site
    report = browser_driver(modules, site_url, "--demo", "papers/sid.html", "--upload", str(photo))
    (up,) = report["demo"]["uploads"]
    assert up["state"] == "done", up
    ratio = float(up["feeds"]["ratio"]["data"][0])
    assert ratio == spec["samples"][-1]["ratio"]  # the last sample's, still selected
    t = json.loads(spec_path.read_text())["transforms"]
    want = darken(preprocess(photo, t)[0], ratio)
    got = np.asarray(up["feeds"]["mosaic"]["data"], dtype=np.float32).reshape(want.shape)
    # The same float64 arithmetic on the same float32 pixels, except that JavaScript's ** and
    # numpy's power may differ in the last bit, which moves a value at a rounding boundary by one
    # digital number: at most 1 DN, on at most 0.1 % of the pixels.
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3
    _output_close(up, sess, names, [got[None, None], np.array([ratio], np.float32)], "upload")
