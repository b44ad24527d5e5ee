"""AttnGAN (Xu, Zhang, Huang, Zhang, Gan, Huang, He, CVPR 2018, arXiv 1711.10485): the networks.

Paper: "AttnGAN: Fine-Grained Text to Image Generation with Attentional Generative Adversarial
Networks". Official code (PyTorch, Python 2.7, MIT): taoxugit/AttnGAN at
0d000e652b407e976cb88fab299e8566f3de8a37 (`code/model.py`, `code/GlobalAttention.py`,
`code/miscc/config.py`, `code/cfg/bird_attn2.yml`, `coco_attn2.yml`, `DAMSM/*.yml`,
`code/trainer.py`). Our modules keep the official attribute names, so the released files load by
key: `text_encoderNNN.pth` into `TextEncoder` (the official RNN_ENCODER), `image_encoderNNN.pth`
into `ImageEncoder` (CNN_ENCODER), `bird_AttnGAN2.pth` / `coco_AttnGAN2.pth` into `GNet` (G_NET),
`netD0..2.pth` into `Discriminator` (D_NET64 / 128 / 256).

The idea: a caption's words e (D x T) and sentence vector s come from a pretrained bi-LSTM (the
DAMSM text encoder). G starts from [F_ca(s), z] at 64 px; each later stage lets every pixel of the
feature map attend over the words (softmax over words of the pixel's dot product with the
projected word, `layers.WordAttention`, Eq. 2), concatenates that word-context map, refines it
with GLU residual blocks and doubles the size (64 -> 128 -> 256). Each stage has an RGB head and a
discriminator scoring the image alone and with the sentence.

What follows the official code rather than the paper's words:
- Conditioning augmentation is fc -> GLU -> (mu, logvar); the first stage's input is [c, z] in
  that order; every activation of G is a GLU (a * sigmoid(b) over the two halves of the channels).
- The text encoder's sentence is the LSTM's two final hidden states [forward, backward]; its word
  features are 0 past a caption's length; dropout 0.5 acts on the word embeddings only (the
  LSTM's `dropout=0.5` does nothing in a one-layer LSTM).
- The image encoder resizes to 299 x 299 (bilinear) and runs torchvision's Inception-v3 without
  `transform_input`, taking Mixed_6e (768 x 17 x 17 regions, 1x1 conv without bias to D) and the
  8x8 average of Mixed_7c (2048 -> Linear to D); the trunk is frozen, the two heads start
  U(-0.1, 0.1) (weights only).
- The discriminators' "logits" pass through a sigmoid (`D_GET_LOGITS`); the conditional head
  tiles the sentence vector to 4x4 and joins it with a 3x3 block.
- Init (trainer.py, utils.weights_init): orthogonal conv / linear weights in G and D, linear
  biases 0, BN weights N(1, 0.02); the word embedding U(-0.1, 0.1).

What is ours: the LSTM runs on fixed-length padded captions with a length each instead of
`pack_padded_sequence` (the same values, `layers.lstm_direction`; it exports to ONNX); each
caption's padding masks its own attention, where the official code pairs pixels with other
captions' masks (`attention_mask`, issue #93; "official_repeat" reproduces it); padded words
are masked with the most negative finite number, not -inf; the CA noise eps is an input (or drawn
from a `torch.Generator` given by keyword) instead of a draw inside the module; `base_size` sets
the first stage's resolution (the official G always has 4 up-blocks, 64 px), used by the laptop
variant, which also gets a 32-px discriminator (`encode_image` with 3 convs); no in-place ops;
input checks; `AttnGAN`, the registered text-to-image model: the frozen text encoder and G.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from sotazoo.errors import InputError, WeightsError
from sotazoo.nn.checks import (
    _tracing,
    build_configured,
    check_config,
    check_ids,
    check_image_batch,
    check_tensor,
    ensure_finite,
    ensure_finite_output,
    model_dtype,
)
from sotazoo.papers.attngan.layers import (
    CANet,
    Discriminator,
    GetImageG,
    InitStageG,
    NextStageG,
    lstm_direction,
    weights_init,
)

PAD = 0  # the padding id: the official '<end>' (datasets.py pads captions with 0), ours '<pad>'


@dataclass(frozen=True, kw_only=True)
class AttnGANConfig:
    """cfg/bird_attn2.yml over miscc/config.py's defaults, and RNN_ENCODER's arguments."""

    # the DAMSM text encoder (RNN_ENCODER(n_words, nhidden=TEXT.EMBEDDING_DIM))
    n_words: int = 5450  # vocabulary with '<end>' = 0; from the captions pickle (see CUB below)
    words_num: int = 18  # TEXT.WORDS_NUM: the longest caption the data loader keeps (the
    # networks take any T; the registered models' caption input has this length)
    word_dim: int = 300  # ninput: the word embedding
    embedding_dim: int = 256  # TEXT.EMBEDDING_DIM: words and sentence, 128 per LSTM direction
    text_dropout: float = 0.5  # drop_prob, on the embeddings
    # the generator (G_NET)
    branch_num: int = 3  # TREE.BRANCH_NUM: stages, 64 -> 128 -> 256
    base_size: int = 64  # ours: the first stage's size; the official G is fixed at 64 (4 up-blocks)
    gf_dim: int = 32  # GAN.GF_DIM: channels of every stage's output (16 gf_dim at 4 x 4)
    z_dim: int = 100  # GAN.Z_DIM
    condition_dim: int = 100  # GAN.CONDITION_DIM: the CA code c
    r_num: int = 2  # GAN.R_NUM: residual blocks per refinement stage
    # Ours: each caption's padding masks its own attention. The official code pairs the rows of
    # its (B * H * W, T) scores with mask.repeat(H * W, 1), so pixel j of caption b takes caption
    # (b H W + j) mod B's padding (issue #93); "official_repeat" reproduces that, at batch 1 the
    # two are the same.
    attention_mask: Literal["per_caption", "official_repeat"] = "per_caption"
    # the discriminators (D_NET64 / 128 / 256), training only
    df_dim: int = 64  # GAN.DF_DIM
    # the DAMSM image encoder (CNN_ENCODER)
    image_size: int = 299  # Inception-v3's input; images are resized to it
    # nn.Upsample(mode='bilinear') had align_corners=True semantics in the PyTorch of 2017 and
    # False since 0.4: the released encoder may have been trained with either; False is what the
    # official code does today
    align_corners: bool = False

    def __post_init__(self) -> None:
        check_config(self)
        if not 0 <= self.text_dropout < 1:
            raise InputError(f"AttnGANConfig: text_dropout must be in [0, 1), got "
                             f"{self.text_dropout}")  # fmt: skip
        if self.embedding_dim % 2:
            raise InputError(f"AttnGANConfig: embedding_dim must be even (two LSTM directions), "
                             f"got {self.embedding_dim}")  # fmt: skip
        n_up = math.log2(self.base_size / 4)
        if self.base_size < 8 or n_up != int(n_up):
            raise InputError(f"AttnGANConfig: base_size must be 4 * 2^k >= 8, got "
                             f"{self.base_size}")  # fmt: skip

    @property
    def n_up_init(self) -> int:
        """Up-blocks of the first stage: 4 (64 px) in the official G."""
        return int(math.log2(self.base_size // 4))

    @property
    def init_dim(self) -> int:
        """Width of the first stage at 4 x 4: 16 gf_dim in the official G (ngf * 16)."""
        return self.gf_dim * 2**self.n_up_init

    @property
    def sizes(self) -> tuple[int, ...]:
        """The image size of every stage."""
        return tuple(self.base_size * 2**k for k in range(self.branch_num))


# ---------------------------------------------------------------------- input checks


def _check_tensor(x, name: str, shape: tuple, dtype: torch.dtype | None, hint: str = "") -> None:
    """`x` must be a tensor of `shape` (a name such as "B" or "T": any size), float of `dtype`
    and finite (`check_tensor`), or bool / integer, as `dtype` says."""
    if _tracing():
        return
    if dtype not in (torch.bool, torch.int64):
        check_tensor(x, name, shape, dtype, hint=hint)
        return
    check_tensor(x, name, shape, hint=hint)
    if dtype is torch.bool:
        if x.dtype != torch.bool:
            raise InputError(f"{name} must be a bool tensor (True at padded words, as the "
                             f"official captions == 0), got {x.dtype}")  # fmt: skip
    elif x.dtype not in (torch.int64, torch.int32):
        what = "integer token ids" if name == "captions" else "integers"
        raise InputError(f"{name} must hold {what} (int64), got {x.dtype}")


def caption_lengths(captions: torch.Tensor) -> torch.Tensor:
    """(B,) the number of tokens before each caption's first padding id 0 (B, T) -> (B,)."""
    return ((captions == PAD).to(torch.int64).cumsum(1) == 0).sum(1)


