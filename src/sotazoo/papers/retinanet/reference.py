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

from sotazoo.bench import flag, torchvision_model
from sotazoo.errors import SotazooError


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


def frozen_retinanet(opts: dict, spec: str) -> torch.nn.Module:
    """`retinanet_resnet50_fpn` as torchvision's builder assembles it for `weights=COCO_V1`
    (FrozenBatchNorm2d ResNet-50, FPN over layers 2-4, P6/P7 on P5, eps set to 0), random."""
    from torchvision.models import resnet50
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection._utils import overwrite_eps
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    for key in ("weights", "weights_backbone"):
        if opts.pop(key, None) is not None:
            raise SotazooError(
                f"reference {spec!r}: frozen_bn=True builds random weights; drop {key}"
            )
    num_classes = opts.pop("num_classes", 91)
    layers = opts.pop("trainable_backbone_layers", 3)
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(
        body, layers, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256)
    )
    try:
        model = RetinaNet(backbone, num_classes, **opts)
    except TypeError as e:
        raise SotazooError(f"reference {spec!r}: {e}") from None
    overwrite_eps(model, 0.0)
    return model


def torchvision_retinanet(name: str, opts: dict, spec: str) -> torch.nn.Module:
    """torchvision's RetinaNet builder `name` with our `raw` and `frozen_bn` options."""
    raw = flag(opts, "raw", spec)
    if flag(opts, "frozen_bn", spec):
        if name != "retinanet_resnet50_fpn":
            raise SotazooError(
                f"reference {spec!r}: frozen_bn=True is implemented for "
                "torchvision:retinanet_resnet50_fpn only"
            )
        model = frozen_retinanet(opts, spec)
    else:
        model = torchvision_model(name, opts, spec)
    return TorchvisionDetectorNetwork(model) if raw else model


REFERENCES = {
    f"torchvision:{name}": functools.partial(torchvision_retinanet, name)
    for name in ("retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2")
}
