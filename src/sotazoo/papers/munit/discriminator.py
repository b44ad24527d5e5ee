"""MUNIT's discriminator (`MsImageDis`, NVlabs/MUNIT a82e222 networks.py), one per domain.

The LSGAN discriminator of the official code, at `dis_num_scales` scales of the input (3 in every
released config): the image, then the image average-pooled by 2 (3x3 window, stride 2, padding
left out of the average) before each further scale. Each scale is its own network of
`dis_n_layer` 4x4 stride-2 convs (the first without norm, the others with `dis_norm`, none in
the released configs), LeakyReLU 0.2, and a 1x1 conv to a one-channel patch map. Its losses (the
least-squares GAN terms, summed over the scales) are in `method.py`. Initialised N(0, 0.02), zero
biases (trainer.py applies `weights_init('gaussian')` to both discriminators). Training only: it
is not part of the registered models.
"""

from __future__ import annotations

import torch
from torch import nn

from sotazoo.nn.checks import check_image_batch, ensure_finite_output, model_dtype
from sotazoo.papers.munit.model import Conv2dBlock, MunitConfig, _init_weights


class MsImageDis(nn.Module):
    """The multi-scale discriminator of one domain: forward(x) -> [patch logits (B, 1, h, w)]
    for x and for x average-pooled 1, 2, ... times (3x3, stride 2, padding not counted)."""

    def __init__(self, cfg: MunitConfig, input_dim: int) -> None:
        super().__init__()
        self.cfg, self.input_dim = cfg, input_dim
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList(self._make_net() for _ in range(cfg.dis_num_scales))
        _init_weights(self, "gaussian")

    def _make_net(self) -> nn.Sequential:
        cfg, dim = self.cfg, self.cfg.dis_dim
        kw = {"activ": cfg.dis_activ, "pad_type": cfg.dis_pad_type}
        layers = [Conv2dBlock(self.input_dim, dim, 4, 2, 1, norm="none", **kw)]
        for _ in range(cfg.dis_n_layer - 1):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm=cfg.dis_norm, **kw))
            dim *= 2
        return nn.Sequential(*layers, nn.Conv2d(dim, 1, 1))

    @property
    def min_size(self) -> int:
        """The smallest side for which every stride-2 conv of the coarsest scale sees >= 2 px."""
        return (2**self.cfg.dis_n_layer - 1) * 2 ** (self.cfg.dis_num_scales - 1) + 1

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_image_batch(x, self.input_dim, min_size=self.min_size, dtype=model_dtype(self))
        outs, inputs = [], x
        for net in self.cnns:
            outs.append(net(x))
            x = self.downsample(x)
        ensure_finite_output(outs, {"image": inputs}, self)
        return outs
