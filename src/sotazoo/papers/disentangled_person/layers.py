"""The building blocks DPIG's TF1 code is made of, written in PyTorch with TF's arithmetic.

- `Conv2dSame`: a convolution with TensorFlow's 'SAME' padding. For stride 1 it is the usual
  symmetric padding; for stride 2 on an even size TF pads one pixel less at the top and left
  than at the bottom and right (k=3: 0 and 1; k=5: 1 and 2), which PyTorch's `padding=` cannot
  express. The padding is fixed when the layer is built, from the size it will see (every DPIG
  network has fully connected layers, so its input size is fixed anyway).
- `ResBlock`: two 3x3 convolutions, each followed by ReLU, added to the block's input (no
  activation after the sum) — the unit `models.py` repeats in every encoder and decoder.
- `ResidualDownStack`: `repeat_num` ResBlocks of widths n, 2n, ..., with a stride-2 3x3
  convolution (+ReLU) widening to the next width between them.
- `crop_and_resize`: `tf.image.crop_and_resize` with bilinear sampling, done with one
  `grid_sample` per image for all its boxes (exports to ONNX GridSample).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) of one axis of `size` pixels."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """`nn.Conv2d` (same weight and bias keys) padded as TF 'SAME' for inputs of `in_hw`."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int,
                 in_hw: tuple[int, int]) -> None:  # fmt: skip
        (top, bottom), (left, right) = (same_padding(s, kernel, stride) for s in in_hw)
        symmetric = top == bottom and left == right
        super().__init__(c_in, c_out, kernel, stride, padding=(top, left) if symmetric else 0)
        self.extra_pad = None if symmetric else (left, right, top, bottom)
        self.out_hw = tuple(-(-s // stride) for s in in_hw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra_pad is not None:
            x = F.pad(x, self.extra_pad)
        return super().forward(x)


class ResBlock(nn.Module):
    """x + relu(conv2(relu(conv1(x)))), both 3x3 with `channels` in and out."""

    def __init__(self, channels: int, hw: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = Conv2dSame(channels, channels, 3, 1, hw)
        self.conv2 = Conv2dSame(channels, channels, 3, 1, hw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv2(torch.relu(self.conv1(x))))


class DownStage(nn.Module):
    """A ResBlock, then (but in the last stage) a stride-2 3x3 conv + ReLU to `c_next`."""

    def __init__(self, channels: int, c_next: int | None, hw: tuple[int, int]) -> None:
        super().__init__()
        self.hw = hw
        self.block = ResBlock(channels, hw)
        self.down = None if c_next is None else Conv2dSame(channels, c_next, 3, 2, hw)
        self.out_hw = hw if self.down is None else self.down.out_hw


class ResidualDownStack(nn.Module):
    """Stage i (0-based) of `repeat` is a ResBlock of width hidden * (i + 1) at 1 / 2^i of the
    input size; between stages a stride-2 3x3 convolution and ReLU widen to the next width
    (`models.py`: the loop `for idx in range(repeat_num)` of every encoder). Modules are
    registered in the order the official layers are created (block, down, block, ...)."""

    def __init__(self, hidden: int, repeat: int, hw: tuple[int, int]) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        for i in range(repeat):
            c_next = hidden * (i + 2) if i < repeat - 1 else None
            self.stages.append(DownStage(hidden * (i + 1), c_next, hw))
            hw = self.stages[-1].out_hw
        self.out_hw = hw
        self.out_channels = hidden * repeat

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        for stage in self.stages:
            x = stage.block(x)
            if skips is not None:
                skips.append(x)
            if stage.down is not None:
                x = torch.relu(stage.down(x))
        return x


def flatten_nhwc(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W*C) in TF's NHWC order, so that the fully connected layers keep
    the official weight layout (the stage-I networks ran with data_format 'NHWC')."""
    return x.permute(0, 2, 3, 1).flatten(1)


def crop_and_resize(feat: torch.Tensor, boxes: torch.Tensor, size: int,
                    image_hw: tuple[int, int]) -> torch.Tensor:  # fmt: skip
    """Bilinear crops of `feat` (B, C, H, W), each resized to size x size, at `boxes` (B, P, 4)
    [y1, x1, y2, x2] in pixels of an image of `image_hw` -> (B * P, C, size, size), image-major.

    As the official encoder calls `tf.image.crop_and_resize`: a box is divided by the image's
    height and width (not H - 1, W - 1) to TF's normalised box, whose crop row i samples the
    feature row (y1 + i (y2 - y1) / (size - 1)) (H - 1) / H; samples outside the feature map are
    0 (TF's extrapolation value), not blended with the border as `grid_sample`'s zero padding
    would. `grid_sample(align_corners=True)` maps -1 and 1 to the first and last pixel, so the
    grid coordinate is 2 y / H - 1 (resp. x / W).
    """
    b, p = boxes.shape[:2]
    c = feat.shape[1]
    t = torch.linspace(0, 1, size, dtype=feat.dtype, device=feat.device)  # i / (size - 1)
    y1, x1, y2, x2 = boxes.unbind(-1)  # (B, P) each
    ys = 2 * (y1[..., None] + t * (y2 - y1)[..., None]) / image_hw[0] - 1  # (B, P, size)
    xs = 2 * (x1[..., None] + t * (x2 - x1)[..., None]) / image_hw[1] - 1
    gy = ys[..., :, None].expand(b, p, size, size)
    gx = xs[..., None, :].expand(b, p, size, size)
    grid = torch.stack([gx, gy], -1).reshape(b, p * size, size, 2)  # all of an image's crops
    out = F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    inside = (gy >= -1) & (gy <= 1) & (gx >= -1) & (gx <= 1)  # (B, P, size, size)
    out = out.reshape(b, c, p, size, size) * inside[:, None].to(out.dtype)
    return out.transpose(1, 2).reshape(b * p, c, size, size)
