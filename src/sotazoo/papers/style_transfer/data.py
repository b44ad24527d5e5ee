"""Offline data for the laptop runs: content crops of the photographs scikit-image ships, and
styles drawn by a seeded generator.

- Contents: random square crops (a random scale of the shorter side, resized to the run's size)
  of astronaut, coffee, rocket and the left motorcycle for training (`TRAIN_CONTENTS`); the cat
  (chelsea), the cameraman and the coins, never trained on, for the measurements
  (`TEST_CONTENTS`; grey photographs as three equal channels).
- Styles (`random_style`): a palette of 3 to 5 random colours painted by a pattern, a smooth
  random field quantised into bands, optionally crossed with stripes at a random angle and
  period, or a checkerboard: colour and texture statistics that differ from style to style, which
  is what a Gram matrix or a channel mean and std describes. A style is a function of its seed, so
  "unseen" styles are those of seeds a network was not trained on.
- The stand-in feature network's task (`source_patches`): tell which of `SOURCES` (photographs
  and textures of scikit-image, and the three pattern families) a 32 px patch comes from.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch.nn import functional as F

TRAIN_CONTENTS = ("astronaut", "coffee", "rocket", "motorcycle_left")
TEST_CONTENTS = ("chelsea", "camera", "coins")
TEXTURES = ("brick", "grass", "gravel", "immunohistochemistry", "hubble_deep_field", "colorwheel")
PATTERNS = ("bands", "stripes", "checks")
SOURCES = TRAIN_CONTENTS + TEXTURES + PATTERNS


PHOTO_SIDE = 192  # photographs are read at this shorter side (crops of 64 px and below)


@lru_cache(maxsize=32)
def photo(name: str) -> torch.Tensor:
    """A scikit-image picture (`sotazoo.data.sr_photos.photograph`) as (3, H, W) float32 in
    [0, 1], its shorter side `PHOTO_SIDE`."""
    from sotazoo.data.sr_photos import photograph

    t = torch.from_numpy(photograph(name).astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    scale = PHOTO_SIDE / min(t.shape[-2:])
    size = (round(t.shape[-2] * scale), round(t.shape[-1] * scale))
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)


def crops(names: tuple[str, ...], n: int, size: int, g: torch.Generator, scale=(0.3, 1.0)) -> torch.Tensor:
    """`n` random square crops (side a random fraction `scale` of the shorter side) of the named
    photographs, resized to `size` (bilinear, antialiased), random horizontal flips: (n, 3, size, size)."""
    out = torch.empty(n, 3, size, size)
    for i in range(n):
        img = photo(names[int(torch.randint(len(names), (1,), generator=g))])
        h, w = img.shape[1:]
        s = int(min(h, w) * (scale[0] + (scale[1] - scale[0]) * float(torch.rand(1, generator=g))))
        s = max(s, 8)
        y = int(torch.randint(h - s + 1, (1,), generator=g))
        x = int(torch.randint(w - s + 1, (1,), generator=g))
        c = img[:, y : y + s, x : x + s][None]
        c = F.interpolate(c, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
        out[i] = c.flip(-1) if float(torch.rand(1, generator=g)) < 0.5 else c
    return out.clamp(0, 1)


def _hsv(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV in [0, 1] to RGB, (..., 3)."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], -1)
    return v[..., None] - v[..., None] * s[..., None] * (torch.minimum(k, 4 - k).clamp(0, 1))


def random_style(seed: int, size: int = 64, pattern: str | None = None) -> torch.Tensor:
    """The style of `seed`: (3, size, size) in [0, 1] (see the module's docstring)."""
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(3, 6, (1,), generator=g))
    base = float(torch.rand(1, generator=g))
    hues = (base + torch.rand(k, generator=g) * 0.5) % 1.0
    palette = _hsv(hues, 0.4 + 0.6 * torch.rand(k, generator=g), 0.25 + 0.75 * torch.rand(k, generator=g))  # (k, 3)
    kind = pattern or PATTERNS[int(torch.randint(len(PATTERNS), (1,), generator=g))]
    cells = int(torch.randint(3, 9, (1,), generator=g))
    field = F.interpolate(torch.rand(1, 1, cells, cells, generator=g), size=(size, size), mode="bicubic",
                          align_corners=False)[0, 0]  # fmt: skip
    field = (field - field.min()) / (field.max() - field.min() + 1e-6)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")  # fmt: skip
    period = 4.0 + 12.0 * float(torch.rand(1, generator=g))
    if kind == "stripes":
        angle = math.pi * float(torch.rand(1, generator=g))
        wave = torch.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period)
        field = 0.5 * field + 0.5 * (wave > 0).float()
    elif kind == "checks":
        field = 0.3 * field + 0.7 * (((xx // period) + (yy // period)) % 2)
    idx = (field * k).long().clamp(max=k - 1)
    img = palette[idx].permute(2, 0, 1)  # (3, size, size)
    return (img + 0.03 * torch.randn(img.shape, generator=g)).clamp(0, 1)


def styles(seeds: list[int] | range, size: int) -> torch.Tensor:
    return torch.stack([random_style(s, size) for s in seeds])


def source_patches(n: int, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` patches with the index of their source in `SOURCES` (the stand-in network's task)."""
    labels = torch.randint(len(SOURCES), (n,), generator=g)
    x = torch.empty(n, 3, size, size)
    for i, lab in enumerate(labels.tolist()):
        name = SOURCES[lab]
        if name in PATTERNS:
            seed = int(torch.randint(1 << 30, (1,), generator=g))
            x[i] = random_style(seed, size, pattern=name)
        else:
            x[i] = crops((name,), 1, size, g, scale=(0.1, 0.5))[0]
    return x, labels
