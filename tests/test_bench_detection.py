"""`sotazoo bench` for the detectors: RetinaNet against torchvision's RetinaNet, YOLOv3 against
OpenCV's darknet network (its card's reference) and torchvision's RetinaNet.

What is checked: the `raw=True` reference is torchvision's detector minus its transform and its
post-processing (the head outputs its own forward computes, caught by a hook); the `frozen_bn=True`
reference is the network of torchvision's COCO weights (FrozenBN, eps 0, 34,014,999 parameters:
the `num_params` of `RetinaNet_ResNet50_FPN_Weights.COCO_V1.meta`); bench builds ours in the
reference's layout, shares the weights, and both give the same raw outputs; YOLOv3 runs beside
OpenCV with the same weights (recorded as shared, against an independent implementation), and
beside RetinaNet at the same input size; malformed specs are refused with a message that names
the problem.

torchvision's RetinaNet builders fix ResNet-50, so the paper-size networks run here, at 64×64
(about 1 GMAC a pass) and batch ≤ 2; nothing is downloaded.
"""

from __future__ import annotations

import json

import pytest
import torch

from sotazoo import bench as bench_mod
from sotazoo.bench import build_pair, count_params, create_reference
from sotazoo.cards import load_card
from sotazoo.cli import main
from sotazoo.errors import SotazooError
from sotazoo.papers.retinanet.model import IMAGENET_MEAN, IMAGENET_STD
from sotazoo.papers.retinanet.reference import TorchvisionDetectorNetwork

torchvision = pytest.importorskip("torchvision")
from torchvision.models.detection import RetinaNet_ResNet50_FPN_Weights  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

RAW = "torchvision:retinanet_resnet50_fpn:raw=True,frozen_bn=True"
SIZE = 64  # a multiple of 32 (torchvision pads to it) and of 128 / 2: P7 is 1×1
# torchvision's meta for its COCO weights (read from the enum; nothing is downloaded)
COCO_PARAMS = RetinaNet_ResNet50_FPN_Weights.COCO_V1.meta["num_params"]


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics and affine, and head weights of unit-variance outputs: with the
    default init (BN at identity, head N(0, 0.01)) a wrong key map could still agree."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d | FrozenBatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.0, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
        for m in model.head.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, m.weight[0].numel() ** -0.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
    return model.eval()


