"""RetinaNet: parameter counts (torchvision's meta, torchvision's class counted live, the head by
hand), the torchvision oracle (raw head outputs and final detections), the focal loss against
torchvision.ops, the prior bias, anchors against torchvision's AnchorGenerator, matching on a case
computed by hand, the loss against torchvision's, the converters, export and bad input.

Full-size networks run only at 256×256 and batch ≤ 2; nothing is downloaded."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import sotazoo
from sotazoo.bench import count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError, WeightsError
from sotazoo.papers.retinanet.convert import convert_state_dict, detect_layout
from sotazoo.papers.retinanet.method import (
    BACKGROUND,
    IGNORED,
    anchor_grid,
    cell_anchors,
    decode_boxes,
    encode_boxes,
    match_anchors,
    postprocess,
    retinanet_loss,
    sigmoid_focal_loss,
)
from sotazoo.papers.retinanet.model import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PAPER_ANCHOR_SIZES,
    TORCHVISION_ANCHOR_SIZES,
    RetinaNet,
    RetinaNetConfig,
    prior_bias,
    tiny_overrides,
)

torchvision = pytest.importorskip("torchvision")
from torchvision.models.detection import retinanet as tv_retinanet  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

from .oracle import within  # noqa: E402

CARD = load_card("retinanet")
VARIANTS = [m for m in CARD.models if not m.laptop]
SIZE = 256  # a multiple of 128: torchvision's anchor strides are then the nominal ones


def _normalise(img: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return (img - mean) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _tv_paper_style(depth: int, p6_in: int, num_classes: int) -> torch.nn.Module:
    """torchvision's RetinaNet class over a FrozenBatchNorm ResNet, built as its builder does for
    pretrained weights, with P6 on C5 (in_channels 2048) or on P5 (256)."""
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    body = getattr(torchvision.models, f"resnet{depth}")(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, 5, [2, 3, 4], extra_blocks=LastLevelP6P7(p6_in, 256))
    return tv_retinanet.RetinaNet(backbone, num_classes, min_size=SIZE, max_size=SIZE)


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics and heads whose scores spread around the 0.05 threshold, so that a
    wrong mapping cannot hide and NMS has work to do."""
    g = torch.Generator().manual_seed(1)
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
        model.head.classification_head.cls_logits.bias.sub_(3.0)
    return model.eval()


@functools.cache
def _tv_coco_style() -> torch.nn.Module:
    """What `retinanet_resnet50_fpn(weights=COCO_V1)` builds — FrozenBatchNorm, P6 on P5, 91
    slots, eps 0 through `overwrite_eps` — with random weights instead of the download."""
    from torchvision.models.detection._utils import overwrite_eps

    model = _tv_paper_style(50, 256, 91)
    overwrite_eps(model, 0.0)
    return _randomise(model)


def _head_outputs(tv: torch.nn.Module, img: torch.Tensor) -> tuple[list[dict], dict]:
    """torchvision's detections on [0, 1] images (its transform normalises; min = max = the
    input size, so its resize is the identity), and its raw head outputs caught by a hook."""
    caught = {}
    hook = tv.head.register_forward_hook(lambda m, i, o: caught.update(o))
    try:
        with torch.inference_mode():
            dets = tv(list(img))
    finally:
        hook.remove()
    return dets, caught


def _ours_from(tv: torch.nn.Module) -> RetinaNet:
    sd, overrides, layout = convert_state_dict(tv.state_dict())
    assert layout == "torchvision"
    model = sotazoo.create_model("retinanet_resnet50_fpn", **overrides)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def _compare(ours: RetinaNet, tv: torch.nn.Module, img: torch.Tensor) -> tuple[float, list]:
    dets_tv, raw = _head_outputs(tv, img)
    with torch.inference_mode():
        logits, deltas = ours.forward_heads(_normalise(img))
    diff = max(
        (logits - raw["cls_logits"]).abs().max().item(),
        (deltas - raw["bbox_regression"]).abs().max().item(),
    )
    anchors, counts = ours.anchors(SIZE, SIZE)
    out = torch.cat([logits, deltas], dim=-1)
    dets = postprocess(out, anchors, counts, (SIZE, SIZE), max_detections=tv.detections_per_img)
    return diff, list(zip(dets, dets_tv, strict=True))


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("entry", VARIANTS, ids=lambda e: e.name)
def test_param_count_matches_the_card(entry):
    """Ours against the card's `params` (torchvision's class built the paper's way, counted; see
    `params_source`), within 0.5% — in fact exactly."""
    n = count_params(sotazoo.create_model(entry.name))
    assert abs(n - entry.params) / entry.params <= 0.005, (n, entry.params, entry.params_source)
    assert n == entry.params


