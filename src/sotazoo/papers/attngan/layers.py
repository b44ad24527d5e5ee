"""AttnGAN's building blocks: GLU blocks, word attention, the stages of G, the blocks of D, and a
bidirectional LSTM run on padded captions with a length per caption.

Our own code, written from the official repository (taoxugit/AttnGAN at 0d000e6, `code/model.py`,
`code/GlobalAttention.py`); attribute names and `nn.Sequential` positions are the official ones,
so that the released state dicts load by key (`model.py` says which module is which). The
networks and their configs are in `model.py`.
"""

from __future__ import annotations

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    _tracing,
    check_dtype,
    check_image_batch,
    ensure_finite,
    ensure_finite_output,
    model_dtype,
)

# ---------------------------------------------------------------------- generator blocks


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3, stride 1, padding 1, no bias: every conv of G and D's 3x3 blocks."""
    return nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """Official `upBlock`: nearest x2, conv3x3 to 2 c_out, BN, GLU -> c_out channels."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv3x3(c_in, 2 * c_out),
        nn.BatchNorm2d(2 * c_out),
        nn.GLU(dim=1),  # a * sigmoid(b), a the first half of the channels: the official GLU
    )


class ResBlock(nn.Module):
    """x + BN(conv3x3(GLU(BN(conv3x3(x))))): the first conv doubles the width for the GLU gate;
    no activation after the sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            conv3x3(channels, 2 * channels),
            nn.BatchNorm2d(2 * channels),
            nn.GLU(dim=1),
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class CANet(nn.Module):
    """Conditioning augmentation: (mu, logvar) = split(GLU(fc(sentence))), c = mu + eps exp(logvar
    / 2). The official CA_NET draws eps ~ N(0, I) itself; here eps is an argument."""

    def __init__(self, embedding_dim: int, condition_dim: int) -> None:
        super().__init__()
        self.c_dim = condition_dim
        self.fc = nn.Linear(embedding_dim, 4 * condition_dim)  # GLU halves it to mu | logvar

    def forward(
        self, sentence: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = nn.functional.glu(self.fc(sentence), dim=1)  # (B, 2 c_dim)
        mu, logvar = x[:, : self.c_dim], x[:, self.c_dim :]
        return eps * torch.exp(0.5 * logvar) + mu, mu, logvar


class InitStageG(nn.Module):
    """Official `INIT_STAGE_G`: [c, z] -> fc -> BN1d -> GLU -> (ngf, 4, 4), then `n_up` up-blocks
    halving the width: ngf / 2^n_up channels at 4 * 2^n_up pixels (n_up = 4 in the official code:
    ngf = 16 gf_dim -> gf_dim channels at 64 x 64)."""

    def __init__(self, ngf: int, in_dim: int, n_up: int) -> None:
        super().__init__()
        self.gf_dim = ngf
        self.fc = nn.Sequential(
            nn.Linear(in_dim, ngf * 4 * 4 * 2, bias=False),
            nn.BatchNorm1d(ngf * 4 * 4 * 2),
            nn.GLU(dim=1),
        )
        for k in range(1, n_up + 1):  # upsample1, upsample2, ...: the official names
            self.add_module(f"upsample{k}", up_block(ngf // 2 ** (k - 1), ngf // 2**k))
        self.n_up = n_up

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.cat((c, z), 1))  # the official order: condition first, then noise
        x = x.reshape(x.shape[0], self.gf_dim, 4, 4)  # (B, ngf, 4, 4)
        for k in range(1, self.n_up + 1):
            x = getattr(self, f"upsample{k}")(x)
        return x


class WordAttention(nn.Module):
    """Official `GlobalAttentionGeneral` (Sec. 3.1, Eq. 2): the words e (B, D, T) are projected
    to the image width, e' = U e (a 1x1 conv without bias); every pixel j of h (B, C, H, W)
    weighs the words by beta_j = softmax_i(h_j . e'_i) and takes c_j = sum_i beta_ji e'_i.

    Padded words get the most negative finite number before the softmax, where the official code
    uses -inf: the same weights (exactly 0) wherever a caption has a word, a finite output for an
    empty one, and a graph that ONNX runtimes evaluate without NaN.

    `official_repeat` reproduces how the official code lays out the mask (taoxugit/AttnGAN issue
    #93): the scores are rows b * H * W + j of a (B * H * W, T) matrix, the mask is
    `mask.repeat(H * W, 1)`, so pixel j of caption b takes the padding of caption
    (b * H * W + j) mod B. It equals the per-caption mask at batch 1 and when all captions have
    the same length; the released weights were trained with it."""

    def __init__(self, idf: int, cdf: int, *, official_repeat: bool = False) -> None:
        super().__init__()
        self.conv_context = nn.Conv2d(cdf, idf, 1, 1, 0, bias=False)
        self.official_repeat = official_repeat

    def forward(
        self, h: torch.Tensor, words: torch.Tensor, pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, C, H, W), words (B, D, T), pad (B, T) bool (True at padding) -> the word-context
        map (B, C, H, W) and the attention (B, T, H, W), each pixel's weights summing to 1."""
        b, c, height, width = h.shape
        source = self.conv_context(words.unsqueeze(3)).squeeze(3)  # (B, C, T)
        query = h.reshape(b, c, height * width).transpose(1, 2)  # (B, HW, C)
        scores = torch.bmm(query, source)  # (B, HW, T)
        if self.official_repeat:
            rows = torch.arange(b * height * width, device=h.device).reshape(b, -1) % b
            mask = pad[rows]  # (B, HW, T): caption (b HW + j) mod B's padding
        else:
            mask = pad.unsqueeze(1)  # (B, 1, T): each caption's own padding
        scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
        attn = scores.softmax(dim=2).transpose(1, 2)  # (B, T, HW)
        context = torch.bmm(source, attn)  # (B, C, HW)
        t = words.shape[2]
        return context.reshape(b, c, height, width), attn.reshape(b, t, height, width)


class NextStageG(nn.Module):
    """Official `NEXT_STAGE_G`: [h, word context] -> r_num residual blocks -> up-block: 2x the
    size, ngf channels."""

    def __init__(self, ngf: int, nef: int, r_num: int, *, official_repeat: bool = False) -> None:
        super().__init__()
        self.att = WordAttention(ngf, nef, official_repeat=official_repeat)
        self.residual = nn.Sequential(*(ResBlock(2 * ngf) for _ in range(r_num)))
        self.upsample = up_block(2 * ngf, ngf)

    def forward(
        self, h: torch.Tensor, words: torch.Tensor, pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        context, attn = self.att(h, words, pad)
        return self.upsample(self.residual(torch.cat((h, context), 1))), attn


class GetImageG(nn.Module):
    """Official `GET_IMAGE_G`: conv3x3 to RGB, tanh."""

    def __init__(self, ngf: int) -> None:
        super().__init__()
        self.img = nn.Sequential(conv3x3(ngf, 3), nn.Tanh())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.img(h)


# ---------------------------------------------------------------------- discriminator blocks


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)  # the official modules are in-place; ours are not (same values)


def encode_image(ndf: int, n_down: int = 4) -> nn.Sequential:
    """Official `encode_image_by_16times` (n_down = 4): 4x4 stride-2 convs without bias, widths
    ndf, 2 ndf, 4 ndf, 8 ndf, BN on all but the first, LeakyReLU 0.2. With n_down = 3 (ours, for
    32-pixel stages) the first conv goes straight to 2 ndf: the same layers less the first."""
    widths = [3, *(ndf * 2**k for k in range(4 - n_down, 4))]
    layers: list[nn.Module] = [nn.Conv2d(3, widths[1], 4, 2, 1, bias=False), _lrelu()]
    for a, b in zip(widths[1:], widths[2:], strict=False):
        layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), _lrelu()]
    return nn.Sequential(*layers)


