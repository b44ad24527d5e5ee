"""Bottom-Up and Top-Down Attention (Anderson et al., CVPR 2018): the building blocks.

Ours, written from the paper (§3.2, §3.3) and the authors' Caffe captioner
(peteanderson80/Up-Down-Captioner @ 0b4e8e5, scripts/create_caption_lstm.py). The module and
parameter names of the VQA blocks are those of hengyuan-hu/bottom-up-attention-vqa @ 3925206 (its
`FCNet`, `SimpleClassifier`, `Attention`, `NewAttention`), so that its checkpoints load by key;
no code of it is copied.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class WeightNormLinear(nn.Module):
    """A linear layer with weight normalisation over the whole matrix (Salimans & Kingma 2016):
    W = g V / ||V||_F with a scalar g. The parameters `weight_g` (shape ()), `weight_v` and
    `bias` are those `torch.nn.utils.weight_norm(nn.Linear(...), dim=None)` leaves in a state
    dict, the layout of hengyuan-hu's checkpoints (not an idea of the Up-Down paper)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        init = nn.Linear(in_features, out_features, bias=bias)  # the same start as nn.Linear
        self.weight_v = nn.Parameter(init.weight.detach().clone())
        self.weight_g = nn.Parameter(init.weight.detach().norm())
        self.bias = nn.Parameter(init.bias.detach().clone()) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        return self.weight_g * self.weight_v / self.weight_v.norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


def linear(in_features: int, out_features: int, *, weight_norm: bool, bias: bool = True):
    return (WeightNormLinear if weight_norm else nn.Linear)(in_features, out_features, bias=bias)


