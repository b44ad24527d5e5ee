"""Checkpoint layouts for Mask R-CNN, recognised by their keys and mapped onto ours.

- `torchvision`: `torchvision.models.detection.maskrcnn_resnet50_fpn` (the COCO file
  `maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth`, and models trained with torchvision's class). Our
  keys are its keys, so the state dict loads as it is, after three normalisations: a `module.`
  prefix is stripped; the layouts of torchvision before its version-2 modules are renamed, as its
  own `_load_from_state_dict` methods do through the file's metadata (FPN `inner_blocks.i.weight`
  -> `inner_blocks.i.0.weight`, RPN head `conv.weight` -> `conv.0.0.weight`, mask head
  `mask_fcn{i}.weight` -> `mask_head.{i-1}.0.weight`); `num_batches_tracked` is dropped. The
  config it needs: torchvision's ResNet (`stride_in_1x1=False`), rounded cell anchors, RoIAlign
  with `aligned=False` and 2 samples per bin side, `num_classes` from the classifier (91 for the
  COCO file), `layers` from the blocks of each stage (ResNet-50 or -101), and `bn_eps`: 0 for a
  file without `num_batches_tracked` (trained with FrozenBatchNorm, as the COCO file, which
  torchvision's builder runs with eps 0 through `overwrite_eps`), 1e-5 for one with them
  (trained with nn.BatchNorm2d, whose eps is 1e-5).
- `detectron2`: its model zoo's `COCO-InstanceSegmentation/mask_rcnn_R_{50,101}_FPN_*`
  (`model_final_f10217.pkl` for R50-FPN 3x), read from the `.pkl` by `load` without running
  pickled code, or passed as a flat state dict. Keys renamed (`backbone.bottom_up.stem.conv1` ->
  `backbone.body.conv1`, `res2.0.conv1.norm` -> `layer1.0.bn1`, `shortcut(.norm)` ->
  `downsample.0` (`.1`), `fpn_lateral2…5` -> `fpn.inner_blocks.0…3.0`, `fpn_output2…5` ->
  `fpn.layer_blocks.0…3.0`, `proposal_generator.rpn_head.{conv, objectness_logits,
  anchor_deltas}` -> `rpn.head.{conv.0.0, cls_logits, bbox_pred}`, `box_head.fc1/fc2` ->
  `fc6/fc7`, `mask_head.mask_fcn1…4` -> `mask_head.0…3.0`, `mask_head.deconv` ->
  `mask_predictor.conv5_mask`, `mask_head.predictor` -> `mask_predictor.mask_fcn_logits`). Its
  class slots differ (`roi_heads/fast_rcnn.py`, `mask_head.py`): the classifier's K + 1 rows put
  the background last (ours first), and the box and mask predictors have rows for the K object
  classes only, so the background row moves to the front and zero rows are prepended for the
  background's box deltas and mask (neither is ever read). Its RPN has one anchor size per level
  and three ratios (`Base-RCNN-FPN.yaml`), so its size-major cell anchors are in our ratio-major
  order already, unrounded (`anchor_generator.py`), and its anchor and delta channels are laid
  out as ours ((A, 4) per position, `rpn.py`). Its input is BGR in 0–255 minus the pixel mean
  255·(ImageNet mean) with std 1 (`config/defaults.py`: PIXEL_MEAN, PIXEL_STD, INPUT.FORMAT),
  which equals ours (normalised RGB) up to a per-channel factor 255·std, so the stem conv is
  rescaled and its input channels reversed: exact, padding included, since zero is the mean
  pixel in both. Config: `stride_in_1x1=True` (RESNETS.STRIDE_IN_1X1), FrozenBatchNorm's eps
  1e-5 (`layers/batch_norm.py`), `aligned=True` and `sampling_ratio=0` (ROIAlignV2,
  POOLER_SAMPLING_RATIO 0: ceil(bin side) samples per side), unrounded anchors, `num_classes=81`.
  Not exact against detectron2 itself (not in our config): its anchors step by each level's
  nominal stride where ours step by image_size // feature_size, which are equal when the input
  sides are multiples of 64 (detectron2 pads to multiples of 32 only: at 800 px, P6's 13 cells
  step by 61 here, 64 there); its FPN level of a RoI is ⌊4 + log2(√(wh)/224 + 1e-8)⌋ (ours
  adds 1e-6 after the log2: they differ only within ~1e-6 of a level boundary); its RPN drops
  proposals with a side <= 0 (ours < 1e-3) and its box head keeps boxes with a side < 1e-2
  (ours drops them); it pastes masks with grid_sample (`layers/mask_ops.py`), as
  `method.paste_masks(..., method="grid")` does.
- Detectron (Caffe2) `model_final.pkl` files (blobs named like `res2_0_branch2a_w`,
  `fpn_inner_res5_2_sum_w`, `mask_fcn1_w`) are rejected with a `WeightsError`: use torchvision's
  or detectron2's release.

`load` reads `.pkl` files with an unpickler that admits only the globals numpy's array
reconstruction needs and refuses every other one before it runs; any other file goes through
`default_load` (safetensors, or torch with `weights_only=True`).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from sotazoo.errors import WeightsError

_TV_REQUIRED = ("backbone.body.conv1.weight", "roi_heads.box_predictor.cls_score.weight")
_D2_REQUIRED = ("backbone.bottom_up.stem.conv1.weight", "roi_heads.box_predictor.cls_score.weight")
_D2_PIXEL_MEAN_BGR = (103.53, 116.28, 123.675)  # = 255 × ImageNet mean, reversed
_IMAGENET_STD = (0.229, 0.224, 0.225)
_D2_ANCHOR_SIZES = (32.0, 64.0, 128.0, 256.0, 512.0)  # Base-RCNN-FPN.yaml, one per level
_D2_ASPECT_RATIOS = (0.5, 1.0, 2.0)
_CAFFE2_BLOB = re.compile(r"(res\d_\d+_branch|res_conv1_|fpn_inner_|fpn_res\d|rpn_conv_fpn|"
                          r"rpn_cls_logits_fpn|mask_fcn\d*_|conv5_mask_)")  # fmt: skip
_CLS = "roi_heads.box_predictor.cls_score"
_BOX = "roi_heads.box_predictor.bbox_pred"
_MASK = "roi_heads.mask_predictor.mask_fcn_logits"


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a Mask R-CNN checkpoint from its keys; `WeightsError` when none fits."""
    keys = {k.removeprefix("module.") for k in keys}
    if set(_TV_REQUIRED) <= keys:
        return "torchvision"
    if set(_D2_REQUIRED) <= keys:
        return "detectron2"
    if any(_CAFFE2_BLOB.match(k) for k in keys):
        raise WeightsError(
            "this is a Detectron (Caffe2) checkpoint (blob names such as 'res2_0_branch2a_w'), "
            "which sotazoo cannot convert: use torchvision's maskrcnn_resnet50_fpn COCO weights "
            "or detectron2's COCO-InstanceSegmentation model_final_*.pkl"
        )
    if "model" in keys:
        raise WeightsError(
            "the file holds a 'model' entry (a detectron2 checkpoint dict?): pass the .pkl file "
            "itself, or save its ['model'] state dict on its own (torch.save or safetensors)"
        )
    raise WeightsError(
        "unrecognised Mask R-CNN checkpoint layout: expected torchvision's keys "
        f"{list(_TV_REQUIRED)} or detectron2's {list(_D2_REQUIRED)}; the file's first keys are "
        f"{sorted(keys)[:8]}"
    )