@pytest.mark.parametrize(("depth", "name"), [(50, "retinanet_resnet50_fpn"), (101, "retinanet_resnet101_fpn")])  # fmt: skip
def test_param_count_of_torchvision_built_the_papers_way(depth, name):
    """The card's numbers recounted live: torchvision's RetinaNet class, FrozenBN ResNet, P6 on C5,
    80 classes."""
    entry = next(e for e in VARIANTS if e.name == name)
    assert count_params(_tv_paper_style(depth, 2048, 80)) == entry.params


def test_param_count_torchvision_layout_equals_its_meta():
    """With torchvision's choices (P6 on P5, 91 slots) ours has the 34,014,999 parameters of the
    meta of torchvision's COCO weights (read from the enum, nothing downloaded)."""
    meta = tv_retinanet.RetinaNet_ResNet50_FPN_Weights.COCO_V1.meta["num_params"]
    assert meta == 34_014_999
    model = sotazoo.create_model("retinanet_resnet50_fpn", p6_from="p5", num_classes=91)
    assert count_params(model) == meta


def _conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def test_param_count_by_hand():
    """§4 turned into numbers, apart from the module: two towers of 4 × (3×3 conv 256) with the
    K·A and 4·A predictors; the FPN's laterals, outputs, P6 (on C5) and P7; the ResNet-50 trunk's
    convs (25,557,032 in torchvision's resnet50, less its fc and the 53,120 BN affine values,
    which are buffers here)."""
    k, a, c = 80, 9, 256
    head = 2 * 4 * _conv(c, c, 3) + _conv(c, k * a, 3) + _conv(c, 4 * a, 3)
    assert head == 6_463_220
    fpn = sum(_conv(ci, c, 1) + _conv(c, c, 3) for ci in (512, 1024, 2048))
    fpn += _conv(2048, c, 3) + _conv(c, c, 3)
    trunk = 25_557_032 - _conv(2048, 1000, 1) - 53_120
    model = sotazoo.create_model("retinanet_resnet50_fpn")
    assert count_params(model.head) == head
    assert count_params(model.backbone.fpn) == fpn
    assert count_params(model.backbone.body) == trunk
    assert head + fpn + trunk == next(e.params for e in VARIANTS if e.name.endswith("50_fpn"))


def test_stem_and_first_stage_are_frozen():
    """Detectron's FREEZE_AT = 2: no gradient for the stem and res2; BN affine are buffers."""
    model = sotazoo.create_model("retinanet_resnet50_fpn")
    body = model.backbone.body
    assert not any(p.requires_grad for p in [*body.conv1.parameters(), *body.layer1.parameters()])
    assert all(p.requires_grad for p in body.layer2.parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


# ---------------------------------------------------------------- oracle: torchvision


def test_oracle_torchvision_retinanet():
    """torchvision's `retinanet_resnet50_fpn(weights=None, weights_backbone=None)` (nn.BatchNorm2d,
    eps 1e-5) with random weights, converted into ours, on the same 2×3×256×256 batch.

    Raw outputs agree to ≤ 1e-4 (measured ~2e-6 on logits of magnitude ~4): its eval-mode BN
    computes (x − μ)/√(σ² + ε)·γ + β while ours folds it into x·s + t, a rounding difference that
    50 layers carry. Detections (after our postprocess, theirs inside the model) agree in count
    and labels, boxes to 1e-3 px, scores to 1e-5."""
    g = torch.Generator().manual_seed(2)
    tv = tv_retinanet.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91, min_size=SIZE, max_size=SIZE
    )
    tv.detections_per_img = 100
    tv = _randomise(tv)
    ours = _ours_from(tv)
    assert ours.cfg.bn_eps == 1e-5 and ours.cfg.p6_from == "p5" and not ours.cfg.stride_in_1x1
    diff, pairs = _compare(ours, tv, torch.rand(2, 3, SIZE, SIZE, generator=g))
    within(diff, 1e-4, "head outputs vs torchvision")  # 2.5e-5 of ~4: the fold's rounding
    for d, t in pairs:
        assert len(t["scores"]) == 100 and torch.equal(d["labels"], t["labels"])
        # boxes are exp() of deltas ~2e-6 apart: 256 px boxes move by <= ~5e-4 px (measured
        # 3.8e-5); scores are sigmoids (slope <= 1/4) of those logits (measured 8e-8)
        assert (d["boxes"] - t["boxes"]).abs().max() <= 1e-3
        assert (d["scores"] - t["scores"]).abs().max() <= 1e-5


