"""Run a model on your own files: `sotazoo predict MODEL FILE...` and `sotazoo.predict`.

What a model does with a file is its task's, read from the task table (`sotazoo.tasks`: the
task's demo widget), and done the way the site's demo does it, with the same pre-processing
(`sotazoo.transforms`) and the paper's own demo hooks (the paper contract):

- `classify`: the image centre-cropped and resized as the weights say, top-5 classes with their
  probabilities (names from the weights' `classes`, or torchvision's ImageNet names for a
  1000-class model);
- `detect`: with the demo weights, the paper's demo graph (`demo.export_module`: decode + NMS at
  the demo's score threshold) on the centre square; with full-size weights (the official ones),
  the whole image as the weights' transforms say (`letterbox`: darknet's; `min_size`/`max_size`:
  torchvision's resize, padded to a square of whole strides with the mean colour, which the
  network sees as zero, as torchvision pads) through the paper's detector (`method.detector`),
  kept above `threshold`. Boxes are mapped back to the file's pixels, drawn into
  `<stem>.<model>.png` and listed in the JSON;
- `instances` (instance segmentation): the paper's demo graph (the whole model, the demo's score
  threshold, or `threshold`, and the mask paste) on the centre square, as `detect`'s demo weights;
  each mask resized back onto the file's pixels and binarised at 0.5, painted with its box into
  `<stem>.<model>.png`, its pixel count listed in the JSON;
- `image2image` (super-resolution, restoration): the whole image at its own resolution (in tiles
  with context, `tiled`, so a large photo fits in memory), the output clamped to [0, 1] and
  written to `<stem>.<model>.png`;
- `vqa`: the image and `question`, in words of the demo's question format (`QUESTION_FORMATS`);
- `generate` takes no file: `sotazoo sample` draws a grid from seeds.

Outputs are written atomically into `out` (default: the current folder), with
`predictions.json` listing every file's result, the model and the weights used (their sha256).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sotazoo.errors import InputError, SotazooError
from sotazoo.fileio import atomic_path, write_json_atomic

WIDGETS = ("classify", "detect", "instances", "image2image", "vqa")  # generate: `sample`


def _sort_of_clevr(text: str):
    from sotazoo.data.sort_of_clevr import parse_question

    return parse_question(text)


# A vqa demo's `question_format` (its spec_extra) -> the parser of a question in words.
QUESTION_FORMATS = {"sort_of_clevr": _sort_of_clevr}


def default_weights(model: str) -> str:
    """The weights `predict` loads when none are named: ours (packaged, offline) where a model
    has them. A model with only downloadable weights must be told so: `--weights official`."""
    from sotazoo.registry import list_weights

    tags = {w.tag: w for w in list_weights(model)}
    if "sotazoo" in tags:
        return "sotazoo"
    if tags:
        some = next(iter(tags.values()))
        where = f"downloads {some.urls[0]}" if some.urls else "a file you pass by path"
        raise SotazooError(
            f"{model} ships no weights with sotazoo; pass --weights {some.tag} ({where}, checked "
            f"by sha256) or --weights PATH to a checkpoint (`sotazoo list --weights {model}`)"
        )
    raise SotazooError(
        f"{model} has no trained weights (`sotazoo list --weights`): its predictions would be "
        "noise. Pass --weights PATH to a checkpoint of yours."
    )


def _transforms(model: str, weights: str | Path):
    """(the weights entry or None for a file, the pre-processing of the weights)."""
    from sotazoo.registry import list_weights, resolve_weights
    from sotazoo.weights import Weights

    w = resolve_weights(model, weights)
    if isinstance(w, Weights):
        return w, dict(w.transforms)
    # a checkpoint file: the pre-processing of the model's own entries (the same network)
    entries = list_weights(model)
    return None, dict(entries[0].transforms) if entries else {}


def _labels(t: dict, n: int) -> list[str]:
    if "classes" in t and len(t["classes"]) == n:
        return [str(c) for c in t["classes"]]
    if n == 1000:  # torchvision ships ImageNet's class names with its weights' metadata
        from torchvision.models import ResNet50_Weights

        return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    return [str(i) for i in range(n)]


def _coco_names(n: int) -> list[str] | None:
    """COCO's class names for a detector with `n` class slots: 91 (torchvision's weights keep
    COCO's original ids, with background and unused slots) or 80 (darknet's contiguous ones)."""
    from torchvision.models.detection import RetinaNet_ResNet50_FPN_Weights

    slots = list(RetinaNet_ResNet50_FPN_Weights.COCO_V1.meta["categories"])
    if n == len(slots):
        return slots
    used = [c for c in slots if c not in ("__background__", "N/A")]
    return used if n == len(used) else None


def _classify_input(image: np.ndarray, t: dict) -> np.ndarray:
    from sotazoo.transforms import center_crop_square, normalize, preprocess, resize_bilinear

    if "size" in t:
        return preprocess(image, t)
    if "resize" in t and "crop" in t:  # ImageNet evaluation: short side to `resize`, centre crop
        square = resize_bilinear(center_crop_square(image), int(t["resize"]))
        off = (int(t["resize"]) - int(t["crop"])) // 2
        square = square[:, off : off + int(t["crop"]), off : off + int(t["crop"])]
        return normalize(square, t["mean"], t["std"])[None].astype(np.float32)
    raise SotazooError(f"no image size in the weights' transforms {sorted(t)}")


def _square_geometry(shape: tuple[int, int, int], size: int) -> tuple[int, int, float]:
    """(top, left, scale) of the centre square of a (3, H, W) image resized to `size`: a point
    (x, y) of the resized square is (left + x * scale, top + y * scale) in the file."""
    _, h, w = shape
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side / size


# Full-size detection: boxes shown above this score (darknet's `detector test` default; the demo
# graphs carry their own), and the padded input a multiple of the coarsest stride (RetinaNet's P7).
DISPLAY_THRESHOLD = 0.5
PAD_TO = 128


def _full_size(t: dict) -> bool:
    """Whether a detector's weights say how to run a whole image (else: the demo's square)."""
    return "letterbox" in t or ("min_size" in t and "max_size" in t)


def _detector_input(image: np.ndarray, t: dict) -> tuple[np.ndarray, tuple[float, ...]]:
    """The (3, S, S) input of a full-size detector and the map back to the file's pixels,
    (ax, bx, ay, by): x_file = ax + bx * x (likewise y), for transforms that are `_full_size`."""
    from sotazoo.transforms import letterbox, resize_min_max

    if "letterbox" in t:
        x, (sx, sy, px, py) = letterbox(image, int(t["size"]), float(t["letterbox"]))
        return x, (-px / sx, 1 / sx, -py / sy, 1 / sy)
    if "min_size" in t and "max_size" in t:
        r, (sx, sy) = resize_min_max(image, int(t["min_size"]), int(t["max_size"]))
        side = -(-max(r.shape[1:]) // PAD_TO) * PAD_TO
        mean = np.asarray(t.get("mean", (0.0,) * 3), dtype=np.float32)
        x = np.empty((3, side, side), dtype=np.float32)
        x[:] = mean[:, None, None]  # normalised to zero, torchvision's padding value
        x[:, : r.shape[1], : r.shape[2]] = r
        return x, (0.0, 1 / sx, 0.0, 1 / sy)
    raise SotazooError(f"no full-size detection input in the weights' transforms {sorted(t)}")


TILE, MARGIN = 512, 48  # input pixels; MARGIN covers the receptive radius of our SR networks


def tiled(net, x, *, tile: int = TILE, margin: int = MARGIN):
    """`net(x)` for an image-to-image network, computed on tiles of `tile` input pixels with
    `margin` pixels of context on each side (cut from the output), so a photo of any size fits
    in memory. Equal to the whole-image pass wherever the network's receptive radius is below
    `margin` (EDSR baseline: 37 px; tested); an image within one tile runs whole."""
    import torch

    _, _, h, w = x.shape
    if h <= tile and w <= tile:
        return net(x)
    rows = []
    scale = None
    for top in range(0, h, tile):
        row = []
        for left in range(0, w, tile):
            t0, l0 = max(0, top - margin), max(0, left - margin)
            t1, l1 = min(h, top + tile + margin), min(w, left + tile + margin)
            y = net(x[:, :, t0:t1, l0:l1])
            scale = scale or y.shape[-1] // (l1 - l0)
            bh, bw = min(tile, h - top), min(tile, w - left)
            dt, dl = (top - t0) * scale, (left - l0) * scale
            row.append(y[:, :, dt : dt + bh * scale, dl : dl + bw * scale])
        rows.append(torch.cat(row, dim=3))
    return torch.cat(rows, dim=2)


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _draw_boxes(image: np.ndarray, dets: list[dict], path: Path) -> None:
    """The boxes on the image; boxes that coincide (IoU >= 0.9: one object scored for two
    classes by their independent sigmoids) are drawn once, with both classes on the tag."""
    from PIL import Image, ImageDraw

    rgb = np.clip(np.rint(image.transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(im)
    width = max(2, round(min(im.size) / 200))
    groups: list[list[dict]] = []
    for d in sorted(dets, key=lambda d: -d["score"]):
        g = next((g for g in groups if _iou(g[0]["box"], d["box"]) >= 0.9), None)
        if g is None:
            groups.append([d])
        else:
            g.append(d)
    for g in groups:
        x0, y0, x1, y1 = g[0]["box"]
        draw.rectangle((x0, y0, x1, y1), outline=(255, 40, 40), width=width)
        text = " / ".join(f"{d['label']} {d['score']:.2f}" for d in g)
        tx, ty = x0 + width, max(0, y0 - 12 - width)
        bbox = draw.textbbox((tx, ty), text)
        draw.rectangle(bbox, fill=(255, 255, 255))  # dark text on white: readable on any box
        draw.text((tx, ty), text, fill=(0, 0, 0))
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


class _Runner:
    def __init__(
        self, model: str, weights: str | Path | None, question: str | None, threshold: float | None
    ) -> None:
        import torch

        from sotazoo.papers._contract import paper
        from sotazoo.registry import create_model, model_entry
        from sotazoo.tasks import TASKS

        self.name = model
        pid, self.entry = model_entry(model)
        task = TASKS.get(self.entry.task)
        self.widget = task.widget if task else None
        if self.widget == "generate":
            raise SotazooError(f"{model} generates images from noise: `sotazoo sample {model}`")
        if self.widget not in WIDGETS:
            raise SotazooError(f"predict does not run {self.entry.task} models yet ({model})")
        if len(self.entry.input_size) != 3:  # region features, say: no image goes in
            raise SotazooError(f"predict runs models on images; {model} takes an input of shape "
                               f"{tuple(self.entry.input_size)} ({task.takes})")  # fmt: skip
        self.weights = weights if weights is not None else default_weights(model)
        self.w, self.t = _transforms(model, self.weights)
        if self.widget == "instances" and _full_size(self.t):  # before any download
            raise SotazooError(
                f"predict runs {model} at its demo's size only, and the weights "
                f"{self.weights!r} are full size: pass the demo weights (--weights sotazoo)"
            )
        self.net = create_model(model, weights=self.weights, progress=True).eval()
        self.paper = paper(pid)
        self.hooks = self.paper.demo
        self.torch = torch
        self.threshold = threshold
        self.question = None
        if self.widget == "vqa":
            if not question:
                raise InputError(f"{model} answers questions about an image: pass --question")
            fmt = self.hooks.spec_extra().get("question_format")
            if fmt not in QUESTION_FORMATS:
                raise SotazooError(f"{model}: its demo names no question format predict reads")
            self.question = QUESTION_FORMATS[fmt](question)
        elif question:
            raise InputError(f"{model} is a {self.entry.task} model: it takes no --question")
        if threshold is not None and not 0.0 <= threshold < 1.0:
            raise InputError(f"--threshold must be in [0, 1), got {threshold}")
        if threshold is not None and self.widget not in ("detect", "instances"):
            raise InputError(f"{model} is a {self.entry.task} model: it takes no --threshold")
        self.graph = None
        if self.widget in ("detect", "instances") and not _full_size(self.t):
            self.graph = self.hooks.export_module(self.net)
            if self.graph is None or getattr(self.graph, "size", None) is None:
                raise SotazooError(f"{model}: its paper has no detection graph to run")
            if int(self.graph.size) != int(self.t.get("size", -1)):
                raise SotazooError(
                    f"{model}: the demo's detection graph takes {self.graph.size} px inputs, but "
                    f"the weights' transforms say {self.t.get('size')} and no letterbox or "
                    "min_size/max_size to run them at full size"
                )
            if self.widget == "instances" and threshold is not None:
                self.graph.score_thresh = threshold  # the graph keeps the scores above it

    def _instances(self, image: np.ndarray, path: Path, out: Path) -> dict[str, Any]:
        """The demo graph on the centre square; boxes and masks back on the file's pixels."""
        from sotazoo.transforms import preprocess

        torch = self.torch
        size = int(self.t["size"])
        boxes, scores, labels, masks = self.graph(torch.from_numpy(preprocess(image, self.t)))
        top, left, scale = _square_geometry(image.shape, size)
        side = round(size * scale)  # the centre square's side in the file
        _, h, w = image.shape
        full = np.zeros((len(scores), h, w), dtype=bool)
        if len(scores):  # the masks at the square's resolution, resized onto its file pixels
            big = torch.nn.functional.interpolate(masks[:, None], size=(side, side),
                                                  mode="bilinear", align_corners=False)  # fmt: skip
            full[:, top : top + side, left : left + side] = (big[:, 0] > 0.5).numpy()
        names = _labels(self.t, len(self.t.get("classes", ())) or 0)
        dets = []
        for b, s, c, m in zip(boxes.tolist(), scores.tolist(), labels.tolist(), full, strict=True):
            box = [round(min(max(v, 0.0), lim), 1) for v, lim in
                   zip((left + b[0] * scale, top + b[1] * scale, left + b[2] * scale,
                        top + b[3] * scale), (w, h, w, h), strict=True)]  # fmt: skip
            label = names[c] if c < len(names) else str(c)
            dets.append({"box": box, "score": round(s, 4), "label": label,
                         "mask_pixels": int(m.sum())})  # fmt: skip
        output = out / f"{path.stem}.{self.name}.png"
        _draw_boxes(_paint_masks(image, full), dets, output)
        whole = h == w
        return {"detections": dets, "output": str(output),
                "note": "" if whole else "the centre square, as the demo sees it"}  # fmt: skip

    def run(self, path: Path, out: Path) -> dict[str, Any]:
        from sotazoo.transforms import load_image, preprocess, save_png

        torch = self.torch
        image = load_image(path)  # (3, H, W) in [0, 1]; InputError names a bad file
        result: dict[str, Any] = {"file": str(path), "size": [image.shape[2], image.shape[1]]}
        with torch.inference_mode():
            if self.widget == "classify":
                x = torch.from_numpy(_classify_input(image, self.t))
                p = torch.softmax(self.net(x)[0].float(), dim=0)
                labels = _labels(self.t, p.numel())
                top = torch.topk(p, min(5, p.numel()))
                result["top5"] = [
                    {"label": labels[i], "index": int(i), "probability": round(float(v), 6)}
                    for v, i in zip(top.values, top.indices, strict=True)
                ]
            elif self.widget == "detect":
                if self.graph is not None:  # the demo's graph on the centre square
                    size = int(self.t["size"])
                    boxes, scores, labels = self.graph(torch.from_numpy(preprocess(image, self.t)))
                    top, left, scale = _square_geometry(image.shape, size)
                    ax, bx, ay, by = left, scale, top, scale
                    names = _labels(self.t, len(self.t.get("classes", ())) or 0)
                    whole = image.shape[1] == image.shape[2]
                    result["note"] = "" if whole else "the centre square, as the demo sees it"
                else:  # full size: the whole image, through the paper's detector
                    x, (ax, bx, ay, by) = _detector_input(image, self.t)
                    det = self.paper.detector(self.net, size=x.shape[1])
                    thr = DISPLAY_THRESHOLD if self.threshold is None else self.threshold
                    found = det.postprocess(self.net(det.prepare(torch.from_numpy(x)[None])),
                                            score_thresh=thr)[0]  # fmt: skip
                    boxes, scores, labels = found["boxes"], found["scores"], found["labels"]
                    n = int(getattr(getattr(self.net, "cfg", None), "num_classes", 0))
                    names = self.t.get("classes") or _coco_names(n) or [str(i) for i in range(n)]
                    result["threshold"] = thr
                dets = []
                for b, s, c in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
                    x0, y0, x1, y1 = b
                    box = [ax + x0 * bx, ay + y0 * by, ax + x1 * bx, ay + y1 * by]
                    box = [round(min(max(v, 0.0), lim), 1)
                           for v, lim in zip(box, (image.shape[2], image.shape[1]) * 2, strict=True)]  # fmt: skip
                    label = names[c] if c < len(names) else str(c)
                    dets.append({"box": box, "score": round(s, 4), "label": label})
                result["detections"] = dets
                result["output"] = str(out / f"{path.stem}.{self.name}.png")
                _draw_boxes(image, dets, Path(result["output"]))
            elif self.widget == "instances":
                result |= self._instances(image, path, out)
            elif self.widget == "image2image":
                mean, std = self.t.get("mean", (0.0,) * 3), self.t.get("std", (1.0,) * 3)
                m = torch.tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1)
                s = torch.tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1)
                x = (torch.from_numpy(image)[None] - m) / s
                y = (tiled(self.net, x) * s + m).clamp(0.0, 1.0)[0].numpy()  # valid range only
                result["output"] = str(out / f"{path.stem}.{self.name}.png")
                result["output_size"] = [y.shape[2], y.shape[1]]
                with atomic_path(Path(result["output"])) as tmp:
                    save_png(y, tmp)
            else:  # vqa
                x = torch.from_numpy(preprocess(image, self.t))
                q = torch.from_numpy(np.asarray(self.question))[None]
                p = torch.softmax(self.net(x, q)[0].float(), dim=0)
                answers = [str(a) for a in self.t.get("answers", range(p.numel()))]
                k = int(p.argmax())
                result["answer"] = {"text": answers[k], "probability": round(float(p[k]), 6)}
        return result


