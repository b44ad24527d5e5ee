"""Checkpoint layouts for RetinaNet, recognised by their keys and mapped onto ours.

- `torchvision`: `torchvision.models.detection.retinanet_resnet50_fpn` (the COCO file
  `retinanet_resnet50_fpn_coco-eeacb38b.pth`, and models trained with torchvision's class). Our
  keys are its keys, so the state dict loads as it is, after three normalisations: a `module.`
  prefix is stripped; the layouts of torchvision before its version-2 modules are renamed
  (`inner_blocks.i.weight` -> `inner_blocks.i.0.weight`, head `conv.2i.*` -> `conv.i.0.*`, which
  its own `_load_from_state_dict` does through the file's metadata); `num_batches_tracked` is
  dropped. The config it needs: `stride_in_1x1=False` (torchvision's ResNet), `p6_from` read from
  the input channels of `p6` (256: P5, torchvision v1; 2048: C5, v2-style), its integer anchor
  sizes, `num_classes` from the predictor (91 for the COCO file), and `bn_eps`: 0 for a file
  without `num_batches_tracked` (trained with FrozenBatchNorm, like the COCO file, which
  torchvision's builder runs with eps 0 through `overwrite_eps`), 1e-5 for one with them (trained
  with nn.BatchNorm2d, whose eps is 1e-5).
- `detectron2`: `COCO-Detection/retinanet_R_{50,101}_FPN_*` converted to a flat state dict (its
  `model_final_*.pkl` is a pickle, which sotazoo never unpickles: save its `["model"]` dict with
  `torch.save` or safetensors first). Keys renamed (`backbone.bottom_up.res2.0.conv1.norm.*` ->
  `backbone.body.layer1.0.bn1.*`, `fpn_lateral3` -> `fpn.inner_blocks.0.0`, `top_block.p6` ->
  `fpn.extra_blocks.p6`, `head.cls_subnet.2i` -> `head.classification_head.conv.i.0`,
  `cls_score` -> `cls_logits`, `bbox_pred` -> `bbox_reg`); its cell anchors are size-major
  (ours ratio-major), so the predictor channels are permuted; its input is BGR in 0–255 minus
  the pixel mean 255·(ImageNet mean) with std 1 (the MSRA convention), which equals ours
  (normalised RGB) up to a per-channel factor 255·std, so the stem conv is rescaled and its
  input channels reversed: exact, padding included, because the mean offsets cancel. Config:
  `stride_in_1x1=True`, `p6_from="c5"`, the paper's anchor sizes, unrounded, eps 1e-5.
- Detectron (Caffe2) `model_final.pkl` files (blobs named like `res2_0_branch2a_w`,
  `retnet_cls_pred_fpn3_w`) are rejected with a `WeightsError`: the blob names of the FPN and of
  the heads could not be pinned against the official code here, and the files are pickles.
"""

from __future__ import annotations

import re

import torch

from sotazoo.weights import WeightsError