def test_oracle_torchvision_coco_weights_layout():
    """The COCO checkpoint's setting (FrozenBatchNorm, eps 0) in the key layout of the 2020 file
    (plain FPN convs, head convs numbered 0, 2, 4, 6): the outputs are bitwise those of
    torchvision, and so are the detections."""
    tv = _tv_coco_style()
    sd = {}
    for k, v in tv.state_dict().items():  # back to torchvision's version-1 keys
        k = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.", r"\1.", k)
        m = re.match(r"^(head\.\w+_head\.conv)\.(\d+)\.0\.(\w+)$", k)
        sd[f"{m[1]}.{2 * int(m[2])}.{m[3]}" if m else k] = v
    assert "head.classification_head.conv.6.weight" in sd and not any(
        "num_batches" in k for k in sd
    )
    converted, overrides, _ = convert_state_dict(sd)
    assert overrides["bn_eps"] == 0.0 and overrides["num_classes"] == 91
    ours = sotazoo.create_model("retinanet_resnet50_fpn", **overrides)
    ours.load_state_dict(converted, strict=True)
    diff, pairs = _compare(ours.eval(), tv, torch.rand(1, 3, SIZE, SIZE))
    # the same ops in the same order on the same kernels (any CPU, any thread count): equal in
    # practice; allclose's default rtol (1e-5) leaves ulps of the 256 px boxes
    within(diff, 1e-6, "COCO layout vs torchvision")
    for d, t in pairs:
        assert len(d["scores"]) > 10 and torch.equal(d["labels"], t["labels"])
        assert torch.allclose(d["boxes"], t["boxes"], atol=1e-5)
        assert torch.allclose(d["scores"], t["scores"], atol=1e-7)


