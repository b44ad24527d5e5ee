"""Letters: a seeded 10-class image classification set of the capitals A-J, generated offline.

Each image holds one letter in the font that Pillow ships (Aileron Regular, `ImageFont.
load_default`), at a random size, position and slant, in a random colour over a background of
another colour, with Gaussian noise; drawn at 4x and box-filtered down for anti-aliasing. Class
is the letter; colour, size and pose are nuisances. Nothing is downloaded. The same seed gives
the same draws everywhere (numpy's PCG64); the pixels can differ in the last bits where another
FreeType version rasterises the glyphs.
"""

from __future__ import annotations

import numpy as np

LETTERS = "ABCDEFGHIJ"
_SS = 4  # supersampling factor for anti-aliasing


def _glyph_alpha(letter: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Coverage (size, size) in [0, 1] of one letter at a random scale, shift and rotation."""
    from PIL import Image, ImageDraw, ImageFont

    hi = size * _SS
    font = ImageFont.load_default(size=float(hi * rng.uniform(0.5, 0.85)))
    mask = Image.new("L", (hi, hi), 0)
    centre = hi / 2 + rng.uniform(-0.12, 0.12, size=2) * hi
    ImageDraw.Draw(mask).text(tuple(centre), letter, fill=255, font=font, anchor="mm")
    mask = mask.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR, center=tuple(centre))
    return np.asarray(mask.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def make_letters(
    n: int, *, size: int = 32, seed: int = 0, noise: float = 0.03, min_contrast: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Generate `n` images and their labels.

    The letter's colour differs from the background's by at least `min_contrast` in mean
    intensity (either darker or lighter), so every letter is visible.

    Returns:
        images: float32 array (n, 3, size, size) in [0, 1].
        labels: int64 array (n,), balanced over the 10 letters in a shuffled order.
    """
    if n < 1 or size < 8:
        raise ValueError(f"make_letters needs n >= 1 and size >= 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(LETTERS)).astype(np.int64)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    for i, label in enumerate(labels):
        alpha = _glyph_alpha(LETTERS[label], size, rng)
        bg = rng.uniform(0.0, 1.0, size=3)
        while True:  # a letter colour far enough from the background's intensity
            fg = rng.uniform(0.0, 1.0, size=3)
            if abs(fg.mean() - bg.mean()) >= min_contrast:
                break
        img = bg[:, None, None] * (1 - alpha) + fg[:, None, None] * alpha
        img += rng.normal(0.0, noise, size=img.shape)
        images[i] = np.clip(img, 0.0, 1.0)
    return images, labels
