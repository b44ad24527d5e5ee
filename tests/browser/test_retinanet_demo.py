"""RetinaNet's page in headless Chromium: the `detect` demo runs retinanet_mini (our weights) on the
bundled scenes. The exported graph decodes and runs NMS itself (papers/retinanet/demo.py), so the
browser's boxes, scores and labels are checked against onnxruntime in Python, and the boxes the
widget draws against `method.postprocess` in PyTorch (fixtures in tests/browser/conftest.py).
"""

import pytest

from sotazoo.data.detection_shapes import DETECTION_CLASSES
from sotazoo.papers.retinanet import demo


@pytest.mark.browser
def test_retinanet_demo_matches_python(check_detect_demo):
    spec, drawn = check_detect_demo("retinanet")
    assert spec["model"] == "retinanet_mini" and spec["weights"] == "retinanet_mini.sotazoo"
    assert spec["score_threshold"] == demo.SCORE_THRESHOLD
    assert spec["labels"] == list(DETECTION_CLASSES)
    names = [f"scene{i + 1}" for i in range(demo.N_SCENES)] + ["clutter"]
    assert [d["name"] for d in drawn] == names


def test_retinanet_demo_finds_the_objects_of_its_scenes(check_detect_recall):
    check_detect_recall("retinanet")


@pytest.mark.browser
def test_retinanet_demo_shows_no_boxes_when_the_graph_keeps_none(check_detect_demo_empty):
    check_detect_demo_empty("retinanet")
