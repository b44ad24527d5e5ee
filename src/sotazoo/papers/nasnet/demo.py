"""Sample inputs for NASNet's browser demo: one generated shapes image per class.

The same images as SENet's demo (same generator, seed and size), so the two demo classifiers are
shown the same inputs. They are drawn at 96 x 96, three times the model's input size, so that the
demo's centre-crop and bilinear resize (`sotazoo.transforms`) are exercised on every sample.
"""

from __future__ import annotations

from pathlib import Path

from sotazoo.data import SHAPE_CLASSES, make_shapes
from sotazoo.transforms import save_png

SAMPLE_SEED = 2024  # not a training or validation seed of the recipe


def samples(out_dir: Path) -> list[Path]:
    """Write one PNG per class to `out_dir`; returns their paths in class order."""
    images, labels = make_shapes(4 * len(SHAPE_CLASSES), size=96, seed=SAMPLE_SEED)
    paths = []
    for cls, name in enumerate(SHAPE_CLASSES):
        i = int((labels == cls).nonzero()[0][0])
        paths.append(save_png(images[i], out_dir / f"{name}.png"))
    return paths
