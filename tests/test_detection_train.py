"""The detection training loop shared by RetinaNet's and YOLOv3's reproductions and recipes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sotazoo
from sotazoo.data.detection_shapes import make_detection_scenes
from sotazoo.train import detection as D


def test_training_scenes_never_include_the_held_out_or_demo_scenes():
    a = D.train_batch(0, 0, 4)
    b = D.train_batch(0, 0, 4)
    np.testing.assert_array_equal(a["images"], b["images"])  # seeded
    assert not np.array_equal(a["images"], D.train_batch(0, 1, 4)["images"])  # step by step
    assert not np.array_equal(a["images"], D.train_batch(1, 0, 4)["images"])  # seed by seed
    held = D.held_out_scenes(4)["images"]
    demo = make_detection_scenes(4, seed=7)["images"]  # papers/<id>/demo.py's samples
    for other in (held, demo):
        assert not any(np.array_equal(x, y) for x in a["images"] for y in other)
    assert max(D.EVAL_SEED, 1000) < D.TRAIN_SEED_BASE
    with pytest.raises(sotazoo.SotazooError, match="at most"):
        D.train_batch(0, D.STREAM, 4)  # would run into the next seed's stream


def test_schedule_warms_up_then_steps_down():
    cfg = D.DetTrainConfig(steps=900, lr=0.01, warmup=100)
    assert D.lr_at(cfg, 0) == pytest.approx(0.01 / 3)
    assert D.lr_at(cfg, 50) == pytest.approx(0.01 * (1 / 3 + 1 / 3))
    assert D.lr_at(cfg, 100) == pytest.approx(0.01)
    assert D.lr_at(cfg, 599) == pytest.approx(0.01)
    assert D.lr_at(cfg, 600) == pytest.approx(0.001)  # 2/3 of the run (Detectron: 60k of 90k)
    assert D.lr_at(cfg, 800) == pytest.approx(0.0001)  # 8/9 (80k of 90k)


@pytest.mark.parametrize("name", ["retinanet_mini", "yolov3_mini"])
def test_evaluation_scores_the_ground_truth_as_perfect(name):
    """The glue between detections and pycocotools (image ids, 0-based labels, boxes): a
    detector that returns the annotations scores AP 1, one that misses every box 0."""
    scenes = D.held_out_scenes(6)
    det = D.detector(sotazoo.create_model(name))
    seen = []

    def truth(images):
        out = []
        for _ in range(len(images)):
            i = len(seen)
            seen.append(i)
            n = len(scenes["boxes"][i])
            out.append({"boxes": torch.from_numpy(scenes["boxes"][i]),
                        "scores": torch.ones(n), "labels": torch.from_numpy(scenes["labels"][i])})  # fmt: skip
        return out

    det.detect = truth
    r = D.evaluate_detector(det, scenes, batch_size=4)
    assert r["map"] == pytest.approx(1.0) and r["ap50"] == pytest.approx(1.0)
    seen.clear()

    def shifted(images):  # every box moved by its own width: IoU 0
        out = truth(images)
        for d in out:
            w = d["boxes"][:, 2] - d["boxes"][:, 0]
            d["boxes"] = d["boxes"] + torch.stack([w, 0 * w, w, 0 * w], 1)
        return out

    det.detect = shifted
    assert D.evaluate_detector(det, scenes, batch_size=4)["ap50"] == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["retinanet_mini", "yolov3_mini"])
def test_training_lowers_the_loss_and_logs_an_evaluation(name):
    torch.manual_seed(0)
    det = D.detector(sotazoo.create_model(name))
    cfg = D.DetTrainConfig(steps=31, batch_size=4, optimizer="adam", lr=2e-3, warmup=5)
    log = D.train_detector(det, cfg, seed=3, test=D.held_out_scenes(4))
    first, last = log["loss"][0][1]["total"], log["loss"][-1][1]["total"]
    assert not log["diverged"] and last < first
    assert set(log["final"]) >= {"map", "ap50", "ap75"}
    assert not det.model.training  # handed back in eval mode


def test_a_diverging_run_is_reported_not_hidden():
    torch.manual_seed(0)
    det = D.detector(sotazoo.create_model("yolov3_mini"))
    cfg = D.DetTrainConfig(steps=40, batch_size=2, optimizer="sgd", lr=1e6, warmup=1)
    log = D.train_detector(det, cfg, seed=0, test=D.held_out_scenes(2))
    assert log["diverged"] and log["final"] is None and log["diverged_at"] < 40


def test_parallel_runs_give_the_results_of_serial_runs():
    """Two worker processes of one thread each change the arithmetic's thread count only."""
    cfg = D.DetTrainConfig(steps=3, batch_size=2, optimizer="adam", warmup=1)
    jobs = [D.Job(model="retinanet_mini", seed=s, cfg=cfg, eval_scenes=2,
                  loss_kw={"gamma": g}) for s, g in ((0, 0.0), (1, 2.0))]  # fmt: skip
    serial = D.run_jobs(jobs, workers=1, progress=False)
    parallel = D.run_jobs(jobs, workers=2, progress=False)
    for a, b in zip(serial, parallel, strict=True):
        assert a["job"] == b["job"]
        la, lb = a["loss"][-1][1]["total"], b["loss"][-1][1]["total"]
        assert la == pytest.approx(lb, rel=1e-4)
    assert serial[0]["loss"][-1][1]["total"] != serial[1]["loss"][-1][1]["total"]


