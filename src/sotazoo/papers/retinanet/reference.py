"""RetinaNet's reference adapters for `sotazoo bench --vs` and the oracles (the paper contract's
`reference.REFERENCES`): torchvision's RetinaNet built as our comparisons need it.

Two options of the spec `torchvision:retinanet_resnet50_fpn[_v2]:k=v,...` are ours; the others go
to torchvision's builder:

- `raw=True`: torchvision's detector without the work ours leaves outside the network — no
  `GeneralizedRCNNTransform` (resize to min_size/max_size, normalise, pad) and no post-processing
  (decode, NMS). The module runs torchvision's own backbone (ResNet + FPN) and head on an already
  normalised (B, 3, H, W) tensor and returns (B, N, K + 4), class logits then box deltas: what
  `RetinaNet.forward` computes between its transform and its postprocess, and the layout of our
  RetinaNet's output.
- `frozen_bn=True` (`retinanet_resnet50_fpn` only): the network torchvision runs for its COCO
  weights — its builder's pretrained path (ResNet-50 with FrozenBatchNorm2d, P6 on P5), then
  `overwrite_eps(model, 0.0)` as the builder does for `COCO_V1` — with random weights, nothing
  downloaded. Without it, `weights_backbone=None` gives nn.BatchNorm2d, which ours (FrozenBN,
  like the paper and the COCO weights) does not use.

RetinaNet's matched reference, the one its card declares, is
`torchvision:retinanet_resnet50_fpn:raw=True,frozen_bn=True`. YOLOv3 can be timed beside it for the
paper's speed comparison with RetinaNet (`sotazoo bench yolov3_416 --vs <that spec>`: another
detector, no weights shared); YOLOv3's card declares OpenCV's darknet network instead, its own
architecture run by another implementation.
"""

from __future__ import annotations

import functools

import torch

from sotazoo.bench import torchvision_detector


class TorchvisionDetectorNetwork(torch.nn.Module):
    """torchvision's RetinaNet between its transform and its post-processing.

    Holds the detector's own `backbone` and `head` (so its state dict has the detector's keys) and
    does what `RetinaNet.forward` does with them: the backbone's feature maps as a list (P3 … P7)
    into the head, whose (B, N, K) logits and (B, N, 4) deltas are concatenated as ours are.
    """

    def __init__(self, detector: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = detector.backbone
        self.head = detector.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = list(self.backbone(x).values())
        out = self.head(feats)
        return torch.cat([out["cls_logits"], out["bbox_regression"]], dim=-1)  # (B, N, K + 4)


def frozen_retinanet(num_classes: int, layers: int, opts: dict) -> torch.nn.Module:
    """`retinanet_resnet50_fpn` as torchvision's builder assembles it for `weights=COCO_V1`
    (FrozenBatchNorm2d ResNet-50, FPN over layers 2-4, P6/P7 on P5), random; the eps is set to 0
    by `sotazoo.bench.torchvision_detector`."""
    from torchvision.models import resnet50
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(
        body, layers, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256)
    )
    return RetinaNet(backbone, num_classes, **opts)


REFERENCES = {
    f"torchvision:{name}": functools.partial(
        torchvision_detector, name, frozen_name="retinanet_resnet50_fpn",
        build_frozen=frozen_retinanet, network=TorchvisionDetectorNetwork,
    )
    for name in ("retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2")
}  # fmt: skip
