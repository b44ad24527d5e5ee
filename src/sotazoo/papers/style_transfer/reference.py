"""Style transfer's reference adapter for `sotazoo bench --vs` (the paper contract's
`reference.REFERENCES`).

No installable library implements AdaIN or Johnson et al.'s network (pystiche's last release
imports names torchvision no longer has). The closest independent network is torchvision's
VGG-19: `torchvision:vgg19_relu4_1` runs its `features` up to relu4_1 on the content and on the
style image, AdaIN's encoder half (3,505,728 parameters against AdaIN's 7,010,959: the decoder and
the normalised VGG's 1x1 preprocessing are not in it, and it pads with zeros where AdaIN reflects).
"""

from __future__ import annotations

import torch
from torch import nn

from sotazoo.errors import SotazooError

RELU4_1 = 20  # torchvision's vgg19().features index of relu4_1


class EncoderTwice(nn.Module):
    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features(content), self.features(style)


def torchvision_vgg19_relu4_1(options: dict, spec: str) -> nn.Module:
    import torchvision

    if options:
        raise SotazooError(f"reference {spec!r} takes no options, got {sorted(options)}")
    return EncoderTwice(torchvision.models.vgg19(weights=None).features[: RELU4_1 + 1])


REFERENCES = {"torchvision:vgg19_relu4_1": torchvision_vgg19_relu4_1}
