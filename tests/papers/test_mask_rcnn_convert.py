"""Mask R-CNN's checkpoint converters (convert.py) and weights entries (weights.py).

torchvision's layout is checked against torchvision's own MaskRCNN class (a small ResNet inside),
run side by side with ours; detectron2's against its key names and class slots, written here as
the inverse mapping from detectron2's modeling code, with a model of ours in detectron2's config
standing in for detectron2 on its BGR 0–255 input; its `.pkl` is read without running pickled
code, and the files we refuse are refused. All synthetic and offline: tiny models, no download.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib
import math
import os
import pickle
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sotazoo
from sotazoo.bench import count_params
from sotazoo.errors import WeightsError
from sotazoo.papers.mask_rcnn.convert import convert_state_dict, detect_layout, load
from sotazoo.papers.mask_rcnn.method import unpack
from sotazoo.papers.mask_rcnn.model import MaskRCNN, maskrcnn_resnet50_fpn, tiny_overrides
from sotazoo.transforms import IMAGENET_MEAN, IMAGENET_STD

torchvision = pytest.importorskip("torchvision")
from torchvision.models.detection import mask_rcnn as tv_mask_rcnn  # noqa: E402
from torchvision.models.detection.rpn import concat_box_prediction_layers  # noqa: E402
from torchvision.ops.misc import FrozenBatchNorm2d  # noqa: E402

from .oracle import within  # noqa: E402

SIZE = 128  # a multiple of 64: every level's anchor step is its nominal stride
TV_SIZE = 64  # torchvision's ResNet is full width: a small input keeps its test fast
TINY = tiny_overrides("maskrcnn_resnet50_fpn")
# torchvision's ResNet class has fixed widths (a bottleneck's inner width is `planes` only at 64
# channels per group): the torchvision-layout tests use them with TINY's depth and heads.
TV_TINY = {**TINY, "planes": (64, 128, 256, 512), "stem_channels": 64}
D2_PIXEL_MEAN_BGR = torch.tensor([103.53, 116.28, 123.675]).view(1, 3, 1, 1)
D2_AUTHOR = "Detectron2 Model Zoo"


def _normalise(img: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return (img - mean) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _randomise(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Non-trivial norm statistics and conv biases, so that a wrong key mapping cannot hide."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d | FrozenBatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.0, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
            elif isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear) and (
                m.bias is not None
            ):
                m.bias.normal_(0, 0.1, generator=g)
    return model.eval()


def _tv_tiny(*, norm=FrozenBatchNorm2d, eps: float = 0.0) -> torch.nn.Module:
    """torchvision's MaskRCNN class as `maskrcnn_resnet50_fpn` assembles it (FrozenBN ResNet,
    FPN with LastLevelMaxPool, RPNHead, TwoMLPHead, MaskRCNNHeads, MaskRCNNPredictor, its default
    anchors and poolers), at TINY's depth and head widths, 5 class slots, random weights."""
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.rpn import RPNHead
    from torchvision.models.resnet import Bottleneck, ResNet

    c, rep, mc = TINY["fpn_channels"], TINY["representation"], TINY["mask_channels"]
    body = ResNet(Bottleneck, list(TINY["layers"]), norm_layer=norm)
    layers = {f"layer{i}": str(i - 1) for i in range(1, 5)}
    backbone = BackboneWithFPN(body, layers, [256, 512, 1024, 2048], c)
    model = tv_mask_rcnn.MaskRCNN(
        backbone, num_classes=None, rpn_head=RPNHead(c, 3),
        box_head=TwoMLPHead(c * 7 * 7, rep), box_predictor=FastRCNNPredictor(rep, 5),
        mask_head=tv_mask_rcnn.MaskRCNNHeads(c, [mc] * TINY["mask_convs"], 1),
        mask_predictor=tv_mask_rcnn.MaskRCNNPredictor(mc, mc, 5),
        min_size=TV_SIZE, max_size=TV_SIZE, rpn_pre_nms_top_n_test=TINY["rpn_pre_nms_top_n"],
        rpn_post_nms_top_n_test=TINY["rpn_post_nms_top_n"],
        box_detections_per_img=TINY["detections_per_img"],
    )  # fmt: skip
    if norm is FrozenBatchNorm2d:
        from torchvision.models.detection._utils import overwrite_eps

        overwrite_eps(model, eps)  # the COCO file's eps (the builder's overwrite_eps)
    return _randomise(model)


