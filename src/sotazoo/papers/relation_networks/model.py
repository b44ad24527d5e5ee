"""Relation Networks (Santoro et al., NeurIPS 2017, arXiv 1706.01427): the models.

Paper: "A simple neural network module for relational reasoning". No official code was
released; the sizes below are those of the paper's Appendix (Sort-of-CLEVR: App. D; CLEVR from
pixels: App. B). What is ours: the coordinate tags in [-1, 1] (the paper says "arbitrary
coordinate"), and computing g's first layer per object rather than per pair (an exact rewrite,
below), which saves N^2 / 2N of that layer's multiply-adds.

The idea (Eq. 1, §2): RN(O) = f_phi( sum_{i,j} g_theta(o_i, o_j, q) ). A CNN turns the image
into a d x d feature map; each cell, tagged with its (x, y), is one "object". g reads every
ordered pair of objects together with the question; the pair outputs are summed, so the module
is invariant to the order of the objects and must learn relations, not positions in a list; f
maps the sum to answer logits.

The baseline (§5.3) is CNN+MLP: the same CNN, the flattened feature map and the question through
an MLP with the layers of g and f, so it has more parameters than the RN.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    check_config,
    check_dtype,
    check_ids,
    check_image_batch,
    ensure_finite_output,
    model_dtype,
)


@dataclass(frozen=True, kw_only=True)
class RNConfig:
    """Hyper-parameters of one Relation Network (or of its CNN+MLP baseline, `head="mlp"`)."""

    head: str = "rn"  # "rn": the relation module; "mlp": the paper's CNN+MLP baseline
    conv_channels: tuple[int, ...] = (32, 64, 128, 256)  # App. D: 3x3, stride 2, BN, ReLU
    bn_after_relu: bool = False  # the paper names both, not their order; the most used port
    # (kimhc6028/relational-networks) applies ReLU first, its converted weights need True
    image_size: int = 75
    question: str = "vector"  # "vector": Sort-of-CLEVR's 11 bits; "lstm": CLEVR's words
    question_dim: int = 11
    vocab_size: int = 90  # CLEVR only; the paper gives none (ours: CLEVR's ~90 tokens)
    embed_dim: int = 32  # CLEVR: 32-d word embeddings (App. B)
    lstm_dim: int = 128  # CLEVR: 128-unit LSTM (App. B)
    g_layers: tuple[int, ...] = (2000, 2000, 2000, 2000)  # App. D: four layers of 2000
    f_layers: tuple[int, ...] = (2000, 1000, 500, 100)  # App. D, then a linear softmax layer
    f_dropout: float = 0.0  # CLEVR: 50% dropout after f's last layer (App. B)
    num_answers: int = 10
    first_layer: str = "per_object"  # "per_pair": g's first layer on each concatenated pair,
    # literally as Eq. 1 and the public port compute it (same parameters and function; the
    # benchmark's reference)

    def __post_init__(self) -> None:
        check_config(self)
        for field, allowed in (
            ("head", ("rn", "mlp")),
            ("question", ("vector", "lstm")),
            ("first_layer", ("per_object", "per_pair")),
        ):
            if getattr(self, field) not in allowed:
                raise InputError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")
        for field in ("conv_channels", "g_layers", "f_layers"):
            if not getattr(self, field):
                raise InputError(f"{field} must hold at least one layer width")
        if not 0.0 <= self.f_dropout < 1.0:
            raise InputError(f"f_dropout must be in [0, 1), got {self.f_dropout}")

    @property
    def grid(self) -> int:
        s = self.image_size
        for _ in self.conv_channels:
            s = (s - 1) // 2 + 1  # 3x3, stride 2, padding 1
        return s

    @property
    def question_features(self) -> int:
        return self.lstm_dim if self.question == "lstm" else self.question_dim


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear + ReLU for each step of `sizes` (ReLU after the last layer too, as in g and f)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class RelationNetwork(nn.Module):
    """CNN -> objects -> RN (or MLP) -> answer logits; forward(image, question)."""

    def __init__(self, cfg: RNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        convs: list[nn.Module] = []
        c_in = 3
        for c in cfg.conv_channels:
            norm_act = (
                [nn.ReLU(), nn.BatchNorm2d(c)]
                if cfg.bn_after_relu
                else [nn.BatchNorm2d(c), nn.ReLU()]
            )
            convs += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), *norm_act]
            c_in = c
        self.cnn = nn.Sequential(*convs)
        if cfg.question == "lstm":
            self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
            self.lstm = nn.LSTM(cfg.embed_dim, cfg.lstm_dim, batch_first=True)
        obj = c_in + 2  # features plus the (x, y) tag
        q = cfg.question_features
        n = cfg.grid * cfg.grid
        if cfg.head == "rn":
            self.g = _mlp([2 * obj + q, *cfg.g_layers])
        else:  # "mlp"
            self.g = _mlp([n * obj + q, *cfg.g_layers])
        width = cfg.g_layers[-1]
        self.f = _mlp([width, *cfg.f_layers])
        self.dropout = nn.Dropout(cfg.f_dropout)
        self.classifier = nn.Linear(cfg.f_layers[-1], cfg.num_answers)
        coords = torch.linspace(-1, 1, cfg.grid)
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        # (N, 2) tag of each cell, row-major: part of the state dict, since a checkpoint trained
        # with other tags needs its own (see convert.py)
        self.register_buffer("coords", torch.stack([xx, yy]).reshape(2, n).T.contiguous())

    def objects(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, C + 2): every cell of the last feature map, with its (x, y)."""
        fmap = self.cnn(image)  # (B, C, d, d)
        b, c, h, w = fmap.shape
        if h * w != self.coords.shape[0]:
            raise InputError(
                f"a {image.shape[-1]}x{image.shape[-2]} image gives a {w}x{h} feature map; this "
                f"model was built for {self.cfg.image_size}x{self.cfg.image_size}"
            )
        obj = fmap.reshape(b, c, h * w).transpose(1, 2)  # (B, N, C)
        return torch.cat([obj, self.coords.expand(b, -1, -1)], dim=2)

    def encode_question(self, question: torch.Tensor) -> torch.Tensor:
        if self.cfg.question == "lstm":
            _, (h, _) = self.lstm(self.embed(question))
            return h[-1]  # (B, lstm_dim)
        return question

    def _check_question(self, image: torch.Tensor, question: torch.Tensor) -> None:
        if not isinstance(question, torch.Tensor):
            raise InputError(f"question must be a torch.Tensor, got {type(question).__name__}")
        lstm = self.cfg.question == "lstm"
        ints = (torch.int64, torch.int32)  # what an embedding takes
        ok_dtype = question.dtype in ints if lstm else question.is_floating_point()
        want = "(B, L) integer word ids" if lstm else f"(B, {self.cfg.question_dim}) float bits"
        if (
            question.ndim != 2
            or not ok_dtype
            or (not lstm and question.shape[1] != self.cfg.question_dim)
        ):
            raise InputError(
                f"question must be {want}, got {question.dtype} {tuple(question.shape)}"
            )
        if question.shape[0] != image.shape[0]:
            raise InputError(f"{image.shape[0]} images but {question.shape[0]} questions")
        if not lstm:
            check_dtype(question, model_dtype(self), "question")
        else:  # word ids index the embedding: the vocabulary
            check_ids(question, self.cfg.vocab_size, "question word ids")

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        check_image_batch(image, 3, dtype=model_dtype(self))
        self._check_question(image, question)
        out = self._forward(image, question)
        ensure_finite_output(out, {"image": image, "question": question}, self)
        return out

    def _forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        o = self.objects(image)  # (B, N, D)
        q = self.encode_question(question)  # (B, Q)
        if self.cfg.head == "mlp":
            return self.classifier(self.dropout(self.f(self.g(torch.cat([o.flatten(1), q], 1)))))
        n = o.shape[1]
        if self.cfg.first_layer == "per_pair":  # Eq. 1 as written: (B, N, N, 2D + Q) inputs
            pairs = self.g[0](
                torch.cat(
                    [
                        o[:, :, None, :].expand(-1, -1, n, -1),
                        o[:, None, :, :].expand(-1, n, -1, -1),
                        q[:, None, None, :].expand(-1, n, n, -1),
                    ],
                    dim=3,
                )
            )
        else:
            # g's first layer on the concatenation (o_i, o_j, q) equals W_i o_i + W_j o_j +
            # W_q q + b: project each object once, then add every pair by broadcasting (exact).
            first = self.g[0]
            d = o.shape[2]
            w_i, w_j, w_q = first.weight.split([d, d, q.shape[1]], dim=1)
            a = o @ w_i.T  # (B, N, H)
            b = o @ w_j.T  # (B, N, H)
            c = q @ w_q.T + first.bias  # (B, H)
            pairs = a[:, :, None, :] + b[:, None, :, :] + c[:, None, None, :]  # (B, N, N, H)
        h = self.g[1:](pairs)  # ReLU, then the remaining layers of g
        summed = h.sum(dim=(1, 2))  # (B, G): sum over all ordered pairs
        return self.classifier(self.dropout(self.f(summed)))


