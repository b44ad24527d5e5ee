"""YOLOv3's page in headless Chromium: the `detect` demo runs yolov3_mini (our weights) on the
bundled scenes. The exported graph decodes and runs NMS itself (papers/yolov3/demo.py), so the
browser's boxes, scores and labels are checked against onnxruntime in Python, and the boxes the
widget draws against `method.postprocess` in PyTorch (the `check_detect_demo` fixture).

Needs the demo weights (`papers/yolov3/weights.py`, tag "sotazoo"): without them the site build
fails, and with it these tests, naming the missing entry.
"""

import json

import pytest
import torch
from torchvision.ops import box_iou

from sotazoo.data.detection_shapes import DETECTION_CLASSES, make_detection_scenes
from sotazoo.papers.yolov3 import demo


@pytest.mark.browser
def test_yolov3_demo_matches_python(check_detect_demo):
    spec, drawn = check_detect_demo("yolov3")
    assert spec["model"] == "yolov3_mini" and spec["weights"] == "yolov3_mini.sotazoo"
    assert spec["score_threshold"] == demo.SCORE_THRESHOLD
    assert spec["labels"] == list(DETECTION_CLASSES)
    names = [f"scene{i + 1}" for i in range(demo.N_SCENES)] + ["clutter"]
    assert [d["name"] for d in drawn] == names


def test_yolov3_demo_finds_the_objects_of_its_scenes(built_site):
    """The exported graph (onnxruntime, what the browser runs, boxes not clipped, as darknet's) on the
    bundled scenes: at least 40% of their annotated objects are found (held-out recall at the demo
    threshold is 0.5-0.6, tests/test_detection_train.py), by a box of the right
    class at IoU >= 0.5 (the scenes' ground truth is regenerated from the same seed)."""
    import onnxruntime as ort

    from sotazoo.transforms import preprocess

    site, _ = built_site
    spec_path = site / json.loads((site / "site.json").read_text())["demos"]["yolov3"]
    spec = json.loads(spec_path.read_text())
    sess = ort.InferenceSession(str(spec_path.parent / spec["onnx"]),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    truth = make_detection_scenes(demo.N_SCENES, size=demo.SIZE, seed=demo.SAMPLE_SEED)
    found = total = 0
    for i, sample in enumerate(spec["samples"][: demo.N_SCENES]):
        x = preprocess(spec_path.parent / sample["src"], spec["transforms"])
        boxes, scores, labels = sess.run(None, {"input": x})
        shown = scores >= spec["score_threshold"]
        gt_boxes, gt_labels = truth["boxes"][i], truth["labels"][i]
        total += len(gt_boxes)
        if shown.any() and len(gt_boxes):
            iou = box_iou(torch.from_numpy(gt_boxes), torch.from_numpy(boxes[shown])).numpy()
            same = gt_labels[:, None] == labels[shown][None, :]
            found += int(((iou >= 0.5) & same).any(1).sum())
    assert total > 0 and found >= 0.4 * total, f"found {found} of {total} objects"


@pytest.mark.browser
def test_yolov3_demo_shows_no_boxes_when_the_graph_keeps_none(check_detect_demo_empty):
    check_detect_demo_empty("yolov3")
