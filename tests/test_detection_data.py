"""Synthetic detection scenes (sotazoo.data.detection_shapes) and COCO mAP
(sotazoo.metrics.detection), checked on cases computed by hand."""

from __future__ import annotations

import contextlib
import io
import math
import time

import numpy as np
import pytest

from sotazoo.data.detection_shapes import (
    DETECTION_CLASSES,
    ShapeSpec,
    draw_scene,
    make_detection_scenes,
    to_coco,
)
from sotazoo.metrics.detection import coco_map


@pytest.fixture(scope="module")
def scenes() -> dict:
    return make_detection_scenes(64, seed=0)


def _exact(scenes: dict) -> list[dict]:
    """The ground truth as detections of score 1."""
    return [
        {"image_id": i, "boxes": b, "scores": np.ones(len(b)), "labels": lab}
        for i, (b, lab) in enumerate(zip(scenes["boxes"], scenes["labels"], strict=True))
    ]


# ---- the generator ---------------------------------------------------------------------------


def test_shapes_and_dtypes(scenes):
    n = 64
    assert scenes["images"].shape == (n, 3, 128, 128)
    assert scenes["images"].dtype == np.float32
    assert scenes["images"].min() >= 0.0 and scenes["images"].max() <= 1.0
    assert scenes["classes"] == DETECTION_CLASSES and scenes["size"] == 128
    for key in ("boxes", "labels", "areas"):
        assert len(scenes[key]) == n
    for boxes, labels, areas in zip(
        scenes["boxes"], scenes["labels"], scenes["areas"], strict=True
    ):
        m = len(labels)
        assert boxes.shape == (m, 4) and boxes.dtype == np.float32
        assert labels.shape == (m,) and labels.dtype == np.int64
        assert areas.shape == (m,)


def test_boxes_labels_and_areas_are_valid(scenes):
    boxes = np.concatenate(scenes["boxes"])
    labels = np.concatenate(scenes["labels"])
    areas = np.concatenate(scenes["areas"])
    assert (boxes >= 0).all() and (boxes <= 128).all()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (w >= 1).all() and (h >= 1).all()
    assert (boxes == np.round(boxes)).all()  # pixel edges
    assert ((labels >= 0) & (labels < len(DETECTION_CLASSES))).all()
    assert set(labels.tolist()) == set(range(len(DETECTION_CLASSES)))
    # The visible pixels lie in the box and touch all four of its sides.
    assert (areas >= 1).all() and (areas <= w * h).all()
    assert (areas >= np.maximum(w, h)).all()
    # Every image keeps at least its topmost object (min_objects=1), at most max_objects.
    counts = [len(lab) for lab in scenes["labels"]]
    assert min(counts) >= 1 and max(counts) <= 6


def test_same_seed_same_scenes_and_prefixes(scenes):
    again = make_detection_scenes(64, seed=0)
    np.testing.assert_array_equal(again["images"], scenes["images"])
    for key in ("boxes", "labels", "areas"):
        for a, b in zip(again[key], scenes[key], strict=True):
            np.testing.assert_array_equal(a, b)
    # Everything is drawn image by image: a shorter batch is a prefix of a longer one.
    head = make_detection_scenes(5, seed=0)
    np.testing.assert_array_equal(head["images"], scenes["images"][:5])


def test_different_seed_different_scenes(scenes):
    other = make_detection_scenes(64, seed=1)
    assert not np.array_equal(other["images"], scenes["images"])
    assert [len(b) for b in other["boxes"]] != [len(b) for b in scenes["boxes"]]


def test_options():
    s = make_detection_scenes(
        8, size=64, seed=3, classes=("circle", "cross"), min_objects=2, max_objects=2
    )
    assert s["images"].shape == (8, 3, 64, 64) and s["classes"] == ("circle", "cross")
    assert all(len(lab) <= 2 and set(lab.tolist()) <= {0, 1} for lab in s["labels"])
    assert all((b <= 64).all() for b in s["boxes"])
    with pytest.raises(ValueError, match="classes"):
        make_detection_scenes(1, seed=0, classes=("hexagon",))
    with pytest.raises(ValueError, match="min_objects"):
        make_detection_scenes(1, seed=0, min_objects=3, max_objects=2)


# ---- draw_scene: shapes, boxes and the occlusion rule, by hand -----------------------------


