"""Synthetic persons for DPIG at laptop scale: articulated figures in clothes on textured ground.

Market-1501 cannot ship with the project, so the laptop experiments use people drawn here, made
so that DPIG's three factors are real and known: the pose (18 COCO keypoints of an articulated
figure: one of 8 pose templates with jittered joint angles, scale and position), the foreground
(the colours of the upper clothes, trousers, hair and skin: each body region the encoder crops
carries its own colour) and the background (a crop of one of 8 images bundled with
scikit-image, the grey textures tinted). Everything is seeded and offline.

A sample is first a set of factors (`sample_factors`), then an image (`render`), so that two
samples can exchange one factor group (`swap_factors`) and be drawn again: the ground truth of a
factor swap. `render` also derives what DPIG takes, with the official conventions
(`keypoints.py`) scaled from Market-1501's 128x64 to the image's height: the heatmaps (disc
radius 4 at 128 rows, 2 at 64), the pose mask (radius 7, 4 at 64), the 7 body-region boxes (6 and
10 pixel margins, 3 and 5 at 64); plus the drawn silhouette, which the model never sees.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from sotazoo.errors import InputError
from sotazoo.papers.disentangled_person.keypoints import (
    NUM_KEYPOINTS,
    keypoint_heatmaps,
    part_boxes,
    pose_mask,
)

BASE_H, BASE_W = 128, 64  # the figure is laid out in Market-1501's frame, then scaled
SUPERSAMPLE = 2  # drawn at 2x and averaged: anti-aliased edges

UPPER = (("red", (0.80, 0.14, 0.14)), ("blue", (0.15, 0.30, 0.80)), ("green", (0.15, 0.62, 0.25)),
         ("yellow", (0.92, 0.82, 0.18)), ("white", (0.92, 0.92, 0.90)), ("black", (0.10, 0.10, 0.12)),
         ("purple", (0.52, 0.20, 0.65)), ("orange", (0.95, 0.52, 0.12)))  # fmt: skip
LOWER = (("jeans", (0.18, 0.25, 0.45)), ("black", (0.08, 0.08, 0.08)), ("grey", (0.50, 0.50, 0.52)),
         ("khaki", (0.70, 0.62, 0.42)), ("brown", (0.42, 0.26, 0.14)), ("sky", (0.55, 0.72, 0.90)))  # fmt: skip
HAIR = (("black", (0.06, 0.05, 0.05)), ("brown", (0.40, 0.24, 0.10)),
        ("blond", (0.88, 0.76, 0.40)), ("grey", (0.66, 0.66, 0.66)))  # fmt: skip
SKIN = (("light", (0.96, 0.80, 0.68)), ("medium", (0.78, 0.57, 0.40)), ("dark", (0.42, 0.28, 0.18)))
SHOES = (0.16, 0.14, 0.13)
# scikit-image's bundled pictures (no download); grey textures get a fixed tint
BACKGROUNDS = (("brick", (0.85, 0.52, 0.42)), ("grass", (0.52, 0.80, 0.45)),
               ("gravel", (0.86, 0.80, 0.64)), ("coffee", None), ("chelsea", None), ("rocket", None),
               ("astronaut", None), ("immunohistochemistry", None))  # fmt: skip
# Joint angles in radians, away from the body's midline being positive: right upper arm, right
# forearm (relative to the upper arm), left upper arm, left forearm, right thigh, right shin,
# left thigh, left shin.
POSES = (("stand", (0.15, 0.05, 0.15, 0.05, 0.06, 0.0, 0.06, 0.0)),
         ("walk_right", (0.45, 0.3, -0.15, -0.1, 0.35, -0.2, -0.1, 0.25)),
         ("walk_left", (-0.15, -0.1, 0.45, 0.3, -0.1, 0.25, 0.35, -0.2)),
         ("arms_up", (2.6, 0.2, 2.6, 0.2, 0.08, 0.0, 0.08, 0.0)),
         ("arms_out", (1.45, 0.1, 1.45, 0.1, 0.08, 0.0, 0.08, 0.0)),
         ("hands_on_hips", (0.7, -1.9, 0.7, -1.9, 0.1, 0.0, 0.1, 0.0)),
         ("wave", (2.3, 0.6, 0.15, 0.05, 0.06, 0.0, 0.06, 0.0)),
         ("wide_stance", (0.35, 0.1, 0.35, 0.1, 0.38, -0.15, 0.38, -0.15)))  # fmt: skip
ANGLE_JITTER = 0.12
# Which factors each group holds (`swap_factors`).
FACTOR_GROUPS = {
    "pose": ("pose", "angles", "scale", "shift", "visible"),
    "foreground": ("upper", "lower", "hair", "skin", "tint", "texture"),
    "background": ("background", "crop"),
}
LABELS = ("pose", "upper", "lower", "hair", "skin", "background")

# The figure in the 128x64 frame: (row, column offset from the midline); r_* at negative offsets
# (a person facing the camera has its right side on the image's left).
_NECK, _NOSE = (30.0, 0.0), (19.0, 0.0)
_EYES, _EARS = (16.0, 3.0), (18.0, 6.0)
_SHOULDER, _HIP = (33.0, 11.0), (67.0, 7.0)
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 19.0, 17.0, 24.0, 23.0
_RADIUS = {"upper_arm": 4.2, "forearm": 3.6, "hand": 3.0, "thigh": 5.6, "shin": 4.6, "shoe": 4.0,
           "neck": 3.4, "head": 7.5}  # fmt: skip


@dataclass(frozen=True)
class Persons:
    """A batch of synthetic persons, as DPIG takes them (see the module docstring).

    Attributes:
        images: (N, 3, H, W) in [-1, 1].
        keypoints: (N, 18, 3) (row, column, visibility), integer pixels; (0, 0, 0) if hidden.
        heatmaps: (N, 18, H, W) of +1 / -1. fg_mask: (N, 1, H, W) pose mask of 0 / 1.
        silhouette: (N, 1, H, W) the fraction of each pixel the drawn body covers (1: a pixel
            of the person alone, 0: of the background alone), for evaluation only.
        boxes: (N, 7, 4) [y1, x1, y2, x2] pixels. box_vis: (N, 7) of 0 / 1.
        labels: name -> (N,) int64 class ids: pose template, upper / lower / hair / skin colour,
            background picture.
        factors: the numpy factors the batch was drawn from (`render(factors)` draws it again).
    """

    images: torch.Tensor
    keypoints: torch.Tensor
    heatmaps: torch.Tensor
    fg_mask: torch.Tensor
    silhouette: torch.Tensor
    boxes: torch.Tensor
    box_vis: torch.Tensor
    labels: dict[str, torch.Tensor]
    factors: dict[str, np.ndarray]

    def __len__(self) -> int:
        return self.images.shape[0]

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """(image, heatmaps, fg_mask, boxes, box_vis): `Dpig.forward`'s arguments."""
        return self.images, self.heatmaps, self.fg_mask, self.boxes, self.box_vis


