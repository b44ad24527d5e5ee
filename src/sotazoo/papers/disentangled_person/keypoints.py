"""DPIG's pose representation: 18 COCO keypoints as (row, column, visibility), and what the
official data preparation makes of them (charliememory/Disentangled-Person-Image-Generation at
e470386, `datasets/convert_market.py`, `utils.py`, `trainer.py`). Written here from that code's
behaviour, used by the synthetic persons (`persons.py`), the folder loader (`data.py`) and the
pose sampler (`stage2.py`), so that all three hand the network the same tensors:

- pose heatmaps: one channel per keypoint, +1 on a solid disc of radius 4 around the keypoint's
  integer pixel and -1 elsewhere; an invisible keypoint's channel is -1 everywhere. Not a
  Gaussian: the released Market / DeepFashion models read these binary discs
  (`coord2channel_simple_rcv` then `tf_poseInflate`, whose 48 offsets are exactly the pixels at
  distance <= 4).
- the foreground mask: discs of radius 7 along 23 limbs (both ends present), sampled every 7
  pixels, then a 5x5 closing (`_getPoseMask(peaks, H, W, radius=7)`; stored as `pose_mask_r6`).
- the 7 body-region boxes (the first 7 of `get_part_bbox37`): for each region the extent of its
  present keypoints, widened by 6 pixels (10 for a single keypoint) and clipped to the image;
  [y1, x1, y2, x2] in pixels, and a visibility flag (0, with box [0, 0, 1, 1], when none of the
  region's keypoints is present).

What is ours: a keypoint's disc is drawn from its coordinates clamped into the image (the
official scatter expects them inside already); boxes are clipped to (H-1, W-1) for any image size
where `convert_market.py` writes 127 and 63.
"""

from __future__ import annotations

import numpy as np
import torch

from sotazoo.errors import InputError

NUM_KEYPOINTS = 18
# OpenPose's COCO-18 order (the official comments name the same 18 points).
KEYPOINT_NAMES = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
)  # fmt: skip
# `limbSeq` of `_getPoseMask`, 0-based: the segments the foreground mask is drawn along.
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (1, 16), (1, 17), (8, 11), (11, 5),
    (8, 2), (16, 17),
)  # fmt: skip
# The 7 body regions of `get_part_bbox37` that the BodyROI7 model crops (its parts 1-7).
BODY_PARTS = (
    (0, 1, 2, 5, 14, 15, 16, 17),  # head and shoulders
    (2, 3, 4, 5, 6, 7, 8, 11),  # upper body with both arms
    (8, 9, 10, 11, 12, 13),  # lower body
    (5, 6, 7),  # left arm
    (2, 3, 4),  # right arm
    (11, 12, 13),  # left leg
    (8, 9, 10),  # right leg
)
HEATMAP_RADIUS = 4  # tf_poseInflate / py_poseInflate
MASK_RADIUS = 7  # the mask the encoder splits foreground from background with
MASK_CLOSING = 5  # dilation then erosion with a 5x5 square
BOX_MARGIN = 6  # get_part_bbox37(peaks, radius=6)
BOX_MARGIN_SINGLE = 10  # a region with one keypoint present


def _check_rcv(rcv: np.ndarray | torch.Tensor, name: str = "keypoints") -> None:
    if rcv.ndim < 2 or rcv.shape[-2:] != (NUM_KEYPOINTS, 3):
        raise InputError(
            f"{name}: expected (..., {NUM_KEYPOINTS}, 3) rows of (row, column, visibility), "
            f"got shape {tuple(rcv.shape)}"
        )


def keypoint_heatmaps(rcv: torch.Tensor, height: int, width: int,
                      radius: int = HEATMAP_RADIUS) -> torch.Tensor:  # fmt: skip
    """The official pose input: (B, 18, 3) (row, column, visibility) in pixels -> (B, 18, H, W)
    of +1 on a disc of `radius` around each visible keypoint's integer pixel, -1 elsewhere."""
    _check_rcv(rcv)
    r = rcv[..., 0].clamp(0, height - 1).floor()  # (B, K); tf.to_int32 of coordinates >= 0
    c = rcv[..., 1].clamp(0, width - 1).floor()
    rows = torch.arange(height, dtype=rcv.dtype, device=rcv.device)
    cols = torch.arange(width, dtype=rcv.dtype, device=rcv.device)
    d2 = (rows[:, None] - r[..., None, None]).square() + (cols - c[..., None, None]).square()
    on = (d2 <= radius * radius) & (rcv[..., 2, None, None] > 0)  # (B, K, H, W)
    return on.to(rcv.dtype) * 2 - 1