def _square(cx: float, cy: float, size: float = 20.0) -> ShapeSpec:
    return ShapeSpec("square", cx, cy, size, 0.0, (1.0, 0.0, 0.0))


def test_single_shapes_boxes():
    # An axis-aligned square of side 20 at (40, 40) covers the pixel centres 30.5 ... 49.5.
    s = draw_scene([_square(40.0, 40.0)])
    np.testing.assert_array_equal(s["boxes"], [[30, 30, 50, 50]])
    assert s["areas"].tolist() == [400] and s["labels"].tolist() == [0]
    np.testing.assert_allclose(s["image"][:, 40, 40], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s["image"][:, 10, 10], [0.5, 0.5, 0.5])  # the grey background
    # A circle of diameter 30 at (40, 40): centres 25.5 ... 54.5 are within 15 on the axes.
    s = draw_scene([ShapeSpec("circle", 40.0, 40.0, 30.0)])
    np.testing.assert_array_equal(s["boxes"], [[25, 25, 55, 55]])
    assert s["labels"].tolist() == [1]
    # Triangle: apex (40, 30), base from (30, 50) to (50, 50). At row k (centre y = 30.5 + k) it
    # is k + 0.5 wide, so it covers 2·floor(k/2 + 3/4) pixel centres: none in row 0 (the tip is
    # narrower than the centres at 40 ± 0.5), 200 in all, half the square's 400.
    s = draw_scene([ShapeSpec("triangle", 40.0, 40.0, 20.0)])
    np.testing.assert_array_equal(s["boxes"], [[30, 31, 50, 50]])
    assert s["areas"].tolist() == [200] and s["labels"].tolist() == [2]
    # Cross: two 20 px arms, 20/3 px thick; 6 pixel centres lie within 10/3 of the axis, so it
    # covers 2 · 20 · 6 - 6 · 6 pixels.
    s = draw_scene([ShapeSpec("cross", 40.0, 40.0, 20.0)])
    np.testing.assert_array_equal(s["boxes"], [[30, 30, 50, 50]])
    assert s["areas"].tolist() == [2 * 20 * 6 - 36]
    # Rotated by 45°, the square's box grows to its diagonal, 20·√2 ≈ 28.3 px.
    s = draw_scene([ShapeSpec("square", 40.0, 40.0, 20.0, math.pi / 4)])
    w = float(s["boxes"][0, 2] - s["boxes"][0, 0])
    assert 26 <= w <= 29


@pytest.mark.parametrize(
    ("top_cx", "kept", "first_box"),
    [
        # The top square covers columns 40..59: half the bottom one (200 of 400 px) is visible.
        (50.0, [0, 1], [30, 30, 40, 50]),
        # Columns 38..57: 8 of 20 columns visible, exactly 40%: kept (hidden is not > 60%).
        (48.0, [0, 1], [30, 30, 38, 50]),
        # Columns 37..56: 7 of 20, 35% visible, 65% hidden: dropped.
        (47.0, [1], None),
        # Exactly on top: fully hidden.
        (40.0, [1], None),
    ],
)
def test_occlusion_rule(top_cx, kept, first_box):
    s = draw_scene([_square(40.0, 40.0), _square(top_cx, 40.0)])
    assert s["kept"].tolist() == kept
    if first_box is not None:
        np.testing.assert_array_equal(s["boxes"][0], first_box)
        assert s["areas"][0] == (first_box[2] - 30) * 20
    # The top object is never occluded.
    np.testing.assert_array_equal(s["boxes"][-1], [top_cx - 10, 30, top_cx + 10, 50])


def test_occlusion_by_a_bigger_circle_and_the_border():
    # The square's corners are 10·√2 = 14.1 from the centre, inside the circle's radius 15.
    s = draw_scene([_square(40.0, 40.0), ShapeSpec("circle", 40.0, 40.0, 30.0)])
    assert s["kept"].tolist() == [1]
    # The border hides what lies outside: 12 of 20 columns visible (60%) -> kept, clipped box;
    # 6 of 20 (30%) -> dropped.
    s = draw_scene([_square(2.0, 64.0), _square(-4.0, 20.0)])
    assert s["kept"].tolist() == [0]
    np.testing.assert_array_equal(s["boxes"], [[0, 54, 12, 74]])
    # min_visible=0 keeps any visible fragment.
    s = draw_scene([_square(40.0, 40.0), _square(47.0, 40.0)], min_visible=0.0)
    assert s["kept"].tolist() == [0, 1]


