"""Mask R-CNN — Faster R-CNN with FPN, plus a small fully convolutional mask branch per RoI.

Paper: He, Gkioxari, Dollár, Girshick. "Mask R-CNN", ICCV 2017, arXiv 1703.06870. Official code
(Caffe2): https://github.com/facebookresearch/Detectron (`detectron/modeling/mask_rcnn_heads.py`,
`fast_rcnn_heads.py`, `rpn_heads.py`, `FPN.py`); its successor detectron2, and torchvision's
port (`torchvision/models/detection/mask_rcnn.py`), whose COCO weights load here unchanged.

What is the paper's (§3, Figure 4 right, the FPN variant): a ResNet whose C2–C5 feed a 256-channel
pyramid P2–P5 (1×1 laterals, nearest top-down path, 3×3 outputs) and P6, a stride-2 subsampling of
P5 used by the RPN only; the RPN (a 3×3 conv, then 1×1 convs to A objectness logits and 4·A box
deltas per position, A = 3 aspect ratios of one anchor size per level, 32² … 512² on P2 … P6);
RoIAlign (§3: no rounding of the box or its bins, 2×2 bilinear samples per bin, averaged) on the
pyramid level k = ⌊4 + log2(√(wh)/224)⌋ (FPN's Eq. 1); the box head (7×7×256 → FC 1024 → FC 1024
→ K + 1 class scores and per-class box deltas) and the mask head (14×14×256 → four 3×3 convs of
256 → 2×2 deconv, stride 2 → 1×1 conv to K + 1 masks of 28×28); inference (§3.1): 1000 proposals,
the box branch, class-wise NMS, then the mask branch on the 100 best detections only, the mask of
the predicted class kept (a per-pixel sigmoid).

What follows torchvision, so that its checkpoints run exactly (its defaults are ours): the stride
of a ResNet stage on the 3×3 conv (`stride_in_1x1=False`), anchors centred on the grid points and
stepped by image_size // feature_size, frozen BatchNorm with eps 0 for its COCO weights, 91 class
slots (COCO's original ids, slot 0 the background), RoIAlign with `aligned=False` (the paper's:
detectron2's ROIAlignV2 also shifts by half a pixel) and the box coder's weights (10, 10, 5, 5).
Key names are torchvision's.

What is ours: `forward` returns the detections as one padded tensor in train and eval mode alike
(below), so that the whole model — proposals, NMS and all — exports to ONNX as one graph;
normalisation happens outside the network, as in torchvision; `pooler="pool"` (RoIPool) and
`mask_activation="softmax"`, the paper's Table 2 ablations, and `pool_levels`, which pools every
RoI from one level (the C4 and C5 stand-ins of the reproduction); `norm="batch"` and the
laptop-scale `maskrcnn_mini`.

Input: RGB in [0, 1], normalised with the ImageNet mean and std before the network, at a size the
caller chose (the paper: shorter side 800 px; sides that are multiples of 32 keep every level's
grid exact). Output: (B, D, 11 + M²) with D = `detections_per_img`, best first, zero rows after the
last detection: per detection its box (x1, y1, x2, y2) in input pixels, score, label (an index of
the classifier's K + 1 slots, never 0), the proposal it was refined from (x1, y1, x2, y2) and that
proposal's objectness, then the M × M mask probabilities of its label, to be pasted into the image
by `method.paste_masks` (`method.unpack` reads the tensor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torchvision.ops import (
    batched_nms,
    clip_boxes_to_image,
    remove_small_boxes,
    roi_align,
    roi_pool,
)

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    build_configured,
    check_config,
    check_image_batch,
    ensure_finite_output,
    model_dtype,
)
from sotazoo.papers.mask_rcnn.heads import FPN, RoIHeads, RPNHead, decode
from sotazoo.papers.retinanet.method import cell_anchors
from sotazoo.papers.retinanet.model import ResNetBody
from sotazoo.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 - the model's input


@dataclass(frozen=True, kw_only=True)
class MaskRCNNConfig:
    """Hyper-parameters of one Mask R-CNN (§3, §3.1 and torchvision's `maskrcnn_resnet50_fpn`)."""

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)  # ResNet-50; ResNet-101: (3, 4, 23, 3)
    planes: tuple[int, int, int, int] = (64, 128, 256, 512)  # bottleneck widths (outputs ×4)
    stem_channels: int = 64
    stride_in_1x1: bool = False  # torchvision; Detectron/MSRA models: True
    norm: Literal["frozen", "batch"] = "frozen"  # frozen statistics and affine, as Detectron
    bn_eps: float = 0.0  # torchvision's COCO weights run with 0 (overwrite_eps)
    freeze_at: int = (
        2  # stem and res2 get no gradient (Detectron FREEZE_AT, torchvision's 3 layers)
    )
    in_chans: int = 3
    fpn_channels: int = 256
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0, 512.0)  # one per level, P2–P6
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    round_anchors: bool = True  # Detectron and torchvision round the cell anchors; detectron2 not
    rpn_pre_nms_top_n: int = 1000  # per level, at test time (§3.1: 1000 proposals with FPN)
    rpn_post_nms_top_n: int = 1000  # per image
    rpn_nms_thresh: float = 0.7
    pooler: Literal["align", "pool"] = "align"  # RoIAlign (§3) or RoIPool (Table 2c's baseline)
    sampling_ratio: int = 2  # bilinear samples per bin side (§3: 4 points per bin); 0: adaptive
    aligned: bool = False  # the paper's and torchvision's; detectron2's ROIAlignV2: True
    box_pool_size: int = 7
    mask_pool_size: int = 14
    canonical_scale: float = 224.0  # FPN Eq. 1: a 224² RoI goes to level 4
    pool_levels: tuple[int, int] = (2, 5)  # the levels Eq. 1 is clamped to; (4, 4): every RoI
    # on the stride-16 P4, as the C4 backbone of Table 2c; (5, 5): stride 32, Table 2d
    representation: int = 1024  # the box head's two FC layers
    mask_convs: int = 4
    mask_channels: int = 256
    mask_activation: Literal["sigmoid", "softmax"] = "sigmoid"  # per class (§3) or Table 2b's
    num_classes: int = 91  # classifier slots, slot 0 the background (torchvision's COCO: 91)
    box_coder_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_img: int = 100  # §3.1: the mask branch runs on the 100 best boxes

    def __post_init__(self) -> None:
        check_config(self, {"freeze_at": 0, "sampling_ratio": 0})  # 0: adaptive (detectron2)
        if self.freeze_at > 2:
            raise InputError(
                f"freeze_at must be 0, 1 (stem) or 2 (stem + res2), got {self.freeze_at}"
            )
        if len(self.anchor_sizes) != 5:
            raise InputError(
                f"anchor_sizes needs one size per level P2–P6, got {self.anchor_sizes}"
            )
        if self.num_classes < 2:
            raise InputError(
                f"num_classes counts the background slot: >= 2, got {self.num_classes}"
            )
        for name in ("score_thresh", "nms_thresh", "rpn_nms_thresh"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 2 <= self.pool_levels[0] <= self.pool_levels[1] <= 5:
            raise InputError(
                f"pool_levels must be levels 2 <= k_min <= k_max <= 5, got {self.pool_levels}"
            )
        if self.pooler not in ("align", "pool"):
            raise InputError(f"pooler must be 'align' or 'pool', got {self.pooler!r}")
        if self.mask_activation not in ("sigmoid", "softmax"):
            raise InputError(
                f"mask_activation must be 'sigmoid' or 'softmax', got {self.mask_activation!r}"
            )

    @property
    def mask_size(self) -> int:
        return 2 * self.mask_pool_size  # the deconv doubles the pooled side

    @property
    def out_columns(self) -> int:
        return 11 + self.mask_size**2


# ---------------------------------------------------------------- the model


class Backbone(nn.Module):
    def __init__(self, cfg: MaskRCNNConfig) -> None:
        super().__init__()
        self.body = ResNetBody(cfg)  # RetinaNet's ResNet trunk: torchvision's keys, either stride
        self.fpn = FPN(tuple(p * 4 for p in cfg.planes), cfg.fpn_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b = self.body
        c2 = b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x)))))
        c3 = b.layer2(c2)
        c4 = b.layer3(c3)
        return self.fpn([c2, c3, c4, b.layer4(c4)])