def _ours(overrides: dict, **extra) -> MaskRCNN:
    return maskrcnn_resnet50_fpn(**{**TINY, **extra, **overrides}).eval()


# ---------------------------------------------------------------- torchvision's layout


def test_torchvision_layout_runs_as_torchvision():
    """torchvision's state dict loads strictly after conversion, and ours then computes what
    torchvision's MaskRCNN computes: pyramid, RPN outputs, anchors, proposals, detections and
    mask probabilities, on the same [0, 1] images (torchvision normalises inside; min = max = the
    input size, so its resize is the identity)."""
    tv = _tv_tiny()
    sd, overrides, layout = convert_state_dict(tv.state_dict())
    assert layout == "torchvision"
    assert overrides == {"num_classes": 5, "layers": (1, 1, 1, 1), "stride_in_1x1": False,
                         "bn_eps": 0.0, "round_anchors": True, "aligned": False,
                         "sampling_ratio": 2}  # fmt: skip
    ours = _ours(overrides, **TV_TINY)
    ours.load_state_dict(sd, strict=True)
    img = torch.rand(2, 3, TV_SIZE, TV_SIZE, generator=torch.Generator().manual_seed(3))
    x, size = _normalise(img), (TV_SIZE, TV_SIZE)
    caught = {}  # torchvision's steps, caught on the way through its forward
    hooks = [
        tv.backbone.register_forward_hook(lambda m, i, o: caught.update(feats=list(o.values()))),
        tv.rpn.head.register_forward_hook(lambda m, i, o: caught.update(head=o)),
        tv.rpn.anchor_generator.register_forward_hook(lambda m, i, o: caught.update(anchors=o)),
        tv.rpn.register_forward_hook(lambda m, i, o: caught.update(proposals=o[0])),
        tv.roi_heads.mask_predictor.register_forward_hook(lambda m, i, o: caught.update(mask=o)),
    ]
    try:
        with torch.inference_mode():
            dets_tv = tv(list(img))
            feats = ours.features(x)
            logits, deltas = ours.rpn.head(feats)
            anchors, counts = ours.anchors(feats, size)
            proposals = ours.propose(logits, deltas, anchors, counts, size)
            out = unpack(ours(x))
    finally:
        for h in hooks:
            h.remove()
    diff = max((a - b).abs().max().item() for a, b in zip(feats, caught["feats"], strict=True))
    within(diff, 1e-5 * max(f.abs().max().item() for f in feats), "pyramid P2-P6")
    logits_tv, deltas_tv = concat_box_prediction_layers(*caught["head"])
    assert torch.allclose(logits.reshape(-1, 1), logits_tv, atol=1e-5)
    assert torch.allclose(deltas.reshape(-1, 4), deltas_tv, atol=1e-5)
    assert torch.equal(anchors, caught["anchors"][0])
    for (p, _), p_tv in zip(proposals, caught["proposals"], strict=True):
        assert torch.allclose(p, p_tv, atol=1e-3)
    masks_tv = torch.sigmoid(caught["mask"]).split([len(d["labels"]) for d in dets_tv])
    for d, d_tv, m_tv in zip(out, dets_tv, masks_tv, strict=True):
        assert len(d["labels"]) == len(d_tv["labels"]) > 0
        assert torch.equal(d["labels"], d_tv["labels"])
        assert torch.allclose(d["boxes"], d_tv["boxes"], atol=1e-3)
        assert torch.allclose(d["scores"], d_tv["scores"], atol=1e-5)
        picked = m_tv[torch.arange(len(d_tv["labels"])), d_tv["labels"]]
        assert torch.allclose(d["masks"], picked, atol=1e-5)