def _normalise(img: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return (img - mean) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


# ---------------------------------------------------------------- the references


def test_raw_reference_is_torchvisions_network_between_transform_and_postprocess():
    """torchvision's whole detector (min_size = max_size = 64: its resize is the identity, its
    padding adds nothing) on [0, 1] images, its head outputs caught by a hook, against the raw
    reference with the same state dict on the normalised images: the same numbers."""
    spec = f"torchvision:retinanet_resnet50_fpn:frozen_bn=True,min_size={SIZE},max_size={SIZE}"
    full = _randomise(create_reference(spec))
    raw = create_reference(RAW).eval()
    assert isinstance(raw, TorchvisionDetectorNetwork)
    assert raw.state_dict().keys() == full.state_dict().keys()
    raw.load_state_dict(full.state_dict(), strict=True)
    img = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    caught = {}
    hook = full.head.register_forward_hook(lambda m, i, o: caught.update(o))
    try:
        with torch.inference_mode():
            full(list(img))
            out = raw(_normalise(img))
    finally:
        hook.remove()
    expected = torch.cat([caught["cls_logits"], caught["bbox_regression"]], dim=-1)
    # 9 anchors on P3…P7 of a 64×64 image: 8², 4², 2², 1, 1 positions; 91 class slots + 4.
    assert out.shape == expected.shape == (2, 9 * (64 + 16 + 4 + 1 + 1), 91 + 4)
    # the same torchvision modules on the same normalised batch: the same kernels whatever the
    # CPU or thread count, so equal (measured); 1e-6 leaves an ulp or two of the logits (~4)
    assert (out - expected).abs().max() <= 1e-6


def test_frozen_bn_reference_is_the_network_of_torchvisions_coco_weights():
    """FrozenBatchNorm2d with eps 0 everywhere (the builder's `overwrite_eps(model, 0.0)` for
    COCO_V1), P6 on P5 (256 input channels), 91 slots, and torchvision's meta parameter count."""
    ref = create_reference(RAW)
    norms = [m for m in ref.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert len(norms) == 53 and all(m.eps == 0.0 for m in norms)  # ResNet-50: 49 + 4 downsample
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in ref.modules())
    assert ref.backbone.fpn.extra_blocks.p6.in_channels == 256
    assert ref.head.classification_head.num_classes == 91
    assert count_params(ref) == COCO_PARAMS == 34_014_999


def test_plain_torchvision_reference_downloads_nothing():
    """Without `frozen_bn`, the builder gets weights_backbone=None (its default would download
    ImageNet weights and switch to FrozenBN): its backbone then has nn.BatchNorm2d."""
    ref = create_reference("torchvision:retinanet_resnet50_fpn:raw=True")
    assert isinstance(ref.backbone.body.bn1, torch.nn.BatchNorm2d)


# ---------------------------------------------------------------- shared weights, same outputs


@pytest.mark.parametrize(
    ("spec", "eps", "tol"),
    [
        (RAW, 0.0, 1e-5),
        # nn.BatchNorm2d computes (x − μ)/√(σ² + ε)·γ + β, ours (FrozenBN) x·s + t: rounding
        # that 50 layers carry (test_retinanet's oracle measures ~2e-6 on logits of size ~4).
        ("torchvision:retinanet_resnet50_fpn:raw=True", 1e-5, 1e-4),
    ],
    ids=["frozen_bn", "batchnorm"],
)
def test_bench_pair_shares_weights_and_raw_outputs_agree(monkeypatch, spec, eps, tol):
    """bench's pair: ours built with the converter's overrides for torchvision's layout, the
    reference's (randomised) weights loaded, the same raw outputs on the same normalised batch."""
    real = bench_mod.create_reference
    monkeypatch.setattr(bench_mod, "create_reference", lambda s: _randomise(real(s)))
    pair = build_pair("retinanet_resnet50_fpn", spec)
    assert pair.shared
    cfg = pair.ours.cfg
    assert (cfg.p6_from, cfg.stride_in_1x1, cfg.num_classes, cfg.bn_eps) == ("p5", False, 91, eps)
    assert pair.overrides["p6_from"] == "p5" and pair.overrides["bn_eps"] == eps
    x = torch.randn(2, 3, SIZE, 2 * SIZE, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ours, ref = pair.ours(x), pair.reference(x)
    assert ours.shape == ref.shape == (2, 9 * (128 + 32 + 8 + 2 + 1), 95)
    assert ref.std() > 0.1  # outputs that differ from anchor to anchor: agreement is not trivial
    assert (ours - ref).abs().max() <= tol


def test_bench_retinanet_vs_raw_reference_has_a_ratio():
    size = (3, SIZE, SIZE)
    r = bench_mod.bench(
        "retinanet_resnet50_fpn", vs=RAW, input_size=size, reps=1, warmup=0, batch=1, progress=False
    )
    assert r.weights_shared and r.input_size == (3, SIZE, SIZE)
    assert r.ours.params == r.reference.params == COCO_PARAMS
    assert r.ours.gmacs == pytest.approx(r.reference.gmacs, rel=1e-9)  # the same convolutions
    assert r.latency_ratio > 0 and r.throughput_ratio > 0
    assert r.ours_overrides["num_classes"] == 91
    assert not any("whole detector" in n for n in r.notes)
    json.dumps(r.to_dict())  # what --save writes


def test_bench_yolov3_vs_retinanet_at_the_same_size(capsys):
    """The CLI with RetinaNet as the reference and --size: both at 64×64, no weights shared.
    YOLOv3's multiply-adds scale with the pixels from the card's count at 416×416 (the official
    cfg's 65.86 BFLOPs / 2), which shows that ours ran at 64×64 too."""
    card = {m.name: m for m in load_card("yolov3").models}
    argv = ["bench", "yolov3_416", "--vs", RAW, "--size", str(SIZE), "--reps", "1", "--batch", "1"]
    assert main([*argv, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["input_size"] == [3, SIZE, SIZE] and r["reference"]["name"] == RAW
    scaled = card["yolov3_416"].gflops * (SIZE / 416) ** 2
    assert r["ours"]["gmacs"] == pytest.approx(scaled, rel=0.01)
    assert r["reference"]["params"] == COCO_PARAMS and r["latency_ratio"] > 0
    assert not r["weights_shared"] and any("weights not shared" in n for n in r["notes"])
    assert r["reference_kind"] == "independent"  # another library, though another detector


# ---------------------------------------------------------------- YOLOv3 against OpenCV

OPENCV_TINY = "opencv:yolov3_tiny:width=2,num_classes=2"


def test_bench_yolov3_vs_opencv_shares_our_weights():
    """bench's pair for OpenCV's darknet network: the reference's state dict is ours (the weights
    OpenCV was given), so ours is built with them and both give the same raw outputs; the result
    says the weights were shared, against an independent implementation, with equal parameters
    and multiply-adds (OpenCV's counted on the same network in torch). The tolerance is the
    OpenCV test's of tests/papers/test_yolov3.py: 1e-4 of the output's scale (measured ~1e-6)."""
    pytest.importorskip("cv2")
    pair = build_pair("yolov3_tiny", OPENCV_TINY)
    assert pair.shared and pair.overrides == {"width": 2, "in_chans": 3, "num_classes": 2}
    assert pair.notes == [
        "ours built in the reference's layout (sotazoo_yolov3_tiny) to share its weights: "
        "num_classes, width"  # in_chans=3 is ours already: not a departure
    ]
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ours, ref = pair.ours(x), pair.reference(x)
    assert ours.shape == ref.shape == (2, 3 * (2 * 2 + 4 * 4), 5 + 2)
    assert (ours - ref).abs().max() <= 1e-4 * ours.abs().max()
    r = bench_mod.bench("yolov3_tiny", vs=OPENCV_TINY, input_size=(3, SIZE, SIZE), reps=1,
                        warmup=0, batch=1, progress=False)  # fmt: skip
    d = r.to_dict()
    assert d["weights_shared"] and d["reference_kind"] == "independent"
    assert d["reference_label"] == "vs OpenCV's yolov3_tiny (independent implementation)"
    assert r.ours.params == r.reference.params == count_params(pair.ours)
    assert r.reference.gmacs == pytest.approx(r.ours.gmacs, rel=1e-9) and r.ours.gmacs > 0
    assert bench_mod.reference_cell(d) == f"x{r.latency_ratio:.2f} ref"
    assert "yolov3_tiny vs OpenCV's yolov3_tiny (independent implementation)" in (
        bench_mod.format_bench(r)
    )
    json.dumps(d)  # what --save writes


def test_full_torchvision_detector_gets_a_note():
    """A torchvision detector without raw=True times its transform and NMS too: bench says so."""
    pair = build_pair("retinanet_resnet50_fpn", "torchvision:retinanet_resnet50_fpn")
    assert any("raw=True" in n for n in pair.notes)


# ---------------------------------------------------------------- malformed references


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("torchvision:", "names no model"),
        ("torchvision:retinanet_resnet50_fpn:raw", "'raw' is not key=value"),
        ("torchvision:retinanet_resnet50_fpn:raw=yes", "raw must be True or False"),
        ("torchvision:retinanet_resnet51_fpn:raw=True", "torchvision has no model"),
        # raw / frozen_bn are options of RetinaNet's adapter (papers/retinanet/reference.py):
        # to another builder they are unknown keywords, named as such
        ("torchvision:resnet18:raw=True", "unexpected keyword argument 'raw'"),
        ("torchvision:retinanet_resnet50_fpn_v2:frozen_bn=True", "frozen_bn=True is implemented"),
        (RAW + ",weights_backbone=X", "drop weights_backbone"),
        ("torchvision:resnet18:colour=1", "colour"),
    ],
)
def test_malformed_reference_names_the_problem(spec, problem):
    with pytest.raises(SotazooError, match="reference") as e:
        create_reference(spec)
    assert problem in str(e.value) and spec in str(e.value)


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--vs", "torchvision:retinanet_resnet50_fpn:raw"], "not key=value"),
        (["--size", "64x"], "expected N or HxW"),
        (["--size", "0"], "expected N or HxW"),
    ],
)
def test_cli_bench_refuses_bad_options(capsys, argv, problem):
    assert main(["bench", "yolov3_tiny", *argv, "--reps", "1"]) == 1
    assert problem in capsys.readouterr().err


def test_declared_references_of_the_detection_cards_build():
    """Every spec the detection cards declare builds; YOLOv3's are OpenCV's darknet network
    (built narrow here: at full width each writes a 248 MB .weights file)."""
    cards = {p: load_card(p).models for p in ("retinanet", "yolov3")}
    assert {m.name: m.reference for m in cards["yolov3"] if m.name.startswith("yolov3_")} == {
        "yolov3_320": "opencv:yolov3_320",
        "yolov3_416": "opencv:yolov3_416",
        "yolov3_608": "opencv:yolov3_608",
        "yolov3_tiny": "opencv:yolov3_tiny",
        "yolov3_mini": "",
    }
    specs = {m.reference for models in cards.values() for m in models} - {""}
    assert RAW in specs
    for spec in specs:
        if spec.startswith("opencv:"):
            pytest.importorskip("cv2")
            assert bench_mod.reference_kind(spec) == "independent"
            spec += ":width=2"
        assert isinstance(create_reference(spec), torch.nn.Module)
