"""SID's reference adapter for `sotazoo bench --vs` (the paper contract's `reference.REFERENCES`):
MONAI's `BasicUNet`, an independent plain U-Net, built to the size of SID's.

No installable library implements SID (the official code is TensorFlow 1 scripts). The closest
independent network is a plain U-Net: `monai:basicunet` is MONAI's BasicUNet in 2-D with SID's
widths (32, 64, 128, 256, 512; 32 at the last up level), LeakyReLU(0.2), no normalisation and
2x2 transposed-convolution upsampling, 4 input channels and 12 outputs, then depth to space by 2
as SID's head. It is not the same function: MONAI's top up-sampling keeps 64 channels where SID
halves them to 32, and its transposed convolutions have biases, so it has 7,778,188 parameters
against SID's 7,760,268 (0.23 % more) and no weights are shared. Options: `in_channels`,
`out_channels` (before depth to space), `scale`, which default to the Sony network's.
"""

from __future__ import annotations

from torch import nn

from sotazoo.errors import SotazooError

WIDTHS = (32, 64, 128, 256, 512, 32)  # BasicUNet's `features`: five levels, then its last up


def monai_basicunet(options: dict, spec: str) -> nn.Module:
    try:
        from monai.networks.nets import BasicUNet
    except ImportError as e:
        raise SotazooError('the reference needs MONAI: pip install "sotazoo[bench]"') from e
    opts = {"in_channels": 4, "out_channels": 12, "scale": 2} | options
    if unknown := set(opts) - {"in_channels", "out_channels", "scale"}:
        raise SotazooError(f"reference {spec!r}: unknown option(s) {sorted(unknown)}")
    unet = BasicUNet(spatial_dims=2, in_channels=int(opts["in_channels"]),
                     out_channels=int(opts["out_channels"]), features=WIDTHS,
                     act=("LeakyReLU", {"negative_slope": 0.2}), norm=None,
                     upsample="deconv")  # fmt: skip
    return nn.Sequential(unet, nn.PixelShuffle(int(opts["scale"])))


REFERENCES = {"monai:basicunet": monai_basicunet}
