"""AttnGAN's objective (sotazoo.papers.attngan.method): what is checked against what.

- Oracle: fixtures/attngan_losses_official.json holds small random inputs and the outputs of the
  official taoxugit/AttnGAN losses (0d000e6, code/miscc/losses.py: words_loss, sent_loss,
  generator_loss, discriminator_loss, KL_loss) with TRAIN.SMOOTH of bird_attn2.yml (gamma1 4,
  gamma2 5, gamma3 10, lambda 5); its `source` says how it was made. Checked: words_loss and
  sent_loss with and without CUB's same-class masking, their gradients with respect to every
  input, and words_loss's attention maps; generator_loss + KL_loss (two official Ds, D_NET64 and
  D_NET128, loaded into our `Discriminator`; a stub image encoder whose weights the fixture holds)
  and its gradients with respect to the fake images, mu and logvar; discriminator_loss per stage.
  Bound: 1e-5 of each value's magnitude (float32; module docstring of the tests below).
- By hand: R-precision on four captions whose ranking is known (with a tie), a perfect encoder
  gives 1, features that ignore the caption give 1 / candidates within a bound that can fail.
- Behaviour: the DAMSM loss is lower for matched than for shuffled captions on images built from
  their captions' words; padded words (their features, and more padding) do not change the words
  loss; the losses on attngan_mini are finite and give a gradient to every trainable parameter of
  G (and none through the discriminator loss); a train step and a DAMSM step run, the latter
  clipping the text encoder's gradient to 0.25.
- Constants: the defaults are those of the released cfgs.
- Bad inputs: InputError.
"""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError
from sotazoo.papers.attngan import method as M
from sotazoo.papers.attngan.layers import Discriminator
from sotazoo.papers.attngan.model import (
    attngan_discriminators_mini,
    attngan_mini,
    damsm_text_encoder_mini,
    tiny_overrides,
)

from .oracle import fixture_tensor, within

FIXTURE = Path(__file__).parent / "fixtures" / "attngan_losses_official.json"
REL = 1e-5  # float32: our batched computation sums in another order than the official loop


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


