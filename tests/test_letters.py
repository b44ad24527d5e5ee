"""The generated letters (`sotazoo.data.letters`): shapes, ranges, balance, seeding, and that
the letter is what tells the classes apart."""

import numpy as np
import pytest

from sotazoo.data.letters import LETTERS, make_letters


def test_letters_are_seeded_balanced_images_in_range():
    x, y = make_letters(40, size=32, seed=3)
    assert x.shape == (40, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y, minlength=10).tolist() == [4] * 10
    x2, y2 = make_letters(40, size=32, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x3, _ = make_letters(40, size=32, seed=4)
    assert not np.array_equal(x, x3)
    with pytest.raises(ValueError, match="n >= 1"):
        make_letters(0)


def test_every_letter_stands_out_from_its_background():
    """Without noise, each image is two colours blended by the glyph's coverage: some pixels
    are background, some letter, and the two differ by the stated contrast."""
    x, y = make_letters(30, size=32, seed=0, noise=0.0)
    for img, label in zip(x, y, strict=True):
        corner = img[:, 0, 0]  # a corner is background (the letter stays near the centre)
        diff = np.abs(img - corner[:, None, None]).mean(0)
        ink = diff > 0.15
        assert 10 <= ink.sum() <= 0.6 * 32 * 32, LETTERS[label]  # a glyph, not a blob
        assert diff.max() >= 0.3 - 1e-6  # min_contrast in mean intensity


def test_the_label_is_the_letter_drawn():
    """Labels follow the glyphs: the thin I inks far fewer pixels than B or D on average (the
    sizes are drawn the same way for every class)."""
    x, y = make_letters(300, size=32, seed=1, noise=0.0)
    ink = np.array([(np.abs(img - img[:, :1, :1]).mean(0) > 0.15).sum() for img in x])
    mean = {c: ink[y == LETTERS.index(c)].mean() for c in "IBD"}
    assert mean["I"] < 0.5 * mean["B"] and mean["I"] < 0.5 * mean["D"]