def _build(**kwargs) -> RelationNetwork:
    names = {f.name for f in fields(RNConfig)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise TypeError(f"unknown options {unknown}; RNConfig takes: {', '.join(sorted(names))}")
    return RelationNetwork(RNConfig(**kwargs))


def rn_sort_of_clevr(**overrides) -> RelationNetwork:
    """CNN+RN for Sort-of-CLEVR, sizes of App. D (75 x 75 input, 25 objects)."""
    return _build(**overrides)


def cnn_mlp_sort_of_clevr(**overrides) -> RelationNetwork:
    """The paper's CNN+MLP baseline for Sort-of-CLEVR: same CNN, an MLP instead of the RN."""
    return _build(**{"head": "mlp", **overrides})


def rn_clevr(**overrides) -> RelationNetwork:
    """CNN+LSTM+RN for CLEVR from pixels, sizes of App. B (128 x 128 input, 64 objects)."""
    cfg = {
        "conv_channels": (24, 24, 24, 24),
        "image_size": 128,
        "question": "lstm",
        "g_layers": (256, 256, 256, 256),
        "f_layers": (256, 256),
        "f_dropout": 0.5,
        "num_answers": 29,
    }
    return _build(**{**cfg, **overrides})


LAPTOP = {
    "conv_channels": (24, 24, 24, 24),
    "g_layers": (128, 128, 128),
    "f_layers": (128, 128),
}


def rn_mini(**overrides) -> RelationNetwork:
    """Laptop-scale CNN+RN for Sort-of-CLEVR (the reproduction's and the demo's model)."""
    return _build(**{**LAPTOP, **overrides})


def cnn_mlp_mini(**overrides) -> RelationNetwork:
    """The CNN+MLP baseline at the same laptop scale as `rn_mini`."""
    return _build(**{**LAPTOP, "head": "mlp", **overrides})


def tiny_overrides(name: str) -> dict:
    """Small configs for the registry-wide forward/backward/export tests."""
    tiny = {"conv_channels": (4, 4, 4, 4), "g_layers": (8, 8), "f_layers": (8,)}
    return {**tiny, "image_size": 128} if name == "rn_clevr" else tiny