def test_unknown_model_or_optimizer_is_refused():
    with pytest.raises(sotazoo.SotazooError, match="not a detector"):
        D.detector(torch.nn.Linear(2, 2))
    det = D.detector(sotazoo.create_model("retinanet_mini"))
    with pytest.raises(sotazoo.SotazooError, match="optimizer"):
        D.train_detector(det, D.DetTrainConfig(steps=1, optimizer="lbfgs"), seed=0)


@pytest.mark.parametrize("paper", ["retinanet", "yolov3"])
def test_demo_threshold_is_the_best_f1_of_the_shipped_weights(paper):
    """The site's demo draws boxes scoring >= demo.SCORE_THRESHOLD: the threshold where F1 (IoU
    0.5, right class) of the shipped demo weights peaks on held-out scenes, among 0.2 ... 0.5."""
    import importlib

    demo = importlib.import_module(f"sotazoo.papers.{paper}.demo")
    det = D.detector(sotazoo.create_model(f"{paper}_mini", weights="sotazoo", progress=False))
    points = D.operating_points(det, D.held_out_scenes(300), (0.2, 0.3, 0.4, 0.5))
    best = max(p["f1"] for p in points)
    (chosen,) = [p for p in points if p["threshold"] == demo.SCORE_THRESHOLD]
    assert chosen["f1"] >= best - 0.005, points
    assert points[0]["recall"] > points[-1]["recall"]  # lower threshold, more found
    assert points[0]["precision"] < points[-1]["precision"]
    assert chosen["recall"] > 0.4 and chosen["precision"] > 0.4, chosen


def test_operating_points_of_perfect_and_empty_detections():
    scenes = D.held_out_scenes(4)
    det = D.detector(sotazoo.create_model("retinanet_mini"))
    n = [len(b) for b in scenes["boxes"]]
    det.detect = lambda images: [
        {"boxes": torch.from_numpy(b), "labels": torch.from_numpy(lb),
         "scores": torch.linspace(0.9, 0.5, k)}  # fmt: skip
        for b, lb, k in zip(scenes["boxes"], scenes["labels"], n, strict=True)
    ]
    hi, lo = D.operating_points(det, scenes, (0.1, 0.95))
    assert hi["recall"] == hi["precision"] == hi["f1"] == 1.0
    assert lo["recall"] == 0.0 and lo["f1"] == 0.0


@pytest.mark.parametrize("paper", ["retinanet", "yolov3"])
def test_shipped_demo_weights_reproduce_their_logged_metrics(paper):
    """The packaged demo weights: sha256 checked on load, and the held-out COCO AP written in
    their training log is what pycocotools gives for them now, on the same 500 scenes."""
    import json
    from pathlib import Path

    name = f"{paper}_mini"
    w = sotazoo.get_weights(name, "sotazoo")
    log_path = (Path(sotazoo.__file__).parent / w.packaged).with_name(f"{name}.sotazoo.log.json")
    log = json.loads(log_path.read_text())
    assert log["sha256"] == w.sha256 and log["eval_scenes"] == 500
    model = sotazoo.create_model(name, weights="sotazoo", progress=False)
    got = D.evaluate_detector(D.detector(model), D.held_out_scenes(log["eval_scenes"]))
    # Equal on the CPU that trained them (AMD EPYC). Elsewhere float32 kernels move scores by
    # ulps, which can flip a detection at the score threshold or an NMS IoU tie: each flip moves
    # AP over the 500 scenes by under 1e-3, so 2e-3 allows a few, not a change of model.
    assert got["map"] == pytest.approx(log["metrics"]["heldout_map"], abs=2e-3)
    assert got["ap50"] == pytest.approx(log["metrics"]["heldout_ap50"], abs=2e-3)
    assert w.metrics["heldout_map"] == log["metrics"]["heldout_map"]
    assert got["ap50"] > 0.3  # it finds the shapes: the demo is worth showing