# ---------------------------------------------------------------- the focal loss and the prior


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.5, 1.0), (0.75, 5.0), (-1.0, 0.0)])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_oracle_focal_loss(alpha, gamma, reduction):
    """Ours against torchvision.ops.sigmoid_focal_loss on random logits and 0/1 targets."""
    from torchvision.ops import sigmoid_focal_loss as tv_focal

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(64, 7, generator=g) * 4
    targets = (torch.rand(64, 7, generator=g) < 0.2).float()
    ours = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    theirs = tv_focal(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    # the same formula with the same ops: equal (measured); rtol covers the sums (up to ~800)
    assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_focal_loss_on_cases_computed_by_hand():
    """Eq. 5 at p_t = 0.9 and γ = 2 keeps (1 − 0.9)² = 1% of the α-weighted cross-entropy; γ = 0
    without α is plain cross-entropy (Eq. 1)."""
    logit = torch.tensor([math.log(9.0)])  # sigmoid = 0.9
    fg = sigmoid_focal_loss(logit, torch.ones(1))
    bg = sigmoid_focal_loss(-logit, torch.zeros(1))  # p = 0.1, target 0: p_t = 0.9
    ce = -math.log(0.9)
    assert fg.item() == pytest.approx(0.25 * 0.01 * ce, rel=1e-5)
    assert bg.item() == pytest.approx(0.75 * 0.01 * ce, rel=1e-5)
    plain = sigmoid_focal_loss(logit, torch.ones(1), alpha=-1, gamma=0.0)
    assert plain.item() == pytest.approx(ce, rel=1e-6)


def test_prior_bias_initialisation():
    """b = −log((1 − π)/π) = −4.5951 for π = 0.01 on the last class conv only (§3.3, §4.1)."""
    assert prior_bias(0.01) == pytest.approx(-4.59512, abs=1e-5)  # -log(99), to 5 decimals
    model = sotazoo.create_model("retinanet_mini")
    bias = model.head.classification_head.cls_logits.bias
    assert torch.allclose(bias, torch.full_like(bias, prior_bias(0.01)))
    assert torch.allclose(torch.sigmoid(bias), torch.full_like(bias, 0.01))
    assert not model.head.regression_head.bbox_reg.bias.any()


# ---------------------------------------------------------------- anchors and matching


def test_anchors_nine_per_location_sizes_32_to_512():
    cfg = RetinaNetConfig()
    assert cfg.num_anchors == 9
    assert [lvl[0] for lvl in PAPER_ANCHOR_SIZES] == [32, 64, 128, 256, 512]
    for lvl in PAPER_ANCHOR_SIZES:
        assert lvl[1] / lvl[0] == pytest.approx(2 ** (1 / 3))
        assert lvl[2] / lvl[0] == pytest.approx(2 ** (2 / 3))
    ratios = torch.tensor([0.5] * 3 + [1.0] * 3 + [2.0] * 3)  # ratio-major, then the 3 sizes
    exact = cell_anchors(PAPER_ANCHOR_SIZES[0], cfg.aspect_ratios, round_=False)
    w, h = exact[:, 2] - exact[:, 0], exact[:, 3] - exact[:, 1]
    assert torch.allclose(h / w, ratios) and torch.allclose(w * h, torch.tensor(PAPER_ANCHOR_SIZES[0] * 3) ** 2)  # fmt: skip
    cell = cell_anchors(PAPER_ANCHOR_SIZES[0], cfg.aspect_ratios)  # rounded, as torchvision
    w, h = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    assert torch.equal(w[3:6], torch.tensor([32.0, 40.0, 50.0]))  # ratio 1: the sizes, rounded
    assert torch.allclose(h / w, ratios, rtol=0.05)  # rounding: 46/22 for 2:1 at 32 px


@pytest.mark.parametrize("size", [256, 384])
def test_anchors_match_torchvision_anchor_generator(size):
    """Our anchors with torchvision's integer sizes equal its AnchorGenerator's, in the order of
    the head's outputs, for sides whose strides are nominal (multiples of 128)."""
    from torchvision.models.detection.image_list import ImageList

    cfg = RetinaNetConfig(anchor_sizes=TORCHVISION_ANCHOR_SIZES)
    model = RetinaNet(replace(cfg, **tiny_overrides("retinanet_resnet50_fpn")))
    sizes = model.feature_sizes(size, size)
    with torch.inference_mode():
        feats = model.backbone(torch.zeros(1, 3, size, size))
    assert [tuple(f.shape[-2:]) for f in feats] == sizes
    theirs = tv_retinanet._default_anchorgen()(ImageList(torch.zeros(1, 3, size, size), [(size, size)]), feats)  # fmt: skip
    ours, counts = anchor_grid(cfg, sizes)
    assert torch.equal(ours, theirs[0]) and counts == [9 * h * w for h, w in sizes]


def test_match_anchors_on_a_case_computed_by_hand():
    """IoU ≥ 0.5 positive, < 0.4 background, [0.4, 0.5) ignored (§4.1); a box whose best IoU is
    below 0.5 still claims its best anchor (the official code's low-quality matches)."""
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 130.0, 130.0]])
    anchors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1 with box 0
            [0.0, 0.0, 10.0, 20.0],  # 100/200 = 0.5: positive (the bound is inclusive)
            [0.0, 0.0, 10.0, 22.0],  # 100/220 = 0.4545: ignored
            [0.0, 0.0, 10.0, 25.0],  # 100/250 = 0.4: ignored (0.4 is not below 0.4)
            [0.0, 0.0, 10.0, 30.0],  # 100/300 = 0.333: background
            [100.0, 100.0, 110.0, 110.0],  # 100/900 = 0.111 with box 1, its best: low-quality
            [200.0, 200.0, 210.0, 210.0],  # overlaps nothing: background
        ]
    )
    want = [0, 0, IGNORED, IGNORED, BACKGROUND, 1, BACKGROUND]
    assert match_anchors(gt, anchors).tolist() == want
    strict = want[:5] + [BACKGROUND, BACKGROUND]
    assert match_anchors(gt, anchors, low_quality=False).tolist() == strict
    assert match_anchors(torch.zeros(0, 4), anchors).tolist() == [BACKGROUND] * 7