def _stage_depths(sd: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The number of bottlenecks in each of the four ResNet stages (3, 4, 6, 3 for ResNet-50)."""
    blocks: dict[int, set[int]] = {}
    for k in sd:
        if m := re.match(r"backbone\.body\.layer([1-4])\.(\d+)\.", k):
            blocks.setdefault(int(m[1]), set()).add(int(m[2]))
    depths = tuple(len(blocks.get(s, ())) for s in (1, 2, 3, 4))
    if 0 in depths:
        raise WeightsError(f"the checkpoint has no blocks in ResNet stage(s) "
                           f"{[s + 1 for s, n in enumerate(depths) if n == 0]}")  # fmt: skip
    return depths


def _head_overrides(sd: dict[str, torch.Tensor]) -> dict[str, object]:
    """`num_classes` (slots, background included) and `layers`, checked across the predictors."""
    k = sd[f"{_CLS}.weight"].shape[0]
    box, mask = sd.get(f"{_BOX}.weight"), sd.get(f"{_MASK}.weight")
    if box is not None and box.shape[0] != 4 * k:
        raise WeightsError(
            f"the box predictor has {box.shape[0]} outputs, not 4 per class slot ({k} slots): "
            "class-agnostic box regression is not supported"
        )
    if mask is not None and mask.shape[0] != k:
        raise WeightsError(
            f"the mask predictor has {mask.shape[0]} masks for {k} class slots: "
            "class-agnostic masks are not supported"
        )
    return {"num_classes": int(k), "layers": _stage_depths(sd)}


def _torchvision_v1_key(k: str) -> str:
    """torchvision before its version-2 modules: plain convs where Conv2dNormActivation now is."""
    k = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$", r"\1.0.\2", k)
    k = re.sub(r"^(rpn\.head\.conv)\.(weight|bias)$", r"\1.0.0.\2", k)
    return re.sub(r"^(roi_heads\.mask_head)\.mask_fcn(\d+)\.(weight|bias)$",
                  lambda m: f"{m[1]}.{int(m[2]) - 1}.0.{m[3]}", k)  # fmt: skip


def _from_torchvision(sd: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    had_counters = any(k.endswith("num_batches_tracked") for k in sd)
    sd = {_torchvision_v1_key(k): v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    overrides = _head_overrides(sd)
    overrides.update(stride_in_1x1=False, bn_eps=1e-5 if had_counters else 0.0,
                     round_anchors=True, aligned=False, sampling_ratio=2)  # fmt: skip
    return sd, overrides


_D2_RENAMES = (
    (r"^backbone\.bottom_up\.stem\.conv1\.norm\.", "backbone.body.bn1."),
    (r"^backbone\.bottom_up\.stem\.conv1\.", "backbone.body.conv1."),
    (r"^backbone\.bottom_up\.res(\d)\.", lambda m: f"backbone.body.layer{int(m[1]) - 1}."),
    (r"^(backbone\.body\.layer\d\.\d+)\.conv(\d)\.norm\.", r"\1.bn\2."),
    (r"^(backbone\.body\.layer\d\.\d+)\.shortcut\.norm\.", r"\1.downsample.1."),
    (r"^(backbone\.body\.layer\d\.\d+)\.shortcut\.", r"\1.downsample.0."),
    (r"^backbone\.fpn_lateral(\d)\.", lambda m: f"backbone.fpn.inner_blocks.{int(m[1]) - 2}.0."),
    (r"^backbone\.fpn_output(\d)\.", lambda m: f"backbone.fpn.layer_blocks.{int(m[1]) - 2}.0."),
    (r"^proposal_generator\.rpn_head\.conv\.", "rpn.head.conv.0.0."),
    (r"^proposal_generator\.rpn_head\.objectness_logits\.", "rpn.head.cls_logits."),
    (r"^proposal_generator\.rpn_head\.anchor_deltas\.", "rpn.head.bbox_pred."),
    (r"^roi_heads\.box_head\.fc(\d)\.", lambda m: f"roi_heads.box_head.fc{int(m[1]) + 5}."),
    (r"^roi_heads\.mask_head\.mask_fcn(\d)\.", lambda m: f"roi_heads.mask_head.{int(m[1]) - 1}.0."),
    (r"^roi_heads\.mask_head\.deconv\.", "roi_heads.mask_predictor.conv5_mask."),
    (r"^roi_heads\.mask_head\.predictor\.", "roi_heads.mask_predictor.mask_fcn_logits."),
)


def _check_d2_extras(sd: dict[str, torch.Tensor]) -> None:
    """Pop and check what older detectron2 files store beside the weights: the pixel mean and std
    (non-persistent buffers since) and the RPN's cell anchors (idem); neither is ours to load,
    but a value other than the one folded in here would make the conversion wrong."""
    from sotazoo.papers.retinanet.method import cell_anchors

    mean, std = sd.pop("pixel_mean", None), sd.pop("pixel_std", None)
    if (
        mean is not None
        and not torch.allclose(mean.flatten().float(), torch.tensor(_D2_PIXEL_MEAN_BGR))
    ) or (std is not None and not torch.equal(std.flatten().float(), torch.ones(3))):
        raise WeightsError(
            "this detectron2 checkpoint expects pixel_mean/pixel_std other than the MSRA "
            f"convention ({_D2_PIXEL_MEAN_BGR}, std 1): it cannot be folded into our stem exactly"
        )
    for key in [k for k in sd if k.startswith("proposal_generator.anchor_generator.")]:
        cells, m = sd.pop(key), re.fullmatch(r".*\.cell_anchors\.([0-4])", key)
        level = int(m[1]) if m else 0
        ours = cell_anchors((_D2_ANCHOR_SIZES[level],), _D2_ASPECT_RATIOS, round_=False)
        if not m or cells.shape != ours.shape or not torch.allclose(cells.float(), ours, atol=1e-3):
            raise WeightsError(
                f"this detectron2 checkpoint's RPN anchors of level P{level + 2} ({key}) are not "
                f"size {_D2_ANCHOR_SIZES[level]:g} at ratios {_D2_ASPECT_RATIOS}, which the "
                "conversion assumes"
            )


def _from_detectron2(sd: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    sd = dict(sd)
    _check_d2_extras(sd)
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        for pattern, repl in _D2_RENAMES:
            k = re.sub(pattern, repl, k)
        out[k] = v
    # Stem: ours sees (rgb − mean)/std, detectron2 sees 255·rgb − 255·mean in BGR order.
    scale = 255.0 * torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
    stem = out["backbone.body.conv1.weight"]
    out["backbone.body.conv1.weight"] = (stem.double().flip(1) * scale.double()).to(stem.dtype)
    # Class slots: detectron2's background is the classifier's last row, and its box and mask
    # predictors have none; ours has the background at slot 0 in all three.
    for part in ("weight", "bias"):
        if (cls := out.get(f"{_CLS}.{part}")) is not None:  # missing: load_into names it
            out[f"{_CLS}.{part}"] = torch.cat([cls[-1:], cls[:-1]])
        for name, rows in ((_BOX, 4), (_MASK, 1)):
            if (t := out.get(f"{name}.{part}")) is not None:
                out[f"{name}.{part}"] = torch.cat([t.new_zeros(rows, *t.shape[1:]), t])
    overrides = _head_overrides(out)
    overrides.update(stride_in_1x1=True, bn_eps=1e-5, round_anchors=False, aligned=True,
                     sampling_ratio=0)  # fmt: skip
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


# ---------------------------------------------------------------- detectron2's .pkl files


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The globals a pickle of numpy arrays and scalars names (protocols 0–4), each under the
    module name numpy 1 writes and the one numpy 2 writes, bound to this numpy's objects."""
    import numpy as np

    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1
        from numpy.core import multiarray
    admitted: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray,
                                               ("numpy", "dtype"): np.dtype}  # fmt: skip
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        admitted[(module, "_reconstruct")] = multiarray._reconstruct
        admitted[(module, "scalar")] = multiarray.scalar
    return admitted


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler for files of numpy arrays: every global the file names is looked up here, and
    any but numpy's array and scalar constructors is refused before anything is called."""

    def __init__(self, file, source: str) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 pickles' str: numpy's raw bytes
        self._source = source
        self._admitted = _numpy_globals()

    def find_class(self, module: str, name: str) -> object:
        found = self._admitted.get((module, name))
        if found is None:
            raise WeightsError(
                f"{self._source} names the global {module}.{name}, which sotazoo refuses to load "
                "from a pickle (only numpy arrays are read from .pkl files): the file is not a "
                "detectron2 model zoo checkpoint, or it was written differently"
            )
        return found


