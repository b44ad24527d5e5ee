"""Bottom-Up and Top-Down Attention (Anderson et al., CVPR 2018, arXiv 1707.07998): the models.

Paper: "Bottom-Up and Top-Down Attention for Image Captioning and Visual Question Answering".
Both task models read K region features v_i (2048-d, pooled from a Visual Genome Faster R-CNN:
the "bottom-up" part, out of scope here, so the input is the features) and weight them with a
soft "top-down" attention computed from the task's own state.

Captioner (§3.2). Two LSTMs per word step t:
  x1_t = [h2_{t-1}, v_bar, W_e Pi_t]                          (Eq. 2; v_bar the mean feature)
  a_{i,t} = w_a^T tanh(W_va v_i + W_ha h1_t), alpha_t = softmax(a_t)            (Eq. 3, 4)
  v_hat_t = sum_i alpha_{i,t} v_i                                                (Eq. 5)
  x2_t = [v_hat_t, h1_t]                                                         (Eq. 6)
  p(y_t) = softmax(W_p h2_t + b_p)                                               (Eq. 7)
Sizes from the authors' Caffe code, peteanderson80/Up-Down-Captioner @ 0b4e8e5
(scripts/create_caption_lstm.py): 1000 LSTM cells, 1000-d word embeddings without bias, 512
attention units without biases, one bias per LSTM gate, forget bias 1, vocabulary 10,010
(Karpathy train split, "." = 0 doubles as start and end token), captions of 20 words. That code
concatenates [word, v_bar, h2] and [h1, v_hat]; we keep the paper's order (a converter would
permute the input columns). ruotianluo/self-critical.pytorch's `UpDownCore` @ 4c48a33 was read
too but not followed: it first embeds the features to 1000-d (an extra layer) and has biases.

VQA model (§3.3): q = GRU(word embeddings) (final state), a_i = w_a^T f_a([v_i, q]),
v_hat = sum_i softmax(a)_i v_i, h = f_q(q) * f_v(v_hat), p(y) = sigmoid(W_o f_o(h)), every f a
gated tanh layer y = tanh(W x + b) * sigmoid(W' x + b'). No official code: the module and key
names are those of hengyuan-hu/bottom-up-attention-vqa @ 3925206 (`w_emb`, `q_emb`, `v_att`,
`q_net`, `v_net`, `classifier`), so its checkpoints load by key when our config matches its
departures: `activation="relu"`, `weight_norm=True`, `attention="projection"`,
`logit_bias=True`, classifier hidden 2 x num_hid (`updown_vqa_hengyuan`).

What is ours: the feature mask (regions that are padding get exactly zero attention), the
question state read at the last non-padding word (equal to hengyuan-hu's last step on its
left-padded questions), the laptop variants, the widths the paper leaves open (see the configs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    _tracing,
    build_configured,
    check_config,
    check_dtype,
    check_ids,
    ensure_finite,
    ensure_finite_output,
    model_dtype,
)

from .layers import (
    AdditiveAttention,
    Classifier,
    ConcatAttention,
    LSTMCell,
    NonLinear,
    ProjectionAttention,
)


@dataclass(frozen=True, kw_only=True)
class CaptionerConfig:
    """Hyper-parameters of the Up-Down captioner; defaults are the paper's / Caffe code's."""

    vocab_size: int = 10_010  # Caffe code: Karpathy train vocabulary (10,387 for the server)
    feat_dim: int = 2048  # pooled ResNet-101 region features
    embed_dim: int = 1000  # Caffe code, "lstm_num_cells" also sizes the embedding
    hidden: int = 1000  # both LSTMs
    att_dim: int = 512  # attention hidden units
    max_len: int = 20  # words generated at most (Caffe: max_length 20)
    bos_id: int = 0  # the first input word; Caffe feeds end_of_sequence (".", id 0)
    eos_id: int = 0  # "." in the Caffe vocabulary
    pad_id: int = 0  # written by `generate` after the end token (ours)
    dropout: float = 0.0  # the Caffe nets have none (ruotianluo's port adds 0.5 before W_p)

    def __post_init__(self) -> None:
        check_config(self, {"bos_id": 0, "eos_id": 0, "pad_id": 0})
        for name in ("bos_id", "eos_id", "pad_id"):
            if getattr(self, name) >= self.vocab_size:
                raise InputError(f"{name} {getattr(self, name)} >= vocab_size {self.vocab_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True, kw_only=True)
class VQAConfig:
    """Hyper-parameters of the Up-Down VQA model; defaults are the paper's where it gives them."""

    vocab_size: int = 19_902  # embedding rows, padding included; the paper gives none. Ours:
    # 19,901 words + hengyuan-hu's padding row, the size usually quoted for its VQA v2
    # dictionary (not checked here)
    pad_id: int | None = None  # padding row; None: the last one (hengyuan-hu: ntoken)
    word_dim: int = 300  # GloVe-initialisable word embeddings
    num_hid: int = 512  # GRU state, and (ours: the paper names only the GRU) every f layer
    feat_dim: int = 2048
    num_answers: int = 3129  # VQA v2 answers seen more than 8 times (Teney et al.)
    classifier_hidden: int = 512  # f_o's width; ours (hengyuan-hu: 2 x num_hid)
    activation: Literal["gated_tanh", "relu"] = "gated_tanh"  # hengyuan-hu: relu
    weight_norm: bool = False  # hengyuan-hu: True, on every linear layer
    attention: Literal["concat", "projection"] = "concat"  # paper: f_a([v_i, q]);
    # hengyuan-hu's NewAttention: w^T (f_v(v_i) * f_q(q))
    logit_bias: bool = False  # a bias on the attention logit (softmax ignores it); hengyuan-hu
    attention_dropout: float = 0.0  # hengyuan-hu's NewAttention: 0.2
    classifier_dropout: float = 0.0  # hengyuan-hu: 0.5

    def __post_init__(self) -> None:
        check_config(self)
        if self.pad_id is not None and (
            not isinstance(self.pad_id, int) or not 0 <= self.pad_id < self.vocab_size
        ):
            raise InputError(f"VQAConfig: pad_id must be None or in [0, vocab_size = "
                             f"{self.vocab_size}), got {self.pad_id!r}")  # fmt: skip
        for name in ("attention_dropout", "classifier_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def padding_idx(self) -> int:
        return self.vocab_size - 1 if self.pad_id is None else self.pad_id


def check_regions(model: nn.Module, features, mask, feat_dim: int) -> torch.Tensor:
    """Check region features (B, K, D) and their mask (B, K); return the mask as bool."""
    for name, t in (("features", features), ("mask", mask)):
        if not isinstance(t, torch.Tensor):
            raise InputError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if features.ndim != 3 or features.shape[2] != feat_dim:
        raise InputError(
            f"features must be region features (B, K, {feat_dim}), got {tuple(features.shape)}"
        )
    if features.shape[1] < 1:
        raise InputError("features hold no region (K = 0)")
    check_dtype(features, model_dtype(model), "features")
    if tuple(mask.shape) != tuple(features.shape[:2]):
        raise InputError(
            f"mask must be (B, K) like the features: the mask is {tuple(mask.shape)}, the "
            f"features {tuple(features.shape)}"
        )
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise InputError(f"mask must be bool or 0/1 floats, got {mask.dtype}")
    if mask.is_floating_point():  # 0/1 floats: of the model's dtype, as the features
        check_dtype(mask, model_dtype(model), "mask")
    if _tracing():
        return mask > 0.5 if mask.is_floating_point() else mask
    ensure_finite(features, "features")
    if mask.is_floating_point():
        ensure_finite(mask, "mask")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise InputError("mask must hold only 0 and 1")
        mask = mask > 0.5
    if not bool(mask.any(dim=1).all()):
        raise InputError("mask: every sample needs at least one region (a row is all False)")
    return mask


def _check_tokens(tokens, batch: int, high: int, name: str) -> None:
    if not isinstance(tokens, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(tokens).__name__}")
    if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32) or tokens.shape[1] < 1:
        raise InputError(f"{name} must be (B, T) integer ids, got {tokens.dtype} "
                         f"{tuple(tokens.shape)}")  # fmt: skip
    if tokens.shape[0] != batch:
        raise InputError(f"{batch} feature sets but {tokens.shape[0]} rows of {name}")
    check_ids(tokens, high, name)