def test_torchvision_pre_version_2_keys_module_prefix_and_counters():
    """The keys torchvision's `_load_from_state_dict` renames for files without version metadata
    (FPN, RPN head and mask head before Conv2dNormActivation), a DataParallel `module.` prefix,
    and `num_batches_tracked` (a file trained with nn.BatchNorm2d: eps 1e-5) all convert."""
    new = _tv_tiny().state_dict()
    sd_new, ov_new, _ = convert_state_dict(new)
    old = {}
    for k, v in new.items():
        k = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.", r"\1.", k)
        k = k.replace("rpn.head.conv.0.0.", "rpn.head.conv.")
        k = re.sub(r"^roi_heads\.mask_head\.(\d+)\.0\.",
                   lambda m: f"roi_heads.mask_head.mask_fcn{int(m[1]) + 1}.", k)  # fmt: skip
        old[f"module.{k}"] = v
    assert "module.roi_heads.mask_head.mask_fcn1.weight" in old
    assert "module.backbone.fpn.inner_blocks.3.weight" in old
    sd_old, ov_old, layout = convert_state_dict(old)
    assert layout == "torchvision" and ov_old == ov_new and sd_old.keys() == sd_new.keys()
    assert all(torch.equal(sd_old[k], sd_new[k]) for k in sd_new)
    # trained with nn.BatchNorm2d: counters in the file, eps 1e-5, loads into norm="batch" too
    bn = _tv_tiny(norm=torch.nn.BatchNorm2d).state_dict()
    assert any(k.endswith("num_batches_tracked") for k in bn)
    sd_bn, ov_bn, _ = convert_state_dict(bn)
    assert ov_bn["bn_eps"] == 1e-5 and not any(k.endswith("num_batches_tracked") for k in sd_bn)
    _ours(ov_bn, **TV_TINY).load_state_dict(sd_bn, strict=True)


def test_torchvision_overrides_read_depth_and_classes_from_the_keys():
    """ResNet-101's 23 blocks in layer3 and the COCO file's 91 slots are read from the keys; a
    class-agnostic box predictor is refused (it has no per-class rows to map)."""
    t = torch.zeros(1)
    sd = {"backbone.body.conv1.weight": t,
          "roi_heads.box_predictor.cls_score.weight": t.new_zeros(91, 8),
          "roi_heads.box_predictor.bbox_pred.weight": t.new_zeros(364, 8),
          "roi_heads.mask_predictor.mask_fcn_logits.weight": t.new_zeros(91, 8, 1, 1)}  # fmt: skip
    for stage, n in enumerate((3, 4, 23, 3), start=1):
        sd.update({f"backbone.body.layer{stage}.{j}.conv1.weight": t for j in range(n)})
    _, overrides, _ = convert_state_dict(sd)
    assert overrides["layers"] == (3, 4, 23, 3) and overrides["num_classes"] == 91
    sd["roi_heads.box_predictor.bbox_pred.weight"] = t.new_zeros(4, 8)
    with pytest.raises(WeightsError, match="4 outputs, not 4 per class slot.*class-agnostic"):
        convert_state_dict(sd)


