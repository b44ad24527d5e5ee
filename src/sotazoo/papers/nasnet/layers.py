"""The layers of NASNet-A that know nothing of its configuration: TF "SAME" padding, the
separable-convolution stack, factorized reduction and ScheduledDropPath (see model.py for the
cells and the networks, and for where each follows the TF-Slim release)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------- TF "SAME" padding


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME": pad to ceil(size / stride) outputs, the odd pixel after (bottom / right).

    At stride 1 with an odd kernel this is k // 2 on both sides, PyTorch's symmetric padding. At
    stride 2 it is symmetric on an odd side but one pixel larger after than before on an even one
    (3x3: 0 / 1, 5x5: 1 / 2, 7x7: 2 / 3), which PyTorch's `padding` cannot express.
    """
    size = int(size)  # a constant in an exported graph (shapes traced as tensors otherwise)
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    (top, bottom), (left, right) = (same_pads(n, kernel, stride) for n in x.shape[-2:])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TF "SAME" padding: static k // 2 at stride 1, the input's
    own (possibly asymmetric) padding at stride 2."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        pad = k // 2 if stride == 1 else 0
        super().__init__(cin, cout, k, stride, padding=pad, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] > 1:
            x = pad_same(x, self.kernel_size[0], self.stride[0])
        return super().forward(x)


class SamePool(nn.Module):
    """3x3 max or average pooling with TF "SAME" padding.

    TF's average never counts the padding ("the reduction never includes out-of-bounds
    positions", tf.nn.pool): PyTorch's `count_include_pad=False` where the padding is symmetric,
    a sum over a count where it is not. timm's port pads stride-2 pools itself (AvgPool2dSame)
    and so divides by 9 at the borders; `count_padding=True` does that, for its oracle. The
    Keras port zero-pads the input of its stride-2 pools (`ZeroPadding2D`, then "valid"), so its
    averages count the padding and its maxima see zeros: `count_padding` and `zero_pad_max`.
    """

    def __init__(
        self,
        kind: Literal["max", "avg"],
        stride: int,
        count_padding: bool,
        zero_pad_max: bool = False,
    ) -> None:
        super().__init__()
        self.kind, self.stride, self.count_padding = kind, stride, count_padding
        self.zero_pad_max = zero_pad_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = 3, self.stride
        if self.kind == "max":
            fill = 0.0 if s > 1 and self.zero_pad_max else -math.inf
            return F.max_pool2d(pad_same(x, k, s, value=fill), k, s)
        if s > 1 and self.count_padding:
            return F.avg_pool2d(pad_same(x, k, s), k, s)
        (top, bottom), (left, right) = (same_pads(n, k, s) for n in x.shape[-2:])
        if top == bottom and left == right:
            return F.avg_pool2d(x, k, s, padding=(top, left), count_include_pad=False)
        count = F.avg_pool2d(pad_same(torch.ones_like(x[:1, :1]), k, s), k, s)  # (1, 1, H', W')
        return F.avg_pool2d(pad_same(x, k, s), k, s) / count


# ---------------------------------------------------------------------- ops of a cell


class ConvBN(nn.Module):
    """(ReLU ->) 1x1 conv -> BN: h0, h1's channel match, strided identities, pool projections."""

    def __init__(self, cin: int, cout: int, bn, *, stride: int = 1, relu: bool = True) -> None:
        super().__init__()
        self.relu = relu
        self.conv = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
        self.bn = bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(F.relu(x) if self.relu else x))


class SeparableConv(nn.Module):
    """Depthwise k x k then pointwise 1x1, nothing between them (A.4)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__()
        self.depthwise = SameConv2d(cin, cin, k, stride, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SepStack(nn.Module):
    """`sepK`: (ReLU -> separable conv -> BN) twice, the stride on the first only."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, bn) -> None:
        super().__init__()
        self.separable_1 = SeparableConv(cin, cout, k, stride)
        self.bn_sep_1 = bn(cout)
        self.separable_2 = SeparableConv(cout, cout, k, 1)
        self.bn_sep_2 = bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn_sep_1(self.separable_1(F.relu(x)))
        return self.bn_sep_2(self.separable_2(F.relu(x)))


class FactorizedReduction(nn.Module):
    """h_{i-1} at twice the cell's resolution, brought to its shape without a strided 1x1 that
    would skip 3 of 4 pixels: ReLU, two 1x1 convs (half the filters each) on the stride-2
    subsamplings starting at pixel (0, 0) and at (1, 1), concatenated, BN."""

    def __init__(self, cin: int, cout: int, bn) -> None:
        super().__init__()
        self.path_1 = nn.Conv2d(cin, cout // 2, 1, bias=False)
        self.path_2 = nn.Conv2d(cin, cout // 2, 1, bias=False)
        self.bn = bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # TF: pad bottom/right by 0, drop row/col 0
        a, b = self.path_1(x[:, :, ::2, ::2]), self.path_2(shifted[:, :, ::2, ::2])
        return self.bn(torch.cat([a, b], 1))


class ScheduledDropPath(nn.Module):
    """Drops a path (an op's output, per example) with probability (1 - keep_prob) times the
    fraction of training done (Section 4, A.5) times (cell index + 1) / cells (the TF code's
    depth scaling, `drop_connect_version="v3"`); kept paths are divided by the keep
    probability. Identity paths never pass here. Inactive in eval mode, and until the training
    loop sets `progress` (`NASNet.set_drop_path_progress`: step / total training steps)."""

    def __init__(self, keep_prob: float, cell_index: int, num_cells: int) -> None:
        super().__init__()
        self.final_drop = (1.0 - keep_prob) * (cell_index + 1) / num_cells
        self.progress = 0.0

    @property
    def drop_prob(self) -> float:
        return self.final_drop * min(1.0, self.progress)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.drop_prob
        if not self.training or p == 0.0:
            return x
        keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) >= p  # (B,1,1,1)
        return x * keep.to(x.dtype) / (1.0 - p)
