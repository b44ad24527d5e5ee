"""The detection demos' export graphs (papers/{retinanet,yolov3}/demo.py) and multi-output export.

The graphs decode and run NMS inside ONNX, so that the browser widget only draws. Checked here
without trained weights, on randomly initialised models whose thresholds are set from their own
score distribution so that every scene has candidates: the graph in PyTorch keeps exactly what
each paper's `method.postprocess` keeps; onnxruntime runs the exported graph to the same boxes,
scores and labels, also when nothing is kept; `export_onnx` names and compares several outputs
and refuses a check on empty outputs; `build_demo` exports through the `export_module` hook.
The browser side is tests/browser/test_{retinanet,yolov3}_demo.py.
"""

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from sotazoo import create_model
from sotazoo.export import DEFAULT_TOLERANCE, ExportError, export_onnx
from sotazoo.papers.retinanet import demo as retinanet_demo
from sotazoo.papers.retinanet import method as retinanet_method
from sotazoo.papers.retinanet.model import IMAGENET_MEAN, IMAGENET_STD
from sotazoo.papers.yolov3 import demo as yolov3_demo
from sotazoo.papers.yolov3 import method as yolov3_method
from sotazoo.transforms import preprocess

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the exporter's chatter
NORM = {
    "retinanet": {"size": 128, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "yolov3": {"size": 128, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
}


def _model(paper: str) -> nn.Module:
    """A random model whose scores spread as a trained one's do. retinanet_mini's heads start at
    N(0, 0.01) with the prior bias (every score ~0.01): its head convs get PyTorch's default init
    instead. yolov3_mini's darknet init gives logits of ~20 (boxes of 10^9 px): its prediction
    convs are scaled down to logits of order 1."""
    torch.manual_seed(0)
    if paper == "retinanet":
        model = create_model("retinanet_mini")
        for m in model.head.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()
        return model.eval()
    model = create_model("yolov3_mini")
    with torch.no_grad():
        for head in model.heads:
            head.pred.weight.mul_(0.1)
    return model.eval()


def _scores(paper: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Every candidate score of one image, as the paper's post-processing computes it."""
    with torch.no_grad():
        out = model(x)
    if paper == "retinanet":
        return torch.sigmoid(retinanet_method.split_outputs(out)[0]).flatten()
    cfg = model.cfg
    _, obj, cls = yolov3_method.decode(out, cfg.level_anchors, cfg.strides, (128, 128))
    return (obj[0].unsqueeze(-1) * cls[0]).flatten()


def _postprocess(paper: str, model: nn.Module, x: torch.Tensor, graph: nn.Module) -> dict:
    """The paper's own post-processing (method.py), with the graph's settings."""
    with torch.no_grad():
        out = model(x)
    if paper == "retinanet":
        anchors, counts = model.anchors(128, 128)
        return retinanet_method.postprocess(
            out, anchors, counts, (128, 128), **graph.postprocess_kwargs()
        )[0]
    cfg = model.cfg
    return yolov3_method.postprocess(
        out, cfg.level_anchors, cfg.strides, (128, 128), **graph.postprocess_kwargs()
    )[0]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return retinanet_demo.samples(tmp_path_factory.mktemp("scenes"))


def _inputs(paper: str, scenes) -> list[torch.Tensor]:
    return [torch.from_numpy(preprocess(p, NORM[paper])) for p in scenes]


def _setup(paper: str, scenes, quantile: float = 0.995, **kwargs):
    """Model, inputs and a graph whose threshold leaves ~0.5% of the first scene's candidates
    (~250 of RetinaNet's 49k, ~40 of YOLOv3's 8k) before NMS."""
    model = _model(paper)
    xs = _inputs(paper, scenes)
    s = _scores(paper, model, xs[0])
    thresh = float(s.quantile(quantile))
    demo = retinanet_demo if paper == "retinanet" else yolov3_demo
    return model, xs, demo.Detections(model, score_thresh=thresh, **kwargs)


# How far the graph may be from `postprocess`, relative to each output's scale (boxes: the
# largest coordinate; scores: 1), as sotazoo.export measures it. In PyTorch both run the same
# model forward on the same input, so the raw outputs are bitwise equal on any CPU or thread
# count; only the decode's elementwise exp/sigmoid on other slices may round apart (vector body
# vs scalar tail): 1e-6 is ~8 ulps of the scale (measured: equal). onnxruntime runs its own
# kernels: the export rule, DEFAULT_TOLERANCE (1e-4; measured up to 3e-6 for YOLOv3's boxes,
# whose exp() turns a logit's ~4e-6 into 1.3e-3 px on a 700 px half-width).
SAME_KERNELS, ONNXRUNTIME = 1e-6, DEFAULT_TOLERANCE


def _assert_same(got, want: dict, what: str, rel: float = SAME_KERNELS) -> None:
    boxes, scores, labels = (t.detach().numpy() if isinstance(t, torch.Tensor) else t for t in got)
    assert boxes.shape == tuple(want["boxes"].shape), what
    want_boxes = want["boxes"].numpy()
    scale = max(1.0, float(np.abs(want_boxes).max(initial=0.0)))  # a wrong box is off by pixels
    np.testing.assert_allclose(boxes, want_boxes, atol=rel * scale, rtol=0, err_msg=what)
    np.testing.assert_allclose(scores, want["scores"].numpy(), atol=rel, rtol=0, err_msg=what)
    np.testing.assert_array_equal(labels, want["labels"].numpy(), err_msg=what)


def test_samples_are_held_out_scenes_and_one_of_clutter(scenes):
    from sotazoo.transforms import load_image

    assert retinanet_demo.SAMPLE_SEED < 1000 and yolov3_demo.SAMPLE_SEED < 1000  # training: 10^6+
    assert [p.name for p in scenes][-1] == "clutter.png" and len(scenes) == 6
    for p in scenes:
        assert load_image(p).shape == (3, 128, 128)
    # YOLOv3's page shows the same pictures.
    for a, b in zip(scenes, yolov3_demo.samples(scenes[0].parent / "y"), strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("paper", ["retinanet", "yolov3"])
def test_graph_keeps_what_postprocess_keeps(paper, scenes):
    model, xs, graph = _setup(paper, scenes)
    kept = 0
    for name, x in zip(scenes, xs, strict=True):
        with torch.no_grad():
            got = graph(x)
        want = _postprocess(paper, model, x, graph)
        _assert_same(got, want, name.name)
        kept += len(want["boxes"])
    assert kept >= 6  # the comparison is not between empty sets


def test_retinanet_graph_topk_first_is_postprocess_topk_when_it_binds(scenes):
    """With k = 5 per level and ~250 candidates above the threshold, top-k binds on P3 and P4:
    taking the top k first and thresholding after still keeps postprocess's set."""
    model, xs, graph = _setup("retinanet", scenes, topk=5)
    x = xs[0]
    assert int((_scores("retinanet", model, x) > graph.score_thresh).sum()) > 2 * 5
    with torch.no_grad():
        got = graph(x)
    want = _postprocess("retinanet", model, x, graph)
    _assert_same(got, want, "topk=5")
    assert 0 < len(want["boxes"]) <= 5 * 5  # at most k per level survive


@pytest.mark.parametrize("paper", ["retinanet", "yolov3"])
def test_exported_graph_runs_in_onnxruntime_as_postprocess(paper, scenes, tmp_path):
    model, xs, graph = _setup(paper, scenes)
    path = tmp_path / f"{paper}.onnx"
    r = export_onnx(
        graph,
        (3, 128, 128),
        path,
        example_inputs=[(x,) for x in xs],
        output_names=graph.output_names,
        dynamic_axes=graph.dynamic_axes,
        tolerance=graph.export_tolerance,
    )
    assert r.output_names == ("boxes", "scores", "labels") and r.checked_inputs == len(scenes)
    assert r.max_rel_diff <= ONNXRUNTIME and r.input_shape == (1, 3, 128, 128)
    g = onnx.load(str(path))
    ops = {n.op_type for n in g.graph.node} | {
        n.op_type for node in g.graph.node for a in node.attribute for n in a.g.node
    }
    assert "NonMaxSuppression" in ops  # NMS is in the graph, not left to the widget
    for o in g.graph.output:
        assert o.type.tensor_type.shape.dim[0].dim_param == "detections"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for name, x in zip(scenes, xs, strict=True):
        got = sess.run(None, {"input": x.numpy()})
        _assert_same(got, _postprocess(paper, model, x, graph), name.name, rel=ONNXRUNTIME)


@pytest.mark.parametrize("paper", ["retinanet", "yolov3"])
def test_exported_graph_returns_empty_outputs_when_nothing_passes(paper, scenes, tmp_path):
    """Scores are sigmoids (products of sigmoids), never above 1: a threshold of 1 keeps nothing.
    export_onnx refuses to call that a check; exported anyway, onnxruntime returns (0, 4), (0,),
    (0,) as PyTorch does, through NMS's empty branch."""
    model, xs, _ = _setup(paper, scenes)
    demo = retinanet_demo if paper == "retinanet" else yolov3_demo
    graph = demo.Detections(model, score_thresh=1.0)
    with pytest.raises(ExportError, match="empty on every checked input"):
        export_onnx(graph, (3, 128, 128), tmp_path / "empty.onnx",
                    example_inputs=[(xs[0],)], output_names=graph.output_names,
                    dynamic_axes=graph.dynamic_axes)  # fmt: skip
    assert not (tmp_path / "empty.onnx").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (xs[0],), str(tmp_path / "e.onnx"), dynamo=False,
                          opset_version=17, input_names=["input"],
                          output_names=list(graph.output_names),
                          dynamic_axes=graph.dynamic_axes)  # fmt: skip
    sess = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    for x in xs[:2]:
        boxes, scores, labels = sess.run(None, {"input": x.numpy()})
        assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)
        assert labels.dtype == np.int64


@pytest.mark.parametrize("paper", ["retinanet", "yolov3"])
def test_graph_refuses_a_batch_or_another_size(paper, scenes):
    from sotazoo.errors import InputError

    _, xs, graph = _setup(paper, scenes)
    with pytest.raises(InputError, match=r"one \(1, 3, 128, 128\) image"):
        graph(torch.cat([xs[0], xs[1]]))
    with pytest.raises(InputError, match="got"):
        graph(xs[0][..., :96, :96])


# ---------------------------------------------------------------- export_onnx with several outputs


class TwoHeads(nn.Module):
    """(B, 3, H, W) -> a float (B, 4) and an int64 (B,): two outputs of different dtypes."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        y = self.fc(x.mean((2, 3)))
        return y, y.argmax(1)


def test_export_onnx_names_and_checks_every_output(tmp_path):
    torch.manual_seed(0)
    model = TwoHeads()
    r = export_onnx(model, (3, 8, 8), tmp_path / "two.onnx")
    # Outputs of O(1) from a mean of 64 and 3-term dot products: a few ulps apart in any engine
    # and on any CPU; 1e-6 is ~8 ulps of 1 (here and on the batch of 5 below), argmax is equal.
    assert r.output_names == ("output0", "output1") and r.max_abs_diff <= 1e-6
    sess = ort.InferenceSession(str(tmp_path / "two.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["output0", "output1"]
    x = torch.randn(5, 3, 8, 8)  # the batch axis stays dynamic, for every output
    y, k = sess.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want_y, want_k = model(x)
    assert y.shape == (5, 4) and np.abs(y - want_y.numpy()).max() <= 1e-6
    np.testing.assert_array_equal(k, want_k.numpy())
    r = export_onnx(model, (3, 8, 8), tmp_path / "named.onnx", output_names=["logits", "top1"])
    assert r.output_names == ("logits", "top1")
    with pytest.raises(ExportError, match="1 output names for 2 outputs"):
        export_onnx(model, (3, 8, 8), tmp_path / "bad.onnx", output_names=["only"])


def test_export_onnx_single_output_is_unchanged(tmp_path):
    """One tensor: one output named "output", a batch of 2 random inputs, dynamic batch axis."""
    torch.manual_seed(0)
    model = nn.Conv2d(3, 2, 3, padding=1)
    r = export_onnx(model, (3, 8, 8), tmp_path / "one.onnx")
    assert r.output_names == ("output",) and r.checked_inputs == 1
    assert r.input_shape == (2, 3, 8, 8)
    sess = ort.InferenceSession(str(tmp_path / "one.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["output"]
    (y,) = sess.run(None, {"input": np.zeros((3, 3, 8, 8), np.float32)})
    assert y.shape == (3, 2, 8, 8)


# ---------------------------------------------------------------- the site's export_module hook


@pytest.mark.parametrize("paper", ["retinanet", "yolov3"])
def test_build_demo_exports_the_demo_graph_checked_on_the_samples(paper, tmp_path, monkeypatch):
    """`build_demo` with a random model in place of the trained weights (not needed to test the
    hook): the spec names three outputs and the widget's threshold, the samples are written
    first and the ONNX file keeps, on each of them, what postprocess keeps."""
    import sotazoo.registry as registry
    from sotazoo.registry import get_paper
    from sotazoo.site.build import build_demo
    from sotazoo.weights import Weights

    card = get_paper(paper)
    assert card.demo is not None and card.demo.kind == "detect" and card.demo.weights == "sotazoo"
    model_name = card.demo.model
    demo = retinanet_demo if paper == "retinanet" else yolov3_demo
    scenes = demo.samples(tmp_path / "scenes")
    model, xs, graph = _setup(paper, scenes)
    classes = ("square", "circle", "triangle", "cross")
    fake = Weights(model=model_name, tag="sotazoo", sha256="0" * 64, filename="x.safetensors",
                   format="safetensors", num_params=0, transforms={**NORM[paper], "classes": classes})  # fmt: skip
    monkeypatch.setattr(registry, "get_weights", lambda name, tag: fake)
    monkeypatch.setattr(registry, "create_model", lambda name, **kw: model)
    monkeypatch.setattr(demo, "export_module",
                        lambda m: demo.Detections(m, score_thresh=graph.score_thresh))  # fmt: skip
    rel = build_demo(card, tmp_path / "site")
    spec = json.loads((tmp_path / "site" / rel).read_text())
    assert spec["kind"] == "detect" and spec["onnx_outputs"] == ["boxes", "scores", "labels"]
    assert spec["score_threshold"] == demo.SCORE_THRESHOLD
    assert spec["labels"] == ["square", "circle", "triangle", "cross"]
    assert [s["name"] for s in spec["samples"]] == [p.stem for p in scenes]
    sess = ort.InferenceSession(str(tmp_path / "site" / "models" / spec["onnx"]),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    for s, x in zip(spec["samples"], xs, strict=True):
        png = tmp_path / "site" / "models" / s["src"]
        assert png.read_bytes() == (tmp_path / "scenes" / png.name).read_bytes()
        got = sess.run(None, {"input": x.numpy()})
        _assert_same(got, _postprocess(paper, model, x, graph), s["name"], rel=ONNXRUNTIME)
