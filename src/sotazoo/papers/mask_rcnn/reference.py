"""Mask R-CNN's reference adapters for `sotazoo bench --vs` and the oracles (the paper contract's
`reference.REFERENCES`): torchvision's Mask R-CNN built as our comparisons need it.

Two options of the spec `torchvision:maskrcnn_resnet50_fpn[_v2]:k=v,...` are ours; the others go
to torchvision's builder:

- `raw=True`: torchvision's detector without its `GeneralizedRCNNTransform` (resize to
  min_size/max_size, normalise, pad to a multiple of 32, and at the end rescale the boxes and paste
  the masks into the image). The module runs torchvision's own backbone, RPN and RoI heads (box and
  mask branches) on an already normalised (B, 3, H, W) tensor and returns their detections, masks
  at 28 × 28: the work `MaskRCNN.forward` does, whose masks are pasted by `method.paste_masks`
  outside it.
- `frozen_bn=True` (`maskrcnn_resnet50_fpn` only): the network torchvision runs for its COCO
  weights — ResNet-50 with FrozenBatchNorm2d, eps set to 0 as its builder does for `COCO_V1` —
  with random weights, nothing downloaded. Without it, `weights_backbone=None` gives
  nn.BatchNorm2d, which ours (frozen, like the paper and the COCO weights) does not use.

Mask R-CNN's matched reference, the one its card declares, is
`torchvision:maskrcnn_resnet50_fpn:raw=True,frozen_bn=True`.
"""

from __future__ import annotations

import functools

import torch

from sotazoo.bench import torchvision_detector


class TorchvisionMaskRCNNNetwork(torch.nn.Module):
    """torchvision's Mask R-CNN between its transform's two ends: its `backbone`, `rpn` and
    `roi_heads` (so that its state dict has the detector's keys) on a normalised batch."""

    def __init__(self, detector: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = detector.backbone
        self.rpn = detector.rpn
        self.roi_heads = detector.roi_heads

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        from torchvision.models.detection.image_list import ImageList

        images = ImageList(x, [tuple(x.shape[-2:])] * x.shape[0])
        feats = self.backbone(x)
        proposals, _ = self.rpn(images, feats)
        detections, _ = self.roi_heads(feats, proposals, images.image_sizes)
        return detections


def frozen_maskrcnn(num_classes: int, layers: int, opts: dict) -> torch.nn.Module:
    """`maskrcnn_resnet50_fpn` as torchvision's builder assembles it for `weights=COCO_V1`
    (FrozenBatchNorm2d ResNet-50, `layers` trainable stages), random; the eps is set to 0 by
    `sotazoo.bench.torchvision_detector`."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None,
                                   norm_layer=FrozenBatchNorm2d, trainable_layers=layers)  # fmt: skip
    return MaskRCNN(backbone, num_classes, **opts)


REFERENCES = {
    f"torchvision:{name}": functools.partial(
        torchvision_detector, name, frozen_name="maskrcnn_resnet50_fpn",
        build_frozen=frozen_maskrcnn, network=TorchvisionMaskRCNNNetwork,
    )
    for name in ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2")
}  # fmt: skip
