"""EDSR's geometric self-ensemble ("EDSR+", §4.3, Fig. 7).

Bicubic downsampling commutes with flips and 90-degree rotations, so the network should map a
flipped or rotated LR image to the equally flipped or rotated HR image. At test time EDSR+ runs
the eight variants of the input (the dihedral group D4: four rotations, each with and without a
horizontal flip), undoes each transform on its output and averages the eight outputs. It costs
eight forward passes and no training; the paper gains about 0.1 dB (x4 DIV2K: 29.25 -> 29.38 dB).
It is only valid for degradations with those symmetries, which is why the authors did not use it
on the unknown-degradation NTIRE track.
"""

from __future__ import annotations

import torch
from torch import nn


def _forward(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Apply the transform: an optional horizontal flip, then k quarter turns."""
    return torch.rot90(x.flip(-1) if flip else x, k, dims=(-2, -1))  # (B, C, H, W)


def _inverse(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Undo `_forward`: k quarter turns back, then the flip."""
    y = torch.rot90(y, -k, dims=(-2, -1))
    return y.flip(-1) if flip else y


@torch.no_grad()
def self_ensemble(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The mean of model(T(x)) mapped back by T^-1 over the eight transforms T of D4."""
    outs = [
        _inverse(model(_forward(x, k, flip)), k, flip) for flip in (False, True) for k in range(4)
    ]
    return torch.stack(outs).mean(0)


class SelfEnsemble(nn.Module):
    """`model` wrapped so that its forward is the self-ensemble (for evaluation loops)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self_ensemble(self.model, x)