def test_torchvision_file_through_create_model(tmp_path):
    """A file in the COCO checkpoint's layout loads by path with the config it needs; asking for
    another class count is a clear error."""
    tv = _tv_tiny()
    path = tmp_path / "maskrcnn_resnet50_fpn_coco-synthetic.pth"
    torch.save(tv.state_dict(), path)
    model = sotazoo.create_model("maskrcnn_resnet50_fpn", weights=path, **TV_TINY)
    assert not model.training
    cfg = model.cfg
    assert (cfg.num_classes, cfg.stride_in_1x1, cfg.bn_eps, cfg.aligned) == (5, False, 0.0, False)
    w = "roi_heads.mask_predictor.mask_fcn_logits.weight"
    assert torch.equal(model.state_dict()[w], tv.state_dict()[w])
    with pytest.raises(WeightsError, match="needs num_classes=5 but num_classes=7"):
        sotazoo.create_model("maskrcnn_resnet50_fpn", weights=path, **{**TV_TINY, "num_classes": 7})


# ---------------------------------------------------------------- detectron2's layout


def _to_detectron2_key(k: str) -> str:
    """Our (torchvision's) key -> detectron2's, written from detectron2's modeling code:
    `backbone/resnet.py` (BasicStem `stem.conv1(.norm)`, stages `res2`…`res5`, bottleneck
    `conv1`-`conv3(.norm)`, `shortcut(.norm)`), `backbone/fpn.py` (`fpn_lateral{2..5}`,
    `fpn_output{2..5}`), `proposal_generator/rpn.py` (StandardRPNHead `conv`,
    `objectness_logits`, `anchor_deltas`), `roi_heads/box_head.py` (`fc1`, `fc2`),
    `roi_heads/fast_rcnn.py` (`cls_score`, `bbox_pred`), `roi_heads/mask_head.py`
    (`mask_fcn{1..}`, `deconv`, `predictor`)."""
    k = k.replace("backbone.body.conv1.", "backbone.bottom_up.stem.conv1.")
    k = k.replace("backbone.body.bn1.", "backbone.bottom_up.stem.conv1.norm.")
    k = re.sub(r"backbone\.body\.layer(\d)", lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}", k)
    k = re.sub(r"\.bn(\d)\.", r".conv\1.norm.", k)
    k = k.replace(".downsample.0.", ".shortcut.").replace(".downsample.1.", ".shortcut.norm.")
    k = re.sub(r"fpn\.inner_blocks\.(\d)\.0\.", lambda m: f"fpn_lateral{int(m[1]) + 2}.", k)
    k = re.sub(r"fpn\.layer_blocks\.(\d)\.0\.", lambda m: f"fpn_output{int(m[1]) + 2}.", k)
    k = k.replace("rpn.head.conv.0.0.", "proposal_generator.rpn_head.conv.")
    k = k.replace("rpn.head.cls_logits.", "proposal_generator.rpn_head.objectness_logits.")
    k = k.replace("rpn.head.bbox_pred.", "proposal_generator.rpn_head.anchor_deltas.")
    k = re.sub(r"box_head\.fc(\d)\.", lambda m: f"box_head.fc{int(m[1]) - 5}.", k)
    k = re.sub(r"mask_head\.(\d)\.0\.", lambda m: f"mask_head.mask_fcn{int(m[1]) + 1}.", k)
    k = k.replace("mask_predictor.conv5_mask.", "mask_head.deconv.")
    return k.replace("mask_predictor.mask_fcn_logits.", "mask_head.predictor.")