def _pad(lengths: list[int], t: int) -> torch.Tensor:
    return torch.arange(t)[None] >= torch.tensor(lengths)[:, None]


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest difference, relative to the largest magnitude of `want`."""
    got, want = torch.as_tensor(got).detach(), torch.as_tensor(want)
    return float((got - want).abs().max() / want.abs().max())


class StubImageEncoder(nn.Module):
    """The fixture's stand-in for the DAMSM image encoder: regions = tanh(W_r x) on the image
    average-pooled to 4 x 4, code = W_c mean(image) + b_c."""

    def __init__(self, w_r: torch.Tensor, w_c: torch.Tensor, b_c: torch.Tensor) -> None:
        super().__init__()
        self.w_r, self.w_c, self.b_c = w_r, w_c, b_c

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.adaptive_avg_pool2d(img, 4)
        regions = torch.tanh(F.conv2d(x, self.w_r[:, :, None, None]))
        return regions, F.linear(img.mean((2, 3)), self.w_c, self.b_c)


# ---------------------------------------------------------------------- the oracle


def test_oracle_damsm_losses(fx):
    """words_loss and sent_loss, values and gradients, with class_ids None and [1, 2, 1, 3, 2].
    Bound 1e-5 of each magnitude: float32, with the cosines scaled by g2 g3 = 50 before the
    batch softmax, so a rounding of 6e-8 in a cosine moves a logit by 3e-6; ours computes every
    pair in one batched matmul and uses logsumexp where the official loops over captions and
    takes log(sum(exp)) (measured 4.4e-7 on the words loss, 2.4e-7 on the sentence loss)."""
    inp = fx["damsm"]["inputs"]
    regions, words = fixture_tensor(inp["regions"]), fixture_tensor(inp["words"])
    pad = _pad(inp["cap_lens"], words.shape[2])
    for case in fx["damsm"]["cases"]:
        cls = None if case["class_ids"] is None else torch.tensor(case["class_ids"])
        r, w = regions.clone().requires_grad_(True), words.clone().requires_grad_(True)
        wl = M.words_loss(r, w, pad, class_ids=cls)
        (wl["w_loss0"] + wl["w_loss1"]).backward()
        c = fixture_tensor(inp["cnn_code"]).requires_grad_(True)
        s = fixture_tensor(inp["rnn_code"]).requires_grad_(True)
        sl = M.sent_loss(c, s, class_ids=cls)
        (sl["s_loss0"] + sl["s_loss1"]).backward()
        how = f"class_ids {case['class_ids']}"
        for k, v in {**wl, **sl}.items():
            within(_rel(v, case[k]), REL, f"official {k} ({how})")
        for name, got in (("regions", r), ("words", w), ("cnn_code", c), ("rnn_code", s)):
            within(_rel(got.grad, fixture_tensor(case[f"grad_{name}"])), REL, f"grad {name} ({how})")
        assert torch.all(w.grad[pad[:, None].expand_as(w)] == 0)  # padded words: no gradient
    # the attention maps of each caption over its own image (Eq. 9), padded rows 0
    _, alpha = M.region_word_attention(regions, words.masked_fill(pad[:, None], 0), pad,
                                       gamma1=4.0)  # fmt: skip
    for i, att in enumerate(fx["damsm"]["cases"][0]["att_maps"]):
        att = fixture_tensor(att)[0]
        within((alpha[i, i, : att.shape[0]] - att).abs().max(), 1e-6, "official att_maps")
        assert torch.all(alpha[i, i, att.shape[0] :] == 0)


def _oracle_gan(fx: dict):
    gan = fx["gan"]
    ds = []
    for k, sd in enumerate(gan["discriminators"]):
        d = Discriminator(1, 8, 64 * 2**k)
        missing, unexpected = d.load_state_dict({n: fixture_tensor(v) for n, v in sd.items()},
                                                strict=False)  # fmt: skip
        assert not unexpected
        stats = ("running_mean", "running_var", "num_batches_tracked")  # train mode: unused
        assert all(m.endswith(stats) for m in missing)
        ds.append(d.train())
    stub = StubImageEncoder(**{k: fixture_tensor(v) for k, v in gan["stub_image_encoder"].items()})
    return gan["inputs"], gan["outputs"], ds, stub


def _upsampled(srcs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [F.interpolate(s, scale_factor=8 * 2**k, mode="nearest") for k, s in enumerate(srcs)]


def test_oracle_generator_loss(fx):
    """generator_loss + KL_loss: the total, the DAMSM terms, KL, and the gradients w.r.t. both
    stages' fake images (through D and, for the last, the stub encoder and DAMSM), mu and logvar.
    Bound 1e-5 of each magnitude, as above (measured 1.5e-7 on the total, 3.2e-7 on the
    gradient of the 128 px image, 0 elsewhere)."""
    inp, out, ds, stub = _oracle_gan(fx)
    srcs = [fixture_tensor(s).requires_grad_(True) for s in inp["fake_src"]]
    words, sentence = fixture_tensor(inp["words"]), fixture_tensor(inp["sentence"])
    mu = fixture_tensor(inp["mu"]).requires_grad_(True)
    logvar = fixture_tensor(inp["logvar"]).requires_grad_(True)
    pad = _pad(inp["cap_lens"], words.shape[2])
    terms = M.generator_loss(ds, stub, _upsampled(srcs), words, sentence, pad, mu, logvar,
                             class_ids=torch.tensor(inp["class_ids"]), loss=M.CUB_LOSS)  # fmt: skip
    terms["total"].backward()
    want = out["generator_loss"] + out["kl_loss"]
    within(_rel(terms["total"], want), REL, "official generator_loss + KL_loss")
    for k in ("w_loss0", "w_loss1", "s_loss0", "s_loss1"):
        within(_rel(terms[k], out[k]), REL, f"official {k} of generator_loss")
    within(_rel(terms["kl"], out["kl_loss"]), REL, "official KL_loss")
    for k, s in enumerate(srcs):
        within(_rel(s.grad, fixture_tensor(out["grad_fake_src"][k])), REL, f"grad fake image {k}")
    within(_rel(mu.grad, fixture_tensor(out["grad_mu"])), REL, "grad mu")
    within(_rel(logvar.grad, fixture_tensor(out["grad_logvar"])), REL, "grad logvar")
    # the official logs print g_loss per stage to 2 decimals
    logged = [float(x) for x in out["logs"].split()[1:4:2]]
    assert [round(float(terms[f"g{k}"].detach()), 2) for k in range(2)] == logged


def test_oracle_discriminator_loss(fx):
    """discriminator_loss per stage (real and fake through D separately, train-mode BatchNorm).
    Bound 1e-5 of the value (the same torch ops in the same order: measured 0)."""
    inp, out, ds, _ = _oracle_gan(fx)
    fakes = _upsampled([fixture_tensor(s) for s in inp["fake_src"]])
    reals = _upsampled([fixture_tensor(s) for s in inp["real_src"]])
    sentence = fixture_tensor(inp["sentence"])
    for k, d in enumerate(ds):
        terms = M.discriminator_loss(d, reals[k], fakes[k], sentence)
        within(_rel(terms["total"], out["discriminator_loss"][k]), REL, f"official errD{k}")


# ---------------------------------------------------------------------- R-precision


def test_r_precision_by_hand():
    # candidates = N: every other caption is a negative, so nothing is random. Images 0 and 1
    # find theirs first, image 2 ranks its own last, image 3 ties its own with caption 0
    # (cosine 1/sqrt(2) each): 1 / 2.
    img = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    sen = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    assert M.r_precision(img, sen, candidates=4, generator=g) == (1 + 1 + 0 + 0.5) / 4
    # a perfect encoder: image features equal their caption's
    x = torch.randn(300, 16, generator=g)
    assert M.r_precision(x, 3 * x, candidates=100, generator=g) == 1.0


def test_r_precision_at_chance():
    """Features that ignore the caption: each of 4000 queries (2000 images, 2 draws) finds its
    caption first with probability 1 / 100; the mean's standard deviation is 1.6e-3, so the
    bound [0.006, 0.014] (2.5 sigma) fails for a metric that, say, lets the true caption into the
    negatives (0.0) or ranks the top 2 (0.02)."""
    g = torch.Generator().manual_seed(1)
    img, sen = torch.randn(2000, 16, generator=g), torch.randn(2000, 16, generator=g)
    r = M.r_precision(img, sen, candidates=100, repeats=2, generator=g)
    assert 0.006 <= r <= 0.014, r
    a = M.r_precision(img, sen, candidates=10, generator=torch.Generator().manual_seed(5))
    b = M.r_precision(img, sen, candidates=10, generator=torch.Generator().manual_seed(5))
    assert a == b and 0.07 <= a <= 0.13  # seeded; chance 1 / 10


# ---------------------------------------------------------------------- behaviour


def _matched_batch(b: int = 4, d: int = 16, t: int = 5):
    """Images whose regions hold their captions' words (3 x 3 regions, the rest noise)."""
    g = torch.Generator().manual_seed(0)
    words = F.normalize(torch.randn(b, d, t, generator=g), dim=1)
    lengths = [5, 4, 3, 3]
    pad = _pad(lengths, t)
    words = words.masked_fill(pad[:, None], 0)
    regions = 0.1 * torch.randn(b, d, 9, generator=g)
    for i, n in enumerate(lengths):
        regions[i, :, :n] += words[i, :, :n]
    sentence = words.sum(2) / torch.tensor(lengths)[:, None]
    return regions.reshape(b, d, 3, 3), regions.mean(2), words, sentence, pad


