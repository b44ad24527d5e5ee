"""Image pre-processing shared by Python and the site's browser demos.

The browser demos (`site/static/sotazoo.mjs`) repeat these steps in JavaScript with the same
arithmetic, so that a demo's input tensor equals the one Python builds from the same file:

1. decode to 8-bit RGB (alpha dropped), scale to [0, 1] as float32;
2. centre-crop to a square of side min(H, W), offset floor((H - side) / 2);
3. resize to `size` x `size` with bilinear interpolation, half-pixel centres, no antialiasing
   (`torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`); skipped when the
   crop already has that size;
4. normalise per channel: (x - mean) / std; layout (1, 3, size, size).

A weights entry carries the parameters as `transforms = {"size", "mean", "std", ...}`.

The other demo inputs have mirrors too: `seeded_normal` (the noise of a seed, bit for bit up to
float32 rounding of the transcendental functions), `tokenize` (words -> vocabulary ids) and
`hole_mask` / `mask_image` (the default inpainting hole; holes are zeroed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sotazoo.errors import InputError


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as float32 RGB in [0, 1], shape (3, H, W).

    Raises `InputError` naming the file when it is missing, not an image, or truncated.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file {path} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"{path} is not a readable image ({e})") from e
    return rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)


def center_crop_square(image: np.ndarray) -> np.ndarray:
    """The centred square of side min(H, W) of a (3, H, W) image."""
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[:, top : top + side, left : left + side]


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a (3, H, W) float image to (3, size, size), half-pixel centres."""
    import torch
    import torch.nn.functional as F

    if image.shape[1:] == (size, size):
        return image
    x = torch.from_numpy(np.ascontiguousarray(image))[None]  # (1, 3, H, W)
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return y[0].numpy()


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return (image - m) / s


def preprocess(image: np.ndarray | str | Path, transforms: Mapping[str, Any]) -> np.ndarray:
    """Steps 1-4 above: a file or a (3, H, W) [0, 1] array -> a (1, 3, size, size) batch."""
    if not isinstance(image, np.ndarray):
        image = load_image(image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise InputError(f"expected an RGB image of shape (3, H, W), got {tuple(image.shape)}")
    x = resize_bilinear(center_crop_square(image), int(transforms["size"]))
    return normalize(x, transforms["mean"], transforms["std"])[None].astype(np.float32)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a (3, H, W) [0, 1] float image as an 8-bit RGB PNG (rounded to nearest)."""
    from PIL import Image

    rgb = np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="PNG")
    return path


def _mulberry32(seed: int):
    """mulberry32, in uint32 arithmetic exactly as the JavaScript (`Math.imul`, `>>> 0`)."""
    a = seed & 0xFFFFFFFF
    m = 0xFFFFFFFF
    while True:
        a = (a + 0x6D2B79F5) & m
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & m
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & m)) & m
        yield (t ^ (t >> 14)) & m


def seeded_normal(seed: int, n: int) -> np.ndarray:
    """`n` standard-normal float32 values of `seed`: Box-Muller on mulberry32's draws."""
    import math

    draws = _mulberry32(seed)
    out = np.empty(n, dtype=np.float32)
    for i in range(0, n, 2):
        u1 = (next(draws) + 1) / 4294967296.0  # (0, 1]
        u2 = next(draws) / 4294967296.0  # [0, 1)
        r = math.sqrt(-2.0 * math.log(u1))
        out[i] = r * math.cos(2.0 * math.pi * u2)
        if i + 1 < n:
            out[i + 1] = r * math.sin(2.0 * math.pi * u2)
    return out


def tokenize(
    text: str, vocab: Mapping[str, int], max_len: int, *, pad: int = 0, unk: int = 1
) -> np.ndarray:
    """Lower-case words (a-z, 0-9, apostrophe) -> ids, unknown -> `unk`, padded to `max_len`."""
    import re

    words = re.findall(r"[a-z0-9']+", text.lower())[:max_len]
    ids = np.full(max_len, pad, dtype=np.int64)
    for i, w in enumerate(words):
        ids[i] = vocab.get(w, unk)
    return ids


def hole_mask(size: int) -> np.ndarray:
    """The default inpainting mask (size, size): 1 = known pixel, 0 = the centred square hole."""
    m = np.ones((size, size), dtype=np.float32)
    a = size // 4
    m[a : a + size // 2, a : a + size // 2] = 0
    return m


def mask_image(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero the holes of a normalised (..., 3, H, W) image."""
    return (image * mask).astype(np.float32)