def sample_factors(n: int, *, seed: int) -> dict[str, np.ndarray]:
    """Factors of `n` random persons (numpy arrays with a leading axis of n)."""
    if not isinstance(n, int) or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n!r}")
    rng = np.random.default_rng(seed)
    pose = rng.integers(0, len(POSES), n)
    angles = np.array([POSES[p][1] for p in pose], np.float64).reshape(n, 8)
    visible = np.ones((n, NUM_KEYPOINTS), bool)
    visible[:, 14:16] = rng.random((n, 2)) > 0.1  # eyes, ears: a detector misses some
    visible[:, 16:18] = rng.random((n, 2)) > 0.25
    return {
        "pose": pose,
        "angles": angles + rng.normal(0, ANGLE_JITTER, (n, 8)),
        "scale": rng.uniform(0.85, 1.0, n),
        "shift": rng.uniform(-1, 1, (n, 2)) * (4.0, 5.0),
        "visible": visible,
        "upper": rng.integers(0, len(UPPER), n),
        "lower": rng.integers(0, len(LOWER), n),
        "hair": rng.integers(0, len(HAIR), n),
        "skin": rng.integers(0, len(SKIN), n),
        "tint": rng.normal(0, 0.03, (n, 4, 3)),  # per-person shade of each colour
        "texture": rng.integers(0, 2**31, n),  # seed of the cloth's pixel noise
        "background": rng.integers(0, len(BACKGROUNDS), n),
        "crop": rng.random((n, 3)),  # where and how large the background crop is
    }


def swap_factors(factors: dict[str, np.ndarray], group: str, order) -> dict[str, np.ndarray]:
    """`factors` with the `group` ("pose", "foreground" or "background") of sample i taken from
    sample order[i]; the other groups stay."""
    if group not in FACTOR_GROUPS:
        raise InputError(f"unknown factor group {group!r}; one of {sorted(FACTOR_GROUPS)}")
    order = np.asarray(order)
    return {k: (v[order] if k in FACTOR_GROUPS[group] else v) for k, v in factors.items()}


def make_persons(n: int, *, seed: int = 0, size: tuple[int, int] = (64, 32)) -> Persons:
    """`n` random persons at `size` (H, W): `render(sample_factors(n, seed=seed), size)`."""
    return render(sample_factors(n, seed=seed), size)


# --------------------------------------------------------------------------- geometry


