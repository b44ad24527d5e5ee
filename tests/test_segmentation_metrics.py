"""Segmentation metrics on cases computed by hand, and the scenes' label maps."""

import numpy as np
import pytest

from sotazoo.metrics.segmentation import (
    boundary_band,
    confusion,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)


def test_confusion_iou_and_accuracy_by_hand():
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 1, 0]])
    cm = confusion(pred, target, 3)
    # rows target, columns prediction; the 255 pixel is ignored
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    # IoU: class 0 1/(2+1-1) = 1/2; class 1 2/(2+4-2) = 1/2; class 2 0/(1+0-0) = 0
    assert iou_per_class(cm).tolist() == [0.5, 0.5, 0.0]
    assert mean_iou(cm) == pytest.approx(1 / 3) and pixel_accuracy(cm) == pytest.approx(3 / 5)
    assert np.isnan(iou_per_class(confusion(pred, target, 4))[3])  # absent class: no IoU
    assert confusion(pred, target, 3, where=np.array([[1, 0, 0], [0, 0, 0]])).sum() == 1


def test_boundary_band_is_the_pixels_within_width_of_a_label_change():
    t = np.zeros((1, 9), dtype=int)
    t[0, 5:] = 1  # boundary between columns 4 and 5: both are boundary pixels
    assert np.flatnonzero(boundary_band(t, 0)).tolist() == [4, 5]
    assert np.flatnonzero(boundary_band(t, 2)).tolist() == [2, 3, 4, 5, 6, 7]
    assert not boundary_band(np.zeros((4, 4), dtype=int), 3).any()


def test_scene_label_maps_follow_the_painted_objects():
    """The label map is the class + 1 of the topmost object per pixel, and asking for it
    changes no draw: images and boxes are the same."""
    from sotazoo.data.detection_shapes import ShapeSpec, draw_scene, make_detection_scenes

    a = make_detection_scenes(3, size=64, seed=1, semantic=True)
    b = make_detection_scenes(3, size=64, seed=1)
    assert np.array_equal(a["images"], b["images"]) and "semantic" not in b
    assert a["semantic"].shape == (3, 64, 64) and a["semantic"].max() <= 4
    s = draw_scene([ShapeSpec("square", 20, 20, 16, 0.0, (1, 0, 0)),
                    ShapeSpec("circle", 24, 20, 12, 0.0, (0, 0, 1))], size=40)  # fmt: skip
    sem = s["semantic"]
    assert sem[20, 24] == 2 and sem[20, 14] == 1 and sem[2, 2] == 0  # circle over square
