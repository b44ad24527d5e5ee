"""Shapes-in-clutter: a seeded 10-class image classification set generated with numpy.

Each image holds one shape of a random colour, size, position and rotation, drawn anti-aliased
(4× supersampling) over a smooth random background with clutter strokes of other colours and
Gaussian noise. Class is the shape; colour, size and pose are nuisances. Nothing is downloaded,
and the same seed gives the same arrays on every machine (numpy's PCG64).
"""

from __future__ import annotations

import numpy as np

SHAPE_CLASSES = (
    "disk",
    "ring",
    "square",
    "frame",
    "triangle",
    "plus",
    "ell",
    "half-disk",
    "bar",
    "two-dots",
)
_SS = 4  # supersampling factor for anti-aliasing


def _shape_mask(cls: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of shape `cls` in its own unit coordinates (u, v), radius about 1."""
    r = np.hypot(u, v)
    au, av = np.abs(u), np.abs(v)
    m = np.maximum(au, av)
    masks = {
        0: r < 1.0,
        1: (r < 1.0) & (r > 0.6),
        2: m < 0.8,
        3: (m < 0.85) & (m > 0.5),
        4: (v > -0.7) & (v < 0.9 - 1.8 * au),
        5: ((au < 0.25) & (av < 0.95)) | ((av < 0.25) & (au < 0.95)),
        6: ((au < 0.85) & (v > -0.85) & (v < -0.35)) | ((u > -0.85) & (u < -0.35) & (av < 0.85)),
        7: (r < 1.0) & (v > 0),
        8: (au < 1.0) & (av < 0.3),
        9: (np.hypot(u - 0.55, v) < 0.38) | (np.hypot(u + 0.55, v) < 0.38),
    }
    return masks[cls]


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=3)


def make_shapes(
    n: int, *, size: int = 32, seed: int = 0, clutter: int = 2, noise: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Generate `n` images and their labels.

    Returns:
        images: float32 array (n, 3, size, size) in [0, 1].
        labels: int64 array (n,), balanced over the 10 classes in a shuffled order.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int64)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    hi = size * _SS
    grid = (np.arange(hi) + 0.5) / _SS  # pixel-centre coordinates on the fine grid
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    ramp_y, ramp_x = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    for i in range(n):
        # Background: a colour plus a random linear gradient.
        base = _random_colour(rng)[:, None, None]
        grad = rng.normal(0, 0.15, size=(3, 2))
        img = base + grad[:, :1, None] * ramp_y + grad[:, 1:, None] * ramp_x
        # Clutter: thin strokes of random colours.
        for _ in range(rng.integers(0, clutter + 1)):
            x0, y0 = rng.uniform(0, size, 2)
            angle = rng.uniform(0, np.pi)
            length = rng.uniform(size * 0.3, size * 0.8)
            du, dv = np.cos(angle), np.sin(angle)
            t = (xx - x0) * du + (yy - y0) * dv
            d = np.abs(-(xx - x0) * dv + (yy - y0) * du)
            stroke = ((d < 0.6) & (np.abs(t) < length / 2)).astype(np.float32)
            alpha = stroke.reshape(size, _SS, size, _SS).mean(axis=(1, 3))
            img = img * (1 - alpha) + _random_colour(rng)[:, None, None] * alpha
        # The shape.
        radius = rng.uniform(size * 0.18, size * 0.36)
        cx, cy = rng.uniform(radius, size - radius, 2)
        theta = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(theta), np.sin(theta)
        u = ((xx - cx) * c + (yy - cy) * s) / radius
        v = (-(xx - cx) * s + (yy - cy) * c) / radius
        mask = _shape_mask(int(labels[i]), u, v).astype(np.float32)
        alpha = mask.reshape(size, _SS, size, _SS).mean(axis=(1, 3))
        colour = _random_colour(rng)
        while np.abs(colour - base[:, 0, 0]).sum() < 0.6:  # keep the shape visible
            colour = _random_colour(rng)
        img = img * (1 - alpha) + colour[:, None, None] * alpha
        img = img + rng.normal(0, noise, size=img.shape)
        images[i] = np.clip(img, 0, 1)
    return images, labels
