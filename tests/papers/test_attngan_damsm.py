"""Laptop-scale DAMSM on the captioned scenes (sotazoo.papers.attngan.damsm): shapes, seeded
batches, a short run (60 steps) that lowers the loss and lifts R@1 above chance, the sentence-only ablation
leaving the words loss out, and evaluation values in [0, 1]."""

import pytest
import torch

from sotazoo.data.captioned_scenes import build_vocab, make_captioned_scenes
from sotazoo.papers.attngan import damsm
from sotazoo.papers.attngan.model import PAD, damsm_text_encoder_mini


@pytest.fixture(scope="module")
def data():
    scenes = make_captioned_scenes(128, seed=0, questions_per_image=0)
    vocab = build_vocab(c.text for caps in scenes["captions"] for c in caps)
    return scenes, vocab


def _encoders(seed=0, d=32):
    torch.manual_seed(seed)
    text = damsm_text_encoder_mini(word_dim=16, embedding_dim=d, text_dropout=0.0)
    image = damsm.SceneImageEncoder(embedding_dim=d, widths=(8, 16, 32))
    return text, image


def test_shapes(data):
    scenes, vocab = data
    text, image = _encoders()
    batches = damsm.scene_batches(scenes, vocab, max_len=18, batch_size=4,
                                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    images, caps = next(batches)
    assert images.shape == (4, 3, 64, 64) and caps.shape == (4, 18) and caps.dtype == torch.int64
    assert images.min() >= -1 and images.max() <= 1
    assert vocab["<pad>"] == PAD and (caps[:, 0] != PAD).all()
    regions, code = image(images)
    assert regions.shape == (4, 32, 8, 8) and code.shape == (4, 32)


def test_batches_repeat_with_the_seed(data):
    scenes, vocab = data

    def first(seed):
        it = damsm.scene_batches(scenes, vocab, max_len=18, batch_size=8,
                                 generator=torch.Generator().manual_seed(seed))  # fmt: skip
        return [next(it) for _ in range(3)]

    a, b, c = first(1), first(1), first(2)
    assert all(
        torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True)
    )
    assert not all(torch.equal(x[1], y[1]) for x, y in zip(a, c, strict=True))


def test_short_run_learns(data):
    scenes, vocab = data
    text, image = _encoders()
    gen = torch.Generator().manual_seed(0)
    before = damsm.evaluate_damsm(text, image, scenes, vocab, generator=gen, candidates=32)
    log = damsm.train_damsm(text, image, scenes, vocab, steps=60, batch_size=16, seed=0)
    after = damsm.evaluate_damsm(text, image, scenes, vocab, generator=gen, candidates=32)
    first, last = sum(log["total"][:5]) / 5, sum(log["total"][-5:]) / 5
    assert last < 0.9 * first
    assert {"w_loss0", "w_loss1", "s_loss0", "s_loss1"} <= log.keys()
    assert after["r1"] > 3 / 32, (before, after)  # chance is 1 / 32
    for k in ("r1", "binding_sentence", "binding_words"):
        assert 0.0 <= after[k] <= 1.0
    assert after["binding_n"] > 0


def test_sentence_only_leaves_out_the_words_loss(data):
    scenes, vocab = data
    text, image = _encoders()
    seen = []
    log = damsm.train_damsm(text, image, scenes, vocab, steps=3, batch_size=8, seed=0,
                            sentence_only=True, on_step=lambda k, t: seen.append(k))  # fmt: skip
    assert seen == [0, 1, 2] and log["steps"] == [0, 1, 2]
    assert "w_loss0" not in log and "w_loss1" not in log
    sums = [a + b for a, b in zip(log["s_loss0"], log["s_loss1"], strict=True)]
    assert log["total"] == pytest.approx(sums)
