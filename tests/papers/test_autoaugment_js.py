"""AutoAugment in the browser: `site/static/autoaugment.mjs`, run in node, against method.py's PIL
back-end (NEAREST, the one the JS port replays) computed here at test time. Compared: the
magnitude table (every op and bin, several image sizes, both `max_level`s); every op at every
bin with both signs on small RGB images (24x20, 17x31, 3x2 and a 16x16 with one-level and
few-level channels; a 33000x2 one for the geometric ops, where PIL leaves fixed point for
doubles), with Cutout centres and fills varied; 210 whole sub-policies of the SVHN, ImageNet and
CIFAR-10 policies replayed from Python's `draw()`; and draws made in JS from its seeded PRNG,
replayed in Python. Every comparison is pixel-exact, no tolerance: the port replays PIL's
arithmetic (see the module's header), and every op is an integer, double or float32 computation
that JS reproduces step for step."""

import base64
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sotazoo.papers.autoaugment.method import OPS, POLICIES, AutoAugment, Draws, apply_op, magnitude

DRIVER = Path(__file__).with_name("autoaugment_js_driver.mjs")
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
FILLS = (128, (10, 200, 30))
N_DRAWS = 70  # per policy and image set: 210 sub-policy applications from Python's draws
N_JS_DRAWS = 20  # per policy: draws made by the JS PRNG, replayed in Python


