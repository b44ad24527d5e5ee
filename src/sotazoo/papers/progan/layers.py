"""ProGAN's layers (arXiv 1710.10196): equalised learning rate (§4.1), pixelwise feature
normalisation (§4.2) and the minibatch standard-deviation feature (§3).

Each follows the official TF `networks.py` (`get_weight`, `pixel_norm`,
`minibatch_stddev_layer`, and the fused `upscale2d_conv2d` / `conv2d_downscale2d`); the PyTorch
modules and their names are ours. `MinibatchStdDev(variant="gan_zoo")` is the rule of
facebookresearch/pytorch_GAN_zoo (`mini_batch_stddev_module.py`), for its converted checkpoints.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError


def is_exporting() -> bool:
    """Value-dependent checks are skipped while the graph is traced for export."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


class EqualizedConv2d(nn.Module):
    """A conv whose weights are N(0, 1) and scaled at run time by gain / sqrt(fan_in) (§4.1).

    With Adam, whose step size does not depend on the gradient's scale, every weight then moves
    at the same speed relative to its dynamic range. `use_wscale=False` is the plain He init.
    """

    def __init__(
        self, c_in: int, c_out: int, k: int, *, gain: float = math.sqrt(2), use_wscale: bool = True
    ) -> None:
        super().__init__()
        std = gain / math.sqrt(c_in * k * k)  # He's constant, fan_in = k * k * c_in
        self.scale = std if use_wscale else 1.0
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k) * (1.0 if use_wscale else std))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.padding = k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def _shift_sum(self, w: torch.Tensor) -> torch.Tensor:
        """The 3x3 kernel zero-padded to 5x5 and summed over its four 4x4 windows (official
        `upscale2d_conv2d` / `conv2d_downscale2d`): 1-D, k'[a] = k[a - 1] + k[a], a = 0..3."""
        o, i, k, _ = w.shape
        ones = w.new_ones(1, 1, 2, 2)  # the sum over a 2x2 window of the zero-padded kernel
        return F.conv2d(w.reshape(o * i, 1, k, k), ones, padding=1).reshape(o, i, k + 1, k + 1)

    def forward_up(self, x: torch.Tensor) -> torch.Tensor:
        """conv(nearest_up2(x)) as one stride-2 transposed conv, with the same parameters.

        Per axis, output 2m is k[0] x[m-1] + (k[1] + k[2]) x[m] and output 2m+1 is
        (k[0] + k[1]) x[m] + k[2] x[m+1]: the transposed conv (stride 2, padding 1) of the
        shift-summed kernel of the flipped k. Only for 3x3 kernels.
        """
        w = self._shift_sum((self.weight * self.scale).flip(2, 3))  # (O, I, 4, 4)
        return F.conv_transpose2d(x, w.transpose(0, 1), self.bias, stride=2, padding=1)

    def forward_down(self, x: torch.Tensor) -> torch.Tensor:
        """avg_pool2(conv(x)) as one stride-2 conv of the shift-summed kernel times 1/4, with
        the same parameters (the bias passes the pooling unchanged). Only for 3x3 kernels."""
        w = self._shift_sum(self.weight * self.scale) * 0.25  # (O, I, 4, 4)
        return F.conv2d(x, w, self.bias, stride=2, padding=1)


class EqualizedLinear(nn.Module):
    """A dense layer with the same runtime scaling; `bias=False` when the caller adds its own."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        gain: float = math.sqrt(2),
        use_wscale: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        std = gain / math.sqrt(n_in)
        self.scale = std if use_wscale else 1.0
        self.weight = nn.Parameter(torch.randn(n_out, n_in) * (1.0 if use_wscale else std))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class PixelNorm(nn.Module):
    """b = a / sqrt(mean_j a_j^2 + eps) over the channels at every pixel (§4.2, Eq. 2)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """Append one feature map: the stddev of each feature over a group, averaged (§3).

    The batch of N is split into groups of G = min(group_size, N) samples, sample n belonging to
    group n mod (N / G) as in the official reshape to (G, N / G, C, H, W). For each group the
    standard deviation of every feature at every pixel is taken over its G samples, averaged over
    features and pixels to one number, and written as a constant map to each member.

    `variant="gan_zoo"` is pytorch_GAN_zoo's rule instead (`miniBatchStdDev`, group size 4):
    consecutive samples form a group (sample n is in group n // G), the variance is the unbiased
    one (over G - 1), a batch that G does not divide is one group, and a batch of one gets zeros.
    """

    def __init__(self, group_size: int = 4, variant: str = "official") -> None:
        super().__init__()
        if variant not in ("official", "gan_zoo"):
            raise ValueError(f"mbstd variant must be 'official' or 'gan_zoo', got {variant!r}")
        self.group_size = group_size
        self.variant = variant

    def _gan_zoo(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.group_size, b)
        g = b if b % g else g
        if g == 1:
            return torch.cat([x, x.new_zeros(b, 1, h, w)], dim=1)
        y = x.reshape(-1, g, c, h, w).var(dim=1)  # (M, C, H, W), unbiased
        y = torch.sqrt(y + 1e-8).mean(dim=(1, 2, 3))  # (M,)
        y = y.repeat_interleave(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)  # sample n: y[n // G]
        return torch.cat([x, y], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "gan_zoo":
            return self._gan_zoo(x)
        b, c, h, w = x.shape
        g = min(self.group_size, b)
        if b % g and not is_exporting():
            raise InputError(f"the minibatch stddev layer needs a batch divisible by {g}, got {b}")
        y = x.reshape(g, -1, c, h, w)  # (G, M, C, H, W)
        y = (y - y.mean(dim=0, keepdim=True)).square().mean(dim=0)  # (M, C, H, W) variance
        y = torch.sqrt(y + 1e-8).mean(dim=(1, 2, 3))  # (M,)
        y = y.repeat(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)  # sample n gets y[n mod M]
        return torch.cat([x, y], dim=1)
