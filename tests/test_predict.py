"""`sotazoo predict` / `sotazoo.predict`: each task's output on files, checked against the model
run directly, and the errors a first-time user meets."""

import json

import numpy as np
import pytest
import torch

import sotazoo
from sotazoo.cli import main
from sotazoo.errors import InputError, SotazooError
from sotazoo.transforms import load_image, save_png


def test_super_resolution_writes_the_whole_image_enlarged_and_clamped(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((3, 30, 41)).astype(np.float32)  # not square, not the demo's 64
    src = save_png(image, tmp_path / "in.png")
    out = sotazoo.predict("edsr_baseline_x2", [src], out=tmp_path / "out", progress=False)
    r = out["results"][0]
    assert r["output_size"] == [82, 60] and out["weights"] == "sotazoo"
    written = load_image(r["output"])
    model = sotazoo.create_model("edsr_baseline_x2", weights="sotazoo").eval()
    with torch.inference_mode():
        direct = model(torch.from_numpy(load_image(src))[None])[0].clamp(0, 1).numpy()
    # the PNG holds the clamped output rounded to 8 bits: at most half a level apart
    assert np.abs(written - direct).max() <= 0.5 / 255 + 1e-6
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved["weights_sha256"] == sotazoo.get_weights("edsr_baseline_x2", "sotazoo").sha256


def test_detection_boxes_come_back_in_the_files_pixels(tmp_path):
    """A demo scene pasted into a wider canvas: the boxes are the graph's on the centre square,
    shifted by the square's offset (scale 1: the square is the demo's 128 px)."""
    from sotazoo.papers.yolov3.demo import samples

    scene = load_image(samples(tmp_path / "s")[0])  # 128 x 128
    wide = np.zeros((3, 128, 200), dtype=np.float32)
    wide[:, :, 36:164] = scene
    out = sotazoo.predict("yolov3_mini", [save_png(wide, tmp_path / "wide.png"),
                                          save_png(scene, tmp_path / "sq.png")],
                          out=tmp_path / "out", progress=False)  # fmt: skip
    wide_dets, square_dets = (r["detections"] for r in out["results"])
    assert square_dets, "the demo weights find the objects of a demo scene"
    assert len(wide_dets) == len(square_dets)
    for a, b in zip(wide_dets, square_dets, strict=True):
        assert a["label"] == b["label"] and a["label"] in ("square", "circle", "triangle", "star")
        # the same pixels in, so the same boxes up to the 0.1 px rounding of the JSON
        assert np.allclose(np.array(a["box"]) - [36, 0, 36, 0], b["box"], atol=0.11)
    assert (tmp_path / "out" / "wide.yolov3_mini.png").is_file()


def test_classification_gives_the_top5_with_names(tmp_path):
    from sotazoo.papers.senet.demo import samples

    path = samples(tmp_path / "s")[0]
    r = sotazoo.predict("seresnet_mini", [path], out=tmp_path, progress=False)["results"][0]
    probs = [t["probability"] for t in r["top5"]]
    names = sotazoo.get_weights("seresnet_mini", "sotazoo").transforms["classes"]
    assert probs == sorted(probs, reverse=True) and 0.0 < sum(probs) <= 1.0 + 1e-5
    assert all(t["label"] == names[t["index"]] for t in r["top5"])


def test_vqa_reads_the_question_in_words(tmp_path):
    from sotazoo.data.sort_of_clevr import (
        COLOURS,
        describe_question,
        encode_question,
        make_sort_of_clevr,
        parse_question,
    )

    for c in range(len(COLOURS)):
        for relational in (False, True):
            for sub in range(3):
                q = encode_question(c, relational, sub)
                text = describe_question(q)
                assert np.array_equal(parse_question(text.upper().rstrip("?")), q), text
    with pytest.raises(InputError, match="COLOUR one of red"):
        parse_question("what colour is the sky?")
    d = make_sort_of_clevr(1, seed=31, questions_per_image=0)
    path = save_png(d["images"][0], tmp_path / "scene.png")
    out = sotazoo.predict("rn_mini", [path], question="Is the blue object on the left?",
                          out=tmp_path, progress=False)  # fmt: skip
    assert out["results"][0]["answer"]["text"] in ("yes", "no")


def test_what_a_first_time_user_gets_wrong(tmp_path, capsys):
    src = save_png(np.zeros((3, 8, 8), np.float32), tmp_path / "x.png")
    with pytest.raises(SotazooError, match="sotazoo sample sagan_mini"):
        sotazoo.predict("sagan_mini", [src], out=tmp_path)
    with pytest.raises(SotazooError, match="--weights official"):
        sotazoo.predict("seresnet50", [src], out=tmp_path)  # no packaged weights: no download
    with pytest.raises(InputError, match="no such file"):
        sotazoo.predict("edsr_baseline_x2", [tmp_path / "missing.png"], out=tmp_path)
    with pytest.raises(InputError, match="pass --question"):
        sotazoo.predict("rn_mini", [src], out=tmp_path)
    assert main(["predict", "seresnet_mini", str(src), "--out", str(tmp_path / "o")]) == 0
    assert "wrote" in capsys.readouterr().err
    assert (tmp_path / "o" / "predictions.json").is_file()


def test_tiles_with_context_give_the_whole_image_pass():
    """EDSR baseline's receptive radius (37 px of input: 37 3x3 convs before the upsampler) is
    within the 48 px margin, so tiled and whole passes agree up to float32 summation order."""
    from sotazoo.inference import tiled

    model = sotazoo.create_model("edsr_baseline_x2", weights="sotazoo").eval()
    x = torch.rand(1, 3, 90, 130, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole, parts = model(x), tiled(model, x, tile=40, margin=48)
        cut = tiled(model, x, tile=40, margin=4)  # too little context: the seams show
    assert parts.shape == whole.shape == (1, 3, 180, 260)
    # outputs are O(1); 1e-4 is a few hundred float32 ulps of summation-order difference
    assert (parts - whole).abs().max() <= 1e-4
    assert (cut - whole).abs().max() > 1e-3


def test_full_size_geometry_maps_the_input_back_onto_the_file():
    """Darknet's letterbox and torchvision's min/max resize, checked on a flat image: the content
    lands where the returned map says, the rest is the fill."""
    from sotazoo.transforms import letterbox, resize_min_max

    image = np.full((3, 30, 60), 0.25, dtype=np.float32)
    canvas, (sx, sy, px, py) = letterbox(image, 64, 0.5)
    assert (sx, sy, px, py) == (64 / 60, 32 / 30, 0.0, 16.0)
    assert np.all(canvas[:, 16:48] == 0.25) and np.all(canvas[:, :16] == 0.5)
    assert np.all(canvas[:, 48:] == 0.5)
    # the canvas corners of the content are the file's corners
    assert ((0 - px) / sx, (16 - py) / sy, (64 - px) / sx, (48 - py) / sy) == (0, 0, 60, 30)
    resized, (sx, sy) = resize_min_max(image, 40, 70)  # 40/30 would make the long side 80 > 70
    assert resized.shape == (3, 35, 70) and (sx, sy) == (70 / 60, 35 / 30)


def test_full_size_yolov3_letterboxes_as_the_paper_code_does(tmp_path):
    """yolov3_tiny (the official weights' transforms: letterbox to 416 on grey 0.5) from a
    checkpoint file, against the paper module's own `letterbox`/`unletterbox` around the
    detector: the same boxes, scores and labels."""
    from sotazoo.papers.yolov3.method import detector, letterbox, unletterbox

    torch.manual_seed(0)
    model = sotazoo.create_model("yolov3_tiny").eval()
    torch.save(model.state_dict(), tmp_path / "tiny.pth")
    image = np.random.default_rng(1).random((3, 90, 150)).astype(np.float32)
    src = save_png(image, tmp_path / "in.png")
    out = sotazoo.predict("yolov3_tiny", [src], weights=tmp_path / "tiny.pth", out=tmp_path,
                          threshold=0.5, progress=False)  # fmt: skip
    dets = out["results"][0]["detections"]
    x, info = letterbox(torch.from_numpy(load_image(src)), 416)
    det = detector(model, size=416)
    with torch.inference_mode():
        ref = det.postprocess(model(x[None]), score_thresh=0.5)[0]
    boxes = unletterbox(ref["boxes"], info)
    boxes = torch.stack([boxes[:, 0].clamp(0, 150), boxes[:, 1].clamp(0, 90),
                         boxes[:, 2].clamp(0, 150), boxes[:, 3].clamp(0, 90)], 1)  # fmt: skip
    assert dets and len(dets) == len(boxes), "seed 0's random tiny YOLO scores some boxes > 0.5"
    # JSON rounds boxes to 0.1 px and scores to 1e-4
    assert np.allclose([d["box"] for d in dets], boxes.numpy(), atol=0.051)
    assert np.allclose([d["score"] for d in dets], ref["scores"].numpy(), atol=5.1e-5)
    names = [n for n in _coco_categories() if n not in ("__background__", "N/A")]
    assert [d["label"] for d in dets] == [names[i] for i in ref["labels"].tolist()]


def _coco_categories():
    from torchvision.models.detection import RetinaNet_ResNet50_FPN_Weights

    return RetinaNet_ResNet50_FPN_Weights.COCO_V1.meta["categories"]


def test_full_size_retinanet_gives_torchvisions_detections(tmp_path, monkeypatch):
    """torchvision's RetinaNet (random weights, the classifier's prior bias zeroed so that boxes
    score ~0.5-0.75) as the oracle: its own resize, normalisation and box mapping against ours,
    from its checkpoint file. The transforms' sizes are shrunk to 256 for speed; a 200 px square
    then needs no padding in either, so the inputs are the same pixels."""
    from torchvision.models.detection import retinanet_resnet50_fpn

    import sotazoo.inference as inference

    torch.manual_seed(0)
    tv = retinanet_resnet50_fpn(weights=None, weights_backbone=None, min_size=256, max_size=256,
                                score_thresh=0.3).eval()  # fmt: skip
    with torch.no_grad():
        tv.head.classification_head.cls_logits.bias.zero_()
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    src = save_png(np.random.default_rng(0).random((3, 200, 200)).astype(np.float32),
                   tmp_path / "in.png")  # fmt: skip
    with torch.no_grad():
        ref = tv([torch.from_numpy(load_image(src))])[0]
    real = inference._transforms

    def small(model, weights):
        w, t = real(model, weights)
        return w, {**t, "min_size": 256, "max_size": 256}

    monkeypatch.setattr(inference, "_transforms", small)
    out = sotazoo.predict("retinanet_resnet50_fpn", [src], weights=tmp_path / "tv.pth",
                          out=tmp_path, threshold=0.3, progress=False)  # fmt: skip
    dets = out["results"][0]["detections"]
    n = len(dets)
    assert n == 100  # the paper's (Detectron's) 100 per image; torchvision keeps 300
    # Same network and pixels: float32 differences only (boxes rounded to 0.1 px, scores to
    # 1e-4 in the JSON). Two near-equal scores may swap places between the two implementations on
    # another CPU, so each of ours is matched in torchvision's list (its first 110: the 100th
    # and 101st may swap too), and the scores are compared in order, which near-ties keep.
    names = _coco_categories()
    ref_boxes, ref_labels = ref["boxes"][:110].numpy(), [names[i] for i in ref["labels"][:110]]
    for d in dets:
        close = np.abs(ref_boxes - d["box"]).max(axis=1) <= 0.06
        assert any(c and lb == d["label"] for c, lb in zip(close, ref_labels, strict=True)), d
    assert np.allclose([d["score"] for d in dets], ref["scores"][:n].numpy(), atol=1e-4)


def test_threshold_is_for_detectors(tmp_path):
    src = save_png(np.zeros((3, 8, 8), np.float32), tmp_path / "x.png")
    with pytest.raises(InputError, match="no --threshold"):
        sotazoo.predict("seresnet_mini", [src], out=tmp_path, threshold=0.5)
    with pytest.raises(InputError, match=r"in \[0, 1\)"):
        sotazoo.predict("yolov3_mini", [src], out=tmp_path, threshold=1.5)


def test_instances_come_back_in_the_files_pixels(tmp_path):
    """Mask R-CNN's demo scene pasted into a wider canvas: the detections are the demo graph's on
    the centre square, boxes shifted by the square's offset, each mask's pixels those of the
    graph's mask above 0.5 (scale 1: the square is the demo's 128 px), and none outside it; a
    --threshold keeps the scores above it."""
    from sotazoo.papers.mask_rcnn import demo
    from sotazoo.transforms import preprocess

    scene = load_image(demo.samples(tmp_path / "s")[0]["path"])  # 128 x 128
    wide = np.zeros((3, 128, 200), dtype=np.float32)
    wide[:, :, 36:164] = scene
    out = sotazoo.predict("maskrcnn_mini", [save_png(wide, tmp_path / "wide.png")],
                          out=tmp_path / "out", progress=False)  # fmt: skip
    dets = out["results"][0]["detections"]
    model = sotazoo.create_model("maskrcnn_mini", weights="sotazoo").eval()
    w = sotazoo.get_weights("maskrcnn_mini", "sotazoo")
    x = preprocess(load_image(tmp_path / "wide.png"), dict(w.transforms))
    with torch.inference_mode():
        boxes, scores, labels, masks = demo.Instances(model)(torch.from_numpy(x))
    assert len(dets) == len(scores) >= 2
    for d, b, s, c, m in zip(dets, boxes.tolist(), scores.tolist(), labels.tolist(), masks,
                             strict=True):  # fmt: skip
        assert d["box"] == pytest.approx([b[0] + 36, b[1], b[2] + 36, b[3]], abs=0.06)
        assert d["score"] == round(s, 4) and d["label"] == w.transforms["classes"][c]
        assert d["mask_pixels"] == int((m > 0.5).sum())
    assert load_image(out["results"][0]["output"]).shape == (3, 128, 200)
    high = sotazoo.predict("maskrcnn_mini", [tmp_path / "wide.png"], out=tmp_path / "o2",
                           threshold=0.9, progress=False)["results"][0]["detections"]  # fmt: skip
    assert [d["score"] for d in high] == [d["score"] for d in dets if d["score"] > 0.9]


def test_instances_refuse_full_size_weights_before_downloading(tmp_path):
    src = save_png(np.zeros((3, 64, 64), dtype=np.float32), tmp_path / "a.png")
    with pytest.raises(SotazooError, match="demo's size only"):
        sotazoo.predict("maskrcnn_resnet50_fpn", [src], weights="official", out=tmp_path,
                        progress=False)  # fmt: skip