def _to_detectron2(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of ours as detectron2 stores it: its key names; the classifier's background
    row last (`fast_rcnn.py`: "The last column is for background class"); no background rows in
    the box and mask predictors (K object classes only); FrozenBN has no step counters."""
    d2 = {_to_detectron2_key(k): v.clone() for k, v in sd.items()
          if not k.endswith("num_batches_tracked")}  # fmt: skip
    for part in ("weight", "bias"):
        cls, box = (f"roi_heads.box_predictor.{name}.{part}" for name in ("cls_score", "bbox_pred"))
        mask = f"roi_heads.mask_head.predictor.{part}"
        d2[cls] = torch.cat([d2[cls][1:], d2[cls][:1]])
        d2[box], d2[mask] = d2[box][4:], d2[mask][1:]
    return d2


D2_OVERRIDES = {"stride_in_1x1": True, "bn_eps": 1e-5, "aligned": True, "sampling_ratio": 0,
                "round_anchors": False}  # fmt: skip


def _d2_source() -> MaskRCNN:
    """A model of ours in detectron2's configuration, seeded and randomised: it stands in for
    detectron2, fed detectron2's input (BGR 0–255 minus the pixel mean). The background rows of
    its box and mask predictors are zero, as the conversion makes them (detectron2 has none)."""
    torch.manual_seed(5)
    model = _randomise(_ours(D2_OVERRIDES), seed=5)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.mul_(20)  # scores spread around 0.05
        for name, rows in (("box_predictor.bbox_pred", 4), ("mask_predictor.mask_fcn_logits", 1)):
            for t in (model.get_parameter(f"roi_heads.{name}.weight"),
                      model.get_parameter(f"roi_heads.{name}.bias")):  # fmt: skip
                t[:rows] = 0
    return model


def test_detectron2_layout_computes_what_detectron2_computes_on_its_input():
    """The synthetic detectron2 state dict converts and loads strictly; on normalised RGB the
    converted model gives the pyramid and the detections that the source model gives on BGR
    0–255 minus the pixel mean (the stem folds the input convention in, exactly up to float
    rounding: padding included, as zero is the mean pixel in both)."""
    src = _d2_source()
    d2 = _to_detectron2(src.state_dict())
    assert "backbone.bottom_up.res5.0.shortcut.norm.running_var" in d2
    assert d2["roi_heads.box_predictor.bbox_pred.weight"].shape[0] == 4 * 4
    sd, overrides, layout = convert_state_dict(d2)
    assert layout == "detectron2"
    assert overrides == {**D2_OVERRIDES, "num_classes": 5, "layers": (1, 1, 1, 1)}
    model = _ours(overrides)
    model.load_state_dict(sd, strict=True)
    rgb = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(9))
    bgr = rgb.flip(1) * 255 - D2_PIXEL_MEAN_BGR
    with torch.inference_mode():
        feats, feats_d2 = model.features(_normalise(rgb)), src.features(bgr)
        out, out_d2 = unpack(model(_normalise(rgb))), unpack(src(bgr))
    # Relative to each level's scale: folding 1/std into the stem rounds (measured 8e-7), while
    # a pixel mean off by 0.01 moves the levels by 2e-4 and an RGB/BGR swap by 0.7.
    for f, f_d2 in zip(feats, feats_d2, strict=True):
        within((f - f_d2).abs().max().item(), 1e-5 * f_d2.abs().max().item(), "pyramid level")
    for d, d_d2 in zip(out, out_d2, strict=True):
        assert len(d["labels"]) == len(d_d2["labels"]) > 0
        assert torch.equal(d["labels"], d_d2["labels"])
        assert torch.allclose(d["boxes"], d_d2["boxes"], atol=1e-3)
        assert torch.allclose(d["scores"], d_d2["scores"], atol=1e-5)
        assert torch.allclose(d["masks"], d_d2["masks"], atol=1e-4)  # sigmoids of ~1e2 logits


def test_detectron2_class_slots_follow_its_inference():
    """Each class's score, box deltas and mask land in our slot of the same class, read as
    detectron2's inference reads them (`fast_rcnn_inference_single_image`: scores[:, :-1],
    deltas viewed (R, K, 4); `mask_rcnn_inference`: channel = predicted class); our background
    slot gets detectron2's background score, zero deltas and a zero mask."""
    g = torch.Generator().manual_seed(11)
    shapes = _to_detectron2(_ours({}).state_dict())  # its names and shapes only
    d2 = {k: torch.randn(v.shape, generator=g) for k, v in shapes.items()}
    d2 = {k: v.abs() + 0.5 if k.endswith("running_var") else v for k, v in d2.items()}
    sd, _, _ = convert_state_dict(d2)
    k = 4  # object classes; ours has k + 1 slots
    x = torch.randn(6, TINY["representation"], generator=g)
    lin = lambda src, name: x @ src[f"{name}.weight"].T + src[f"{name}.bias"]  # noqa: E731
    box, cls = "roi_heads.box_predictor.bbox_pred", "roi_heads.box_predictor.cls_score"
    p, p_d2 = torch.softmax(lin(sd, cls), -1), torch.softmax(lin(d2, cls), -1)
    assert torch.allclose(p[:, 1:], p_d2[:, :-1], atol=1e-6)
    assert torch.allclose(p[:, 0], p_d2[:, -1], atol=1e-6)
    deltas, deltas_d2 = lin(sd, box).view(6, k + 1, 4), lin(d2, box).view(6, k, 4)
    assert torch.allclose(deltas[:, 1:], deltas_d2, atol=1e-5) and not deltas[:, 0].any()
    feat = torch.randn(1, TINY["mask_channels"], 3, 3, generator=g)
    conv = lambda src, k: F.conv2d(feat, src[f"{k}.weight"], src[f"{k}.bias"])  # noqa: E731
    masks = conv(sd, "roi_heads.mask_predictor.mask_fcn_logits")
    assert torch.allclose(masks[:, 1:], conv(d2, "roi_heads.mask_head.predictor"), atol=1e-5)
    assert not masks[:, 0].any()


