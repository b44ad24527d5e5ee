"""Irregular hole masks, generated offline, and the paper's hole-ratio bins.

The paper's 55,116 training and 24,866 test masks came from occlusion estimates between video
frames (Sec. 4.1); they are not distributed with a licence that lets us ship them. Ours are
free-form brush strokes: random walks of thick line segments with round joints, drawn until the
hole covers a target share of the image, the kind of mask later inpainting papers generate and
close to the paper's thin, curved, irregular holes. A mask is float32 (H, W), 1 on known pixels
and 0 in the hole, as the network takes it.
"""

from __future__ import annotations

import numpy as np

# Table 1's hole-to-image area ratio bins: (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6]
HOLE_BINS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))


def hole_ratio(mask: np.ndarray) -> float:
    """The share of the image's pixels that are hole (mask 0)."""
    return float((np.asarray(mask) == 0).mean())


def hole_bin(ratio: float) -> int | None:
    """The index of the Table 1 bin a hole ratio falls in (right-closed), or None outside all."""
    for i, (lo, hi) in enumerate(HOLE_BINS):
        if lo < ratio <= hi:
            return i
    return None


def irregular_mask(
    size: int, rng: np.random.Generator, *, ratio: tuple[float, float] = (0.1, 0.5),
    max_width: float = 0.12,
) -> np.ndarray:  # fmt: skip
    """A (size, size) mask whose hole ratio is drawn uniformly from `ratio` and reached by
    brush strokes (each a random walk of 4-12 segments, widths up to `max_width` x size). The
    last stroke may overshoot the target by the area of one stroke."""
    from PIL import Image, ImageDraw

    lo, hi = ratio
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"ratio must be a range within [0, 1], got {ratio}")
    target = rng.uniform(lo, hi)
    canvas = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(canvas)
    for _ in range(1000):  # strokes; the loop ends on the target long before
        if hole_ratio(np.asarray(canvas) // 255) >= target:
            break
        width = max(1, int(rng.uniform(0.02, max_width) * size))
        x, y = rng.uniform(0, size, 2)
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(4, 13))):
            angle += rng.normal(0, 0.8)  # a smooth random turn
            step = rng.uniform(0.05, 0.2) * size
            nx = float(np.clip(x + step * np.cos(angle), 0, size - 1))
            ny = float(np.clip(y + step * np.sin(angle), 0, size - 1))
            draw.line([(x, y), (nx, ny)], fill=0, width=width)
            r = width / 2
            draw.ellipse([nx - r, ny - r, nx + r, ny + r], fill=0)  # a round joint
            x, y = nx, ny
    return (np.asarray(canvas) > 127).astype(np.float32)


def mask_batch(
    n: int, size: int, *, seed: int, ratio: tuple[float, float] = (0.1, 0.5)
) -> np.ndarray:
    """`n` masks (n, 1, size, size) from one seed."""
    rng = np.random.default_rng(seed)
    return np.stack([irregular_mask(size, rng, ratio=ratio) for _ in range(n)])[:, None]