def test_match_anchors_agrees_with_torchvision_matcher():
    from torchvision.models.detection._utils import Matcher
    from torchvision.ops import box_iou

    g = torch.Generator().manual_seed(4)
    anchors, _ = anchor_grid(RetinaNetConfig(), [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)])
    xy = torch.rand(6, 2, generator=g) * 100
    gt = torch.cat([xy, xy + 8 + torch.rand(6, 2, generator=g) * 80], dim=1)
    theirs = Matcher(0.5, 0.4, allow_low_quality_matches=True)(box_iou(gt, anchors))
    assert torch.equal(match_anchors(gt, anchors), theirs)


def test_box_coding_round_trip():
    g = torch.Generator().manual_seed(5)
    anchors = torch.tensor([[0.0, 0.0, 32.0, 16.0], [10.0, 20.0, 50.0, 100.0]])
    boxes = anchors + torch.rand(2, 4, generator=g) * 5
    # float32 log then exp: a few ulps of the coordinates (up to ~105 px, ulp 7.6e-6)
    assert torch.allclose(decode_boxes(encode_boxes(boxes, anchors), anchors), boxes, atol=1e-4)


# ---------------------------------------------------------------- the training objective


def _loss_case(k: int = 4):
    g = torch.Generator().manual_seed(6)
    cfg = RetinaNetConfig(anchor_sizes=TORCHVISION_ANCHOR_SIZES)
    anchors, _ = anchor_grid(cfg, [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)])
    out = torch.randn(2, anchors.shape[0], k + 4, generator=g)
    xy = torch.rand(3, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + 16 + torch.rand(3, 2, generator=g) * 40], dim=1)
    targets = [
        {"boxes": boxes, "labels": torch.tensor([0, 3, 1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},  # no objects
    ]
    return out, anchors, targets


def test_loss_agrees_with_torchvision_compute_loss():
    """torchvision's RetinaNet.compute_loss (focal loss over non-ignored anchors and L1 box loss
    over positives, each divided by max(1, positives) per image, then averaged) on the same
    outputs, anchors and targets, one image without objects."""
    out, anchors, targets = _loss_case()
    backbone = torch.nn.Identity()
    backbone.out_channels = 8
    tv = tv_retinanet.RetinaNet(backbone, num_classes=4)
    head_outputs = {"cls_logits": out[..., :4], "bbox_regression": out[..., 4:]}
    theirs = tv.compute_loss(targets, head_outputs, [anchors, anchors])
    ours = retinanet_loss(out, anchors, targets, box_loss="l1")
    assert set(ours) == {"classification", "box_regression"}
    assert ours["classification"].item() == pytest.approx(theirs["classification"].item(), rel=1e-6)
    assert ours["box_regression"].item() == pytest.approx(theirs["bbox_regression"].item(), rel=1e-6)  # fmt: skip


def test_loss_normalised_by_positive_anchors_by_hand():
    """Detectron's batch normalisation and smooth L1 (β = 0.11), recomputed from the pieces."""
    out, anchors, targets = _loss_case()
    matches = match_anchors(targets[0]["boxes"], anchors)
    pos, valid = matches >= 0, matches != IGNORED
    onehot = torch.zeros(anchors.shape[0], 4)
    onehot[pos, targets[0]["labels"][matches[pos]]] = 1
    cls = sigmoid_focal_loss(out[0, valid, :4], onehot[valid], reduction="sum")
    cls = cls + sigmoid_focal_loss(out[1, :, :4], torch.zeros(anchors.shape[0], 4), reduction="sum")
    target = encode_boxes(targets[0]["boxes"][matches[pos]], anchors[pos])
    box = F.smooth_l1_loss(out[0, pos, 4:], target, beta=0.11, reduction="sum")
    n = int(pos.sum())
    assert n > 3  # each of the 3 boxes claims at least one anchor
    got = retinanet_loss(out, anchors, targets, normalize="batch")
    assert got["classification"].item() == pytest.approx(cls.item() / n, rel=1e-6)
    assert got["box_regression"].item() == pytest.approx(box.item() / n, rel=1e-6)


def test_loss_bad_targets_are_clear_errors():
    out, anchors, targets = _loss_case()
    bad = [dict(targets[0], labels=torch.tensor([0, 4, 1])), targets[1]]
    with pytest.raises(InputError, match=r"labels must lie in \[0, 4\)"):
        retinanet_loss(out, anchors, bad)
    with pytest.raises(InputError, match="1 targets for a batch of 2"):
        retinanet_loss(out, anchors, targets[:1])


def test_postprocess_on_a_case_computed_by_hand():
    """Two overlapping anchors of class 1 (scores 0.9 and 0.8, IoU 0.82): NMS keeps the first;
    the same box as class 0 (0.7) survives class-wise NMS; 0.04 is below the 0.05 threshold."""
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 11.0], [50.0, 50, 60, 60]])
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    logits = torch.tensor([[logit(0.7), logit(0.9)], [-9.0, logit(0.8)], [logit(0.04), -9.0]])
    out = torch.cat([logits, torch.zeros(3, 4)], dim=1)[None]  # zero deltas: boxes = anchors
    (det,) = postprocess(out, anchors, [3], (64, 64))
    assert det["labels"].tolist() == [1, 0]
    assert torch.allclose(det["scores"], torch.tensor([0.9, 0.7]))
    assert torch.equal(det["boxes"], anchors[[0, 0]])


