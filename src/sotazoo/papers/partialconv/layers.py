"""The partial convolution (Eq. 1-2 of the paper), stateless.

A partial convolution sees only the pixels its mask marks valid: it convolves X * M, rescales the
response by sum(1) / sum(M) over each window (the window size over its count of valid inputs),
and outputs 0 where a window holds no valid input; the mask passed on is 1 wherever the window
held at least one. In the released layer's terms (NVIDIA/partialconv, models/partialconv2d.py):
the count sum(M) is a convolution of the mask with an all-ones kernel, the ratio is
slide_winsize / (sum(M) + 1e-8) times the clamped count, and with a bias b the output is
(conv(X * M) - b) * ratio + b, then times the new mask.

Unlike the released module, the mask is an argument of every call and the module keeps no state
between calls (it caches the last mask and ratio per input shape when called without one).
`multi_channel`: the mask has the input's channels and the count runs over all of them (the
inpainting network's setting); the new mask then has the output's channels, all equal. Without
it the mask has one channel and so does the new one.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sotazoo.errors import InputError


class PartialConv2d(nn.Conv2d):
    """`nn.Conv2d` whose `forward(x, mask)` returns the partial convolution and the new mask."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = True,
        *,
        multi_channel: bool = False,
        eps: float = 1e-8,  # the release's; it suggests 1e-6 for mixed precision
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, bias=bias)  # fmt: skip
        self.multi_channel = multi_channel
        self.eps = eps
        kh, kw = self.kernel_size
        # sum(1): the number of mask values under one window
        self.window = (in_channels if multi_channel else 1) * kh * kw
        # The count's kernel: all ones over one channel (a multi-channel mask is summed over its
        # channels first, which counts the same values). A buffer, so it follows .to() and is
        # traced into ONNX as a constant; not saved in state dicts.
        self.register_buffer("ones", torch.ones(1, 1, kh, kw), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        want = self.in_channels if self.multi_channel else 1
        if mask.dim() != 4 or mask.shape[1] != want or mask.shape[2:] != x.shape[2:]:
            raise InputError(f"PartialConv2d: mask {tuple(mask.shape)} does not fit input "
                             f"{tuple(x.shape)}: it needs {want} channel(s) and the same size")  # fmt: skip
        with torch.no_grad():
            m = mask.sum(1, keepdim=True) if self.multi_channel else mask
            count = F.conv2d(m, self.ones, stride=self.stride, padding=self.padding,
                             dilation=self.dilation)  # fmt: skip
            ratio = self.window / (count + self.eps)
            new_mask = count.clamp(0, 1)
            ratio = ratio * new_mask
        raw = F.conv2d(x * mask, self.weight, None, self.stride, self.padding, self.dilation)
        if self.bias is None:
            out = raw * ratio
        else:
            b = self.bias.view(1, -1, 1, 1)
            out = ((raw * ratio) + b) * new_mask
        if self.multi_channel:
            new_mask = new_mask.expand(-1, self.out_channels, -1, -1)
        return out, new_mask
