"""The Squeeze-and-Excitation block (Hu et al., arXiv 1709.01507, §3).

Given features U of shape (B, C, H, W):
- squeeze (Eq. 2): z_c = mean over H×W of u_c — one number per channel, a global descriptor;
- excitation (Eq. 3): s = σ(W₂ δ(W₁ z)) with W₁ ∈ R^{C/r × C}, W₂ ∈ R^{C × C/r}, δ = ReLU;
- scale (Eq. 4): x̃_c = s_c · u_c.

The two fully connected layers are 1×1 convolutions with bias, as in the released models (and in
the PyTorch port, whose key names `fc1`/`fc2` we keep so that its checkpoints load unchanged).
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """Recalibrate the channels of a feature map with gates computed from its global average.

    Args:
        channels: C, the channel count of the input and output.
        reduction: r, the bottleneck ratio of the excitation MLP (the paper uses 16).
        min_hidden: floor on C/r, for narrow laptop-scale networks.
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 1) -> None:
        super().__init__()
        hidden = max(channels // reduction, min_hidden)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        self.sigmoid = nn.Sigmoid()

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gates s, shape (B, C, 1, 1)."""
        z = x.mean(dim=(2, 3), keepdim=True)  # squeeze, Eq. 2: (B, C, 1, 1)
        return self.sigmoid(self.fc2(self.relu(self.fc1(z))))  # excitation, Eq. 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gates(x)  # scale, Eq. 4