def _paint_masks(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """`image` (3, H, W) with each of the (D, H, W) binary masks painted over it at 45 % in
    its own colour, the first (best) on top."""
    colours = np.asarray([[230, 25, 75], [60, 180, 75], [67, 99, 216], [245, 130, 49],
                          [145, 30, 180], [0, 128, 128]], dtype=np.float32) / 255  # fmt: skip
    out = image.copy()
    for d in range(len(masks) - 1, -1, -1):
        c = colours[d % len(colours)][:, None]
        out[:, masks[d]] = 0.45 * c + 0.55 * out[:, masks[d]]
    return out


def predict(
    model: str,
    files: Sequence[str | Path],
    *,
    weights: str | Path | None = None,
    out: str | Path = ".",
    question: str | None = None,
    threshold: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run `model` on `files` (see the module's docstring for what each task gives); write the
    outputs and `predictions.json` into `out`; return what that file holds."""
    from tqdm.auto import tqdm

    if not files:
        raise InputError("no files to predict on")
    paths = [Path(f) for f in files]
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    runner = _Runner(model, weights, question, threshold)
    if runner.w is None and isinstance(runner.weights, str | Path) and not runner.t:
        warnings.warn(f"{model}: no pre-processing is recorded for a checkpoint file; assuming "
                      "RGB in [0, 1]", stacklevel=2)  # fmt: skip
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = [runner.run(p, out) for p in tqdm(paths, desc=f"predict {model}",
                                                  disable=not progress or len(paths) < 2)]  # fmt: skip
    summary = {
        "model": model,
        "task": runner.entry.task,
        "weights": str(runner.weights),
        "weights_sha256": runner.w.sha256 if runner.w is not None else None,
        "question": question,
        "results": results,
    }
    write_json_atomic(summary, out / "predictions.json")
    return summary


def format_predictions(summary: dict) -> str:
    lines = [f"{summary['model']} ({summary['task']}), weights {summary['weights']}"]
    for r in summary["results"]:
        lines.append(f"{r['file']}:")
        for t in r.get("top5", []):
            lines.append(f"  {t['probability']:8.4f}  {t['label']}")
        for d in r.get("detections", []):
            lines.append(f"  {d['score']:.3f}  {d['label']:<12} box {d['box']}")
        if "detections" in r and not r["detections"]:
            thr = r.get("threshold", "the demo's")
            lines.append(f"  no detection above the score threshold ({thr})")
        if "answer" in r:
            a = r["answer"]
            lines.append(f"  Q: {summary['question']}\n  A: {a['text']} ({a['probability']:.3f})")
        if "output" in r:
            lines.append(f"  wrote {r['output']}")
    return "\n".join(lines)


def dumps(summary: dict) -> str:
    return json.dumps(summary, indent=2, ensure_ascii=False)