def _rgb(w: int, h: int, seed: int) -> np.ndarray:
    """Gradients, a sine and noise in a band narrower than 0..255 (so that AutoContrast and
    Equalize have work to do), (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 7 + yy * 3, yy * 9, 100 + 60 * np.sin(xx / 3 + yy / 5)], -1)
    return np.clip(a * 0.6 + 30 + rng.integers(-25, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    edge = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    edge[..., 0] = 77  # one level: AutoContrast and Equalize leave it alone
    edge[..., 1] = np.where(rng.random((16, 16)) < 0.3, 40, 200)  # two levels
    edge[..., 2] = np.where(rng.random((16, 16)) < 0.97, 90, rng.integers(0, 256, (16, 16)))
    images = {
        "a": _rgb(24, 20, 0),  # W x H = 24 x 20
        "b": rng.integers(0, 256, (31, 17, 3)).astype(np.uint8),  # full range, odd sizes
        "c": edge,  # Equalize's step 0 and one-level cases
        "tiny": rng.integers(0, 256, (2, 3, 3)).astype(np.uint8),  # no interior to smooth
        # 33000 px wide: PIL's NEAREST affine leaves 16.16 fixed point for doubles
        "wide": rng.integers(0, 256, (2, 33000, 3)).astype(np.uint8),
    }
    for name in ("a", "b", "c", "tiny"):  # SamplePairing's second images
        images[name + "_other"] = rng.integers(0, 256, images[name].shape).astype(np.uint8)
    return images


def _encode(a: np.ndarray) -> dict:
    rgba = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], -1)
    return {"width": a.shape[1], "height": a.shape[0],
            "rgba": base64.b64encode(rgba.tobytes()).decode()}  # fmt: skip


def _decode(b64: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(shape[:2] + (4,))


def _rgba(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGBA"))


@pytest.fixture(scope="module")
def run_js():
    """Sends cases to the driver in one node process; returns the driver's results."""
    if shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install node; see .ci/run")
        pytest.skip("needs node (apt-get install nodejs)")
    images = _images()

    def run(cases: list[dict]) -> list:
        payload = {"images": {k: _encode(v) for k, v in images.items()},
                   "policies": POLICIES, "cases": cases}  # fmt: skip
        proc = subprocess.run(["node", str(DRIVER)], input=json.dumps(payload), text=True,
                              capture_output=True, timeout=120, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert tuple(out["ops"]) == OPS
        return out["results"]

    return images, run


def test_magnitudes_match(run_js):
    """The magnitude table, value for value (the same double arithmetic in both)."""
    _, run = run_js
    cases = [{"kind": "magnitude", "op": op, "level": level, "size": size, "max_level": top}
             for op in OPS for top in (9, 10) for level in (*range(top + 1), 4.5)
             for size in ((331, 331), (20, 24), (31, 17), (1000, 37))]  # fmt: skip
    want = [magnitude(c["op"], c["level"], c["size"], max_level=c["max_level"]) for c in cases]
    assert run(cases) == want


@pytest.fixture(scope="module")
def op_results(run_js):
    """Every op at every bin, both signs, on each image; Cutout centres drawn from a seed, the
    two fills alternating with the sign."""
    images, run = run_js
    centers = random.Random(3)
    cases = []
    for name in ("a", "b", "c", "tiny", "wide"):
        a = images[name]
        for op in OPS if name != "wide" else GEOMETRIC:
            other = name + "_other" if op == "SamplePairing" else None
            for level in range(10):
                for sign, fill in zip((1, -1), FILLS, strict=True):
                    cases.append({"kind": "op", "image": name, "op": op, "level": level,
                                  "value": magnitude(op, level, a.shape[:2]), "sign": sign,
                                  "fill": fill, "center": [centers.random(), centers.random()],
                                  "other": other})  # fmt: skip
    return images, cases, run(cases)


@pytest.mark.parametrize("op", OPS)
def test_op_matches_pil(op_results, op):
    """Pixel-exact: LUT ops in integer / double arithmetic, blends in float32 with truncation,
    NEAREST geometry in 16.16 fixed point (doubles on the 33000-px image), all replayed."""
    images, cases, results = op_results
    checked = 0
    for case, got in zip(cases, results, strict=True):
        if case["op"] != op:
            continue
        a = images[case["image"]]
        other = case["other"] and Image.fromarray(images[case["other"]])
        want = apply_op(Image.fromarray(a), op, case["level"], sign=case["sign"],
                        center=tuple(case["center"]), other=other, fill=case["fill"])  # fmt: skip
        np.testing.assert_array_equal(_decode(got, a.shape), _rgba(want), err_msg=str(case))
        checked += 1
    assert checked >= 60


def test_sub_policies_match_python_draws(run_js):
    """Whole sub-policies of the three policies, replayed in JS from Python's `draw()`."""
    images, run = run_js
    cases, want = [], []
    for k, name in enumerate(("svhn", "imagenet", "cifar10")):
        aug = AutoAugment(name, rng=100 + k)
        for i in range(N_DRAWS):
            image = "abc"[i % 3]
            d = aug.draw()
            cases.append({"kind": "draws", "policy": name, "image": image,
                          "other": image + "_other", "draws": {
                              "index": d.index, "apply": d.apply, "signs": d.signs,
                              "centers": d.centers}})  # fmt: skip
            pil = aug.apply(Image.fromarray(images[image]), d,
                            other=Image.fromarray(images[image + "_other"]))  # fmt: skip
            want.append(_rgba(pil))
    ran = 0
    for case, got, w in zip(cases, run(cases), want, strict=True):
        np.testing.assert_array_equal(_decode(got, w.shape), w, err_msg=str(case))
        ran += sum(case["draws"]["apply"])
    assert ran >= 150  # most draws run at least one op


def test_js_draws_replay_in_python(run_js):
    """Draws made by the page's seeded PRNG have `Draws`' shape: Python replays them exactly."""
    images, run = run_js
    cases = [{"kind": "js_draws", "policy": name, "seed": 11 + k, "n": N_JS_DRAWS,
              "image": "a", "other": "a_other"} for k, name in enumerate(POLICIES)]  # fmt: skip
    a, other = Image.fromarray(images["a"]), Image.fromarray(images["a_other"])
    for case, results in zip(cases, run(cases), strict=True):
        aug = AutoAugment(case["policy"], rng=0)
        indices = set()
        for r in results:
            d = r["draws"]
            draws = Draws(d["index"], tuple(d["apply"]), tuple(d["signs"]),
                          tuple(tuple(c) for c in d["centers"]))  # fmt: skip
            indices.add(draws.index)
            want = _rgba(aug.apply(a, draws, other=other))
            np.testing.assert_array_equal(_decode(r["image"], want.shape), want, err_msg=str(d))
        assert len(indices) > 5  # the PRNG spreads over the 25 sub-policies
