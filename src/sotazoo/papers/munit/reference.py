"""MUNIT's reference adapter for `sotazoo bench --vs` (the paper contract's `reference.REFERENCES`):
MONAI's `AutoEncoder`, an independent convolutional encoder-decoder, built to the shape of
MUNIT's translation path.

No installable library implements MUNIT (the official code, NVlabs/MUNIT, is a repository of
scripts, not a package; PyPI has no MUNIT). What a translation runs is A's content encoder and
B's decoder: convolutions down to a quarter of the size at 256 channels, residual blocks there,
and up again. `monai:autoencoder` is MONAI's AutoEncoder in 2-D with that trunk: widths 64, 128,
256 (strides 1, 2, 2), eight residual units of two 3x3 convolutions at 256 channels in the middle
(MUNIT's four encoder and four decoder residual blocks), instance norm and ReLU, and stride-2
transposed 3x3 convolutions back up. It is not the same function: MUNIT's outer kernels are
7x7 / 4x4 / 5x5 where MONAI's are 3x3, MUNIT upsamples by nearest neighbour then convolves, and
the reference has no style path (the style code is taken and ignored: no MLP, no AdaIN, and plain
instance norm where MUNIT's decoder normalises adaptively), so its cost is the trunk's alone. No
weights are shared. Options: `dim` (the first width; the others double), which defaults to
edges2shoes' 64.
"""

from __future__ import annotations

import torch
from torch import nn

from sotazoo.errors import SotazooError

RES_BLOCKS = 8  # 4 in the content encoder + 4 AdaIN blocks in the decoder (n_res 4)


class IgnoresStyle(nn.Module):
    """forward(x, style) -> net(x): the bench feeds a reference the inputs it feeds MUNIT."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def monai_autoencoder(options: dict, spec: str) -> nn.Module:
    try:
        from monai.networks.nets import AutoEncoder
    except ImportError as e:
        raise SotazooError('the reference needs MONAI: pip install "sotazoo[bench]"') from e
    if unknown := set(options) - {"dim"}:
        raise SotazooError(f"reference {spec!r}: unknown option(s) {sorted(unknown)}")
    dim = int(options.get("dim", 64))
    net = AutoEncoder(spatial_dims=2, in_channels=3, out_channels=3,
                      channels=(dim, 2 * dim, 4 * dim), strides=(1, 2, 2),
                      inter_channels=[4 * dim] * RES_BLOCKS, num_inter_units=2,
                      act="RELU", norm="INSTANCE")  # fmt: skip
    return IgnoresStyle(net)


REFERENCES = {"monai:autoencoder": monai_autoencoder}