def _joints(f: dict[str, np.ndarray], i: int) -> np.ndarray:
    """(18, 2) (row, column) of person i in the 128x64 frame."""
    a = f["angles"][i]
    pts = np.zeros((NUM_KEYPOINTS, 2))
    pts[0], pts[1] = _NOSE, _NECK
    for side, s in ((0, -1.0), (1, 1.0)):  # right, then left
        sh, hip = (_SHOULDER[0], s * _SHOULDER[1]), (_HIP[0], s * _HIP[1])
        arm, fore, thigh, shin = (
            a[4 * 0 + 2 * side],
            a[1 + 2 * side],
            a[4 + 2 * side],
            a[5 + 2 * side],
        )
        elbow = np.add(sh, _UPPER_ARM * np.array([np.cos(arm), s * np.sin(arm)]))
        wrist = elbow + _FOREARM * np.array([np.cos(arm + fore), s * np.sin(arm + fore)])
        knee = np.add(hip, _THIGH * np.array([np.cos(thigh), s * np.sin(thigh)]))
        ankle = knee + _SHIN * np.array([np.cos(thigh + shin), s * np.sin(thigh + shin)])
        j = 2 if side == 0 else 5
        pts[j : j + 3] = sh, elbow, wrist
        j = 8 if side == 0 else 11
        pts[j : j + 3] = hip, knee, ankle
        pts[14 + side] = (_EYES[0], s * _EYES[1])
        pts[16 + side] = (_EARS[0], s * _EARS[1])
    # scale about the frame's centre, shift, then squeeze into the frame if a limb leaves it
    pts = (pts - (64.0, 0.0)) * f["scale"][i] + (64.0, 0.0) + f["shift"][i]
    top, bottom = pts[:, 0].min() - 9.0, pts[:, 0].max() + 5.0  # head and shoes around them
    if top < 1.0 or bottom > BASE_H - 2.0:
        lo, hi = max(top, 1.0), min(bottom, BASE_H - 2.0)
        k = min(1.0, (hi - lo) / (bottom - top))
        pts[:, 0] = (pts[:, 0] - top) * k + (lo if top < 1.0 else hi - (bottom - top) * k)
    half = np.abs(pts[:, 1]).max() + 6.0
    if half > BASE_W / 2 - 1.0:
        pts[:, 1] *= (BASE_W / 2 - 1.0) / half
    pts[:, 1] += BASE_W / 2
    return pts