def test_detectron2_anchors_are_ours_on_multiples_of_64():
    """detectron2's DefaultAnchorGenerator (`anchor_generator.py`: cell anchors size-major, area
    s², w = √(s²/a), h = a·w, unrounded; grid offset 0 (ANCHOR_GENERATOR.OFFSET); each level
    stepped by its stride 4 … 64) gives our anchors, in our order, when the sides are multiples
    of 64: one size per level, so its size-major order is our ratio-major one."""
    model = _ours({"round_anchors": False})
    with torch.inference_mode():
        feats = model.features(torch.zeros(1, 3, SIZE, 2 * SIZE))
        ours, counts = model.anchors(feats, (SIZE, 2 * SIZE))
    theirs = []
    for f, size, stride in zip(feats, (32, 64, 128, 256, 512), (4, 8, 16, 32, 64), strict=True):
        cells = []
        for a in (0.5, 1.0, 2.0):
            w = math.sqrt(size * size / a)
            cells.append([-w / 2, -a * w / 2, w / 2, a * w / 2])
        ys = torch.arange(0, f.shape[-2] * stride, stride, dtype=torch.float32)
        xs = torch.arange(0, f.shape[-1] * stride, stride, dtype=torch.float32)
        sy, sx = torch.meshgrid(ys, xs, indexing="ij")
        shifts = torch.stack([sx, sy, sx, sy], -1).reshape(-1, 1, 4)
        theirs.append((shifts + torch.tensor(cells)[None]).reshape(-1, 4))
    assert counts == [len(t) for t in theirs]
    # two float32 formulas for corners of up to ~600 px: a few ulps
    assert torch.allclose(ours, torch.cat(theirs), atol=1e-3, rtol=0)


def test_detectron2_extras_are_checked_and_dropped():
    """Older detectron2 files store pixel_mean/pixel_std and the RPN's cell anchors: dropped when
    they are the values the conversion assumes, refused otherwise."""
    d2 = _to_detectron2(_d2_source().state_dict())
    cells = []
    for size in (32, 64, 128, 256, 512):
        rows = [(math.sqrt(size**2 / a), a) for a in (0.5, 1.0, 2.0)]
        cells.append(torch.tensor([[-w / 2, -a * w / 2, w / 2, a * w / 2] for w, a in rows]))
    extras = {"pixel_mean": D2_PIXEL_MEAN_BGR.view(3, 1, 1), "pixel_std": torch.ones(3, 1, 1)}
    extras.update({f"proposal_generator.anchor_generator.cell_anchors.{i}": c
                   for i, c in enumerate(cells)})  # fmt: skip
    sd, _, _ = convert_state_dict({**d2, **extras})
    _ours({**D2_OVERRIDES, "num_classes": 5}).load_state_dict(sd, strict=True)
    with pytest.raises(WeightsError, match="pixel_mean/pixel_std other than"):
        convert_state_dict({**d2, **extras, "pixel_mean": torch.zeros(3, 1, 1)})
    bigger = {"proposal_generator.anchor_generator.cell_anchors.0": cells[0] * 2}
    with pytest.raises(WeightsError, match="anchors of level P2"):
        convert_state_dict({**d2, **extras, **bigger})