class UpDownCaptioner(nn.Module):
    """forward(features (B, K, D), mask (B, K), tokens (B, T)) -> word logits (B, T, V),
    teacher-forced: tokens[:, t] is the word fed at step t (tokens[:, 0] the start token), and
    logits[:, t] scores the word that follows it."""

    def __init__(self, cfg: CaptionerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim)  # W_e (Caffe Embed: no bias)
        nn.init.normal_(self.embed.weight, std=0.01)
        self.att_lstm = LSTMCell(c.hidden + c.feat_dim + c.embed_dim, c.hidden)  # Eq. 2
        self.attention = AdditiveAttention(c.feat_dim, c.hidden, c.att_dim)  # Eq. 3-5
        self.lang_lstm = LSTMCell(c.feat_dim + c.hidden, c.hidden)  # Eq. 6
        self.dropout = nn.Dropout(c.dropout)
        self.logit = nn.Linear(c.hidden, c.vocab_size)  # W_p, b_p (Eq. 7)
        nn.init.normal_(self.logit.weight, std=0.01)
        nn.init.zeros_(self.logit.bias)

    def init_state(self, features: torch.Tensor, mask: torch.Tensor):
        """The step state: zero LSTM states, the mean feature v_bar and W_va v_i."""
        b = features.shape[0]
        m = mask.to(features.dtype)[:, :, None]  # (B, K, 1)
        v_bar = (features * m).sum(1) / m.sum(1)  # (B, D): the mean over real regions
        zeros = features.new_zeros(b, self.cfg.hidden)
        return (zeros, zeros, zeros, zeros), v_bar, self.attention.project(features)

    def step(self, word, state, features, mask, v_bar, v_proj):
        """One word: (logits (B, V), new state, attention weights (B, K))."""
        h1, c1, h2, c2 = state
        x1 = torch.cat([h2, v_bar, self.embed(word)], dim=1)  # Eq. 2
        h1, c1 = self.att_lstm(x1, (h1, c1))
        v_hat, alpha = self.attention(features, v_proj, h1, mask)  # Eq. 3-5
        h2, c2 = self.lang_lstm(torch.cat([v_hat, h1], dim=1), (h2, c2))  # Eq. 6
        return self.logit(self.dropout(h2)), (h1, c1, h2, c2), alpha  # Eq. 7, before softmax

    def forward(self, features, mask, tokens) -> torch.Tensor:
        mask = check_regions(self, features, mask, self.cfg.feat_dim)
        _check_tokens(tokens, features.shape[0], self.cfg.vocab_size, "tokens")
        state, v_bar, v_proj = self.init_state(features, mask)
        logits = []
        for t in range(tokens.shape[1]):
            out, state, _ = self.step(tokens[:, t], state, features, mask, v_bar, v_proj)
            logits.append(out)
        out = torch.stack(logits, dim=1)  # (B, T, V)
        ensure_finite_output(out, {"features": features}, self)
        return out

    @torch.no_grad()
    def generate(self, features, mask, *, max_len: int | None = None) -> torch.Tensor:
        """Greedy decoding: (B, L) word ids, L = max_len (the config's by default), the end
        token included where it was emitted and `pad_id` after it. The paper decodes with a
        beam of 5; greedy is ours."""
        mask = check_regions(self, features, mask, self.cfg.feat_dim)
        max_len = self.cfg.max_len if max_len is None else max_len
        if not isinstance(max_len, int) or max_len < 1:
            raise InputError(f"max_len must be a positive integer, got {max_len!r}")
        b = features.shape[0]
        state, v_bar, v_proj = self.init_state(features, mask)
        word = torch.full((b,), self.cfg.bos_id, dtype=torch.long, device=features.device)
        done = torch.zeros(b, dtype=torch.bool, device=features.device)
        out = torch.full((b, max_len), self.cfg.pad_id, dtype=torch.long, device=features.device)
        for t in range(max_len):
            logits, state, _ = self.step(word, state, features, mask, v_bar, v_proj)
            word = logits.argmax(dim=1)
            out[:, t] = torch.where(done, torch.full_like(word, self.cfg.pad_id), word)
            done = done | (word == self.cfg.eos_id)
            if bool(done.all()):
                break
        return out


