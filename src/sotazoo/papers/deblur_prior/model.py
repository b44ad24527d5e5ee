"""The clear-versus-blurred classifier of "Learning a Discriminative Prior for Blind Image
Deblurring" (Li et al., CVPR 2018), Figure 2 and Section 3.2.

A grayscale image of any size goes through five 3x3 convolutions with ReLU (64 channels, stride
1, padding 1), a 2x2 stride-2 max pooling after the second, third and fourth; a 3x3 convolution
to one channel; global average pooling over its (M/8) x (N/8) map; and a sigmoid:
f(I) = P(I is blurred). No fully connected layer, so the score is defined for every input size,
as the coarse-to-fine solver needs.

`forward` returns the two-class logits (clear, blurred) = (0, z), z the pooled map: their
softmax is exactly (1 - f, f), so the network is an ordinary classifier for the registry, the
export and the site's `classify` widget, and `score` returns f(I), the prior of Eq. 4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sotazoo.nn.checks import (
    build_configured,
    check_config,
    check_image_batch,
    ensure_finite_output,
    model_dtype,
)

CLASSES = ("clear", "blurred")
MIN_SIZE = 8  # three 2x2 poolings leave a 1x1 map


@dataclass(frozen=True, kw_only=True)
class PriorConfig:
    width: int = 64  # channels of every hidden convolution
    in_chans: int = 1  # grayscale, as the paper

    def __post_init__(self) -> None:
        check_config(self)


class BlurClassifier(nn.Module):
    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.convs = nn.ModuleList(
            nn.Conv2d(cfg.in_chans if i == 0 else w, w, 3, padding=1) for i in range(5)
        )
        self.head = nn.Conv2d(w, 1, 3, padding=1)  # C9, no activation
        for m in self.modules():  # MatConvNet's Xavier initialisation (Section 3.4)
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """z (B,): the globally averaged map before the sigmoid."""
        check_image_batch(x, self.cfg.in_chans, min_size=MIN_SIZE, dtype=model_dtype(self))
        h = x
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h))
            if i in (1, 2, 3):  # M3, M5, M7
                h = F.max_pool2d(h, 2)
        return self.head(h).mean((1, 2, 3))  # G10: global average pooling

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """f(I) (B,): the probability that each image is blurred (S11)."""
        return torch.sigmoid(self.logit(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.logit(x)
        out = torch.stack([torch.zeros_like(z), z], 1)  # softmax = (1 - f, f)
        ensure_finite_output(out, {"input": x}, self)
        return out


def deblur_prior_net(**overrides) -> BlurClassifier:
    """The paper's classifier (Figure 2): 148,929 parameters."""
    return build_configured(BlurClassifier, PriorConfig(), overrides)


def deblur_prior_mini(**overrides) -> BlurClassifier:
    """Ours: the same layers at 16 channels (9,585 parameters), for the laptop reproduction,
    whose solver back-propagates through the prior hundreds of times per image."""
    return build_configured(BlurClassifier, PriorConfig(width=16), overrides)


def tiny_overrides(name: str) -> dict:
    """Four channels: the registry-wide tests' version."""
    return {"width": 4}