class MaskRCNN(nn.Module):
    """Backbone + FPN, RPN, box and mask branches; `forward` returns (B, D, 11 + M²) detections.

    The steps are methods so that `method.py`'s training loss reuses them: `features`, `rpn`,
    `anchors`, `propose`, `pool`, `box_outputs`, `mask_logits`.
    """

    def __init__(self, cfg: MaskRCNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg)
        self.rpn = nn.Module()
        self.rpn.head = RPNHead(cfg.fpn_channels, len(cfg.aspect_ratios))
        self.roi_heads = RoIHeads(cfg)
        self._init_weights()
        body = self.backbone.body
        if cfg.freeze_at >= 1:
            body.conv1.requires_grad_(False)
            body.bn1.requires_grad_(False)
        if cfg.freeze_at >= 2:
            body.layer1.requires_grad_(False)

    def _init_weights(self) -> None:
        # Detectron's: He init (backbone), Xavier (FPN, as c2_xavier_fill), N(0, 0.01) for the
        # RPN and the classifier, N(0, 0.001) for the box deltas (fast_rcnn_heads.py), MSRA fill
        # for the mask convs and the deconv (mask_rcnn_heads.py); biases zero.
        for m in self.backbone.body.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.backbone.fpn.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)
        for m in self.rpn.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        heads = self.roi_heads
        for m in (heads.box_head.fc6, heads.box_head.fc7):
            nn.init.kaiming_uniform_(m.weight, a=1)
            nn.init.zeros_(m.bias)
        for m, std in (
            (heads.box_predictor.cls_score, 0.01),
            (heads.box_predictor.bbox_pred, 0.001),
        ):
            nn.init.normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)
        for m in [*heads.mask_head.modules(), *heads.mask_predictor.modules()]:
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------ the steps

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """P2 … P6 of a normalised (B, 3, H, W) batch."""
        check_image_batch(x, self.cfg.in_chans, dtype=model_dtype(self))
        feats = self.backbone(x)
        # Checked here, before proposals are ranked: NMS and top-k on NaN pick arbitrary boxes.
        ensure_finite_output(feats, {"input": x}, self)
        return feats

    def anchors(
        self, feats: list[torch.Tensor], image_size: tuple[int, int]
    ) -> tuple[torch.Tensor, list[int]]:
        """(N, 4) anchors in the RPN's output order and the count per level. Level l's anchors
        step by image_size // feature_size (torchvision's AnchorGenerator)."""
        out, counts = [], []
        for f, size in zip(feats, self.cfg.anchor_sizes, strict=True):
            h, w = f.shape[-2:]
            base = cell_anchors((size,), self.cfg.aspect_ratios, round_=self.cfg.round_anchors).to(
                f
            )
            sy, sx = image_size[0] // h, image_size[1] // w
            ys = torch.arange(h, device=f.device, dtype=f.dtype) * sy
            xs = torch.arange(w, device=f.device, dtype=f.dtype) * sx
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")
            shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
            out.append((shifts + base[None]).reshape(-1, 4))
            counts.append(out[-1].shape[0])
        return torch.cat(out), counts

    def propose(
        self,
        logits: torch.Tensor,
        deltas: torch.Tensor,
        anchors: torch.Tensor,
        counts: list[int],
        image_size: tuple[int, int],
        *,
        pre_nms_top_n: int | None = None,
        post_nms_top_n: int | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image, the proposals (P, 4) and their objectness logits (P,): the `pre_nms_top_n`
        best anchors of each level, decoded and clipped, those narrower than 1e-3 px dropped, NMS
        at `rpn_nms_thresh` within each level, the `post_nms_top_n` best kept (torchvision's
        `RegionProposalNetwork.filter_proposals`). Defaults: the test-time counts."""
        pre = pre_nms_top_n or self.cfg.rpn_pre_nms_top_n
        post = post_nms_top_n or self.cfg.rpn_post_nms_top_n
        out = []
        for b in range(logits.shape[0]):
            idx, lvl = [], []
            start = 0
            for level, n in enumerate(counts):
                top = logits[b, start : start + n].topk(min(pre, n)).indices + start
                idx.append(top)
                lvl.append(torch.full_like(top, level))
                start += n
            idx, lvl = torch.cat(idx), torch.cat(lvl)
            boxes = clip_boxes_to_image(decode(deltas[b, idx], anchors[idx]), image_size)
            scores = logits[b, idx]
            keep = remove_small_boxes(boxes, 1e-3)
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = batched_nms(boxes, torch.sigmoid(scores), lvl, self.cfg.rpn_nms_thresh)[:post]
            out.append((boxes[keep], scores[keep]))
        return out

    def pool(
        self, feats: list[torch.Tensor], rois: list[torch.Tensor], size: int, image_size
    ) -> torch.Tensor:
        """(R, C, size, size) features of the RoIs of every image (in image order) from P2–P5: a
        RoI of w × h goes to level ⌊4 + log2(√(wh)/224) + 1e-6⌋, clamped to `pool_levels` (FPN Eq. 1),
        where RoIAlign (or RoIPool) crops it at that level's scale."""
        cfg = self.cfg
        boxes = torch.cat(
            [torch.cat([torch.full_like(r[:, :1], i), r], 1) for i, r in enumerate(rois)]
        )
        w, h = boxes[:, 3] - boxes[:, 1], boxes[:, 4] - boxes[:, 2]
        k = torch.floor(4 + torch.log2(torch.sqrt(w * h) / cfg.canonical_scale) + 1e-6)
        levels = k.clamp(*cfg.pool_levels).to(torch.int64) - 2
        pooled, order = [], []
        for lv, f in enumerate(feats[:4]):
            idx = torch.where(levels == lv)[0]
            scale = 2.0 ** round(math.log2(f.shape[-2] / image_size[0]))
            if cfg.pooler == "align":
                pooled.append(
                    roi_align(f, boxes[idx], size, scale, cfg.sampling_ratio, cfg.aligned)
                )
            else:
                pooled.append(roi_pool(f, boxes[idx], size, scale))
            order.append(idx)
        return torch.cat(pooled)[torch.argsort(torch.cat(order))]

    def box_outputs(self, feats, rois, image_size) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, K + 1) class logits and (R, K + 1, 4) box deltas of the RoIs."""
        x = self.roi_heads.box_head(self.pool(feats, rois, self.cfg.box_pool_size, image_size))
        logits, deltas = self.roi_heads.box_predictor(x)
        return logits, deltas.reshape(deltas.shape[0], self.cfg.num_classes, 4)

    def mask_logits(self, feats, rois, image_size) -> torch.Tensor:
        """(R, K + 1, M, M) mask logits of the RoIs."""
        x = self.pool(feats, rois, self.cfg.mask_pool_size, image_size)
        return self.roi_heads.mask_predictor(self.roi_heads.mask_head(x))

    def mask_probs(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(R, M, M) mask probabilities of each RoI's `labels` slot: its own sigmoid (§3); with
        Table 2b's softmax over the slots (slot 0 the background), p_label / (p_label + the
        largest other p), above 0.5 exactly where the label wins the pixel (FCN's reading)."""
        m = logits.shape[-1]
        index = labels[:, None, None, None].expand(-1, 1, m, m)
        own = logits.gather(1, index)[:, 0]  # (R, M, M): each RoI's own slot
        if self.cfg.mask_activation == "sigmoid":
            return torch.sigmoid(own)
        others = logits.scatter(1, index, float("-inf"))
        return torch.sigmoid(own - others.max(dim=1).values)  # p_l / (p_l + p_other)

    # ------------------------------------------------------------ inference (§3.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Counts of proposals and detections vary with the image: they are selected with masks
        # and NonZero, never read as Python ints, so that an ONNX trace keeps them dynamic.
        cfg = self.cfg
        image_size = (int(x.shape[-2]), int(x.shape[-1]))
        feats = self.features(x)
        if x.shape[0] == 0:  # an empty batch: no image, no detection
            return x.new_zeros(0, cfg.detections_per_img, cfg.out_columns)
        logits, deltas = self.rpn.head(feats)
        anchors, counts = self.anchors(feats, image_size)
        proposals = self.propose(logits, deltas, anchors, counts, image_size)
        rois = [p for p, _ in proposals]
        owner = torch.cat(
            [torch.full_like(p[:, 0], i, dtype=torch.long) for i, p in enumerate(rois)]
        )
        cls_logits, box_deltas = self.box_outputs(feats, rois, image_size)
        k = cls_logits.shape[1]
        props_all = torch.cat(rois)
        objectness_all = torch.cat([o for _, o in proposals])
        scores_all = torch.softmax(cls_logits, -1)[:, 1:]  # (R, K): slot 0 is the background
        boxes_all = decode(box_deltas, props_all[:, None], cfg.box_coder_weights)[:, 1:]
        boxes_all = clip_boxes_to_image(boxes_all, image_size)  # (R, K, 4)
        slot = torch.arange(1, k, device=x.device)
        kept = []
        for b in range(x.shape[0]):
            mine = torch.where(owner == b)[0]  # the image's proposals
            scores = scores_all[mine].reshape(-1)  # proposal-major: index = i·K + class
            boxes = boxes_all[mine].reshape(-1, 4)
            labels = slot.expand(mine.shape[0], k - 1).reshape(-1)
            src = mine[:, None].expand(mine.shape[0], k - 1).reshape(-1)
            keep = torch.where(scores > cfg.score_thresh)[0]
            keep = keep[remove_small_boxes(boxes[keep], 1e-2)]
            keep = keep[batched_nms(boxes[keep], scores[keep], labels[keep], cfg.nms_thresh)]
            keep = keep[: cfg.detections_per_img]
            kept.append((boxes[keep], scores[keep], labels[keep], src[keep]))
        masks = self.mask_logits(feats, [d[0] for d in kept], image_size)
        probs = self.mask_probs(masks, torch.cat([d[2] for d in kept])).flatten(1)
        det_owner = torch.cat([torch.full_like(d[2], b) for b, d in enumerate(kept)])
        rows, d_max = [], cfg.detections_per_img
        for b, (boxes, scores, labels, src) in enumerate(kept):
            r = torch.cat([boxes, scores[:, None], labels[:, None].to(boxes), props_all[src],
                           torch.sigmoid(objectness_all[src])[:, None],
                           probs[det_owner == b]], 1)  # fmt: skip
            # Padded to D rows by concatenating D zero rows and keeping the first D.
            rows.append(torch.cat([r, r.new_zeros(d_max, r.shape[1])])[:d_max])
        return torch.stack(rows)  # (B, D, 11 + M²)