class _WordEmbedding(nn.Module):
    """hengyuan-hu's `WordEmbedding` layout (`w_emb.emb.weight`)."""

    def __init__(self, rows: int, dim: int, padding_idx: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(rows, dim, padding_idx=padding_idx)


class _QuestionEmbedding(nn.Module):
    """hengyuan-hu's `QuestionEmbedding` layout (`q_emb.rnn.*`): a one-layer GRU."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(d_in, hidden, batch_first=True)


class UpDownVQA(nn.Module):
    """forward(features (B, K, D), mask (B, K), question (B, T) word ids) -> answer logits
    (B, A), one sigmoid score per answer (the loss applies the sigmoid)."""

    def __init__(self, cfg: VQAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg
        kw = {"activation": c.activation, "weight_norm": c.weight_norm}
        self.w_emb = _WordEmbedding(c.vocab_size, c.word_dim, c.padding_idx)
        self.q_emb = _QuestionEmbedding(c.word_dim, c.num_hid)
        att = ConcatAttention if c.attention == "concat" else ProjectionAttention
        self.v_att = att(c.feat_dim, c.num_hid, c.num_hid, logit_bias=c.logit_bias,
                         dropout=c.attention_dropout, **kw)  # fmt: skip
        self.q_net = NonLinear(c.num_hid, c.num_hid, **kw)  # f_q
        self.v_net = NonLinear(c.feat_dim, c.num_hid, **kw)  # f_v
        self.classifier = Classifier(c.num_hid, c.classifier_hidden, c.num_answers,
                                     dropout=c.classifier_dropout, **kw)  # fmt: skip

    def encode_question(self, question: torch.Tensor) -> torch.Tensor:
        """q: the GRU's state after the last non-padding word (the last step if none)."""
        out, _ = self.q_emb.rnn(self.w_emb.emb(question))  # (B, T, H)
        t = question.shape[1]
        pos = torch.arange(t, device=question.device)[None, :].expand_as(question)
        last = torch.where(question != self.cfg.padding_idx, pos, -1).amax(dim=1)
        last = torch.where(last < 0, t - 1, last)  # an all-padding question: the last step
        return out.gather(1, last[:, None, None].expand(-1, 1, out.shape[2]))[:, 0]

    def attention(self, features, mask, question) -> torch.Tensor:
        """The attention weights (B, K) over the regions (for inspection)."""
        mask = check_regions(self, features, mask, self.cfg.feat_dim)
        _check_tokens(question, features.shape[0], self.cfg.vocab_size, "question")
        return self.v_att(features, self.encode_question(question), mask)[:, :, 0]

    def forward(self, features, mask, question) -> torch.Tensor:
        mask = check_regions(self, features, mask, self.cfg.feat_dim)
        _check_tokens(question, features.shape[0], self.cfg.vocab_size, "question")
        q = self.encode_question(question)  # (B, H)
        alpha = self.v_att(features, q, mask)  # (B, K, 1)
        v_hat = (alpha * features).sum(1)  # (B, D)
        h = self.q_net(q) * self.v_net(v_hat)  # element-wise fusion
        out = self.classifier(h)  # (B, A)
        ensure_finite_output(out, {"features": features}, self)
        return out


def updown_captioner(**overrides) -> UpDownCaptioner:
    """The paper's captioner: 2 x 1000-cell LSTMs, 512 attention units, 10,010 words."""
    return build_configured(UpDownCaptioner, CaptionerConfig(), overrides)


def updown_vqa(**overrides) -> UpDownVQA:
    """The paper's VQA model: GRU 512, gated tanh layers, concatenation attention."""
    return build_configured(UpDownVQA, VQAConfig(), overrides)


HENGYUAN = {  # hengyuan-hu's build_baseline0_newatt (its default num_hid is 1024)
    "activation": "relu",
    "weight_norm": True,
    "attention": "projection",
    "logit_bias": True,
    "num_hid": 1024,
    "classifier_hidden": 2048,
    "attention_dropout": 0.2,
    "classifier_dropout": 0.5,
}


def updown_vqa_hengyuan(**overrides) -> UpDownVQA:
    """hengyuan-hu's re-implementation, whose checkpoints load into it by key."""
    return build_configured(UpDownVQA, VQAConfig(**HENGYUAN), overrides)


# Laptop scale, for the synthetic captioned scenes (sotazoo.data.captioned_scenes): its words
# ("<pad>" 0, "<bos>" 2, "<eos>" 3), up to 10 regions of 128-d features.
MINI_VOCAB = 64  # room for the scenes' grammar and the 4 special tokens


def updown_captioner_mini(**overrides) -> UpDownCaptioner:
    """A small captioner for the synthetic scenes."""
    cfg = CaptionerConfig(vocab_size=MINI_VOCAB, feat_dim=128, embed_dim=64, hidden=128,
                          att_dim=64, max_len=16, bos_id=2, eos_id=3, pad_id=0)  # fmt: skip
    return build_configured(UpDownCaptioner, cfg, overrides)


def updown_vqa_mini(**overrides) -> UpDownVQA:
    """A small VQA model for the synthetic scenes' questions (23 answers)."""
    cfg = VQAConfig(vocab_size=MINI_VOCAB, pad_id=0, word_dim=32, num_hid=128, feat_dim=128,
                    num_answers=23, classifier_hidden=128)  # fmt: skip
    return build_configured(UpDownVQA, cfg, overrides)


def tiny_overrides(name: str) -> dict:
    """Small widths for the registry-wide tests (the feature size stays the card's)."""
    if "captioner" in name:
        return {"vocab_size": 20, "embed_dim": 8, "hidden": 8, "att_dim": 8, "max_len": 4}
    return {"vocab_size": 20, "word_dim": 8, "num_hid": 8, "classifier_hidden": 8,
            "num_answers": 7}  # fmt: skip
