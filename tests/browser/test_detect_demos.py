"""The `detect` demos in headless Chromium, one parameter per paper whose card declares one
(RetinaNet and YOLOv3 today): each runs its laptop model (our weights) on the bundled scenes. The
exported graph decodes and runs NMS itself (papers/<id>/demo.py), so the browser's boxes, scores
and labels are checked against onnxruntime in Python, and the boxes the widget draws against the
paper's `method.postprocess` in PyTorch (fixtures in tests/browser/conftest.py).
"""

import pytest

import sotazoo
from sotazoo.data.detection_shapes import DETECTION_CLASSES
from sotazoo.papers._contract import paper

DETECT = [
    p for p in sotazoo.list_papers() if (d := sotazoo.get_paper(p).demo) and d.kind == "detect"
]


@pytest.mark.browser
@pytest.mark.parametrize("paper_id", DETECT)
def test_detect_demo_matches_python(paper_id, check_detect_demo):
    demo, card = paper(paper_id).module("demo"), sotazoo.get_paper(paper_id)
    spec, drawn = check_detect_demo(paper_id)
    assert spec["model"] == card.demo.model and spec["weights"] == f"{card.demo.model}.sotazoo"
    assert spec["score_threshold"] == demo.SCORE_THRESHOLD
    assert spec["labels"] == list(DETECTION_CLASSES)
    names = [f"scene{i + 1}" for i in range(demo.N_SCENES)] + ["clutter"]
    assert [d["name"] for d in drawn] == names


@pytest.mark.parametrize("paper_id", DETECT)
def test_detect_demo_finds_the_objects_of_its_scenes(paper_id, check_detect_recall):
    check_detect_recall(paper_id)


@pytest.mark.browser
@pytest.mark.parametrize("paper_id", DETECT)
def test_detect_demo_shows_no_boxes_when_the_graph_keeps_none(paper_id, check_detect_demo_empty):
    check_detect_demo_empty(paper_id)


def test_both_detectors_have_a_detect_demo():
    assert {"retinanet", "yolov3"} <= set(DETECT)  # the parametrisation is not empty