def _build(cfg: MaskRCNNConfig, overrides: dict) -> MaskRCNN:
    return build_configured(MaskRCNN, cfg, overrides)


def maskrcnn_resnet50_fpn(**overrides) -> MaskRCNN:
    """Mask R-CNN with ResNet-50-FPN (Table 2's R-50-FPN; torchvision's `maskrcnn_resnet50_fpn`)."""
    return _build(MaskRCNNConfig(), overrides)


def maskrcnn_resnet101_fpn(**overrides) -> MaskRCNN:
    """Mask R-CNN with ResNet-101-FPN (the paper's Table 1 model, 35.7 mask AP on test-dev)."""
    return _build(MaskRCNNConfig(layers=(3, 4, 23, 3)), overrides)


def maskrcnn_mini(**overrides) -> MaskRCNN:
    """Ours: a laptop-scale Mask R-CNN for 128×128 scenes of the 4 generated shape classes.

    The same architecture at 1/8 of the widths: one bottleneck per stage (widths 8 … 64), a
    32-channel pyramid, a 128-wide box head, two mask convs of 32, 5 class slots (background + 4
    shapes), trainable BatchNorm (it learns from scratch), anchors of 16 … 256 px (half the paper's
    relative to the stride: the shapes are small), 300 proposals and 20 detections per image.
    """
    cfg = MaskRCNNConfig(
        layers=(1, 1, 1, 1), planes=(8, 16, 32, 64), stem_channels=16, norm="batch", bn_eps=1e-5,
        freeze_at=0, fpn_channels=32, anchor_sizes=(16.0, 32.0, 64.0, 128.0, 256.0),
        rpn_pre_nms_top_n=300, rpn_post_nms_top_n=300, representation=128,
        mask_convs=2, mask_channels=32, num_classes=5, detections_per_img=20,
    )  # fmt: skip
    return _build(cfg, overrides)


def tiny_overrides(name: str) -> dict:
    """Narrow, one block per stage, 5 class slots, few proposals: the registry-wide tests'."""
    if name == "maskrcnn_mini":
        return {}
    return {
        "layers": (1, 1, 1, 1), "planes": (8, 16, 32, 64), "stem_channels": 16, "fpn_channels": 32,
        "representation": 64, "mask_convs": 1, "mask_channels": 16, "num_classes": 5,
        "rpn_pre_nms_top_n": 50, "rpn_post_nms_top_n": 50, "detections_per_img": 10,
    }  # fmt: skip