def keypoints_of(factors: dict[str, np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """(N, 18, 3) float32 (row, column, visibility), rounded to pixels of an image of `size`
    like a detector's peaks; hidden keypoints are (0, 0, 0) as in the official records."""
    h, w = size
    n = len(factors["pose"])
    out = np.zeros((n, NUM_KEYPOINTS, 3), np.float32)
    for i in range(n):
        p = _joints(factors, i) * (h / BASE_H, w / BASE_W)
        out[i, :, 0] = np.clip(np.round(p[:, 0]), 0, h - 1)
        out[i, :, 1] = np.clip(np.round(p[:, 1]), 0, w - 1)
        out[i, :, 2] = factors["visible"][i]
    out[..., :2] *= out[..., 2:]
    return out


# --------------------------------------------------------------------------- drawing


@functools.cache
def _background_image(k: int) -> np.ndarray:
    from sotazoo.data.sr_photos import photograph

    name, tint = BACKGROUNDS[k]
    img = photograph(name).astype(np.float32) / 255  # a grey picture: three equal channels
    return img[..., :1] * np.asarray(tint, np.float32) if tint is not None else img


def _background(k: int, crop: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    src = _background_image(k)
    sh, sw = src.shape[:2]
    ch = int(min(sh, 2 * sw) * (0.35 + 0.55 * crop[2]))  # a 2:1 window, 35-90 % of the picture
    cw = max(1, ch * hw[1] // hw[0])
    y0 = int(crop[0] * (sh - ch))
    x0 = int(crop[1] * (sw - cw))
    return resize(src[y0 : y0 + ch, x0 : x0 + cw], hw, order=1, anti_aliasing=True)


def _segment(yy, xx, p0, p1, r) -> np.ndarray:
    d = np.subtract(p1, p0)
    t = np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / max(float(d @ d), 1e-9), 0, 1)
    return (yy - p0[0] - t * d[0]) ** 2 + (xx - p0[1] - t * d[1]) ** 2 <= r * r


def _convex(yy, xx, corners) -> np.ndarray:
    inside = np.ones(yy.shape, bool)
    sign = None
    for a, b in zip(corners, np.roll(corners, -1, 0), strict=True):
        cross = (b[1] - a[1]) * (yy - a[0]) - (b[0] - a[0]) * (xx - a[1])
        sign = np.sign(cross.mean()) if sign is None else sign
        inside &= cross * sign >= 0
    return inside


def _draw(f: dict[str, np.ndarray], i: int, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) in [0, 1], the body's coverage of each pixel (H, W)) of person i."""
    h, w = hw
    s = SUPERSAMPLE
    sy, sx = h / BASE_H, w / BASE_W
    p = _joints(f, i) * (sy, sx)
    u = np.sqrt(sy * sx) * f["scale"][i]  # radii scale with the figure
    yy, xx = np.meshgrid((np.arange(h * s) + 0.5) / s - 0.5, (np.arange(w * s) + 0.5) / s - 0.5,
                         indexing="ij")  # fmt: skip
    img = _background(int(f["background"][i]), f["crop"][i], (h * s, w * s))
    tint = f["tint"][i]
    colour = {
        "upper": np.clip(np.add(UPPER[f["upper"][i]][1], tint[0]), 0, 1),
        "lower": np.clip(np.add(LOWER[f["lower"][i]][1], tint[1]), 0, 1),
        "hair": np.clip(np.add(HAIR[f["hair"][i]][1], tint[2]), 0, 1),
        "skin": np.clip(np.add(SKIN[f["skin"][i]][1], tint[3]), 0, 1),
        "shoes": np.asarray(SHOES),
    }
    body = np.zeros(yy.shape, bool)

    def paint(mask: np.ndarray, name: str) -> None:
        img[mask] = colour[name]
        body[mask] = True

    R = {k: v * u for k, v in _RADIUS.items()}
    for hip, knee, ankle in ((8, 9, 10), (11, 12, 13)):
        paint(_segment(yy, xx, p[hip], p[knee], R["thigh"]), "lower")
        paint(_segment(yy, xx, p[knee], p[ankle], R["shin"]), "lower")
        paint(_segment(yy, xx, p[ankle], p[ankle] + (1.5 * u, 0), R["shoe"]), "shoes")
    widen = np.array([[0, -2.0 * u], [0, 2.0 * u], [0, 3.0 * u], [0, -3.0 * u]])  # shoulders, hips
    paint(_convex(yy, xx, p[[2, 5, 11, 8]] + widen), "upper")
    for sh, el, wr in ((2, 3, 4), (5, 6, 7)):
        paint(_segment(yy, xx, p[sh], p[el], R["upper_arm"]), "upper")
        paint(_segment(yy, xx, p[el], p[wr], R["forearm"]), "upper")
        paint(_segment(yy, xx, p[wr], p[wr], R["hand"]), "skin")
    paint(_segment(yy, xx, p[1], p[0], R["neck"]), "skin")
    centre = p[0] + (-2.0 * u, 0)
    head = _segment(yy, xx, centre, centre, R["head"])
    paint(head, "skin")
    paint(head & (yy < centre[0] - 1.5 * u), "hair")
    # the cloth's texture: a little seeded noise on the person, none on the background
    noise = np.random.default_rng(int(f["texture"][i])).normal(0, 0.03, img.shape)
    img = np.clip(img + noise * body[..., None], 0, 1)
    img = img.reshape(h, s, w, s, 3).mean((1, 3))
    return img, body.reshape(h, s, w, s).mean((1, 3))


def render(factors: dict[str, np.ndarray], size: tuple[int, int] = (64, 32)) -> Persons:
    """Draw the persons of `factors` at `size` (H, W) and derive DPIG's inputs."""
    h, w = size
    if not (isinstance(h, int) and isinstance(w, int) and h >= 16 and w >= 8):
        raise InputError(f"size must be (H, W) integers of at least (16, 8), got {size!r}")
    n = len(factors["pose"])
    kp = keypoints_of(factors, size)
    r = h / BASE_H  # the official radii and margins are for 128 rows
    images, sil, masks, boxes, vis = [], [], [], [], []
    for i in range(n):
        img, body = _draw(factors, i, size)
        images.append(img)
        sil.append(body)
        masks.append(pose_mask(kp[i], h, w, radius=max(1, round(7 * r))))
        b, v = part_boxes(kp[i], h, w, margin=max(1, round(6 * r)),
                          margin_single=max(1, round(10 * r)))  # fmt: skip
        boxes.append(b)
        vis.append(v)

    def stack(xs, shape):
        return torch.from_numpy(np.asarray(xs, np.float32).reshape(n, *shape))

    keypoints = torch.from_numpy(kp)
    return Persons(
        images=stack(images, (h, w, 3)).permute(0, 3, 1, 2).contiguous() * 2 - 1,
        keypoints=keypoints,
        heatmaps=keypoint_heatmaps(keypoints, h, w, radius=max(1, round(4 * r))),
        fg_mask=stack(masks, (1, h, w)),
        silhouette=stack(sil, (1, h, w)),
        boxes=stack(boxes, (7, 4)),
        box_vis=stack(vis, (7,)),
        labels={k: torch.as_tensor(factors[k], dtype=torch.int64) for k in LABELS},
        factors=factors,
    )