def test_damsm_lower_for_matched_captions():
    regions, code, words, sentence, pad = _matched_batch()
    matched = M.damsm_loss(regions, code, words, sentence, pad)
    perm = torch.tensor([1, 2, 3, 0])
    shuffled = M.damsm_loss(regions, code, words[perm], sentence[perm], pad[perm])
    for k in ("w_loss0", "w_loss1", "s_loss0", "s_loss1", "total"):
        assert matched[k] < shuffled[k], k
    assert matched["total"] < 0.1 * shuffled["total"]


def test_padded_words_do_not_change_the_words_loss():
    regions, _, words, _, pad = _matched_batch()
    base = M.words_loss(regions, words, pad)
    noisy = words.clone()
    noisy[pad[:, None].expand_as(words)] = 1e4 * torch.randn(int(pad.sum()) * 16)
    noisy[3, :, -1] = math.nan  # caption 3 has 3 words
    again = M.words_loss(regions, noisy, pad)
    assert all(torch.equal(base[k], again[k]) for k in base)
    longer = M.words_loss(regions, F.pad(words, (0, 3), value=7.0), F.pad(pad, (0, 3), value=True))
    for k in base:
        torch.testing.assert_close(longer[k], base[k], rtol=1e-6, atol=0)
    # the same as slicing each caption to its length, caption by caption (the official way)
    r = torch.stack([torch.stack([M.word_relevance(regions[i : i + 1], words[j : j + 1, :, :n],
                                                   torch.zeros(1, n, dtype=torch.bool),
                                                   gamma1=4.0, gamma2=5.0)[0, 0]
                                  for j, n in enumerate([5, 4, 3, 3])]) for i in range(4)])  # fmt: skip
    torch.testing.assert_close(M.word_relevance(regions, words, pad, gamma1=4.0, gamma2=5.0), r)


def _mini(seed: int = 0):
    torch.manual_seed(seed)
    tiny = tiny_overrides("attngan_mini")
    model, ds = attngan_mini(**tiny).train(), attngan_discriminators_mini(**tiny).train()
    e = tiny["embedding_dim"]
    g = torch.Generator().manual_seed(seed)
    stub = StubImageEncoder(torch.randn(e, 3, generator=g), torch.randn(e, 3, generator=g),
                            torch.zeros(e))  # fmt: skip
    captions = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 0, 0, 0], [11, 12, 13, 0, 0]])
    return model, ds, stub, captions