# ---------------------------------------------------------------- detectron2's .pkl files


def _write_pickle(path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _d2_pickle(path) -> dict[str, torch.Tensor]:
    """A file in the model zoo's format: {"model": {name: numpy array}, "__author__": ...}."""
    d2 = _to_detectron2(_d2_source().state_dict())
    _write_pickle(path, {"model": {k: v.numpy() for k, v in d2.items()}, "__author__": D2_AUTHOR,
                         "iteration": np.int64(269999)})  # fmt: skip
    return d2


def test_detectron2_pickle_loads_through_load_and_create_model(tmp_path):
    path = tmp_path / "model_final_synthetic.pkl"
    d2 = _d2_pickle(path)
    sd, overrides = load(path, "maskrcnn_resnet50_fpn", {})
    ref, ref_overrides, _ = convert_state_dict(d2)
    assert overrides == ref_overrides and sd.keys() == ref.keys()
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
    model = sotazoo.create_model("maskrcnn_resnet50_fpn", weights=path, **TINY)
    assert (model.cfg.stride_in_1x1, model.cfg.aligned, model.cfg.sampling_ratio) == (True, True, 0)
    assert all(torch.equal(model.state_dict()[k], ref[k]) for k in ref)
    bare = tmp_path / "bare.pkl"  # a bare {name: array} dict reads as well
    _write_pickle(bare, {k: v.numpy() for k, v in d2.items()})
    assert load(bare, "maskrcnn_resnet50_fpn", {})[1] == ref_overrides


def test_detectron2_entry_fetches_and_reads_the_pickle(tmp_path, monkeypatch):
    """`weights="detectron2"` fetches the model zoo file, checks its full sha256, and reads it with
    the paper's `load` (the entry names no converter). The URL points at a synthetic local file."""
    from sotazoo.papers.mask_rcnn import weights as mask_rcnn_weights

    path = tmp_path / "model_final_synthetic.pkl"
    d2 = _d2_pickle(path)
    real = sotazoo.get_weights("maskrcnn_resnet50_fpn", "detectron2")
    assert real.format == "pkl" and real.converter == "" and real.filename.endswith(".pkl")
    fake = dataclasses.replace(real, urls=(path.as_uri(),),
                               sha256=hashlib.sha256(path.read_bytes()).hexdigest())  # fmt: skip
    entries = tuple(fake if w is real else w for w in mask_rcnn_weights.WEIGHTS)
    monkeypatch.setattr(mask_rcnn_weights, "WEIGHTS", entries)
    model = sotazoo.create_model("maskrcnn_resnet50_fpn", weights="detectron2", progress=False,
                                 **TINY)  # fmt: skip
    ref, _, _ = convert_state_dict(d2)
    assert model.cfg.num_classes == 5 and all(
        torch.equal(model.state_dict()[k], ref[k]) for k in ref
    )


class _RunsCommand:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_pickles_that_name_other_globals_are_refused_before_running(tmp_path):
    """The unpickler admits numpy's array and scalar constructors only: a pickle that would run
    a shell command, eval, or build any other object is refused, naming the global, and
    nothing runs."""
    pwned = tmp_path / "pwned"
    cases = {
        "posix.system": {"model": {"w": _RunsCommand(str(pwned))}, "__author__": D2_AUTHOR},
        "builtins.eval": {"model": {"w": _Evals()}},
        "collections.OrderedDict": collections.OrderedDict(w=np.zeros(2, np.float32)),
    }
    for name, obj in cases.items():
        path = tmp_path / f"{name}.pkl"
        _write_pickle(path, obj)
        with pytest.raises(WeightsError, match=f"names the global {re.escape(name)}, which"):
            load(path, "maskrcnn_resnet50_fpn", {})
    assert not pwned.exists()


def test_bad_pickles_are_clear_errors(tmp_path):
    path = tmp_path / "bad.pkl"
    d2 = {k: v.numpy() for k, v in _to_detectron2(_ours({}).state_dict()).items()}
    _write_pickle(path, {"model": {**d2, "note": "text"}, "__author__": D2_AUTHOR})
    with pytest.raises(WeightsError, match="entry 'note' is str, not an array of numbers"):
        load(path, "maskrcnn_resnet50_fpn", {})
    path.write_bytes(pickle.dumps({"model": d2})[:5000])  # truncated
    with pytest.raises(WeightsError, match="cannot read .* as a pickle of numpy arrays"):
        load(path, "maskrcnn_resnet50_fpn", {})
    with pytest.raises(WeightsError, match="no weight file at"):
        load(tmp_path / "missing.pkl", "maskrcnn_resnet50_fpn", {})


# ---------------------------------------------------------------- layouts we refuse


def test_detectron_caffe2_and_unknown_layouts_are_refused(tmp_path):
    blobs = {"res2_0_branch2a_w": np.zeros((64, 64, 1, 1), np.float32),
             "fpn_inner_res5_2_sum_w": np.zeros((256, 2048, 1, 1), np.float32),
             "mask_fcn1_w": np.zeros((256, 256, 3, 3), np.float32),
             "lr": np.float32(0.02)}  # fmt: skip
    with pytest.raises(WeightsError, match=r"Detectron \(Caffe2\) checkpoint"):
        convert_state_dict({k: torch.as_tensor(v) for k, v in blobs.items()})
    path = tmp_path / "model_final.pkl"  # Detectron's own file: {"blobs": ...}
    _write_pickle(path, {"blobs": blobs})
    with pytest.raises(WeightsError, match=r"Detectron \(Caffe2\) checkpoint"):
        load(path, "maskrcnn_resnet50_fpn", {})
    with pytest.raises(WeightsError, match="unrecognised Mask R-CNN checkpoint layout.*'head.w'"):
        detect_layout({"head.w", "body.conv.weight"})
    with pytest.raises(WeightsError, match="holds a 'model' entry"):
        detect_layout({"model", "__author__"})


# ---------------------------------------------------------------- the weights entries


def test_weights_entries_are_pinned_and_counted():
    """Both entries carry a full sha256 (torchvision's starts with the prefix in its name) and
    the parameter count of the model they load into: torchvision's meta for its 91 slots,
    the converted detectron2 model (81 slots) for detectron2's."""
    tv = sotazoo.get_weights("maskrcnn_resnet50_fpn", "official")
    d2 = sotazoo.get_weights("maskrcnn_resnet50_fpn", "detectron2")
    assert tv.full_hash and d2.full_hash
    assert tv.filename == "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    assert tv.sha256.startswith("bf2d0c1e") and tv.urls[0].endswith(tv.filename)
    assert d2.urls[0].endswith("/137849600/model_final_f10217.pkl")
    module, func = tv.converter.split(":")
    assert getattr(importlib.import_module(module), func) is convert_state_dict
    with torch.device("meta"):
        assert count_params(maskrcnn_resnet50_fpn()) == tv.num_params == 44_401_393
        assert count_params(maskrcnn_resnet50_fpn(num_classes=81)) == d2.num_params
    assert tv_mask_rcnn.MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["num_params"] == tv.num_params