# ---------------------------------------------------------------------- DAMSM encoders


class TextEncoder(nn.Module):
    """The DAMSM text encoder (official RNN_ENCODER): forward(captions (B, T) int64, lengths (B,))
    -> words (B, D, T), 0 past each caption's length, and sentence (B, D)."""

    def __init__(self, cfg: AttnGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Embedding(cfg.n_words, cfg.word_dim)
        self.drop = nn.Dropout(cfg.text_dropout)
        hidden = cfg.embedding_dim // 2
        self.rnn = nn.LSTM(cfg.word_dim, hidden, 1, batch_first=True, bidirectional=True)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)  # the LSTM keeps torch's init

    def forward(
        self, captions: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_tensor(captions, "captions", ("B", "T"), torch.int64)
        b, t = captions.shape
        _check_tensor(lengths, "lengths", (b,), torch.int64)
        if not _tracing():
            check_ids(captions, self.cfg.n_words, "captions")
            if bool(((lengths < 1) | (lengths > t)).any()):
                raise InputError(f"lengths must lie in [1, T = {t}] (an empty caption has no "
                                 f"LSTM state), got {lengths.tolist()}")  # fmt: skip
        x = self.drop(self.encoder(captions))  # (B, T, word_dim)
        valid = torch.arange(t, device=captions.device)[None, :] < lengths[:, None]  # (B, T)
        r = self.rnn
        outs, finals = [], []
        for sfx, reverse in (("", False), ("_reverse", True)):
            w_ih, w_hh = getattr(r, f"weight_ih_l0{sfx}"), getattr(r, f"weight_hh_l0{sfx}")
            bias = getattr(r, f"bias_ih_l0{sfx}") + getattr(r, f"bias_hh_l0{sfx}")
            out, h = lstm_direction(x @ w_ih.T + bias, valid, w_hh, reverse=reverse)
            outs.append(out)
            finals.append(h)
        words, sentence = torch.cat(outs, 1), torch.cat(finals, 1)  # (B, D, T), (B, D)
        ensure_finite_output((words, sentence), {}, self)
        return words, sentence


class ImageEncoder(nn.Module):
    """The DAMSM image encoder (official CNN_ENCODER): forward(images (B, 3, H, W) in [-1, 1]) ->
    regions (B, D, 17, 17) and the global code (B, D). The trunk is torchvision's Inception-v3
    up to Mixed_7c under its own names (`load_inception` reads torchvision's ImageNet file)."""

    TRUNK = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
             "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
             "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")  # fmt: skip

    def __init__(self, cfg: AttnGANConfig) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        self.cfg = cfg
        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        for name in self.TRUNK:
            self.add_module(name, getattr(net, name))
        for p in self.parameters():  # frozen: only the two heads below train
            p.requires_grad_(False)
        self.emb_features = nn.Conv2d(768, cfg.embedding_dim, 1, bias=False)
        self.emb_cnn_code = nn.Linear(2048, cfg.embedding_dim)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)

    def load_inception(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load the trunk from torchvision's Inception-v3 state dict (inception_v3_google-*.pth,
        the file the official code downloads); its AuxLogits and fc are not used."""
        trunk = {k: v for k, v in state_dict.items() if k.split(".")[0] in self.TRUNK}
        missing = [k for k in self.state_dict() if k.split(".")[0] in self.TRUNK and k not in trunk]
        if missing:
            raise WeightsError(f"not an Inception-v3 state dict: {len(missing)} trunk keys "
                               f"missing, e.g. {missing[:3]}")  # fmt: skip
        self.load_state_dict(trunk, strict=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_image_batch(images, 3, dtype=model_dtype(self))
        ensure_finite(images, "images")
        size = self.cfg.image_size
        x = nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                      align_corners=self.cfg.align_corners)  # fmt: skip
        pool = nn.functional.max_pool2d
        for name in self.TRUNK[:13]:  # ... Mixed_6e: (B, 768, 17, 17) at 299
            x = getattr(self, name)(x)
            if name in ("Conv2d_2b_3x3", "Conv2d_4a_3x3"):
                x = pool(x, kernel_size=3, stride=2)
        regions = self.emb_features(x)  # (B, D, 17, 17)
        for name in self.TRUNK[13:]:
            x = getattr(self, name)(x)
        x = nn.functional.avg_pool2d(x, kernel_size=8).flatten(1)  # (B, 2048)
        code = self.emb_cnn_code(x)
        ensure_finite_output((regions, code), {}, self)
        return regions, code


# ---------------------------------------------------------------------- generator


class GNet(nn.Module):
    """The attentional generator (official G_NET): forward(noise (B, Z), sentence (B, D), words
    (B, D, T), pad (B, T) bool, True at padded words, eps (B, c_dim) or None) -> ([image per
    stage (B, 3, S, S)], [attention per refinement stage (B, T, S/2, S/2)], mu, logvar)."""

    def __init__(self, cfg: AttnGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.ca_net = CANet(cfg.embedding_dim, cfg.condition_dim)
        for k in range(1, cfg.branch_num + 1):  # h_net1, img_net1, h_net2, ...: official order
            if k == 1:
                h = InitStageG(cfg.init_dim, cfg.z_dim + cfg.condition_dim, cfg.n_up_init)
            else:
                h = NextStageG(cfg.gf_dim, cfg.embedding_dim, cfg.r_num,
                               official_repeat=cfg.attention_mask == "official_repeat")  # fmt: skip
            self.add_module(f"h_net{k}", h)
            self.add_module(f"img_net{k}", GetImageG(cfg.gf_dim))
        weights_init(self)

    def _check(self, noise, sentence, words, pad, eps) -> None:
        cfg, dtype = self.cfg, model_dtype(self)
        _check_tensor(noise, "noise", ("B", cfg.z_dim), dtype)
        b = noise.shape[0]
        _check_tensor(sentence, "sentence", (b, cfg.embedding_dim), dtype)
        _check_tensor(words, "words", (b, cfg.embedding_dim, "T"), dtype)
        _check_tensor(pad, "pad", (b, "T"), torch.bool)
        if not _tracing() and pad.shape[1] != words.shape[2]:
            raise InputError(f"pad (B, T) and words (B, D, T) disagree on T: {pad.shape[1]} "
                             f"vs {words.shape[2]}")  # fmt: skip
        if eps is not None:
            _check_tensor(eps, "eps", (b, cfg.condition_dim), dtype)

    def hidden(self, noise, sentence, words, pad, eps=None, generator=None):
        """The stages' feature maps, attention maps, mu and logvar (forward without the RGB
        heads). Without eps, eps ~ N(0, I) is drawn from `generator` (torch's default one when
        None), as the official CA_NET draws it."""
        self._check(noise, sentence, words, pad, eps)
        if eps is None:  # the official CA_NET draws it: N(0, I)
            eps = torch.randn(noise.shape[0], self.cfg.condition_dim, generator=generator,
                              device=noise.device, dtype=noise.dtype)  # fmt: skip
        c, mu, logvar = self.ca_net(sentence, eps)
        h = self.h_net1(noise, c)
        codes, attns = [h], []
        for k in range(2, self.cfg.branch_num + 1):
            h, attn = getattr(self, f"h_net{k}")(h, words, pad)
            codes.append(h)
            attns.append(attn)
        return codes, attns, mu, logvar

    def forward(self, noise, sentence, words, pad, eps=None, generator=None):
        codes, attns, mu, logvar = self.hidden(noise, sentence, words, pad, eps,
                                               generator=generator)  # fmt: skip
        images = [getattr(self, f"img_net{k + 1}")(h) for k, h in enumerate(codes)]
        ensure_finite_output([*images, mu, logvar], {}, self)
        return images, attns, mu, logvar


# ---------------------------------------------------------------------- the text-to-image model


class AttnGAN(nn.Module):
    """Captions to images: forward(noise (B, Z), captions (B, T) int64 padded with
    0, eps (B, c_dim) or None) -> the last stage's images (B, 3, S, S) in [-1, 1].

    A caption ends at its first 0: its length gives the LSTM's steps and the words the attention
    masks. `text_encoder` is the pretrained DAMSM encoder, frozen and kept in eval mode as the
    official trainer keeps it (trainer.build_models); `netG` is G_NET. `generate` returns every
    stage, the attention maps and the CA statistics."""

    def __init__(self, cfg: AttnGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.text_encoder = TextEncoder(cfg)
        self.netG = GNet(cfg)
        self.text_encoder.requires_grad_(False)
        self.text_encoder.eval()

    def train(self, mode: bool = True) -> AttnGAN:
        super().train(mode)
        self.text_encoder.eval()  # no embedding dropout: the encoder is a fixed pretrained model
        return self

    def encode_text(self, captions: torch.Tensor):
        """captions (B, T) -> words (B, D, T), sentence (B, D), pad (B, T) bool."""
        _check_tensor(captions, "captions", ("B", "T"), torch.int64,
                      " (token ids, padded with 0)")  # fmt: skip
        lengths = caption_lengths(captions)
        if not _tracing() and bool((lengths == 0).any()):
            empty = (lengths == 0).nonzero().flatten().tolist()
            raise InputError(f"captions {empty} are empty: they start with the padding id 0")
        words, sentence = self.text_encoder(captions, lengths)
        pad = torch.arange(captions.shape[1], device=captions.device)[None] >= lengths[:, None]
        return words, sentence, pad

    def _inputs(self, noise, captions):
        words, sentence, pad = self.encode_text(captions)
        if not _tracing() and isinstance(noise, torch.Tensor):
            z = self.cfg.z_dim
            if noise.ndim != 2:
                raise InputError(f"noise must have shape (B, {z}), got "
                                 f"{tuple(noise.shape)}")  # fmt: skip
            if noise.shape[0] != pad.shape[0]:
                raise InputError(f"noise has {noise.shape[0]} rows for {pad.shape[0]} captions")
        return noise, sentence, words, pad

    def generate(self, noise, captions, eps=None, generator=None):
        """-> ([images per stage], [attention maps], mu, logvar): the official G_NET outputs."""
        return self.netG(*self._inputs(noise, captions), eps, generator=generator)

    def forward(self, noise, captions, eps=None, generator=None) -> torch.Tensor:
        inputs = self._inputs(noise, captions)
        codes, *_ = self.netG.hidden(*inputs, eps, generator=generator)
        image = getattr(self.netG, f"img_net{self.cfg.branch_num}")(codes[-1])
        ensure_finite_output(image, {}, self)
        return image


# ---------------------------------------------------------------------- builders

# cfg/bird_attn2.yml. The vocabulary, 5450 words with '<end>', is the size of the released
# text_encoder200.pth's embedding as users report it (taoxugit/AttnGAN issue #45: "[5450, 300]
# from checkpoint"); the official code reads it from captions.pickle, which is not in the repo.
CUB = AttnGANConfig()
# cfg/coco_attn2.yml: GF_DIM 48, DF_DIM 96, R_NUM 3, WORDS_NUM 12; vocabulary 27297 (the released
# text_encoder100.pth's embedding, issue #45 again).
COCO = AttnGANConfig(n_words=27297, words_num=12, gf_dim=48, df_dim=96, r_num=3)
# Laptop scale, ours, for the 64 x 64 captioned scenes (sotazoo.data.captioned_scenes): two stages
# 32 -> 64, widths an eighth to a quarter of CUB's, a 64-word vocabulary (the scenes' grammar has
# 39 tokens with the specials; captions have at most 17), and 32-d noise and condition.
MINI = AttnGANConfig(n_words=64, words_num=18, word_dim=32, embedding_dim=64, branch_num=2,
                     base_size=32, gf_dim=16, z_dim=32, condition_dim=32, r_num=2,
                     df_dim=16)  # fmt: skip


def attngan_cub(**overrides) -> AttnGAN:
    """AttnGAN for CUB birds (3 stages, 256 px): the DAMSM text encoder and G."""
    return build_configured(AttnGAN, CUB, overrides)


def attngan_coco(**overrides) -> AttnGAN:
    """AttnGAN for MS-COCO (3 stages, 256 px, GF_DIM 48, 3 residual blocks)."""
    return build_configured(AttnGAN, COCO, overrides)


def attngan_mini(**overrides) -> AttnGAN:
    """Laptop-scale AttnGAN: 32 -> 64 px, a small vocabulary."""
    return build_configured(AttnGAN, MINI, overrides)


def damsm_text_encoder_cub(**overrides) -> TextEncoder:
    """The DAMSM text encoder of CUB (text_encoder200.pth's layout)."""
    return build_configured(TextEncoder, CUB, overrides)


def damsm_text_encoder_coco(**overrides) -> TextEncoder:
    """The DAMSM text encoder of COCO (text_encoder100.pth's layout)."""
    return build_configured(TextEncoder, COCO, overrides)


def damsm_text_encoder_mini(**overrides) -> TextEncoder:
    """The text encoder of attngan_mini, to pretrain on the captioned scenes."""
    return build_configured(TextEncoder, MINI, overrides)


def damsm_image_encoder(**overrides) -> ImageEncoder:
    """The DAMSM image encoder (the same for CUB and COCO: Inception-v3 and 256-d heads)."""
    return build_configured(ImageEncoder, CUB, overrides)


def _discriminators(cfg: AttnGANConfig) -> nn.ModuleList:
    return nn.ModuleList(Discriminator(cfg.df_dim, cfg.embedding_dim, s) for s in cfg.sizes)


def attngan_discriminators_cub(**overrides) -> nn.ModuleList:
    """D_NET64, D_NET128, D_NET256 of CUB (DF_DIM 64), in the order of netD0..2.pth."""
    return build_configured(_discriminators, CUB, overrides)


def attngan_discriminators_coco(**overrides) -> nn.ModuleList:
    """D_NET64, D_NET128, D_NET256 of COCO (DF_DIM 96)."""
    return build_configured(_discriminators, COCO, overrides)


def attngan_discriminators_mini(**overrides) -> nn.ModuleList:
    """Ds of the laptop variant: 32 px (ours) and 64 px."""
    return build_configured(_discriminators, MINI, overrides)


def tiny_overrides(name: str) -> dict:
    """Narrow networks for the registry-wide tests; the vocabulary, noise and condition sizes stay
    those of the card's inputs."""
    return {"word_dim": 8, "embedding_dim": 8, "gf_dim": 2, "r_num": 1, "df_dim": 2}


def unused_in_forward(name: str) -> tuple[str, ...]:
    """`forward` returns the last stage's image: the RGB heads of the earlier stages train through
    their own discriminators (`generate` returns their images)."""
    branches = {"attngan_mini": MINI.branch_num}.get(name, CUB.branch_num)
    return tuple(f"netG.img_net{k}." for k in range(1, branches))
