"""Handwritten digits as a small GAN training set: scikit-learn's bundled 8x8 digits, upscaled.

The source is `sklearn.datasets.load_digits`: 1,797 grey 8x8 images of the digits 0-9 (about 180
per class), 4-bit ink values 0..16, from the UCI "Optical Recognition of Handwritten Digits" set.
The file ships inside scikit-learn; nothing is downloaded.

Ours, all deterministic:
- values are scaled 0..16 -> [0, 1] -> [-1, 1], the tanh range of the SAGAN and ProGAN
  generators; ink is bright (+1), paper dark (-1), as in the source;
- the 8x8 image is resampled to any side 4 * 2^k (4, 8, 16, 32, ...; 16 by default) by
  `torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=True)` on
  float32: bilinear upsampling, and a triangle (tent) filter as wide as the scale factor when
  going down to 4x4, so that every size of a progressive-growing run sees the same digit. The
  filter's weights are non-negative and sum to one, so values stay in [-1, 1];
- a stratified held-out split: within each class a seeded permutation (numpy PCG64) puts the
  first round(0.2 * n_class) images in "heldout" and the rest in "train" (1,438 / 359 images
  for any seed). The same seed gives the same split on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from sotazoo.data import DIGIT_CLASSES
from sotazoo.errors import InputError

HELD_OUT_FRACTION = 0.2
SOURCE_SIZE = 8  # sklearn's digits are 8x8
_MAX_VALUE = 16.0  # 4-bit counts of ink pixels in 4x4 blocks of the original 32x32 bitmaps
Split = Literal["train", "heldout", "all"]


@lru_cache(maxsize=1)
def _source() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)  # (1797, 8, 8), values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < 4 or size & (size - 1) or size > 1024:
        raise InputError(f"size must be 4 * 2^k between 4 and 1024 (4, 8, 16, 32, ...), got {size}")


def resample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a (N, C, H, W) float batch to size x size the way this dataset does.

    Bilinear, half-pixel centres (`align_corners=False`), antialiased when shrinking.
    """
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def split_indices(labels: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, heldout) indices: HELD_OUT_FRACTION of every class, chosen by a seeded permutation."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in range(len(DIGIT_CLASSES)):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = round(HELD_OUT_FRACTION * len(idx))
        held.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def load_digits(
    *, size: int = 16, split: Split = "train", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits at `size` x `size`, one channel, in [-1, 1].

    Args:
        size: side of the returned images, 4 * 2^k.
        split: "train" (80 % of each class), "heldout" (the other 20 %, never trained on) or
            "all" (the 1,797 images in scikit-learn's order).
        seed: seed of the train / held-out split.

    Returns:
        images: float32 (N, 1, size, size) in [-1, 1].
        labels: int64 (N,) class ids 0-9 (class c is the digit c).
    """
    _check_size(size)
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    raw, labels = _source()
    if split != "all":
        train, held = split_indices(labels, seed=seed)
        keep = train if split == "train" else held
        raw, labels = raw[keep], labels[keep]
    x = torch.from_numpy(raw / _MAX_VALUE).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    x = resample(x * 2.0 - 1.0, size).clamp_(-1.0, 1.0)  # clamp: float rounding only
    return x.contiguous(), torch.from_numpy(labels.copy())


def real_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of distinct real images and their labels, drawn uniformly at random.

    Draws without replacement inside the batch (as one step of a shuffled epoch would); the
    `generator` makes the draw reproducible.
    """
    if not 0 < batch_size <= len(images):
        raise ValueError(f"batch_size must be in 1..{len(images)}, got {batch_size}")
    idx = torch.randperm(len(images), generator=generator)[:batch_size]
    return images[idx], labels[idx]


def real_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    drop_last: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled (images, labels) batches; the last, short one is dropped by default."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = torch.randperm(len(images), generator=generator)
    stop = len(images) - (len(images) % batch_size if drop_last else 0)
    for i in range(0, stop, batch_size):
        idx = order[i : i + batch_size]
        yield images[idx], labels[idx]
