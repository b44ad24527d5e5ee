"""The digits GAN set (sotazoo.data.digits): the source values, the resampling against PIL, the
seeded stratified split, the batch helpers, bad arguments."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits as sk_load_digits

from sotazoo.data.digits import (
    HELD_OUT_FRACTION,
    load_digits,
    real_batch,
    real_batches,
    split_indices,
)
from sotazoo.errors import InputError


def test_8x8_is_sklearn_scaled_to_minus_one_one():
    """At the source size there is no resampling: 0..16 ink values map linearly onto [-1, 1]."""
    sk = sk_load_digits()
    x, y = load_digits(size=8, split="all")
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    expected = torch.from_numpy(sk.images / 8.0 - 1.0).float()
    torch.testing.assert_close(x[:, 0], expected, rtol=0, atol=1e-6)  # k/8 - 1: exact in float32
    assert torch.equal(y, torch.from_numpy(sk.target))


@pytest.mark.parametrize("size", [4, 16, 32])
def test_resampling_matches_pil_bilinear(size):
    """Independent oracle: PIL's BILINEAR resize of the float ('F' mode) 8x8 image, which is the
    triangle filter, widened when shrinking (what torch's antialias=True reproduces)."""
    sk = sk_load_digits()
    x, _ = load_digits(size=size, split="all")
    for i in (0, 1, 1000, 1796):
        src = (sk.images[i] / 8.0 - 1.0).astype(np.float32)
        pil = np.asarray(Image.fromarray(src, mode="F").resize((size, size), Image.BILINEAR))
        # two float32 implementations of a 2-4 tap filter on values in [-1, 1]: an ulp or two
        # apart (measured 6e-8); a wrong filter or pixel alignment is off by ~1e-1
        np.testing.assert_allclose(x[i, 0].numpy(), pil, atol=1e-5)


def test_range_and_sizes_for_progressive_growing():
    for size in (4, 8, 16, 32, 64):
        x, y = load_digits(size=size)
        assert x.shape[1:] == (1, size, size)
        assert x.min() >= -1 and x.max() <= 1
        assert len(x) == len(y)


def test_split_is_stratified_disjoint_and_seeded():
    _, y_all = load_digits(size=8, split="all")
    xt, yt = load_digits(size=8, split="train", seed=0)
    xh, yh = load_digits(size=8, split="heldout", seed=0)
    assert len(xt) + len(xh) == 1797
    counts_all, counts_h = torch.bincount(y_all), torch.bincount(yh, minlength=10)
    expected = torch.tensor([round(HELD_OUT_FRACTION * int(n)) for n in counts_all])
    assert torch.equal(counts_h, expected)  # 20 % of every class, rounded
    # Disjoint and complete, and the splits are those rows of the full set.
    train_idx, held_idx = split_indices(y_all.numpy(), seed=0)
    assert not set(train_idx) & set(held_idx)
    assert sorted({*train_idx, *held_idx}) == list(range(1797))
    xa, _ = load_digits(size=8, split="all")
    assert torch.equal(xa[held_idx], xh) and torch.equal(xa[train_idx], xt)
    # Same seed, same split; another seed, another split.
    assert torch.equal(load_digits(size=8, split="heldout", seed=0)[0], xh)
    assert not torch.equal(load_digits(size=8, split="heldout", seed=1)[0], xh)


def test_real_batch_draws_distinct_images_reproducibly():
    x, y = load_digits(size=16)
    xb, yb = real_batch(x, y, 64, generator=torch.Generator().manual_seed(3))
    xb2, _ = real_batch(x, y, 64, generator=torch.Generator().manual_seed(3))
    assert xb.shape == (64, 1, 16, 16) and yb.shape == (64,)
    assert torch.equal(xb, xb2)
    assert len({tuple(v.flatten().tolist()) for v in xb}) >= 63  # the source has rare duplicates
    batches = list(real_batches(x, y, 100, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == len(x) // 100 and all(len(b[0]) == 100 for b in batches)
    with pytest.raises(ValueError, match="batch_size"):
        real_batch(x, y, 0)


@pytest.mark.parametrize("size", [0, 3, 12, 2048])
def test_bad_size_is_refused(size):
    with pytest.raises(InputError, match="4 \\* 2\\^k"):
        load_digits(size=size)


def test_bad_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        load_digits(split="test")
