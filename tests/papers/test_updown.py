"""Bottom-Up and Top-Down Attention: what is checked, and against what.

- Parameter counts. The paper gives no total. The captioner's count is the authors' Caffe net
  (peteanderson80/Up-Down-Captioner, scripts/create_caption_lstm.py: vocabulary 10,010, 1000
  cells, 512 attention units, embedding and attention without biases, one bias per LSTM gate),
  counted by hand below: 57,983,098. The VQA model's is the paper's §3.3 with its GRU of 512 and
  our widths where the paper names none (every f layer 512, 19,902 embedding rows, 3,129
  answers), counted by hand: 14,597,857. hengyuan-hu's `build_baseline0_newatt` (its own
  architecture: ReLU, weight norm, projection attention, classifier hidden 2 x num_hid) was
  instantiated with 19,901 words, 2048-d features and 3,129 answers: 13,577,449 parameters at
  num_hid 512, 24,851,177 at its default 1024 (both recorded in the fixture); our
  `updown_vqa_hengyuan` counts the same 24,851,177.
- Oracle: fixtures/updown_vqa_hengyuan.json holds a tiny `build_baseline0_newatt` of
  hengyuan-hu/bottom-up-attention-vqa @ 3925206 run unmodified (weights in float16, exactly the
  values it computed with, its inputs and float32 outputs). Our model in its configuration loads
  the weights under its own keys (strict) and agrees within 1e-5 (float32 rounding of the same
  operations in another order; the measured difference is ~2e-7); separately, the builder
  `updown_vqa` is the paper's: gated tanh, concatenation attention, no weight norm.
- The captioner: no faithful PyTorch captioner runs here (the official one is Caffe;
  ruotianluo's UpDownCore adds a feature embedding), so its equations are checked directly: a
  hand-computed attention softmax, and the teacher-forced logits against Eqs. 2-7 written out
  step by step from the module's weights.
- Masked regions get exactly zero attention and do not change either model's output; the
  captioner's logits at step t do not depend on later tokens; greedy `generate` stops at its
  length and writes padding after the end token; bad inputs raise `InputError`.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from sotazoo.errors import InputError
from sotazoo.papers.updown.layers import AdditiveAttention, ConcatAttention, NonLinear
from sotazoo.papers.updown.model import (
    CaptionerConfig,
    VQAConfig,
    updown_captioner,
    updown_captioner_mini,
    updown_vqa,
    updown_vqa_hengyuan,
    updown_vqa_mini,
)

from .oracle import fixture_tensor, fixture_weights, within

FIXTURE = Path(__file__).parent / "fixtures" / "updown_vqa_hengyuan.json"
CAPTIONER_PARAMS = 57_983_098  # the Caffe net, counted by hand (module docstring)
VQA_PARAMS = 14_597_857  # §3.3 with our widths, counted by hand
HENGYUAN_PARAMS = 24_851_177  # build_baseline0_newatt(num_hid=1024), instantiated


def _linear(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def _captioner_by_hand(c: CaptionerConfig) -> int:
    """The Caffe net's blobs: Embed (no bias), fc = W_va (no bias), two LSTMNodes (one weight
    over [input, own h], one bias), hidden_att = W_ha, predict_att = w_a (no biases), predict."""
    h, d, e, a, v = c.hidden, c.feat_dim, c.embed_dim, c.att_dim, c.vocab_size
    return (
        v * e
        + _linear(d, a, False)
        + _linear(h + d + e + h, 4 * h)  # attention LSTM: [h2, v_bar, word] and its own h1
        + _linear(h, a, False)
        + _linear(a, 1, False)
        + _linear(d + h + h, 4 * h)  # language LSTM: [v_hat, h1] and its own h2
        + _linear(h, v)
    )


def _vqa_by_hand(c: VQAConfig) -> int:
    """§3.3: embedding, GRU, gated tanh layers (two affine maps each) f_a, f_q, f_v, f_o, w_a
    (no bias), W_o."""
    q, d, n = c.num_hid, c.feat_dim, c.classifier_hidden
    gated = 2 * (_linear(d + q, q) + _linear(q, q) + _linear(d, q) + _linear(q, n))
    gru = 3 * (c.word_dim * q + q * q + 2 * q)
    return (
        c.vocab_size * c.word_dim + gru + gated + _linear(q, 1, False) + _linear(n, c.num_answers)
    )


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts():
    with torch.device("meta"):
        cap, vqa, hy = updown_captioner(), updown_vqa(), updown_vqa_hengyuan()
    assert _captioner_by_hand(cap.cfg) == CAPTIONER_PARAMS == _count(cap)
    assert _vqa_by_hand(vqa.cfg) == VQA_PARAMS == _count(vqa)
    counts = json.loads(FIXTURE.read_text())["counts"]
    assert (
        HENGYUAN_PARAMS
        == _count(hy)
        == counts["build_baseline0_newatt(ntoken=19901, v_dim=2048, answers=3129, num_hid=1024)"]
    )
    assert (cap.cfg.hidden, cap.cfg.embed_dim, cap.cfg.att_dim, cap.cfg.feat_dim) == (
        1000, 1000, 512, 2048)  # fmt: skip


# ---------------------------------------------------------------- VQA: oracle and paper form


def test_oracle_vqa_matches_hengyuan_hu():
    fx = json.loads(FIXTURE.read_text())
    c = fx["config"]
    model = updown_vqa_hengyuan(
        vocab_size=c["ntoken"] + 1,  # its padding row is ntoken
        feat_dim=c["v_dim"],
        num_hid=c["num_hid"],
        classifier_hidden=2 * c["num_hid"],
        num_answers=c["num_answers"],
    ).eval()
    model.load_state_dict(fixture_weights(fx["weights"]), strict=True)  # its keys, unchanged
    v = fixture_tensor(fx["inputs"]["features"])
    q = fixture_tensor(fx["inputs"]["question"]).long()  # left-padded, as its dataset pads
    mask = torch.ones(v.shape[:2])
    with torch.no_grad():
        out = model(v, mask, q)
        att = model.attention(v, mask, q)
    within((out - fixture_tensor(fx["outputs"]["logits"])).abs().max(), 1e-5, "hengyuan-hu logits")
    within((att - fixture_tensor(fx["outputs"]["attention"])).abs().max(), 1e-5, "its attention")


def test_updown_vqa_builds_the_papers_gated_tanh_model():
    cfg = VQAConfig()
    assert (cfg.activation, cfg.attention, cfg.weight_norm) == ("gated_tanh", "concat", False)
    assert (cfg.word_dim, cfg.num_hid, cfg.num_answers) == (300, 512, 3129)
    model = updown_vqa(vocab_size=11, feat_dim=6, num_hid=4, classifier_hidden=5, num_answers=3)
    assert isinstance(model.v_att, ConcatAttention)
    for f in (model.v_att.nonlinear, model.q_net, model.v_net):
        assert isinstance(f.main[1], torch.nn.Tanh) and f.gate is not None
    assert model.classifier.gate is not None and model.v_att.linear.bias is None
    # a gated tanh layer is tanh(W x + b) * sigmoid(W' x + b')
    f = NonLinear(3, 2, activation="gated_tanh", weight_norm=False)
    x = torch.randn(4, 3)
    w, b = f.main[0].weight, f.main[0].bias
    w2, b2 = f.gate.weight, f.gate.bias
    torch.testing.assert_close(f(x), torch.tanh(x @ w.T + b) * torch.sigmoid(x @ w2.T + b2))
    # the paper's attention reads [v_i, q]: a_i = w_a^T f_a([v_i, q]), softmax over regions
    torch.manual_seed(0)
    v, mask = torch.randn(2, 5, 6), torch.ones(2, 5, dtype=torch.bool)
    question = torch.randint(0, 10, (2, 4))
    q = model.encode_question(question)
    a = model.v_att.linear(model.v_att.nonlinear(torch.cat([v, q[:, None].expand(-1, 5, -1)], 2)))
    torch.testing.assert_close(model.attention(v, mask, question), a[:, :, 0].softmax(1))


def test_question_state_is_read_at_the_last_word():
    model = updown_vqa_mini().eval()  # pad 0, as the scenes pad on the right
    v, mask = torch.randn(1, 3, 128), torch.ones(1, 3)
    right = torch.tensor([[5, 6, 7, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(model(v, mask, right), model(v, mask, right[:, :3]))


# ---------------------------------------------------------------- the captioner's equations


def test_attention_softmax_by_hand():
    att = AdditiveAttention(feat_dim=2, hidden=1, att_dim=1)
    with torch.no_grad():
        att.feat_proj.weight.copy_(torch.tensor([[1.0, 0.0]]))  # W_va v_i = v_i[0]
        att.hidden_proj.weight.copy_(torch.tensor([[0.5]]))  # W_ha h = h / 2
        att.score.weight.copy_(torch.tensor([[2.0]]))  # w_a
    v = torch.tensor([[[0.0, 1.0], [1.0, 2.0], [-1.0, 3.0]]])
    h = torch.tensor([[1.0]])
    a = [2.0 * math.tanh(x + 0.5) for x in (0.0, 1.0, -1.0)]
    z = sum(math.exp(x) for x in a)
    alpha = [math.exp(x) / z for x in a]
    v_hat = [sum(al * vi[k] for al, vi in zip(alpha, v[0].tolist(), strict=True)) for k in (0, 1)]
    mask = torch.ones(1, 3, dtype=torch.bool)
    out, weights = att(v, att.project(v), h, mask)
    torch.testing.assert_close(weights, torch.tensor([alpha]))
    torch.testing.assert_close(out, torch.tensor([v_hat]))
    # the third region masked: the first two share the mass in the same ratio
    out, weights = att(v, att.project(v), h, torch.tensor([[True, True, False]]))
    z2 = math.exp(a[0]) + math.exp(a[1])
    torch.testing.assert_close(
        weights, torch.tensor([[math.exp(a[0]) / z2, math.exp(a[1]) / z2, 0]])
    )


def _lstm(x, h, c, lin):
    """One LSTM step written out: gates (i, f, g, o) from one affine map of [x, h]."""
    z = torch.cat([x, h], 1) @ lin.weight.T + lin.bias
    i, f, g, o = z.chunk(4, 1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def test_teacher_forced_logits_follow_eqs_2_to_7():
    torch.manual_seed(0)
    m = updown_captioner(vocab_size=9, feat_dim=5, embed_dim=4, hidden=3, att_dim=2).eval()
    for p in m.parameters():  # scales well away from the init's 0.01, so every term counts
        torch.nn.init.normal_(p, std=0.5)
    v = torch.randn(2, 4, 5)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    tokens = torch.randint(0, 9, (2, 6))
    with torch.no_grad():
        got = m(v, mask.float(), tokens)
        mf = mask.float()[:, :, None]
        v_bar = (v * mf).sum(1) / mf.sum(1)
        h1 = c1 = h2 = c2 = torch.zeros(2, 3)
        want = []
        for t in range(6):
            x1 = torch.cat([h2, v_bar, m.embed.weight[tokens[:, t]]], 1)  # Eq. 2
            h1, c1 = _lstm(x1, h1, c1, m.att_lstm.linear)
            a = torch.tanh(v @ m.attention.feat_proj.weight.T
                           + (h1 @ m.attention.hidden_proj.weight.T)[:, None])  # fmt: skip
            a = (a @ m.attention.score.weight.T)[:, :, 0]  # Eq. 3
            a = a.masked_fill(~mask, -math.inf)
            alpha = a.softmax(1)  # Eq. 4
            v_hat = (alpha[:, :, None] * v).sum(1)  # Eq. 5
            h2, c2 = _lstm(torch.cat([v_hat, h1], 1), h2, c2, m.lang_lstm.linear)  # Eq. 6
            want.append(h2 @ m.logit.weight.T + m.logit.bias)  # Eq. 7, before the softmax
    torch.testing.assert_close(got, torch.stack(want, 1), atol=1e-5, rtol=1e-5)


def test_logits_at_step_t_do_not_depend_on_later_tokens():
    torch.manual_seed(0)
    m = updown_captioner_mini().eval()
    v, mask = torch.randn(2, 6, 128), torch.ones(2, 6)
    tokens = torch.randint(0, 64, (2, 7))
    changed = tokens.clone()
    changed[:, 4:] = torch.randint(0, 64, (2, 3))
    with torch.no_grad():
        a, b = m(v, mask, tokens), m(v, mask, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=0, rtol=0)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_generate_stops_at_max_length_and_pads_after_the_end_token():
    torch.manual_seed(0)
    m = updown_captioner_mini(max_len=5).eval()
    v, mask = torch.randn(2, 3, 128), torch.ones(2, 3)
    with torch.no_grad():
        m.logit.bias.zero_()
        m.logit.bias[7] = 100.0  # always word 7: no end token, the full length
        out = m.generate(v, mask)
        assert out.shape == (2, 5) and (out == 7).all()
        assert m.generate(v, mask, max_len=3).shape == (2, 3)
        m.logit.bias[7] = 0.0
        m.logit.bias[m.cfg.eos_id] = 100.0  # the end token at once, then padding
        out = m.generate(v, mask)
    assert out.shape == (2, 5)
    assert (out[:, 0] == m.cfg.eos_id).all() and (out[:, 1:] == m.cfg.pad_id).all()
    # the end token emitted at step 2 for one sample: its later words are padding, the other's not
    with torch.no_grad():
        m.logit.bias.zero_()
        m.logit.weight.zero_()
        m.logit.bias[9] = 10.0

        def step(word, state, *rest, _orig=m.step):
            logits, state, alpha = _orig(word, state, *rest)
            t = step.t
            step.t += 1
            if t == 2:
                logits[0, m.cfg.eos_id] = 1e3
            return logits, state, alpha

        step.t = 0
        m.step = step
        out = m.generate(v, mask)
    assert out[0].tolist() == [9, 9, m.cfg.eos_id, m.cfg.pad_id, m.cfg.pad_id]
    assert out[1].tolist() == [9] * 5


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("which", ["captioner", "vqa"])
def test_masked_regions_get_zero_attention_and_change_nothing(which):
    torch.manual_seed(0)
    v = torch.randn(2, 6, 128)
    mask = torch.ones(2, 6)
    mask[0, 4:] = 0
    mask[1, 1] = 0
    moved = v.clone()
    moved[0, 4:] = 50 * torch.randn(2, 128)
    moved[1, 1] = -30.0
    if which == "captioner":
        m = updown_captioner_mini().eval()
        tokens = torch.randint(0, 64, (2, 5))
        with torch.no_grad():
            a, b = m(v, mask, tokens), m(moved, mask, tokens)
            state, v_bar, v_proj = m.init_state(v, mask.bool())
            _, _, alpha = m.step(tokens[:, 0], state, v, mask.bool(), v_bar, v_proj)
            short = m(v[:1, :4], mask[:1, :4], tokens[:1])  # the padding regions left out
        torch.testing.assert_close(a[:1], short, atol=1e-6, rtol=1e-5)
    else:
        m = updown_vqa_mini().eval()
        tokens = torch.randint(1, 64, (2, 5))
        with torch.no_grad():
            a, b = m(v, mask, tokens), m(moved, mask, tokens)
            alpha = m.attention(v, mask, tokens)
            short = m(v[:1, :4], mask[:1, :4], tokens[:1])
        torch.testing.assert_close(a[:1], short, atol=1e-6, rtol=1e-5)
    assert (alpha[0, 4:] == 0).all() and (alpha[1, 1] == 0).all()
    torch.testing.assert_close(alpha.sum(1), torch.ones(2))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


# ---------------------------------------------------------------- bad input


def _good(which):
    v, mask = torch.randn(2, 4, 128), torch.ones(2, 4)
    tokens = torch.randint(0, 64, (2, 5))
    m = updown_captioner_mini() if which == "captioner" else updown_vqa_mini()
    return m, v, mask, tokens


BAD = {
    "features rank": (lambda v, m, t: (v[0], m, t), "region features"),
    "feature size": (lambda v, m, t: (v[..., :64], m, t), "region features"),
    "features dtype": (lambda v, m, t: (v.double(), m, t), "float64"),
    "integer features": (lambda v, m, t: (v.long(), m, t), "floating-point"),
    "NaN features": (lambda v, m, t: (v.index_fill(1, torch.tensor([2]), math.nan), m, t), "NaN"),
    "mask shape": (lambda v, m, t: (v, m[:, :3], t), "mask must be"),
    "mask batch": (lambda v, m, t: (v, m[:1], t), "mask must be"),
    "mask values": (lambda v, m, t: (v, m * 0.5, t), "only 0 and 1"),
    "mask dtype": (lambda v, m, t: (v, m.long(), t), "bool or 0/1"),
    "all masked": (lambda v, m, t: (v, m * torch.tensor([[1.0], [0.0]]), t), "at least one"),
    "token ids too large": (lambda v, m, t: (v, m, t + 64), "out of range"),
    "negative token ids": (lambda v, m, t: (v, m, t - 100), "out of range"),
    "float tokens": (lambda v, m, t: (v, m, t.float()), "integer ids"),
    "token batch": (lambda v, m, t: (v, m, t[:1]), "rows of"),
    "token rank": (lambda v, m, t: (v, m, t[0]), "integer ids"),
    "not a tensor": (lambda v, m, t: (v.tolist(), m, t), "torch.Tensor"),
}


@pytest.mark.parametrize("which", ["captioner", "vqa"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_inputs_raise_input_error(which, case):
    m, v, mask, tokens = _good(which)
    change, needle = BAD[case]
    with pytest.raises(InputError, match=needle):
        m(*change(v, mask, tokens))


def test_bad_configs_and_generate_length():
    with pytest.raises(InputError, match="activation"):
        updown_vqa(activation="gelu")
    with pytest.raises(InputError, match="eos_id"):
        updown_captioner_mini(eos_id=64)
    with pytest.raises(TypeError, match="CaptionerConfig takes"):
        updown_captioner_mini(hiden=3)
    m, v, mask, _ = _good("captioner")
    with pytest.raises(InputError, match="max_len"):
        m.generate(v, mask, max_len=0)


def test_mini_models_shapes_and_backward():
    m, v, mask, tokens = _good("captioner")
    out = m(v, mask, tokens)
    assert out.shape == (2, 5, 64)
    out.square().mean().backward()
    assert all(p.grad is not None for p in m.parameters())
    m, v, mask, tokens = _good("vqa")
    out = m(v, mask, tokens)
    assert out.shape == (2, 23)