def test_draw_scene_rejects_unknown_shapes():
    with pytest.raises(ValueError, match="ring"):
        draw_scene([ShapeSpec("ring", 10.0, 10.0, 10.0)])  # a distractor, not a class


# ---- to_coco ---------------------------------------------------------------------------------


def test_to_coco_loads_in_pycocotools(scenes):
    from pycocotools.coco import COCO

    gt = to_coco(scenes)
    n_ann = sum(len(b) for b in scenes["boxes"])
    assert len(gt["images"]) == 64 and len(gt["annotations"]) == n_ann
    assert [c["id"] for c in gt["categories"]] == [1, 2, 3, 4]
    assert [c["name"] for c in gt["categories"]] == list(DETECTION_CLASSES)
    ann = gt["annotations"][0]
    x1, y1, x2, y2 = scenes["boxes"][0][0].tolist()
    assert ann["bbox"] == [x1, y1, x2 - x1, y2 - y1]
    assert ann["category_id"] == int(scenes["labels"][0][0]) + 1
    assert ann["image_id"] == 0 and ann["id"] == 1 and ann["iscrowd"] == 0
    assert len({a["id"] for a in gt["annotations"]}) == n_ann
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
    assert sorted(coco.getImgIds()) == list(range(64))
    assert len(coco.getAnnIds()) == n_ann
    assert len(coco.getAnnIds(catIds=[1])) == sum((lab == 0).sum() for lab in scenes["labels"])


# ---- coco_map ----------------------------------------------------------------------------------


def test_perfect_detections_score_one(scenes):
    # pycocotools divides tp by tp + fp + 2^-52, so "1" may come out as 1 - 1e-16: approx.
    m = coco_map(to_coco(scenes), _exact(scenes))
    for key in ("map", "ap50", "ap75", "ap_small", "ap_medium", "ar100"):
        assert m[key] == pytest.approx(1.0), key
    assert math.isnan(m["ap_large"])  # no object is larger than 96²


def test_perfect_detections_as_torch_tensors(scenes):
    torch = pytest.importorskip("torch")
    dets = [
        {k: torch.as_tensor(v) if k != "image_id" else torch.tensor(v) for k, v in d.items()}
        for d in _exact(scenes)
    ]
    assert coco_map(to_coco(scenes), dets)["map"] == pytest.approx(1.0)


def test_no_detections_score_zero(scenes):
    gt = to_coco(scenes)
    for dets in ([], [{"image_id": 0, "boxes": np.zeros((0, 4)), "scores": [], "labels": []}]):
        m = coco_map(gt, dets)
        assert m["map"] == 0.0 and m["ap50"] == 0.0 and m["ar100"] == 0.0


def test_ground_truth_is_not_modified(scenes):
    gt = to_coco(scenes)
    before = repr(gt)
    coco_map(gt, _exact(scenes))
    assert repr(gt) == before


def _gt(boxes_xywh: list[list[float]], category_ids: list[int]) -> dict:
    """One 100 x 100 image with the given boxes; two categories."""
    return {
        "images": [{"id": 7, "width": 100, "height": 100}],
        "annotations": [
            {
                "id": k + 1,
                "image_id": 7,
                "category_id": c,
                "bbox": b,
                "area": b[2] * b[3],
                "iscrowd": 0,
            }
            for k, (b, c) in enumerate(zip(boxes_xywh, category_ids, strict=True))
        ],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }


def test_one_of_two_classes_missed():
    # Class a found exactly (AP 1 at every IoU), class b missed (AP 0): the mean is 0.5.
    gt = _gt([[10, 10, 20, 20], [50, 50, 20, 20]], [1, 2])
    det = {"image_id": 7, "boxes": [[10, 10, 30, 30]], "scores": [0.9], "labels": [0]}
    m = coco_map(gt, [det])
    assert m["ap50"] == pytest.approx(0.5) and m["map"] == pytest.approx(0.5)