# ---------------------------------------------------------------- converters


def test_convert_torchvision_file_through_create_model(tmp_path):
    """A synthetic file in the layout of `retinanet_resnet50_fpn_coco-eeacb38b.pth` (torchvision's
    keys and shapes, random values) loads by path with the config it needs."""
    tv = _tv_coco_style()
    path = tmp_path / "retinanet_resnet50_fpn_coco-synthetic.pth"
    torch.save(tv.state_dict(), path)
    model = sotazoo.create_model("retinanet_resnet50_fpn", weights=path)
    assert not model.training
    cfg = model.cfg
    assert (cfg.num_classes, cfg.p6_from, cfg.stride_in_1x1, cfg.bn_eps) == (91, "p5", False, 0.0)
    assert cfg.anchor_sizes[0] == (32.0, 40.0, 50.0) and cfg.anchor_sizes[-1] == (512, 645, 812)
    w = "head.classification_head.cls_logits.weight"
    assert torch.equal(model.state_dict()[w], tv.state_dict()[w])
    with pytest.raises(WeightsError, match="needs num_classes=91 but num_classes=80"):
        sotazoo.create_model("retinanet_resnet50_fpn", weights=path, num_classes=80)


def test_convert_through_the_official_weights_entry(tmp_path, monkeypatch):
    """`weights="official"` fetches torchvision's file into the cache, checks its full sha256
    (which starts with the prefix in its name), converts. The URL is pointed at a synthetic local file of the same layout."""
    import dataclasses
    import hashlib

    from sotazoo.papers.retinanet import weights as retinanet_weights

    path = tmp_path / "retinanet_resnet50_fpn_coco-synthetic.pth"
    torch.save(_tv_coco_style().state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    real = sotazoo.get_weights("retinanet_resnet50_fpn", "official")
    assert real.filename == "retinanet_resnet50_fpn_coco-eeacb38b.pth"
    assert real.full_hash and real.sha256.startswith("eeacb38b")
    fake = dataclasses.replace(real, urls=(path.as_uri(),), sha256=digest)
    entries = tuple(fake if w is real else w for w in retinanet_weights.WEIGHTS)
    monkeypatch.setattr(retinanet_weights, "WEIGHTS", entries)
    model = sotazoo.create_model("retinanet_resnet50_fpn", weights="official", progress=False)
    assert model.cfg.num_classes == 91 and count_params(model) == real.num_params


def test_convert_rejects_unknown_layouts_and_bad_files(tmp_path):
    with pytest.raises(WeightsError, match="unrecognised RetinaNet checkpoint layout.*'head.w'"):
        detect_layout({"head.w", "body.conv.weight"})
    with pytest.raises(WeightsError, match="Detectron \\(Caffe2\\) checkpoint"):
        detect_layout({"res2_0_branch2a_w", "retnet_cls_pred_fpn3_w"})
    sd = dict(_tv_coco_style().state_dict())
    del sd["backbone.fpn.extra_blocks.p7.bias"]
    path = tmp_path / "w.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match="1 missing keys.*extra_blocks.p7.bias"):
        sotazoo.create_model("retinanet_resnet50_fpn", weights=path)
    with pytest.raises(WeightsError, match=r"256 missing keys.*layer3\.10\."):  # R-50 into R-101
        sotazoo.create_model("retinanet_resnet101_fpn", weights=path)


def _to_detectron2_key(k: str) -> str:
    """Our (torchvision's) key -> detectron2's, written from detectron2's modeling code
    (`backbone/resnet.py`: stem.conv1(.norm), res2…res5, conv1-3(.norm), shortcut(.norm);
    `backbone/fpn.py`: fpn_lateral3-5, fpn_output3-5, top_block.p6/p7;
    `meta_arch/retinanet.py`: cls_subnet/bbox_subnet Sequentials of (conv, ReLU), cls_score,
    bbox_pred)."""
    k = k.replace("backbone.body.conv1.", "backbone.bottom_up.stem.conv1.")
    k = k.replace("backbone.body.bn1.", "backbone.bottom_up.stem.conv1.norm.")
    k = re.sub(r"backbone\.body\.layer(\d)", lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}", k)
    k = re.sub(r"\.bn(\d)\.", r".conv\1.norm.", k)
    k = k.replace(".downsample.0.", ".shortcut.").replace(".downsample.1.", ".shortcut.norm.")
    k = re.sub(r"fpn\.inner_blocks\.(\d)\.0\.", lambda m: f"fpn_lateral{int(m[1]) + 3}.", k)
    k = re.sub(r"fpn\.layer_blocks\.(\d)\.0\.", lambda m: f"fpn_output{int(m[1]) + 3}.", k)
    k = k.replace("backbone.fpn.extra_blocks.", "backbone.top_block.")
    k = re.sub(r"classification_head\.conv\.(\d)\.0\.", lambda m: f"cls_subnet.{2 * int(m[1])}.", k)
    k = re.sub(r"regression_head\.conv\.(\d)\.0\.", lambda m: f"bbox_subnet.{2 * int(m[1])}.", k)
    k = k.replace("classification_head.cls_logits", "cls_score")
    return k.replace("regression_head.bbox_reg", "bbox_pred")


def test_convert_detectron2_layout():
    """A synthetic detectron2 state dict (its key names, random values): the keys map, the stem
    folds BGR 0–255 input into ours exactly, and each predictor channel lands on the anchor of the
    same box (detectron2's cell anchors are size-major and unrounded, ours ratio-major)."""
    g = torch.Generator().manual_seed(7)
    tiny = {**tiny_overrides("retinanet_resnet50_fpn"), "head_convs": 4}
    src = RetinaNet(RetinaNetConfig(**tiny, p6_from="c5")).state_dict()
    d2 = {_to_detectron2_key(k): torch.randn(v.shape, generator=g) for k, v in src.items()}
    d2 = {k: v.abs() + 0.5 if k.endswith("running_var") else v for k, v in d2.items()}
    assert "head.cls_subnet.6.weight" in d2 and "backbone.bottom_up.res5.0.shortcut.norm.bias" in d2
    sd, overrides, layout = convert_state_dict(d2)
    assert layout == "detectron2"
    assert overrides["stride_in_1x1"] and overrides["p6_from"] == "c5"
    assert not overrides["round_anchors"] and overrides["num_classes"] == 5
    model = RetinaNet(RetinaNetConfig(**{**tiny, **overrides}))
    model.load_state_dict(sd, strict=True)
    # stem: ours on normalised RGB == detectron2's on BGR·255 − pixel mean (std 1)
    rgb = torch.rand(1, 3, 32, 32, generator=g)
    mean_bgr = torch.tensor([103.53, 116.28, 123.675]).view(1, 3, 1, 1)
    w = d2["backbone.bottom_up.stem.conv1.weight"]
    theirs = F.conv2d(rgb.flip(1) * 255 - mean_bgr, w, stride=2, padding=3)
    ours = model.backbone.body.conv1(_normalise(rgb))
    # Relative to the outputs' scale (~4e3: inputs up to 255): folding 1/std into the weights
    # rounds the 147-term sums otherwise, ~1e-7 of it (measured 2.4e-7), while a pixel mean off
    # by 0.01 moves it by ~2e-5 and an RGB/BGR swap by ~1e-1.
    assert torch.allclose(ours, theirs, atol=1e-5 * theirs.abs().max().item())
    # predictors: detectron2 anchor a' (size s, ratio r) is ours a with the same box
    sizes, ratios, k = PAPER_ANCHOR_SIZES[0], (0.5, 1.0, 2.0), 5
    d2_cells = []
    for s in sizes:  # detectron2's generate_cell_anchors: area s², ratio h/w
        for r in ratios:
            wd = math.sqrt(s * s / r)
            d2_cells.append([-wd / 2, -r * wd / 2, wd / 2, r * wd / 2])
    our_cells = cell_anchors(sizes, ratios, round_=False)
    feat = torch.randn(1, 32, 3, 3, generator=g)
    for ours_name, theirs_name, n in (("cls_logits", "cls_score", k), ("bbox_reg", "bbox_pred", 4)):
        sub = "classification_head" if n == k else "regression_head"
        y_ours = getattr(getattr(model.head, sub), ours_name)(feat)
        y_d2 = F.conv2d(feat, d2[f"head.{theirs_name}.weight"], d2[f"head.{theirs_name}.bias"], padding=1)  # fmt: skip
        for a_d2, box in enumerate(d2_cells):
            a = int((our_cells - torch.tensor(box)).abs().sum(1).argmin())
            # two float32 formulas for corners of up to ~36 px (ulp 3.8e-6): a few ulps
            assert torch.allclose(our_cells[a], torch.tensor(box), atol=1e-4)
            assert torch.allclose(
                y_ours[:, a * n : (a + 1) * n], y_d2[:, a_d2 * n : (a_d2 + 1) * n]
            )


# ---------------------------------------------------------------- export and bad input


def test_export_retinanet_mini(tmp_path):
    """The network alone exports: onnxruntime agrees with PyTorch, and the graph holds no
    post-processing ops (NMS, TopK, NonZero, If)."""
    import onnx

    from sotazoo.export import export_onnx

    model = sotazoo.create_model("retinanet_mini")
    r = export_onnx(model, (3, 128, 128), tmp_path / "m.onnx")
    assert r.max_rel_diff <= 1e-4  # of max(1, max |output|), sotazoo.export's rule
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert not ops & {"NonMaxSuppression", "TopK", "NonZero", "If", "Loop"}
    anchors, counts = model.anchors(128, 128)
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 128, 128))
    assert out.shape == (1, anchors.shape[0], 4 + 4) and sum(counts) == anchors.shape[0]


