"""HDGAN's building blocks: conditioning augmentation, the generator's conv and residual blocks,
the RGB side-output heads, and the discriminators' image encoder and pair head.

Our own code, written from the official repository (ypxie/HDGan at d98e2a8,
`HDGan/models/hd_networks.py`, `HDGan/proj_utils/network_utils.py`); attribute names and
`nn.Sequential` positions are the official ones, so that the released state dicts load by key
(`model.py` says which module is which). The networks and their config are in `model.py`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)  # the official ones are in-place (and shared); ours are not


# ---------------------------------------------------------------------- generator blocks


class CondEmbedding(nn.Module):
    """Conditioning augmentation (official `condEmbedding`): (mean, log_sigma) =
    split(LeakyReLU_0.2(Linear(sentence))), c = eps * exp(log_sigma) + mean.

    The LeakyReLU acts on both halves, so the mean and the log of the standard deviation are
    scaled by 0.2 where negative (the official code; StackGAN's CA has no activation there). The
    second half is a log sigma: the official KL term (HDGan.get_KL_Loss, whose argument is named
    logvar) is 0.5 (mu^2 + exp(2 x) - 1) - x, the KL of N(mu, exp(x)^2) from N(0, I). The
    official module draws eps ~ N(0, I) itself (on the GPU); here eps is an argument."""

    def __init__(self, sent_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.emb_dim = emb_dim
        self.linear = nn.Linear(sent_dim, 2 * emb_dim)

    def forward(
        self, sentence: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = nn.functional.leaky_relu(self.linear(sentence), 0.2)  # (B, 2 emb_dim)
        mean, log_sigma = out[:, : self.emb_dim], out[:, self.emb_dim :]
        return eps * torch.exp(log_sigma) + mean, mean, log_sigma


class Sent2FeatMap(nn.Module):
    """Official `Sent2FeatMap`: [c, z] -> Linear (with bias) -> BatchNorm1d -> (B, C, 4, 4), with
    no activation (the official Generator passes none). Before the official commit 5e6697a the
    norm was a BatchNorm2d on the (B, N) vector: the same parameters and, in the PyTorch 0.3 the
    released models were trained with, the same values."""

    def __init__(self, in_dim: int, row: int, col: int, channel: int) -> None:
        super().__init__()
        self.row, self.col, self.channel = row, col, channel
        n = row * col * channel
        self.out = nn.Sequential(nn.Linear(in_dim, n), nn.BatchNorm1d(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x).reshape(-1, self.channel, self.row, self.col)  # (B, C, 4, 4)


def pad_conv_norm(c_in: int, c_out: int, *, activation: bool = True) -> nn.Sequential:
    """Official `pad_conv_norm` (3x3): reflection pad 1, conv without bias, BN, ReLU (or none)."""
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(1),
        nn.Conv2d(c_in, c_out, 3, padding=0, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if activation:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResnetBlock(nn.Module):
    """Official `ResnetBlock`: x + BN(conv(ReLU(BN(conv(x))))), both convs 3x3 with reflection
    padding and no bias; no activation after the sum."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.res_block = nn.Sequential(
            pad_conv_norm(dim, dim), pad_conv_norm(dim, dim, activation=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_block(x) + x


def branch_out(c_in: int, c_out: int = 3) -> nn.Sequential:
    """Official `branch_out`, the RGB side output: reflection pad 1, 3x3 conv without bias, tanh."""
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3, padding=0, bias=False),
                         nn.Tanh())  # fmt: skip


# ---------------------------------------------------------------------- discriminator blocks


def conv_norm(
    c_in: int, c_out: int, kernel: int, stride: int, *, norm: bool = True
) -> nn.Sequential:
    """Official `conv_norm` as the discriminator uses it: conv without bias (padding 1 for a 3x3
    kernel, 0 otherwise), BN unless `norm` is False, LeakyReLU 0.2."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1 if kernel == 3 else 0, bias=False)
    ]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(_lrelu())
    return nn.Sequential(*layers)


class ImageDown(nn.Module):
    """Official `ImageDown`, the image encoder of one scale: 3x3 stride-2 convs (the first
    without BN) from `first_dim` channels, doubling, down to 8 x 8; then

    - `patch=False` (the official 64 and 128 px encoders): a 5x5 valid conv (+ BN, LeakyReLU) to
      `out_dim`, a 4 x 4 code;
    - `patch=True` (the official 256 px encoder): the last strided conv goes straight to
      `out_dim`, an 8 x 8 code (the pair head shrinks it with `pre_encode`, the local head maps
      it to 5 x 5 patches).

    The official widths are hard-coded: 128 at 64 px (128, 256, 512), 64 at 128 px (64, ... 512),
    32 at 256 px (32, 64, 128, 256, then out_dim)."""

    def __init__(self, size: int, num_chan: int, out_dim: int, first_dim: int, *,
                 patch: bool) -> None:  # fmt: skip
        super().__init__()
        n = int(math.log2(size // 8))  # stride-2 convs down to 8 x 8
        widths = [first_dim * 2**k for k in range(n)]
        if patch:
            widths[-1] = out_dim
        layers = [conv_norm(num_chan, widths[0], 3, 2, norm=False)]
        layers += [conv_norm(a, b, 3, 2) for a, b in zip(widths, widths[1:], strict=False)]
        if not patch:
            layers.append(conv_norm(widths[-1], out_dim, 5, 1))  # 8 x 8 -> 4 x 4
        self.node = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.node(images)


class DiscClassifier(nn.Module):
    """Official `DiscClassifier`, the pair head: the sentence code tiled over the image code and
    concatenated after it, a 1x1 conv (+ BN, LeakyReLU) back to the code's width, then a valid
    `kernel` x `kernel` conv with bias to one logit: (B, 1) on a 4 x 4 code."""

    def __init__(self, enc_dim: int, emb_dim: int, kernel: int) -> None:
        super().__init__()
        self.node = nn.Sequential(conv_norm(enc_dim + emb_dim, enc_dim, 1, 1),
                                  nn.Conv2d(enc_dim, 1, kernel, padding=0, bias=True))  # fmt: skip

    def forward(self, sent_code: torch.Tensor, img_code: torch.Tensor) -> torch.Tensor:
        b, _, h, w = img_code.shape
        tiled = sent_code[:, :, None, None].expand(-1, -1, h, w)  # (B, emb_dim, H, W)
        out = self.node(torch.cat((img_code, tiled), 1))  # (B, 1, H', W')
        return out.reshape(-1, out.shape[1])  # the official view(-1, chn): (B H' W', 1)


# ---------------------------------------------------------------------- initialisation


def weights_init(module: nn.Module) -> None:
    """The official `weights_init`, applied to G and D: conv weights N(0, 0.02), BN (1-d and
    2-d) weights N(1, 0.02) and biases 0; the linear layers keep torch's default."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