_TV_REQUIRED = ("backbone.body.conv1.weight", "head.classification_head.cls_logits.weight")
_D2_REQUIRED = ("backbone.bottom_up.stem.conv1.weight", "head.cls_score.weight")
_D2_PIXEL_MEAN_BGR = (103.53, 116.28, 123.675)  # = 255 × ImageNet mean, reversed
_IMAGENET_STD = (0.229, 0.224, 0.225)
_D2_ANCHOR_SIZES = 3  # detectron2's RetinaNet: 3 sizes × 3 ratios per level


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a RetinaNet checkpoint from its keys; `WeightsError` when none fits."""
    keys = {k.removeprefix("module.") for k in keys}
    if set(_TV_REQUIRED) <= keys:
        return "torchvision"
    if set(_D2_REQUIRED) <= keys:
        return "detectron2"
    if any(re.match(r"(res\d_\d+_branch|retnet_|fpn_inner_)", k) for k in keys):
        raise WeightsError(
            "this is a Detectron (Caffe2) checkpoint (blob names such as 'res2_0_branch2a_w'), "
            "which sotazoo cannot convert: use torchvision's retinanet_resnet50_fpn COCO weights "
            "or a detectron2 RetinaNet saved as a flat state dict"
        )
    if "model" in keys:
        raise WeightsError(
            "the file holds a 'model' entry (a detectron2 checkpoint dict?): save its "
            "['model'] state dict on its own (torch.save or safetensors) and load that"
        )
    raise WeightsError(
        "unrecognised RetinaNet checkpoint layout: expected torchvision's keys "
        f"{list(_TV_REQUIRED)} or detectron2's {list(_D2_REQUIRED)}; the file's first keys are "
        f"{sorted(keys)[:8]}"
    )


def _torchvision_v1_key(k: str) -> str:
    """torchvision before its version-2 FPN and heads: plain convs, and head Sequentials of
    (conv, ReLU) pairs, i.e. conv 2i."""
    k = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$", r"\1.0.\2", k)
    m = re.match(r"^(head\.(?:classification|regression)_head\.conv)\.(\d+)\.(weight|bias)$", k)
    if m:
        k = f"{m.group(1)}.{int(m.group(2)) // 2}.0.{m.group(3)}"
    return k


def _predictor_overrides(sd: dict[str, torch.Tensor]) -> dict[str, object]:
    cls_out = sd["head.classification_head.cls_logits.weight"].shape[0]
    a = sd["head.regression_head.bbox_reg.weight"].shape[0] // 4
    if a == 0 or cls_out % a:
        raise WeightsError(f"class predictor has {cls_out} outputs, not a multiple of {a} anchors")
    # P6's input: P5 has the pyramid's width, C5 the trunk's (2048 for ResNet-50/101; a trunk
    # as narrow as its pyramid would be ambiguous and is read as P5).
    p6_in = sd["backbone.fpn.extra_blocks.p6.weight"].shape[1]
    fpn = sd["backbone.fpn.layer_blocks.0.0.weight"].shape[0]
    return {"num_classes": cls_out // a, "p6_from": "p5" if p6_in == fpn else "c5"}


def _from_torchvision(sd: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    from sotazoo.papers.retinanet.model import TORCHVISION_ANCHOR_SIZES

    had_counters = any(k.endswith("num_batches_tracked") for k in sd)
    sd = {_torchvision_v1_key(k): v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    overrides = _predictor_overrides(sd)
    overrides.update(
        stride_in_1x1=False,
        anchor_sizes=TORCHVISION_ANCHOR_SIZES,
        round_anchors=True,
        bn_eps=1e-5 if had_counters else 0.0,
    )
    return sd, overrides


_D2_RENAMES = (
    (r"^backbone\.bottom_up\.stem\.conv1\.norm\.", "backbone.body.bn1."),
    (r"^backbone\.bottom_up\.stem\.conv1\.", "backbone.body.conv1."),
    (r"^backbone\.bottom_up\.res(\d)\.", lambda m: f"backbone.body.layer{int(m[1]) - 1}."),
    (r"\.conv(\d)\.norm\.", r".bn\1."),
    (r"\.shortcut\.norm\.", ".downsample.1."),
    (r"\.shortcut\.", ".downsample.0."),
    (r"^backbone\.fpn_lateral(\d)\.", lambda m: f"backbone.fpn.inner_blocks.{int(m[1]) - 3}.0."),
    (r"^backbone\.fpn_output(\d)\.", lambda m: f"backbone.fpn.layer_blocks.{int(m[1]) - 3}.0."),
    (r"^backbone\.top_block\.", "backbone.fpn.extra_blocks."),
    (r"^head\.cls_subnet\.(\d+)\.", lambda m: f"head.classification_head.conv.{int(m[1]) // 2}.0."),
    (r"^head\.bbox_subnet\.(\d+)\.", lambda m: f"head.regression_head.conv.{int(m[1]) // 2}.0."),
    (r"^head\.cls_score\.", "head.classification_head.cls_logits."),
    (r"^head\.bbox_pred\.", "head.regression_head.bbox_reg."),
)


def _size_major_to_ratio_major(w: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """Reorder the anchor blocks of a predictor's output channels (A·n, …): detectron2's anchor
    s·R + r (size-major) becomes our r·S + s (ratio-major)."""
    n = w.shape[0] // num_anchors
    blocks = w.reshape(_D2_ANCHOR_SIZES, num_anchors // _D2_ANCHOR_SIZES, n, *w.shape[1:])
    return blocks.transpose(0, 1).reshape(w.shape)  # (S, R, n, …) -> (R, S, n, …)


def _from_detectron2(sd: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    from sotazoo.papers.retinanet.model import PAPER_ANCHOR_SIZES

    mean = sd.pop("pixel_mean", None)
    std = sd.pop("pixel_std", None)
    if (
        mean is not None and not torch.allclose(mean.flatten(), torch.tensor(_D2_PIXEL_MEAN_BGR))
    ) or (std is not None and not torch.equal(std.flatten(), torch.ones(3))):
        raise WeightsError(
            "this detectron2 checkpoint expects pixel_mean/pixel_std other than the MSRA "
            f"convention ({_D2_PIXEL_MEAN_BGR}, std 1): it cannot be folded into our stem exactly"
        )
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        for pattern, repl in _D2_RENAMES:
            k = re.sub(pattern, repl, k)
        out[k] = v
    # Stem: ours sees (rgb − mean)/std, detectron2 sees 255·rgb − 255·mean in BGR order.
    scale = 255.0 * torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
    out["backbone.body.conv1.weight"] = out["backbone.body.conv1.weight"].flip(1) * scale
    num_anchors = out["head.regression_head.bbox_reg.bias"].shape[0] // 4
    for name in ("classification_head.cls_logits", "regression_head.bbox_reg"):
        for part in ("weight", "bias"):
            key = f"head.{name}.{part}"
            out[key] = _size_major_to_ratio_major(out[key], num_anchors)
    overrides = _predictor_overrides(out)
    overrides.update(
        stride_in_1x1=True, anchor_sizes=PAPER_ANCHOR_SIZES, round_anchors=False, bn_eps=1e-5
    )
    return out, overrides


def convert_state_dict(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys; returns the state dict, the config overrides the
    checkpoint needs, and the layout's name."""
    layout = detect_layout(set(sd))
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    if layout == "torchvision":
        sd, overrides = _from_torchvision(sd)
    else:
        sd, overrides = _from_detectron2(sd)
    return sd, overrides, layout


def from_sotazoo(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Our own checkpoints (`sotazoo train`): our keys for the model's own config, loaded as they
    are. Their keys are torchvision's, so `convert_state_dict` would read them as torchvision's
    layout and impose its options (stride on the 3x3, integer anchors); a weights entry of ours
    names this converter instead."""
    return dict(sd), {}, "sotazoo"
