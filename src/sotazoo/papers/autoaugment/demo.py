"""AutoAugment's browser demo: the published policies applied in the page to a photo the reader
picks, one sub-policy drawn per click.

Samples: three photographs that scikit-image ships (`skimage.data`: chelsea the cat, coffee,
astronaut), centre-cropped to squares and resized to 128 x 128, so that the page's JavaScript
runs every op in a few milliseconds. The spec carries the policies as data
(`policies.POLICIES`); the page's code (`site/static/autoaugment.mjs`) ports `method.py`'s ops
and ranges (tests/papers/test_autoaugment_js.py compares the two on fixed draws), and
tests/browser/test_augment_demo.py replays in Python each draw the page made and compares the
images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sotazoo.papers.autoaugment.policies import POLICIES

SIZE = 128  # pixels a side: small enough for every op to run at once in the page
PHOTOS = ("chelsea", "coffee", "astronaut")  # skimage.data functions, all RGB photographs
FILL = 128  # the fill of `method.AutoAugment` (uncovered pixels and Cutout)


def samples(out_dir: Path) -> list[Path]:
    """Write the photos as PNGs to `out_dir`; returns their paths."""
    from skimage import data

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        img = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize(
            (SIZE, SIZE), Image.Resampling.BICUBIC
        )
        path = out_dir / f"{name}.png"
        img.save(path)
        paths.append(path)
    return paths


def spec_extra() -> dict:
    """The data the page's code needs: the policies, the one shown first, the fill."""
    return {
        "policies": {name: [[list(op) for op in sub] for sub in policy]
                     for name, policy in POLICIES.items()},  # fmt: skip
        "policy": "imagenet",
        "fill": FILL,
    }
