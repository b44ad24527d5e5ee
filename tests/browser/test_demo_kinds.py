"""Every demo kind of the site, run in headless Chromium on a tiny model made here.

For each widget the browser's feeds must equal what `sotazoo.transforms` builds from the same
sample (the pre-processing mirror), and its outputs what onnxruntime in Python computes from
those feeds (onnxruntime-web = onnxruntime)."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from sotazoo import transforms as T
from sotazoo.site import pages

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the exporter's chatter
SIZE = 32
NORM = {"size": SIZE, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
VOCAB = {"a": 2, "red": 3, "blue": 4, "bird": 5, "what": 6, "colour": 7, "is": 8, "it": 9}


class SR(nn.Module):  # image -> image at twice the size
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        return nn.functional.pixel_shuffle(self.conv(x), 2)


class Fill(nn.Module):  # (image with holes, mask) -> image
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x, mask):
        return x * mask + self.conv(torch.cat([x, mask], 1)) * (1 - mask)


class Boxes(nn.Module):  # image -> boxes (5, 4) xyxy, scores (5,), labels (5,)
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 5 * 7)

    def forward(self, x):
        f = self.head(x.mean((2, 3)))[0].reshape(5, 7)  # (5, 7)
        centre = torch.sigmoid(f[:, :2]) * SIZE
        half = torch.sigmoid(f[:, 2:4]) * SIZE / 4 + 1
        boxes = torch.cat([centre - half, centre + half], 1).clamp(0, SIZE)
        return boxes, torch.sigmoid(f[:, 4]), f[:, 5:7].argmax(1)


class Gen(nn.Module):  # (noise, class) -> image
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(3, 16)
        self.fc = nn.Linear(16, 3 * 16 * 16)

    def forward(self, z, label):
        return torch.tanh(self.fc(z + self.emb(label))).reshape(-1, 3, 16, 16)


class TextGen(nn.Module):  # (tokens, noise) -> image
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 16)
        self.fc = nn.Linear(16, 3 * 16 * 16)

    def forward(self, tokens, z):
        return torch.tanh(self.fc(self.emb(tokens).mean(1) + z)).reshape(-1, 3, 16, 16)


class Answer(nn.Module):  # (image, question tokens) -> answer logits
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 3)
        self.fc = nn.Linear(3, 4)

    def forward(self, x, tokens):
        return self.fc(x.mean((2, 3)) * self.emb(tokens).mean(1))


IMG = torch.zeros(1, 3, SIZE, SIZE)
TOK = torch.zeros(1, 6, dtype=torch.long)
KINDS = {
    "image2image": (SR(), (IMG,), ["input"], {"output": {"mean": NORM["mean"], "std": NORM["std"]}}),
    "inpaint": (Fill(), (IMG, torch.ones(1, 1, SIZE, SIZE)), ["input", "mask"], {}),
    "detect": (Boxes(), (IMG,), ["input"], {"labels": ["cat", "dog"], "score_threshold": 0.0}),
    "generate": (
        Gen(),
        (torch.zeros(1, 16), torch.zeros(1, dtype=torch.long)),
        ["noise", "label"],
        {"latent_shape": [16], "labels": ["a", "b", "c"], "samples": [{"name": "seed 3", "seed": 3}, {"name": "seed 11", "seed": 11}],
         "output": {"mean": [0.5] * 3, "std": [0.5] * 3}},
    ),
    "text2image": (
        TextGen(),
        (TOK, torch.zeros(1, 16)),
        ["tokens", "noise"],
        {"latent_shape": [16], "vocab": VOCAB, "max_len": 6, "seed": 5,
         "examples": ["a red bird", "A blue bird, what?"], "output": {"mean": [0.5] * 3, "std": [0.5] * 3}},
    ),
    "vqa": (
        Answer(),
        (IMG, TOK),
        ["input", "question"],
        {"vocab": VOCAB, "max_len": 6, "examples": ["what colour is it"],
         "answers": ["red", "blue", "green", "yes"]},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def gallery(built_site):
    """A page per demo kind, beside the built site, each with a tiny exported model."""
    site, _ = built_site
    senet = json.loads((site / "models" / "seresnet_mini.sotazoo.json").read_text())
    images = [{"name": s["name"], "src": s["src"]} for s in senet["samples"][:2]]
    out = site / "kinds"
    out.mkdir(exist_ok=True)
    for kind, (model, args, names, extra) in KINDS.items():
        torch.manual_seed(0)
        for p in model.parameters():
            nn.init.normal_(p, std=0.5)
        onnx = out / f"{kind}.onnx"
        torch.onnx.export(model.eval(), args, str(onnx), dynamo=False, opset_version=17,
                          input_names=names)  # fmt: skip
        spec = {"kind": kind, "onnx": onnx.name, "transforms": NORM, "labels": [],
                "samples": images, **extra}  # fmt: skip
        (out / f"{kind}.json").write_text(json.dumps(spec))
        body = f'<h1>{kind}</h1><div class="demo" data-demo data-spec="{kind}.json"></div>'
        (out / f"{kind}.html").write_text(pages.layout(kind, body, "../"))
    return out


def _python_feeds(kind: str, spec: dict, name: str, site) -> list[np.ndarray]:
    """What sotazoo.transforms builds for the widget's sample `name`."""
    if kind in ("image2image", "detect", "inpaint", "vqa"):
        src = next(s["src"] for s in spec["samples"] if s["name"] == name)
        x = T.preprocess(site / "kinds" / src, spec["transforms"])
        if kind == "inpaint":
            m = T.hole_mask(SIZE)
            return [T.mask_image(x, m), m[None, None]]
        if kind == "vqa":
            return [x, T.tokenize(spec["examples"][0], spec["vocab"], spec["max_len"])[None]]
        return [x]
    if kind == "generate":
        seed = int(name.split()[-1])
        return [T.seeded_normal(seed, 16)[None], np.zeros(1, dtype=np.int64)]
    ids = T.tokenize(name, spec["vocab"], spec["max_len"])[None]  # text2image
    return [ids, T.seeded_normal(spec["seed"], 16)[None]]


@pytest.mark.browser
@pytest.mark.parametrize("kind", list(KINDS))
def test_demo_kind_matches_python(kind, gallery, built_site, site_url, browser_driver):
    import onnxruntime as ort

    site, modules = built_site
    spec = json.loads((gallery / f"{kind}.json").read_text())
    report = browser_driver(modules, site_url, "--demo", f"kinds/{kind}.html")
    demo = report["demo"]
    assert demo["console_errors"] == [] and demo["page_errors"] == [], demo
    assert demo["foreign_requests"] == [] and demo["failed_requests"] == []
    assert len(demo["runs"]) >= 2
    sess = ort.InferenceSession(str(gallery / spec["onnx"]), providers=["CPUExecutionProvider"])
    input_names = [i.name for i in sess.get_inputs()]
    for run in demo["runs"]:
        assert run["state"] == "done", run
        want_feeds = _python_feeds(kind, spec, run["name"], site)
        for name, want in zip(input_names, want_feeds, strict=True):
            got = np.asarray(run["feeds"][name]["data"]).reshape(run["feeds"][name]["dims"])
            assert got.shape == want.shape, (name, got.shape, want.shape)
            assert np.abs(got - want).max() <= 1e-5, (kind, name)
        outputs = sess.run(None, dict(zip(input_names, want_feeds, strict=True)))
        for o, want in zip(sess.get_outputs(), outputs, strict=True):
            got = np.asarray(run["outputs"][o.name]["data"]).reshape(want.shape)
            assert np.abs(got - want).max() <= 1e-3, (kind, o.name)