class NonLinear(nn.Module):
    """One learned non-linear layer f_a: R^m -> R^n of the VQA model (§3.3).

    `gated_tanh` (the paper's Eq. for f_a): y = tanh(W x + b) * sigmoid(W' x + b'), the gate's
    parameters in `gate`. `relu` (hengyuan-hu's replacement): y = ReLU(W x + b). `main.0` is W
    in both, so a ReLU checkpoint's keys (`main.0.weight_g`, ...) are those of hengyuan-hu's
    one-layer `FCNet`.
    """

    def __init__(self, d_in: int, d_out: int, *, activation: str, weight_norm: bool) -> None:
        super().__init__()
        act = nn.Tanh() if activation == "gated_tanh" else nn.ReLU()
        self.main = nn.Sequential(linear(d_in, d_out, weight_norm=weight_norm), act)
        self.gate = (
            linear(d_in, d_out, weight_norm=weight_norm) if activation == "gated_tanh" else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x)
        if self.gate is not None:
            y = y * torch.sigmoid(self.gate(x))  # the gate g = sigma(W' x + b')
        return y


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Softmax over `dim` where `mask` is False gets exactly zero weight (exp(min - max) = 0).
    Every row must keep at least one region: the models check it."""
    return torch.softmax(logits.masked_fill(~mask, torch.finfo(logits.dtype).min), dim=dim)


class ConcatAttention(nn.Module):
    """The paper's VQA attention (§3.3): a_i = w_a^T f_a([v_i, q]), alpha = softmax(a).

    Keys as hengyuan-hu's `Attention` (`nonlinear.*`, `linear.*`)."""

    def __init__(self, v_dim, q_dim, hidden, *, activation, weight_norm, logit_bias, dropout):
        super().__init__()
        self.nonlinear = NonLinear(v_dim + q_dim, hidden, activation=activation,
                                   weight_norm=weight_norm)  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.linear = linear(hidden, 1, weight_norm=weight_norm, bias=logit_bias)

    def forward(self, v: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k = v.shape[1]
        vq = torch.cat([v, q[:, None, :].expand(-1, k, -1)], dim=2)  # (B, K, D + Q)
        logits = self.linear(self.dropout(self.nonlinear(vq)))  # (B, K, 1)
        return masked_softmax(logits, mask[:, :, None])


class ProjectionAttention(nn.Module):
    """hengyuan-hu's `NewAttention` (not the paper's): a_i = w^T (f_v(v_i) * f_q(q)), the
    region and the question projected separately and multiplied, dropout before w."""

    def __init__(self, v_dim, q_dim, hidden, *, activation, weight_norm, logit_bias, dropout):
        super().__init__()
        kw = {"activation": activation, "weight_norm": weight_norm}
        self.v_proj = NonLinear(v_dim, hidden, **kw)
        self.q_proj = NonLinear(q_dim, hidden, **kw)
        self.dropout = nn.Dropout(dropout)
        self.linear = linear(hidden, 1, weight_norm=weight_norm, bias=logit_bias)

    def forward(self, v: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        joint = self.v_proj(v) * self.q_proj(q)[:, None, :]  # (B, K, H)
        logits = self.linear(self.dropout(joint))  # (B, K, 1)
        return masked_softmax(logits, mask[:, :, None])


class Classifier(nn.Module):
    """p(y) = sigmoid(W_o f_o(h)) (§3.3) without the sigmoid (logits out; the loss applies it).

    `main` is [W, activation, dropout, W_o], the layout of hengyuan-hu's `SimpleClassifier`
    (keys `main.0.*`, `main.3.*`); the gated tanh's gate is `gate`."""

    def __init__(self, d_in, hidden, d_out, *, activation, weight_norm, dropout) -> None:
        super().__init__()
        act = nn.Tanh() if activation == "gated_tanh" else nn.ReLU()
        self.main = nn.Sequential(
            linear(d_in, hidden, weight_norm=weight_norm),
            act,
            nn.Dropout(dropout),
            linear(hidden, d_out, weight_norm=weight_norm),
        )
        self.gate = (
            linear(d_in, hidden, weight_norm=weight_norm) if activation == "gated_tanh" else None
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.main[1](self.main[0](h))
        if self.gate is not None:
            y = y * torch.sigmoid(self.gate(h))
        return self.main[3](self.main[2](y))


class LSTMCell(nn.Module):
    """One LSTM step as the authors' Caffe `LSTMNode` computes it: a single affine map of the
    concatenation [x, h_{t-1}] to the four gates (one bias per gate, where torch.nn.LSTMCell has
    two), forget-gate bias initialised to 1 (create_caption_lstm.py). Gate order (i, f, g, o),
    as torch's."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.linear = nn.Linear(d_in + hidden, 4 * hidden)
        nn.init.normal_(self.linear.weight, std=0.01)  # Caffe: gaussian filler, std 0.01
        nn.init.zeros_(self.linear.bias)
        with torch.no_grad():
            self.linear.bias[hidden : 2 * hidden] = 1.0  # forget gate

    def forward(self, x, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        i, f, g, o = self.linear(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class AdditiveAttention(nn.Module):
    """The captioner's attention (Eq. 3-5): a_{i,t} = w_a^T tanh(W_va v_i + W_ha h1_t),
    alpha_t = softmax(a_t), v_hat_t = sum_i alpha_{i,t} v_i. No biases, as in the Caffe code
    (`fc`, `hidden_att`, `predict_att` have bias_term false); W_va v_i is computed once per
    caption (`project`), not at every step."""

    def __init__(self, feat_dim: int, hidden: int, att_dim: int) -> None:
        super().__init__()
        self.feat_proj = nn.Linear(feat_dim, att_dim, bias=False)  # W_va
        self.hidden_proj = nn.Linear(hidden, att_dim, bias=False)  # W_ha
        self.score = nn.Linear(att_dim, 1, bias=False)  # w_a
        for m in (self.feat_proj, self.hidden_proj, self.score):
            nn.init.normal_(m.weight, std=0.01)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        return self.feat_proj(v)  # (B, K, A)

    def forward(self, v, v_proj, h, mask) -> tuple[torch.Tensor, torch.Tensor]:
        """(attended feature (B, D), weights (B, K))."""
        a = self.score(torch.tanh(v_proj + self.hidden_proj(h)[:, None, :]))[:, :, 0]  # (B, K)
        alpha = masked_softmax(a, mask)
        return (alpha[:, :, None] * v).sum(1), alpha
