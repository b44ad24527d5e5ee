"""Synthetic detection scenes: a seeded object-detection benchmark generated with numpy.

Each `size` x `size` image (128 by default) holds 1 to 6 objects of 4 classes (`DETECTION_CLASSES`:
square, circle, triangle, cross) of random colour, size (8 to 48 px, uniform: about 80% of the
objects are COCO-"small", area < 32², the rest "medium"), rotation and position, over a cluttered
background that is not made of objects: a colour with a gradient, smooth random colour fields
(blobs) and texture, thin lines, two kinds of distractor shapes that look like the classes but
are none of them (rings and bars), and pixel noise. The clutter lies under the objects; later
objects are painted over earlier ones, so objects occlude each other, and they may run off the
image.

Annotations follow COCO. A box is the tight box of the object's *visible* pixels, as COCO's boxes
are derived from polygons drawn around what can be seen (COCO is not amodal): a detector cannot
know where a hidden part ends, and the box of what is seen is what it can be scored on. `area` is
the visible pixel count (COCO's segment area, which its evaluation uses for the small / medium /
large split). An object with more than 60% of its own pixels hidden, by later objects or by the
image border, is dropped from the annotations (`min_visible=0.4`; about 3% of the objects). It
stays painted and unlabelled: a detection of such a fragment counts as a false positive, as one of
an unlabelled object does in COCO. Boxes are in pixels, xyxy, with the pixel of row i and column j
covering x in [j, j + 1) and y in [i, i + 1), so a box is always inside [0, size] and at least
one pixel wide and high. Labels are 0-based indices into `classes`; `to_coco` turns a batch into a
COCO ground-truth dict with 1-based category ids, as pycocotools expects.

Drawing: every shape is a signed distance function d(u, v) in its own rotated frame, in pixels,
negative inside. A pixel's coverage is clip(0.5 - d, 0, 1), evaluated at pixel centres: one-pixel
anti-aliasing without supersampling. A pixel belongs to a shape when d <= 0 (coverage >= 1/2);
that hard mask decides occlusion, boxes and areas. Each shape is evaluated only inside its own
window, so 10,000 scenes take under 10 s on one core. One numpy Generator (PCG64) draws
everything image by image, so the same seed gives the same scenes, and the first k scenes of a
batch of n are the scenes of a batch of k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "DETECTION_CLASSES",
    "DISTRACTOR_SHAPES",
    "ShapeSpec",
    "draw_scene",
    "make_detection_scenes",
    "to_coco",
]

DETECTION_CLASSES = ("square", "circle", "triangle", "cross")
# Painted as clutter, never annotated: a ring is a hollow circle, a bar a 5:1 rectangle (a cross
# without its second arm). They make "a crisp flat-coloured shape" not enough to be an object.
DISTRACTOR_SHAPES = ("ring", "bar")
_KNOTS = 12  # the background's smooth parts live on a 12 x 12 grid of knots


@dataclass(frozen=True)
class ShapeSpec:
    """One shape to paint.

    Attributes:
        shape: a name of `DETECTION_CLASSES` or `DISTRACTOR_SHAPES`.
        cx, cy: centre in pixels (x to the right, y down; the image spans [0, size]).
        size: side of the shape's bounding square before rotation (a square's side, a circle's
            diameter, a triangle's base and height, a cross's span).
        angle: rotation in radians, counter-clockwise on screen.
        colour: RGB in [0, 1].
    """

    shape: str
    cx: float
    cy: float
    size: float
    angle: float = 0.0
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)


# ---------------------------------------------------------------- shapes as distance functions


def _sdf(shape: str, u: np.ndarray, v: np.ndarray, h: float) -> np.ndarray:
    """Signed distance (pixels, negative inside; exact along edges, approximate near corners)
    of `shape` with half-size `h` at local coordinates (u, v), v pointing down."""
    au, av = np.abs(u), np.abs(v)
    if shape == "square":
        return np.maximum(au, av) - h
    if shape == "circle":
        return np.sqrt(u * u + v * v) - h
    if shape == "triangle":
        # Apex (0, -h), base corners (±h, h): the bottom edge and the two slanted edges, whose
        # lines are 2|u| - v - h = 0, with outward normals of length sqrt(5).
        return np.maximum(v - h, (2.0 * au - v - h) / math.sqrt(5.0))
    if shape == "cross":
        t = h / 3.0  # arms a third of the span thick
        return np.minimum(np.maximum(au - h, av - t), np.maximum(au - t, av - h))
    if shape == "ring":
        return np.abs(np.sqrt(u * u + v * v) - 0.75 * h) - 0.25 * h
    if shape == "bar":
        return np.maximum(au - h, av - h / 5.0)
    raise ValueError(f"unknown shape {shape!r}; known: {DETECTION_CLASSES + DISTRACTOR_SHAPES}")


def _coverage(d: np.ndarray) -> np.ndarray:
    """Pixel coverage clip(0.5 - d, 0, 1) of a signed distance d, as float32."""
    return np.minimum(np.maximum(0.5 - d, 0.0), 1.0).astype(np.float32)


def _paint(img: np.ndarray, spec: ShapeSpec) -> tuple[tuple[int, int, int, int], np.ndarray, int]:
    """Paint `spec` onto `img` (3, S, S) in place.

    Returns:
        The clipped window (y0, y1, x0, x1), the shape's hard mask inside it, and the number of
        the shape's pixels over its whole, unclipped extent (for the visible fraction).
    """
    s = img.shape[-1]
    h = spec.size / 2.0
    # Half the window: the rotated bounding square's half-diagonal plus a pixel of anti-aliasing.
    e = h * math.sqrt(2.0) + 1.0
    y0, y1 = math.floor(spec.cy - e), math.ceil(spec.cy + e)
    x0, x1 = math.floor(spec.cx - e), math.ceil(spec.cx + e)
    dy = (np.arange(y0, y1, dtype=np.float64) + 0.5 - spec.cy)[:, None]  # pixel centres
    dx = (np.arange(x0, x1, dtype=np.float64) + 0.5 - spec.cx)[None, :]
    # Rotate the image offsets into the shape's frame (counter-clockwise on screen, y down).
    c, sn = math.cos(spec.angle), math.sin(spec.angle)
    u = c * dx - sn * dy
    v = sn * dx + c * dy
    d = _sdf(spec.shape, u, v, h)
    full = int((d <= 0).sum())
    # Clip the window to the image, then composite: img <- img (1 - a) + colour a.
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, s), max(x0, 0), min(x1, s)
    d = d[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    alpha = _coverage(d)
    colour = np.asarray(spec.colour, dtype=np.float32)[:, None, None]
    win = img[:, cy0:cy1, cx0:cx1]
    win += alpha * (colour - win)
    return (cy0, cy1, cx0, cx1), d <= 0, full


# ---------------------------------------------------------------- scenes


def draw_scene(
    objects: Sequence[ShapeSpec],
    *,
    size: int = 128,
    background: np.ndarray | None = None,
    classes: Sequence[str] = DETECTION_CLASSES,
    min_visible: float = 0.4,
) -> dict[str, np.ndarray]:
    """Paint `objects` in order (later ones on top) and annotate those that remain visible.

    Args:
        objects: the shapes, bottom first; each `shape` must be one of `classes`.
        size: image side in pixels.
        background: (3, size, size) image to paint on (not modified); mid-grey if None.
        classes: the class names; a label is an index into them.
        min_visible: an object is annotated only if at least this fraction of its pixels (its
            full extent, off-image parts included) is visible in the final image.

    Returns:
        "image" (3, size, size) float32; "boxes" (m, 4) float32 xyxy of the visible pixels;
        "labels" (m,) int64; "areas" (m,) float32 visible pixel counts; "kept" (m,) int64, the
        index in `objects` of each annotation; "semantic" (size, size) uint8, per pixel 0 for
        the background (clutter included) or 1 + the class of the topmost object covering it,
        annotated or not (a segmentation label has no visibility threshold); "masks" (m, size,
        size) bool, the visible pixels of each annotated object (its instance mask).
    """
    if background is None:
        img = np.full((3, size, size), 0.5, dtype=np.float32)
    else:
        if background.shape != (3, size, size):
            raise ValueError(f"background must be (3, {size}, {size}), got {background.shape}")
        img = np.array(background, dtype=np.float32)
    # owner[y, x]: index of the topmost object covering the pixel, -1 for none.
    owner = np.full((size, size), -1, dtype=np.int16)
    windows, fulls, labels = [], [], []
    for k, spec in enumerate(objects):
        if spec.shape not in classes:
            raise ValueError(f"object {k}: shape {spec.shape!r} is not one of {tuple(classes)}")
        (y0, y1, x0, x1), mask, full = _paint(img, spec)
        owner[y0:y1, x0:x1][mask] = k
        windows.append((y0, y1, x0, x1))
        fulls.append(full)
        labels.append(classes.index(spec.shape))
    boxes, areas, kept = [], [], []
    for k, (y0, y1, x0, x1) in enumerate(windows):
        vis = owner[y0:y1, x0:x1] == k
        area = int(vis.sum())
        if area == 0 or area < min_visible * fulls[k]:
            continue  # hidden too much: painted, not annotated
        rows, cols = np.flatnonzero(vis.any(axis=1)), np.flatnonzero(vis.any(axis=0))
        boxes.append((x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1))
        areas.append(area)
        kept.append(k)
    lut = np.asarray([0, *(1 + c for c in labels)], dtype=np.uint8)
    return {
        "image": img,
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "labels": np.asarray([labels[k] for k in kept], dtype=np.int64),
        "areas": np.asarray(areas, dtype=np.float32),
        "kept": np.asarray(kept, dtype=np.int64),
        "semantic": lut[owner.astype(np.int64) + 1],
        "masks": owner[None] == np.asarray(kept, dtype=np.int16).reshape(-1, 1, 1),
    }


@lru_cache(maxsize=16)
def _lerp_matrix(n_out: int, knots: int, pixels: bool) -> np.ndarray:
    """(n_out, knots) bilinear weights from `knots` evenly spaced values on [0, 1] to `n_out`
    points: pixel centres (i + 0.5) / n_out if `pixels`, else evenly spaced points. With it a
    (knots, knots) grid G becomes the smooth field M G M^T."""
    x = (np.arange(n_out) + 0.5) / n_out if pixels else np.linspace(0.0, 1.0, n_out)
    eye = np.eye(knots)
    p = np.linspace(0.0, 1.0, knots)
    return np.stack([np.interp(x, p, eye[k]) for k in range(knots)], axis=1).astype(np.float32)


def _random_colour(rng: np.random.Generator, avoid: list[np.ndarray], min_l1: float) -> np.ndarray:
    """A uniform RGB colour at least `min_l1` (L1) away from each of `avoid`, if one of 16
    tries is; otherwise the last try."""
    for _ in range(16):
        colour = rng.uniform(0.0, 1.0, size=3)
        if all(np.abs(colour - a).sum() >= min_l1 for a in avoid):
            break
    return colour


def _background(
    rng: np.random.Generator, size: int, lines: tuple[int, int], distractors: tuple[int, int]
) -> np.ndarray:
    """Clutter that is not an object: colour + gradient + smooth colour fields + lines + rings
    and bars."""
    # Everything smooth is built on a 12 x 12 grid of knots, then bilinearly upsampled once: a
    # colour with a linear gradient (exact on any grid), mixed at 20-60% with blobs (a 5 x 5 grid
    # of random colours, interpolated to the 12 x 12 knots) and at 0-25% with a finer random
    # texture (12 x 12 random colours).
    ramp = np.linspace(-1.0, 1.0, _KNOTS, dtype=np.float32)
    base = rng.uniform(0.2, 0.8, size=(3, 1, 1)).astype(np.float32)
    grad = rng.normal(0.0, 0.15, size=(3, 2, 1, 1)).astype(np.float32)
    grid = base + grad[:, 0] * ramp[:, None] + grad[:, 1] * ramp[None, :]  # (3, K, K)
    m = _lerp_matrix(_KNOTS, 5, pixels=False)
    blobs = m @ rng.uniform(0.0, 1.0, size=(3, 5, 5)).astype(np.float32) @ m.T
    grid += np.float32(rng.uniform(0.2, 0.6)) * (blobs - grid)
    texture = rng.uniform(0.0, 1.0, size=(3, _KNOTS, _KNOTS)).astype(np.float32)
    grid += np.float32(rng.uniform(0.0, 0.25)) * (texture - grid)
    m = _lerp_matrix(size, _KNOTS, pixels=True)
    img = m @ grid @ m.T  # (3, size, size)
    # Thin lines, 1 to 2.5 px wide, 20 to 100 px long, as distance-to-segment masks.
    for _ in range(rng.integers(lines[0], lines[1] + 1)):
        x0, y0 = rng.uniform(0, size, 2)
        angle = rng.uniform(0, math.pi)
        length = rng.uniform(20.0, 100.0)
        half_w = rng.uniform(0.5, 1.25)
        colour = rng.uniform(0.0, 1.0, size=3).astype(np.float32)[:, None, None]
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        wy0, wy1 = max(math.floor(min(y0, y1) - 2), 0), min(math.ceil(max(y0, y1) + 2), size)
        wx0, wx1 = max(math.floor(min(x0, x1) - 2), 0), min(math.ceil(max(x0, x1) + 2), size)
        if wy1 <= wy0 or wx1 <= wx0:
            continue
        py = (np.arange(wy0, wy1, dtype=np.float64) + 0.5 - y0)[:, None]
        px = (np.arange(wx0, wx1, dtype=np.float64) + 0.5 - x0)[None, :]
        t = np.clip((px * (x1 - x0) + py * (y1 - y0)) / length**2, 0.0, 1.0)
        d = np.sqrt((px - t * (x1 - x0)) ** 2 + (py - t * (y1 - y0)) ** 2) - half_w
        alpha = _coverage(d)
        win = img[:, wy0:wy1, wx0:wx1]
        win += alpha * (colour - win)
    # Distractor shapes, 12 to 40 px.
    for _ in range(rng.integers(distractors[0], distractors[1] + 1)):
        s = float(np.exp(rng.uniform(math.log(12.0), math.log(40.0))))
        cx, cy = rng.uniform(0, size, 2)
        spec = ShapeSpec(
            shape=DISTRACTOR_SHAPES[rng.integers(len(DISTRACTOR_SHAPES))],
            cx=float(cx),
            cy=float(cy),
            size=s,
            angle=float(rng.uniform(0, 2 * math.pi)),
            colour=tuple(rng.uniform(0.0, 1.0, size=3).tolist()),
        )
        _paint(img, spec)
    return img


def make_detection_scenes(
    n: int,
    *,
    size: int = 128,
    seed: int,
    classes: Sequence[str] = DETECTION_CLASSES,
    min_objects: int = 1,
    max_objects: int = 6,
    object_size: tuple[float, float] = (8.0, 48.0),
    min_visible: float = 0.4,
    lines: tuple[int, int] = (0, 3),
    distractors: tuple[int, int] = (0, 2),
    noise: float = 0.03,
    semantic: bool = False,
    masks: bool = False,
) -> dict:
    """Generate `n` detection scenes.

    Args:
        n: number of images.
        size: image side in pixels.
        seed: seed of the numpy Generator that draws everything.
        classes: class names, a subset of `DETECTION_CLASSES` (e.g. 3 for `retinanet_mini`).
        min_objects, max_objects: objects painted per image, uniform in this range (inclusive);
            fewer may be annotated (see `min_visible`).
        object_size: range of the objects' `ShapeSpec.size`, sampled uniformly.
        min_visible: the least visible fraction of an object for it to be annotated.
        lines, distractors: ranges (inclusive) of clutter lines and distractor shapes per image.
        noise: standard deviation of the (uniform) pixel noise.
        semantic: also return the label maps (`draw_scene`'s "semantic"); the scenes and every
            draw are the same either way.
        masks: also return each image's instance masks (`draw_scene`'s "masks"), likewise.

    Returns:
        A dict: "images" (n, 3, size, size) float32 in [0, 1]; per image, lists of "boxes"
        (m_i, 4) float32 xyxy in pixels, "labels" (m_i,) int64 in [0, len(classes)) and "areas"
        (m_i,) float32 visible pixel counts; "classes" (the names) and "size"; with `semantic`,
        "semantic" (n, size, size) uint8 (0 = background, 1 + class); with `masks`, "masks", per
        image (m_i, size, size) bool, in the order of its boxes.
    """
    classes = tuple(classes)
    unknown = [c for c in classes if c not in DETECTION_CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names of {DETECTION_CLASSES}, got {classes}")
    if not 0 <= min_objects <= max_objects:
        raise ValueError(f"need 0 <= min_objects <= max_objects, got {min_objects, max_objects}")
    if not 0 < object_size[0] <= object_size[1]:
        raise ValueError(f"object_size must be a range of positive sizes, got {object_size}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    maps = np.empty((n, size, size), dtype=np.uint8) if semantic else None
    boxes, labels, areas, instance_masks = [], [], [], []
    for i in range(n):
        bg = _background(rng, size, lines, distractors)
        specs = []
        for _ in range(rng.integers(min_objects, max_objects + 1)):
            s = float(rng.uniform(*object_size))
            # Centres at least s / 4 from the border: objects run off the image, but at most 55%
            # of one is cut off, even in a corner (the worst case, a triangle, checked over sizes
            # and angles), so the topmost object is always annotated when min_visible <= 0.45.
            cx, cy = rng.uniform(0.25 * s, size - 0.25 * s, 2)
            shape = classes[rng.integers(len(classes))]
            angle = 0.0 if shape == "circle" else float(rng.uniform(0, 2 * math.pi))
            # Keep the object visible: its colour differs from the background's mean around its
            # centre and from the earlier objects it may overlap (centres closer than the mean
            # of the two sizes).
            y, x = int(min(cy, size - 1)), int(min(cx, size - 1))
            avoid = [bg[:, max(y - 4, 0) : y + 5, max(x - 4, 0) : x + 5].mean(axis=(1, 2))]
            avoid += [
                np.asarray(o.colour)
                for o in specs
                if math.hypot(o.cx - cx, o.cy - cy) < (o.size + s) / 2
            ]
            colour = _random_colour(rng, avoid, min_l1=0.5)
            specs.append(ShapeSpec(shape, float(cx), float(cy), s, angle, tuple(colour.tolist())))
        scene = draw_scene(
            specs, size=size, background=bg, classes=classes, min_visible=min_visible
        )
        img = scene["image"]
        # Pixel noise, uniform with standard deviation `noise` (a Gaussian's costs 5x more to
        # draw and looks the same).
        grain = rng.random((3, size, size), dtype=np.float32) - np.float32(0.5)
        img += np.float32(noise * math.sqrt(12.0)) * grain
        np.clip(img, 0.0, 1.0, out=images[i])
        boxes.append(scene["boxes"])
        labels.append(scene["labels"])
        areas.append(scene["areas"])
        if maps is not None:
            maps[i] = scene["semantic"]
        if masks:
            instance_masks.append(scene["masks"])
    out = {
        "images": images,
        "boxes": boxes,
        "labels": labels,
        "areas": areas,
        "classes": classes,
        "size": size,
    }
    if masks:
        out["masks"] = instance_masks
    return out | ({"semantic": maps} if maps is not None else {})


def to_coco(scenes: dict) -> dict:
    """A COCO ground-truth dict (as in instances_*.json) of scenes from `make_detection_scenes`.

    Image ids are the indices of the images in the batch (0-based), so a detection of image i has
    `image_id` i; annotation ids count from 1 (pycocotools reads id 0 as "unmatched"); category
    ids are label + 1. `bbox` is [x, y, width, height] in pixels and `area` the visible pixel
    count, as in COCO, where area is the segment's. Scenes drawn with `masks=True` also get each
    object's `segmentation`, its visible pixels as COCO's run-length encoding (pycocotools').
    """
    size = int(scenes["size"])
    images, annotations = [], []
    masks = scenes.get("masks") or [None] * len(scenes["boxes"])
    for i, (boxes, labels, areas, image_masks) in enumerate(
        zip(scenes["boxes"], scenes["labels"], scenes["areas"], masks, strict=True)
    ):
        images.append({"id": i, "width": size, "height": size, "file_name": f"{i:06d}.png"})
        rles = [None] * len(boxes) if image_masks is None else encode_masks(image_masks)
        for (x1, y1, x2, y2), label, area, rle in zip(
            boxes.tolist(), labels.tolist(), areas.tolist(), rles, strict=True
        ):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": float(area),
                    "iscrowd": 0,
                }
                | ({"segmentation": rle} if rle is not None else {})
            )
    categories = [
        {"id": k + 1, "name": name, "supercategory": "shape"}
        for k, name in enumerate(scenes["classes"])
    ]
    return {
        "info": {"description": "sotazoo synthetic detection shapes"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def encode_masks(masks: np.ndarray) -> list[dict]:
    """COCO run-length encodings (pycocotools.mask.encode, counts as str, JSON-ready) of (m, H,
    W) binary masks."""
    from pycocotools import mask as mask_utils

    m = np.asfortranarray(np.asarray(masks, dtype=np.uint8).transpose(1, 2, 0))  # (H, W, m)
    rles = mask_utils.encode(m) if m.shape[-1] else []
    return [{"size": list(r["size"]), "counts": r["counts"].decode("ascii")} for r in rles]