def normalise_keypoints(rcv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 18, 3) pixels -> the pose autoencoder's 54-d input: row / H * 2 - 1, column / W * 2 - 1
    and the visibility, interleaved per keypoint (r0, c0, v0, r1, ...) (trainer.py, PoseAE)."""
    _check_rcv(rcv)
    r = rcv[..., 0] / height * 2 - 1
    c = rcv[..., 1] / width * 2 - 1
    return torch.stack([r, c, rcv[..., 2]], -1).flatten(-2)  # (B, 54)


def denormalise_keypoints(coords: torch.Tensor, visible: torch.Tensor, height: int,
                          width: int) -> torch.Tensor:  # fmt: skip
    """The pose decoder's (B, 36) normalised (row, column) pairs and (B, 18) visibilities ->
    (B, 18, 3) pixels, clamped into the image (`coord2channel_simple_rcv(is_normalized=True)`)."""
    rc = coords.reshape(coords.shape[0], NUM_KEYPOINTS, 2)
    r = ((rc[..., 0] + 1) / 2 * height).clamp(0, height - 1)
    c = ((rc[..., 1] + 1) / 2 * width).clamp(0, width - 1)
    return torch.stack([r, c, visible], -1)


def _disc_offsets(radius: int) -> np.ndarray:
    d = np.arange(-radius, radius + 1)
    i, j = np.meshgrid(d, d, indexing="ij")
    keep = i * i + j * j <= radius * radius
    return np.stack([i[keep], j[keep]], 1)  # (n, 2)


def pose_mask(rcv: np.ndarray, height: int, width: int, radius: int = MASK_RADIUS) -> np.ndarray:
    """The rough body mask (H, W) of 0/1 float32 from one person's (18, 3) keypoints: discs
    along every limb whose two ends are present, then a 5x5 closing (`_getPoseMask`)."""
    from skimage.morphology import dilation, erosion

    _check_rcv(rcv)
    dense = np.zeros((height, width), np.float32)
    disc = _disc_offsets(radius)

    def stamp(r: float, c: float) -> None:
        pts = disc + (int(r), int(c))
        ok = (pts[:, 0] >= 0) & (pts[:, 0] < height) & (pts[:, 1] >= 0) & (pts[:, 1] < width)
        dense[pts[ok, 0], pts[ok, 1]] = 1

    for a, b in LIMBS:
        if rcv[a, 2] <= 0 or rcv[b, 2] <= 0:
            continue
        (r0, c0), (r1, c1) = rcv[a, :2], rcv[b, :2]
        stamp(r0, c0)
        stamp(r1, c1)
        n = int(np.hypot(r0 - r1, c0 - c1) / radius)
        for i in range(1, n) if n > 1 else ():  # convert_market.py divides truly, int() cuts
            stamp(r0 + (r1 - r0) * i / n, c0 + (c1 - c0) * i / n)
    square = np.ones((MASK_CLOSING, MASK_CLOSING), bool)
    return erosion(dilation(dense, square), square)


def part_boxes(rcv: np.ndarray, height: int, width: int, *, margin: int = BOX_MARGIN,
               margin_single: int = BOX_MARGIN_SINGLE,
               parts: tuple[tuple[int, ...], ...] = BODY_PARTS) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(boxes (P, 4) [y1, x1, y2, x2] float32 pixels, visibility (P,) float32) of the body
    regions from one person's (18, 3) keypoints (`get_part_bbox37`, its first 7 regions;
    `margin` pixels around two or more keypoints, `margin_single` around one)."""
    _check_rcv(rcv)
    boxes = np.zeros((len(parts), 4), np.float32)
    vis = np.zeros(len(parts), np.float32)
    for k, idx in enumerate(parts):
        present = [i for i in idx if rcv[i, 2] > 0]
        if not present:
            boxes[k] = (0, 0, 1, 1)
            continue
        ys, xs = rcv[present, 0], rcv[present, 1]
        m = margin if len(present) > 1 else margin_single
        boxes[k] = (max(0, ys.min() - m), max(0, xs.min() - m),
                    min(height - 1, ys.max() + m), min(width - 1, xs.max() + m))  # fmt: skip
        vis[k] = 1
    return boxes, vis


def part_boxes_deepfashion(rcv: np.ndarray, height: int, width: int,
                           parts: tuple[tuple[int, ...], ...] = BODY_PARTS
                           ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The DeepFashion records' boxes (`convert_DF.get_part_bbox`): margins of 10 pixels (20 for
    a single keypoint) when both lower legs are seen ("whole body"), else 20 (40), and the nose
    raised by 10 (25) pixels before the extents are taken."""
    _check_rcv(rcv)
    seen = rcv[:, 2] > 0
    whole = bool(seen[[12, 13]].any() and seen[[9, 10]].any())  # parts 14 and 16 of the 37
    margin, single, lift = (10, 20, 10) if whole else (20, 40, 25)
    lifted = rcv.copy()
    lifted[0, 0] = max(0, lifted[0, 0] - lift)
    return part_boxes(lifted, height, width, margin=margin, margin_single=single, parts=parts)