def read_pickled_arrays(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a pickle of numpy arrays: detectron2's `{"model": {name: array},
    "__author__": ...}`, a Detectron (Caffe2) `{"blobs": ...}`, or a bare `{name: array}`."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no weight file at {path}")
    try:
        with open(path, "rb") as f:
            data = _NumpyOnlyUnpickler(f, str(path)).load()
    except WeightsError:
        raise
    except Exception as e:  # every reader error means the same thing to the user
        raise WeightsError(f"cannot read {path} as a pickle of numpy arrays: "
                           f"{type(e).__name__}: {e}") from e  # fmt: skip
    arrays = data
    for key in ("model", "blobs"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            arrays = data[key]
            break
    if not isinstance(arrays, dict) or not arrays:
        raise WeightsError(f"{path} does not hold a dict of arrays (found {type(arrays).__name__})")
    detect_layout({str(k) for k in arrays})  # a Caffe2 file is named before its scalars trip us
    out = {}
    for k, v in arrays.items():
        if not isinstance(k, str) or not isinstance(v, np.ndarray) or v.dtype.kind not in "biuf":
            what = f"a {v.dtype} array" if isinstance(v, np.ndarray) else type(v).__name__
            raise WeightsError(f"{path}: entry {k!r} is {what}, not an array of numbers")
        out[k] = torch.from_numpy(v if v.flags.writeable else v.copy())
    return out


def load(path: Path, model: str, overrides: dict) -> tuple[dict, dict]:
    """The contract's reader (`sotazoo.papers._contract`): a `.pkl` file is detectron2's model
    zoo format, read as numpy arrays and converted; any other file as `default_load` reads it."""
    from sotazoo.papers._contract import default_load

    path = Path(path)
    if path.suffix != ".pkl":
        return default_load(path, convert_state_dict)
    sd, needed, _layout = convert_state_dict(read_pickled_arrays(path))
    return sd, dict(needed)