def down_block(c_in: int, c_out: int) -> nn.Sequential:
    """Official `downBlock`: 4x4 stride-2 conv without bias, BN, LeakyReLU 0.2."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                         _lrelu())  # fmt: skip


def block3x3_leaky(c_in: int, c_out: int) -> nn.Sequential:
    """Official `Block3x3_leakRelu`: conv3x3, BN, LeakyReLU 0.2."""
    return nn.Sequential(conv3x3(c_in, c_out), nn.BatchNorm2d(c_out), _lrelu())


class DGetLogits(nn.Module):
    """Official `D_GET_LOGITS`: the 4x4 image code (B, 8 ndf, 4, 4), with the sentence tiled to
    4x4 and joined by a 3x3 block when conditional, -> a 4x4 stride-4 conv -> sigmoid: one
    probability per image (the official code calls them logits; the BCE loss takes them)."""

    def __init__(self, ndf: int, nef: int, *, condition: bool) -> None:
        super().__init__()
        self.ef_dim = nef
        if condition:
            self.jointConv = block3x3_leaky(8 * ndf + nef, 8 * ndf)  # the official key
        self.condition = condition
        self.outlogits = nn.Sequential(nn.Conv2d(8 * ndf, 1, 4, 4), nn.Sigmoid())

    def forward(self, code: torch.Tensor, sentence: torch.Tensor | None = None) -> torch.Tensor:
        if self.condition and sentence is not None:
            tiled = sentence[:, :, None, None].expand(-1, -1, 4, 4)  # (B, nef, 4, 4)
            code = self.jointConv(torch.cat((code, tiled), 1))
        return self.outlogits(code).reshape(-1)  # (B,)


class Discriminator(nn.Module):
    """D for one stage (official D_NET64 / D_NET128 / D_NET256, ours for 32 px): the image down to
    a 4 x 4 code of 8 ndf channels, and two heads. forward(images (B, 3, S, S), sentence (B, nef))
    -> (conditional, unconditional) probabilities, (B,) each; `features` is the official forward
    (the code), `COND_DNET` / `UNCOND_DNET` its heads (the official training calls them so)."""

    def __init__(self, ndf: int, nef: int, size: int) -> None:
        super().__init__()
        if size not in (32, 64, 128, 256):
            raise InputError(f"a discriminator takes 32, 64, 128 or 256 px images, not {size}")
        self.size, self.ef_dim = size, nef
        if size == 32:  # ours: 8x down to 4 x 4
            self.img_code_s8 = encode_image(ndf, n_down=3)
        else:
            self.img_code_s16 = encode_image(ndf)
        if size >= 128:
            self.img_code_s32 = down_block(8 * ndf, 16 * ndf)
        if size == 128:
            self.img_code_s32_1 = block3x3_leaky(16 * ndf, 8 * ndf)
        if size == 256:
            self.img_code_s64 = down_block(16 * ndf, 32 * ndf)
            self.img_code_s64_1 = block3x3_leaky(32 * ndf, 16 * ndf)
            self.img_code_s64_2 = block3x3_leaky(16 * ndf, 8 * ndf)
        self.UNCOND_DNET = DGetLogits(ndf, nef, condition=False)
        self.COND_DNET = DGetLogits(ndf, nef, condition=True)
        weights_init(self)
        self._order = [n for n, _ in self.named_children() if n.startswith("img_code")]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> the 4 x 4 code (B, 8 ndf, 4, 4)."""
        check_image_batch(images, 3, dtype=model_dtype(self))
        if not _tracing() and tuple(images.shape[2:]) != (self.size, self.size):
            raise InputError(f"this discriminator takes {self.size} x {self.size} images, got "
                             f"{images.shape[2]} x {images.shape[3]}")  # fmt: skip
        ensure_finite(images, "images")
        x = images
        for name in self._order:
            x = getattr(self, name)(x)
        return x

    def forward(
        self, images: torch.Tensor, sentence: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.features(images)
        want = (images.shape[0], self.ef_dim)
        if not _tracing() and (
            not isinstance(sentence, torch.Tensor) or tuple(sentence.shape) != want
        ):
            got = tuple(sentence.shape) if isinstance(sentence, torch.Tensor) else type(sentence)
            raise InputError(f"sentence must have shape {want}, got {got}")
        check_dtype(sentence, model_dtype(self), "sentence")
        ensure_finite(sentence, "sentence")
        out = self.COND_DNET(code, sentence), self.UNCOND_DNET(code)
        ensure_finite_output(out, {}, self)
        return out


# ---------------------------------------------------------------------- the text encoder's LSTM


def lstm_direction(
    x_proj: torch.Tensor, valid: torch.Tensor, w_hh: torch.Tensor, *, reverse: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """One direction of a one-layer LSTM over padded sequences, as `pack_padded_sequence` runs it.

    x_proj (B, T, 4H) is W_ih x_t + b_ih + b_hh for every step, valid (B, T) bool marks each
    sequence's words (a prefix). The cell (gates in torch's order i, f, g, o):
        c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g),   h_t = sigmoid(o) * tanh(c_t).
    At a padded step the state is carried unchanged and the output is 0, so the forward direction
    ends on each sequence's last word and the reverse direction, walking t = T-1 .. 0, starts
    from zeros at that word: the packed computation, on a fixed T that exports to ONNX.

    Returns the outputs (B, H, T) and the final hidden state (B, H).
    """
    b, t_len, _ = x_proj.shape
    h = x_proj.new_zeros(b, w_hh.shape[1])
    c = torch.zeros_like(h)
    outs: list[torch.Tensor] = [h] * t_len
    for t in reversed(range(t_len)) if reverse else range(t_len):
        i, f, g, o = (x_proj[:, t] + h @ w_hh.T).chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        keep = valid[:, t : t + 1]  # (B, 1)
        c, h = torch.where(keep, c_new, c), torch.where(keep, h_new, h)
        outs[t] = torch.where(keep, h_new, torch.zeros_like(h_new))
    return torch.stack(outs, dim=2), h


# ---------------------------------------------------------------------- initialisation


def weights_init(module: nn.Module) -> None:
    """The official `miscc.utils.weights_init`, applied to G and to every D: orthogonal conv and
    linear weights (gain 1), linear biases 0, BN weights N(1, 0.02) and biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.orthogonal_(m.weight, 1.0)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
