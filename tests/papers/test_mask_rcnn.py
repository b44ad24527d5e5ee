"""Mask R-CNN: the whole model against torchvision's with the same weights (boxes, scores, labels
and pasted masks), parameter counts, the mask paste, the mask loss and its targets on cases worked
by hand, the multi-task loss, and the reproduction in --quick mode."""

import functools

import numpy as np
import pytest
import torch
from tests.papers.oracle import within

from sotazoo.errors import InputError
from sotazoo.papers.mask_rcnn.method import (
    mask_loss,
    mask_rcnn_loss,
    mask_targets,
    paste_masks,
    unpack,
)
from sotazoo.papers.mask_rcnn.model import (
    maskrcnn_mini,
    maskrcnn_resnet50_fpn,
    maskrcnn_resnet101_fpn,
    tiny_overrides,
)

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def torchvision_maskrcnn(layers: str = "resnet50", size: int = 256):
    """torchvision's MaskRCNN as its COCO builder assembles it (FrozenBatchNorm ResNet, eps 0,
    3 trainable layers), random, its transform resizing a size x size image to itself."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection._utils import overwrite_eps
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    bb = resnet_fpn_backbone(backbone_name=layers, weights=None, norm_layer=FrozenBatchNorm2d,
                             trainable_layers=3)  # fmt: skip
    model = MaskRCNN(bb, 91, min_size=size, max_size=size)
    overwrite_eps(model, 0.0)
    return model


def test_parameter_counts_are_torchvisions():
    """44,401,393: torchvision's meta num_params of MaskRCNN_ResNet50_FPN_Weights.COCO_V1
    (FrozenBN), counted again here on its class; ResNet-101: the same class on its ResNet-101."""
    for build, layers, n in ((maskrcnn_resnet50_fpn, "resnet50", 44_401_393),
                             (maskrcnn_resnet101_fpn, "resnet101", 63_341_297)):  # fmt: skip
        tv = torchvision_maskrcnn(layers)
        assert sum(p.numel() for p in tv.parameters()) == n
        ours = build()
        assert sum(p.numel() for p in ours.parameters()) == n
        assert ours.load_state_dict(tv.state_dict()).missing_keys == []


def test_oracle_torchvision_maskrcnn_gives_the_same_detections_and_masks():
    """torchvision's maskrcnn_resnet50_fpn with random weights and frozen-BN statistics (its
    classifier widened so that scores spread) loaded into ours: on a 256 px image, which its
    transform leaves as it is, the same detections in the same order, and our masks pasted the
    torchvision way equal its pasted masks."""
    tv = torchvision_maskrcnn()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    for k, v in tv.state_dict().items():  # FrozenBatchNorm2d holds its statistics as buffers
        if k.endswith("running_var"):
            v.copy_(torch.rand(v.shape, generator=g) * 0.5 + 0.75)
        elif k.endswith("running_mean"):
            v.copy_(torch.randn(v.shape, generator=g) * 0.1)
    tv.roi_heads.box_predictor.cls_score.weight.data.normal_(0, 0.05, generator=g)
    tv.eval()
    ours = maskrcnn_resnet50_fpn().eval()
    ours.load_state_dict(tv.state_dict())
    x = torch.rand(1, 3, 256, 256, generator=g)
    with torch.no_grad():
        want = tv([x[0]])[0]
        got = unpack(ours((x - MEAN) / STD))[0]
    n = len(want["boxes"])
    assert n >= 10 and len(got["boxes"]) == n  # a detection missing or extra: the test fails
    assert torch.equal(got["labels"], want["labels"])
    # The same float32 operations in the same order on the same machine (both run torchvision's
    # ops and torch's convs): differences could only come from kernel summation order.
    within((got["boxes"] - want["boxes"]).abs().max() / 256, 1e-5, "boxes / image side")
    within((got["scores"] - want["scores"]).abs().max(), 1e-5, "scores")
    pasted = paste_masks(got["masks"], got["boxes"], (256, 256), method="torchvision")
    within((pasted - want["masks"][:, 0]).abs().max(), 1e-5, "pasted mask probabilities")


def test_paste_torchvision_equals_torchvisions_paste():
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    g = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 28, 28, generator=g)
    xy = torch.rand(6, 2, generator=g) * 80 - 10
    boxes = torch.cat([xy, xy + 5 + torch.rand(6, 2, generator=g) * 40], 1)
    want = paste_masks_in_image(masks[:, None], boxes, (70, 90), padding=1)[:, 0]
    assert torch.equal(paste_masks(masks, boxes, (70, 90), method="torchvision"), want)


def test_grid_paste_samples_each_pixel_centre_inside_the_box():
    """The 2 x 2 mask [[1, 0], [0, 0]] into the box x, y in [2, 6] of an 8 x 8 image, worked by
    hand: pixel centre c maps to u = (c - 2) / 4 * 2 - 1 in grid units, i.e. mask pixel
    ((u + 1) * 2 - 1) / 2 (align_corners=False), bilinear between mask pixels with zero padding.
    Centres 2.5, 3.5, 4.5, 5.5, 1.5 give mask pixels -0.25, 0.25, 0.75, 1.25, -0.75, i.e. weights
    on the 1 of 0.75, 0.75, 0.25, 0 and 0.25 along each axis; the value is their product."""
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    out = paste_masks(mask, torch.tensor([[2.0, 2.0, 6.0, 6.0]]), (8, 8))[0]
    weight = {2: 0.75, 3: 0.75, 4: 0.25, 5: 0.0, 1: 0.25, 0: 0.0, 6: 0.0, 7: 0.0}
    want = torch.tensor([[weight[y] * weight[x] for x in range(8)] for y in range(8)])
    assert torch.allclose(out, want, atol=1e-7)  # float32 rounding of the grid arithmetic


def test_mask_loss_is_binary_cross_entropy_on_the_true_class_only():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 4, 4, generator=g)
    labels = torch.tensor([1, 4, 2])
    target = (torch.rand(3, 4, 4, generator=g) > 0.5).float()
    loss = mask_loss(logits, labels, target)
    own = torch.stack([logits[i, labels[i]] for i in range(3)])
    p = torch.sigmoid(own)
    by_hand = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    assert loss == pytest.approx(float(by_hand), rel=1e-6)
    other = logits.clone()
    other[0, 3] += 10.0  # another class's mask: no effect on the loss
    assert mask_loss(other, labels, target) == loss
    assert mask_loss(other, labels, target, "softmax") != mask_loss(
        logits, labels, target, "softmax"
    )


def test_softmax_mask_probability_passes_half_where_the_label_wins():
    net = maskrcnn_mini(mask_activation="softmax")
    logits = torch.randn(4, 5, 6, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([1, 2, 3, 4])
    probs = net.mask_probs(logits, labels)
    wins = logits.argmax(1) == labels[:, None, None]
    assert torch.equal(probs > 0.5, wins)
    sm = logits.softmax(1)
    mine = sm[torch.arange(4), labels]
    other = sm.clone()
    other[torch.arange(4), labels] = 0
    assert torch.allclose(probs, mine / (mine + other.max(1).values), atol=1e-6)


def test_mask_targets_crop_and_resize_the_ground_truth():
    mask = torch.zeros(1, 32, 32, dtype=torch.bool)
    mask[0, 8:24, 4:20] = True
    inside = mask_targets(mask, torch.tensor([[4.0, 8.0, 20.0, 24.0]]), 8)
    assert inside.shape == (1, 8, 8) and bool((inside == 1).all())
    right = mask_targets(mask, torch.tensor([[12.0, 8.0, 28.0, 24.0]]), 8)[0]
    assert (right[:, :4] == 1).all() and (right[:, 4:] == 0).all()  # the box's left half


def test_multitask_loss_trains_every_branch():
    from sotazoo.data.detection_shapes import make_detection_scenes
    from sotazoo.papers.mask_rcnn.train import targets_of

    torch.manual_seed(0)
    net = maskrcnn_mini()
    s = make_detection_scenes(2, seed=3, masks=True)
    x = (torch.from_numpy(s["images"]) - MEAN) / STD
    terms = mask_rcnn_loss(net.train(), x, targets_of(s), rois_per_image=32,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert set(terms) == {"rpn_objectness", "rpn_box", "classifier", "box_regression", "mask",
                          "total"}  # fmt: skip
    assert all(torch.isfinite(v) for v in terms.values())
    # objectness at initialisation: near log 2 (the RPN's weights N(0, 0.01): logits near 0)
    assert float(terms["rpn_objectness"]) == pytest.approx(np.log(2), abs=0.05)
    terms["total"].backward()
    for name in (
        "rpn.head.cls_logits.weight",
        "roi_heads.box_predictor.bbox_pred.weight",
        "roi_heads.mask_predictor.mask_fcn_logits.weight",
        "backbone.body.conv1.weight",
    ):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_loss_refuses_background_labels_and_mismatched_targets():
    net = maskrcnn_mini()
    x = torch.zeros(1, 3, 64, 64)
    box = torch.tensor([[4.0, 4.0, 20.0, 20.0]])
    masks = torch.zeros(1, 64, 64, dtype=torch.bool)
    with pytest.raises(InputError, match="0 is background"):
        mask_rcnn_loss(net, x, [{"boxes": box, "labels": torch.tensor([0]), "masks": masks}])
    with pytest.raises(InputError, match="must agree"):
        mask_rcnn_loss(net, x, [{"boxes": box, "labels": torch.tensor([1]), "masks": masks[:, :8]}])


def test_output_unpacks_to_detections_and_refuses_other_tensors():
    net = maskrcnn_mini(**{"score_thresh": 0.0}).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (2, 20, 11 + 28 * 28)
    dets = unpack(out)
    for d in dets:
        n = len(d["boxes"])
        assert d["masks"].shape == (n, 28, 28) and ((d["labels"] >= 1) & (d["labels"] <= 4)).all()
        assert (d["scores"][:-1] >= d["scores"][1:]).all()  # best first
        assert ((d["masks"] >= 0) & (d["masks"] <= 1)).all()
    with pytest.raises(InputError, match="not a Mask R-CNN output"):
        unpack(torch.zeros(1, 5, 13))


def test_bad_config_and_input_are_refused():
    with pytest.raises(InputError, match="pool_levels"):
        maskrcnn_mini(pool_levels=(4, 3))
    with pytest.raises(InputError, match="num_classes"):
        maskrcnn_mini(num_classes=1)
    net = maskrcnn_resnet50_fpn(**tiny_overrides("maskrcnn_resnet50_fpn")).eval()
    with pytest.raises(InputError, match="input channels"):
        net(torch.rand(1, 1, 64, 64))
    with pytest.raises(InputError):
        net(torch.full((1, 3, 64, 64), float("nan")))


def test_roipool_and_pool_levels_change_what_the_mask_head_sees():
    """One RoI pooled from P4 only (the repro's stride-16 arms): RoIAlign and RoIPool differ,
    and RoIPool equals torchvision's roi_pool on P4 at scale 1/16."""
    from torchvision.ops import roi_pool

    torch.manual_seed(0)
    align = maskrcnn_mini(pool_levels=(4, 4)).eval()
    pool = maskrcnn_mini(pool_levels=(4, 4), pooler="pool").eval()
    pool.load_state_dict(align.state_dict())
    x = torch.randn(1, 3, 128, 128)
    rois = [torch.tensor([[10.3, 20.7, 50.2, 61.9]])]
    with torch.no_grad():
        feats = align.features(x)
        a = align.pool(feats, rois, 14, (128, 128))
        p = pool.pool(feats, rois, 14, (128, 128))
        want = roi_pool(feats[2], [rois[0]], 14, 1 / 16)
    assert not torch.allclose(a, p) and torch.equal(p, want)


def test_scenes_masks_match_their_areas_and_coco_mask_ap_scores_them():
    from sotazoo.data.detection_shapes import make_detection_scenes, to_coco
    from sotazoo.metrics.detection import coco_map

    s = make_detection_scenes(6, seed=11, masks=True)
    plain = make_detection_scenes(6, seed=11)
    assert np.array_equal(s["images"], plain["images"])  # the masks change no draw
    for m, a, b in zip(s["masks"], s["areas"], s["boxes"], strict=True):
        assert np.array_equal(m.sum((1, 2)), a)
        ys, xs = np.nonzero(m[0])
        assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == b[0].tolist()
    gt = to_coco(s)
    dets = [{"image_id": i, "boxes": b, "scores": np.ones(len(b)), "labels": lb, "masks": m}
            for i, (b, lb, m) in enumerate(zip(s["boxes"], s["labels"], s["masks"], strict=True))]  # fmt: skip
    assert coco_map(gt, dets, iou_type="segm")["map"] == 1.0
    shifted = [{**d, "masks": np.roll(d["masks"], 3, axis=2)} for d in dets]
    assert coco_map(gt, shifted, iou_type="segm")["map"] < 0.9
    assert coco_map(gt, shifted)["map"] == 1.0  # the boxes did not move
    with pytest.raises(ValueError, match="masks must be"):
        coco_map(gt, [{**dets[0], "masks": dets[0]["masks"][:, :5]}], iou_type="segm")
    with pytest.raises(ValueError, match="needs a 'segmentation'"):
        coco_map(to_coco(plain), dets, iou_type="segm")


def test_repro_quick(tmp_path):
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("mask_rcnn", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert [c["id"] for c in data["claims"]] == ["roialign_vs_roipool_c4",
        "roialign_vs_roipool_ap75", "roialign_stride32", "sigmoid_vs_softmax"]  # fmt: skip


def test_grid_paste_is_close_to_torchvisions():
    """The two pastes differ only in resampling (detectron2's against Detectron's): on smooth
    masks, thresholded at 0.5, they disagree on few pixels, all on the boundary."""
    # blobs: a sigmoid of the distance from a centre, so that 0.5 falls on a smooth contour
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centres = torch.tensor([[14.0, 14.0], [10.0, 17.0], [18.0, 9.0], [13.0, 13.0]])
    r = ((xx - centres[:, :1, None]) ** 2 + (yy - centres[:, 1:, None]) ** 2).sqrt()
    masks = torch.sigmoid(0.8 * (9.0 - r))  # (4, 28, 28)
    boxes = torch.tensor([[5.0, 5.0, 60.0, 50.0], [20.3, 30.1, 90.0, 95.7],
                          [0.0, 0.0, 99.0, 99.0], [40.0, 10.0, 70.0, 44.0]])  # fmt: skip
    a = paste_masks(masks, boxes, (100, 100)) > 0.5
    b = paste_masks(masks, boxes, (100, 100), method="torchvision") > 0.5
    assert (a != b).float().mean() < 0.02


def test_demo_graph_exports_and_keeps_nothing_when_nothing_passes(tmp_path):
    """The site's graph (the model, the score threshold, the grid paste) exported and checked by
    onnxruntime on the demo's scenes, with random weights: once keeping every detection, once
    with a threshold no score passes, where each output is empty (NonZero on nothing, GridSample
    on no mask)."""
    import onnxruntime as ort

    from sotazoo.export import export_onnx
    from sotazoo.papers.mask_rcnn import demo
    from sotazoo.transforms import IMAGENET_MEAN, IMAGENET_STD, preprocess

    paths = [s["path"] for s in demo.samples(tmp_path)]
    t = {"size": 128, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    examples = [(torch.from_numpy(preprocess(p, t)),) for p in paths[:2]]
    torch.manual_seed(0)
    model = maskrcnn_mini(score_thresh=0.0).eval()
    graph = demo.Instances(model, score_thresh=0.0)
    r = export_onnx(graph, (3, 128, 128), tmp_path / "g.onnx", example_inputs=examples,
                    output_names=graph.output_names, dynamic_axes=graph.dynamic_axes,
                    tolerance=graph.export_tolerance)  # fmt: skip
    assert r.checked_inputs == 2  # export_onnx raises past the tolerance of each output
    # A threshold nothing passes: export_onnx refuses to check outputs that are always empty,
    # so this graph is exported as the site's exporter does and run by onnxruntime directly.
    empty = demo.Instances(model, score_thresh=1.0)
    torch.onnx.export(empty, examples[0], str(tmp_path / "e.onnx"), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=list(empty.output_names),
                      dynamic_axes=empty.dynamic_axes)  # fmt: skip
    for path, n in (("g.onnx", 20), ("e.onnx", 0)):  # maskrcnn_mini keeps 20 detections
        sess = ort.InferenceSession(str(tmp_path / path), providers=["CPUExecutionProvider"])
        boxes, scores, labels, masks = sess.run(None, {"input": examples[0][0].numpy()})
        assert boxes.shape == (n, 4) and masks.shape == (n, 128, 128) and labels.shape == (n,)
        assert scores.shape == (n,) and ((labels >= 0) & (labels < 4)).all()


def test_packaged_weights_reproduce_their_log():
    """Our demo weights, scored again on the 300 held-out scenes (seed 500, never trained on),
    give the box and mask AP their training log recorded."""
    import json
    from pathlib import Path

    import sotazoo
    from sotazoo.data.detection_shapes import make_detection_scenes
    from sotazoo.papers.mask_rcnn.train import EVAL_SEED, evaluate

    w = sotazoo.get_weights("maskrcnn_mini", "sotazoo")
    name = "maskrcnn_mini.sotazoo.log.json"
    log = json.loads(((Path(sotazoo.__file__).parent / w.packaged).with_name(name)).read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    scenes = make_detection_scenes(300, seed=EVAL_SEED, masks=True)
    got = evaluate(sotazoo.create_model("maskrcnn_mini", weights="sotazoo"), scenes)
    # A detection whose score or mask pixel sits within float32 rounding of a threshold (0.05,
    # NMS's 0.5 IoU, the mask's 0.5) may flip on another CPU: one such event among ~1,000
    # detections moves an AP by well under 0.1 points
    for k, v in got.items():
        assert v == pytest.approx(log["metrics"][f"heldout_{k}"], abs=0.1), k


def test_the_demo_recipe_runs(monkeypatch):
    from sotazoo.papers.mask_rcnn import train

    monkeypatch.setattr(train, "STEPS_PER_UNIT", 2)
    # two steps and four held-out scenes: the recipe's loop, log and metrics, not its result
    monkeypatch.setattr(train, "MaskRecipe", functools.partial(train.MaskRecipe, eval_scenes=4))
    t = train.train_maskrcnn_mini(seed=0, budget=1, progress=False)
    assert len(t.log["loss"]) == 2
    assert set(t.metrics) == {f"heldout_{kind}_{k}" for kind in ("box", "mask")
                              for k in ("map", "ap50", "ap75")}  # fmt: skip