def test_feature_sizes_match_the_network_on_odd_sizes():
    model = sotazoo.create_model("retinanet_mini").eval()
    with torch.inference_mode():
        feats = model.backbone(torch.zeros(1, 3, 100, 150))
    assert [tuple(f.shape[-2:]) for f in feats] == model.feature_sizes(100, 150)
    assert model(torch.zeros(1, 3, 100, 150)).shape[1] == model.anchors(100, 150)[0].shape[0]


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.randn(1, 1, 64, 64), "expected 3 input channels, got 1"),
        (torch.randn(3, 64, 64), r"4-D batch \(B, C, H, W\).*add a batch dimension"),
        (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8), "floating-point tensor"),
        (torch.full((1, 3, 64, 64), float("nan")), "12288 NaN and 0 infinite"),
        (torch.full((1, 3, 8, 8), float("inf")), "0 NaN and 192 infinite"),
    ],
    ids=["channels", "rank", "dtype", "nan", "inf"],
)
def test_bad_input_is_a_clear_error(x, match):
    model = sotazoo.create_model("retinanet_mini").eval()
    with pytest.raises(InputError, match=match):
        model(x)


def test_repro_quick(tmp_path):
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("retinanet", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert (tmp_path / "retinanet.quick.json").is_file()
    assert (tmp_path / "retinanet.quick.svg").is_file()
    assert [c["id"] for c in data["claims"]] == ["fl_vs_alpha_ce_ap"]
    per_gamma = data["details"]["per_gamma"]
    assert set(per_gamma) == {"0", "2"} and all(len(v["ap"]) == 1 for v in per_gamma.values())
    balance = data["details"]["anchor_balance"]
    assert balance["anchors"] == 3069  # 9 anchors x (16² + 8² + 4² + 2² + 1²) positions at 128 px
    assert 0 < balance["positive"] < balance["negative"]


def test_anchor_balance_counts_every_anchor_once():
    from sotazoo.papers.retinanet.repro import anchor_balance

    b = anchor_balance(5)
    assert b["positive"] + b["negative"] + b["ignored"] == pytest.approx(b["anchors"])