def test_losses_finite_and_differentiable_on_attngan_mini():
    model, ds, stub, captions = _mini()
    words, sentence, pad = model.encode_text(captions)
    noise = torch.randn(3, model.cfg.z_dim)
    images, _, mu, logvar = model.generate(noise, captions)
    terms = M.generator_loss(ds, stub, images, words, sentence, pad, mu, logvar,
                             class_ids=torch.tensor([0, 1, 0]))  # fmt: skip
    assert all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    for name, p in model.netG.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.text_encoder.parameters())
    model.zero_grad(set_to_none=True)
    reals = [torch.rand_like(x) * 2 - 1 for x in images]
    for d, real, fake in zip(ds, reals, images, strict=True):
        d_terms = M.discriminator_loss(d, real, fake, sentence)
        assert set(d_terms) == {"real", "cond_real", "fake", "cond_fake", "cond_wrong", "total"}
        assert torch.isfinite(d_terms["total"])
        d_terms["total"].backward()
        assert all(p.grad is not None for p in d.parameters())
    assert all(p.grad is None for p in model.netG.parameters())  # the fakes are detached


def test_train_step_and_damsm_step():
    model, ds, stub, captions = _mini()
    opts = M.optimizers(model.netG, ds)
    avg = [p.detach().clone() for p in model.netG.parameters()]
    before = [p.detach().clone() for p in model.netG.parameters()]
    reals = [torch.rand(3, 3, s, s) * 2 - 1 for s in model.cfg.sizes]
    logs = M.train_step(model, ds, stub, opts, reals, captions,
                        generator=torch.Generator().manual_seed(0), avg_params=avg)  # fmt: skip
    assert {"d0", "d1", "g_total", "g_kl", "g_w_loss0"} <= set(logs)
    assert all(math.isfinite(v) for v in logs.values())
    after = list(model.netG.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    for a, b, p in zip(avg, before, after, strict=True):  # avg = 0.999 old + 0.001 new
        torch.testing.assert_close(a, 0.999 * b + 0.001 * p.detach(), rtol=1e-5, atol=1e-7)
    assert all(p.requires_grad for d in ds for p in d.parameters())  # unfrozen again
    # DAMSM pretraining: the text encoder's gradient norm is clipped to 0.25
    text = damsm_text_encoder_mini(word_dim=8, embedding_dim=8).train()
    heads = StubImageEncoder(nn.Parameter(torch.randn(8, 3)), nn.Parameter(torch.randn(8, 3)),
                             nn.Parameter(torch.zeros(8)))  # fmt: skip
    opt = torch.optim.Adam([*text.parameters(), *heads.parameters()], lr=M.DAMSM_LR, betas=M.BETAS)
    logs = M.damsm_step(text, heads, opt, torch.rand(3, 3, 16, 16), captions)
    assert math.isfinite(logs["total"])
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in text.parameters()
                                                 if p.grad is not None]))  # fmt: skip
    assert norm <= M.DAMSM_GRAD_CLIP * (1 + 1e-5)


def test_constants_are_the_released_cfgs():
    assert (M.CUB_LOSS.gamma1, M.CUB_LOSS.gamma2, M.CUB_LOSS.gamma3) == (4.0, 5.0, 10.0)
    assert (M.CUB_LOSS.lam, M.COCO_LOSS.lam, M.CUB_LOSS.kl_w) == (5.0, 50.0, 1.0)
    assert (M.G_LR, M.D_LR, M.BETAS, M.DAMSM_LR, M.DAMSM_GRAD_CLIP) == (
        2e-4, 2e-4, (0.5, 0.999), 2e-3, 0.25)  # fmt: skip


def test_bad_inputs():
    regions, code, words, sentence, pad = _matched_batch()
    with pytest.raises(InputError, match="pad must be a bool"):
        M.words_loss(regions, words, pad.float())
    with pytest.raises(InputError, match="pad must be a bool"):
        M.words_loss(regions, words, pad[:, :3])
    with pytest.raises(InputError, match="at least one word"):
        M.words_loss(regions, words, pad.index_fill(0, torch.tensor([1]), True))
    with pytest.raises(InputError, match="must agree on B and D"):
        M.words_loss(regions[:3], words, pad)
    with pytest.raises(InputError, match="must agree on B and D"):
        M.sent_loss(code, sentence[:, :8])
    d = Discriminator(1, 16, 64)
    with pytest.raises(InputError, match="batch of 2 or more"):
        M.discriminator_loss(d, torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64), code[:1])
    g = torch.Generator().manual_seed(0)
    with pytest.raises(InputError, match=r"candidates must lie in \[2, N = 4\]"):
        M.r_precision(code, sentence, candidates=100, generator=g)
    with pytest.raises(InputError, match="must both be"):
        M.r_precision(code, sentence[:3], candidates=2, generator=g)