def test_one_of_two_objects_of_a_class_missed():
    # One class, two objects, one found: recall reaches 0.5 at precision 1, then stops. COCO's AP
    # is the mean of the precision at the 101 recall points 0, 0.01, ..., 1: 1 at the 51 points
    # up to 0.50, 0 at the 50 above, so AP = 51/101 (not 0.5).
    gt = _gt([[10, 10, 20, 20], [50, 50, 20, 20]], [1, 1])
    det = {"image_id": 7, "boxes": [[10, 10, 30, 30]], "scores": [0.9], "labels": [0]}
    m = coco_map(gt, [det])
    assert m["ap50"] == pytest.approx(51 / 101) and m["map"] == pytest.approx(51 / 101)
    assert m["ar100"] == pytest.approx(0.5)
    # A false positive ranked above the hit halves the precision at that recall: 0.5 at the 51
    # points, AP = 25.5/101.
    det = {
        "image_id": 7,
        "boxes": [[80, 0, 90, 10], [10, 10, 30, 30]],
        "scores": [0.95, 0.9],
        "labels": [0, 0],
    }
    assert coco_map(gt, [det])["ap50"] == pytest.approx(25.5 / 101)


def test_shifted_box_between_iou_half_and_three_quarters():
    # A 20 x 20 box shifted 4 px: overlap 16 x 20 = 320, union 800 - 320 = 480, IoU = 2/3. It
    # matches at the thresholds 0.50, 0.55, 0.60, 0.65 and not at 0.70 ... 0.95: AP50 = 1,
    # AP75 = 0, and AP@[.5:.95] = 4/10.
    gt = _gt([[10, 10, 20, 20]], [1])
    det = {"image_id": 7, "boxes": [[14, 10, 34, 30]], "scores": [1.0], "labels": [0]}
    m = coco_map(gt, [det])
    assert m["ap50"] == pytest.approx(1.0) and m["ap75"] == 0.0
    assert m["map"] == pytest.approx(0.4)
    # Area 400 < 32²: the object is small, and no ground truth is medium or large.
    assert m["ap_small"] == pytest.approx(0.4)
    assert math.isnan(m["ap_medium"]) and math.isnan(m["ap_large"])


@pytest.mark.parametrize(
    ("det", "match"),
    [
        ({"image_id": 7, "boxes": [[0, 0, 1]], "scores": [1.0], "labels": [0]}, "boxes"),
        ({"image_id": 7, "boxes": [[0, 0, 1, 1]], "scores": [1.0], "labels": [2]}, "labels"),
        ({"image_id": 7, "boxes": [[0, 0, 1, 1]], "scores": [1.0], "labels": [0.0]}, "integers"),
        ({"image_id": 7, "boxes": [[5, 0, 1, 1]], "scores": [1.0], "labels": [0]}, "xyxy"),
        ({"image_id": 7, "boxes": [[0, 0, 1, 1]], "scores": [math.nan], "labels": [0]}, "finite"),
        ({"image_id": 3, "boxes": [[0, 0, 1, 1]], "scores": [1.0], "labels": [0]}, "image_id"),
        ({"image_id": 7, "boxes": [[0, 0, 1, 1]], "labels": [0]}, "scores"),
    ],
)
def test_malformed_detections(det, match):
    with pytest.raises(ValueError, match=match):
        coco_map(_gt([[10, 10, 20, 20]], [1]), [det])


def test_malformed_ground_truth():
    with pytest.raises(ValueError, match="annotations"):
        coco_map({"images": [], "categories": [{"id": 1}]}, [])
    gt = _gt([[10, 10, 20, 20]], [1])
    gt["annotations"][0]["category_id"] = 9
    with pytest.raises(ValueError, match="category_id"):
        coco_map(gt, [])
    gt = _gt([[10, 10, 20, 20]], [1])
    gt["annotations"][0]["id"] = 0
    with pytest.raises(ValueError, match="0"):
        coco_map(gt, [])


# ---- speed -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_generation_speed():
    # Not asserted (machines differ): printed, for `pytest -s`. The reproductions generate
    # ~10,000 scenes per run, so this should stay well under a millisecond or two per scene.
    t0 = time.perf_counter()
    s = make_detection_scenes(2000, seed=123)
    dt = time.perf_counter() - t0
    assert s["images"].shape == (2000, 3, 128, 128)
    print(f"\n2000 scenes in {dt:.2f} s ({dt / 2000 * 1e3:.2f} ms per scene)")
