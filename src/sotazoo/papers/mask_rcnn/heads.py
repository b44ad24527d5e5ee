"""Mask R-CNN's parts with torchvision's key names: the feature pyramid, the RPN head, the box head
and predictor, the mask head and predictor (Figure 4, right), and R-CNN box decoding.

Paper: He, Gkioxari, Dollár, Girshick. "Mask R-CNN", ICCV 2017, arXiv 1703.06870; the layer
shapes are Figure 4's, the key names torchvision's (`torchvision/models/detection/mask_rcnn.py`,
`faster_rcnn.py`, `rpn.py`, `torchvision/ops/feature_pyramid_network.py`). `model.py` assembles
them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from sotazoo.papers.mask_rcnn.model import MaskRCNNConfig

BBOX_XFORM_CLIP = math.log(1000.0 / 16)  # cap on dw, dh before exp (Detectron, torchvision)


# ---------------------------------------------------------------- backbone: ResNet + FPN


class FPN(nn.Module):
    """P2–P5 from C2–C5 (1×1 laterals, nearest ×2 top-down, 3×3 outputs), P6 = P5 subsampled by a
    1×1 max-pool of stride 2 (FPN §4.1, Detectron's and torchvision's `LastLevelMaxPool`)."""

    def __init__(self, in_channels: tuple[int, ...], channels: int) -> None:
        super().__init__()
        conv = lambda ci, k: nn.Sequential(nn.Conv2d(ci, channels, k, padding=k // 2))  # noqa: E731
        self.inner_blocks = nn.ModuleList(conv(ci, 1) for ci in in_channels)
        self.layer_blocks = nn.ModuleList(conv(channels, 3) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        inner = self.inner_blocks[-1](feats[-1])
        outs = [self.layer_blocks[-1](inner)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.inner_blocks[i](feats[i])
            inner = lateral + F.interpolate(inner, size=lateral.shape[-2:], mode="nearest")
            outs.insert(0, self.layer_blocks[i](inner))
        return [*outs, F.max_pool2d(outs[-1], 1, 2, 0)]  # [P2, P3, P4, P5, P6]


# ---------------------------------------------------------------- heads


class RPNHead(nn.Module):
    """3×3 conv + ReLU shared by every level, then 1×1 convs to A objectness logits and 4·A box
    deltas per position (Faster R-CNN §3.1)."""

    def __init__(self, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                                nn.ReLU(inplace=True)))  # fmt: skip
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, 1)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) objectness logits and (B, N, 4) deltas over all levels, in anchor order (level,
        y, x, anchor)."""
        logits, deltas = [], []
        for f in feats:
            t = self.conv(f)
            o = self.cls_logits(t)
            b, a, h, w = o.shape
            logits.append(o.permute(0, 2, 3, 1).reshape(b, h * w * a))
            d = self.bbox_pred(t).view(b, a, 4, h, w).permute(0, 3, 4, 1, 2)  # (B, H, W, A, 4)
            deltas.append(d.reshape(b, h * w * a, 4))
        return torch.cat(logits, 1), torch.cat(deltas, 1)


class BoxHead(nn.Module):
    """`box_head` (fc6, fc7) and `box_predictor` (cls_score, bbox_pred) of Figure 4."""

    def __init__(self, cfg: MaskRCNNConfig) -> None:
        super().__init__()
        self.fc6 = nn.Linear(cfg.fpn_channels * cfg.box_pool_size**2, cfg.representation)
        self.fc7 = nn.Linear(cfg.representation, cfg.representation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))


class BoxPredictor(nn.Module):
    def __init__(self, cfg: MaskRCNNConfig) -> None:
        super().__init__()
        self.cls_score = nn.Linear(cfg.representation, cfg.num_classes)
        self.bbox_pred = nn.Linear(cfg.representation, 4 * cfg.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


class MaskPredictor(nn.Module):
    """The 2×2 deconv (stride 2) + ReLU, then a 1×1 conv to one mask logit per class slot."""

    def __init__(self, cfg: MaskRCNNConfig) -> None:
        super().__init__()
        self.conv5_mask = nn.ConvTranspose2d(cfg.mask_channels, cfg.mask_channels, 2, 2)
        self.mask_fcn_logits = nn.Conv2d(cfg.mask_channels, cfg.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_fcn_logits(F.relu(self.conv5_mask(x)))


class RoIHeads(nn.Module):
    def __init__(self, cfg: MaskRCNNConfig) -> None:
        super().__init__()
        self.box_head = BoxHead(cfg)
        self.box_predictor = BoxPredictor(cfg)
        convs, c = [], cfg.fpn_channels
        for _ in range(cfg.mask_convs):  # `mask_head.i.0`: torchvision's Conv2dNormActivation keys
            convs.append(
                nn.Sequential(nn.Conv2d(c, cfg.mask_channels, 3, padding=1), nn.ReLU(inplace=True))
            )
            c = cfg.mask_channels
        self.mask_head = nn.Sequential(*convs)
        self.mask_predictor = MaskPredictor(cfg)


# ---------------------------------------------------------------- box coding


def decode(deltas: torch.Tensor, boxes: torch.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """R-CNN box decoding: deltas (..., 4) (dx, dy, dw, dh), divided by `weights`, on `boxes`
    (..., 4) xyxy broadcast against them; dw and dh capped at log(1000/16) before exp."""
    wx, wy, ww, wh = weights
    w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    cx, cy = boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h
    dw = (deltas[..., 2] / ww).clamp(max=BBOX_XFORM_CLIP)
    dh = (deltas[..., 3] / wh).clamp(max=BBOX_XFORM_CLIP)
    px, py = deltas[..., 0] / wx * w + cx, deltas[..., 1] / wy * h + cy
    pw, ph = torch.exp(dw) * w, torch.exp(dh) * h
    return torch.stack([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], dim=-1)
