"""Checkpoint layouts for NASNet-A, recognised by their keys and mapped onto ours.

- `sotazoo`: our keys. The cells keep the TF-Slim scope names (`cell_stem_0`, `cell_7`,
  `reduction_cell_1`, `comb_iter.<k>.left|right`, `separable_1`, `bn_sep_1`, `conv0`,
  `conv0_bn`); h1's adapter is `prev` (a 1x1 or a factorized reduction); the classifier is
  `last_linear`, as in the PyTorch ports. Loaded as they are.
- `timm`: timm's `nasnetalarge` (the port of Cadene's `pretrainedmodels` of the TF-Slim release,
  `nasnetalarge-dc4a7b8b.pth`): `conv0.conv` / `conv0.bn`, `comb_iter_<k>_left`,
  `separable_1.depthwise_conv2d`, `conv_prev_1x1` or `path_1.conv` / `path_2.conv` /
  `final_path_bn` at the cell's top level, 1000 classes (TF's background class dropped). The
  tensors need no reshaping, only new names.

Computing what timm computes also needs `count_pool_padding=True` (its stride-2 average pools
count the zero padding at the borders, TF's do not; see `model.SamePool`). The converter does
not impose it: the weights are TF's, and our default computes as TF does. The oracle test sets it.
"""

from __future__ import annotations

import re

import torch

from sotazoo.weights import WeightsError

_CELL = r"(cell_stem_\d|cell_\d+|reduction_cell_\d)"
# timm key (after the cell's name) -> ours; tried in order, the first full match wins.
_TIMM_RULES = [
    (r"conv_1x1\.(conv\.weight|bn\.\w+)", r"conv_1x1.\1"),
    (r"conv_prev_1x1\.(conv\.weight|bn\.\w+)", r"prev.\1"),
    (r"path_([12])\.conv\.weight", r"prev.path_\1.weight"),
    (r"final_path_bn\.(\w+)", r"prev.bn.\1"),
    (
        r"comb_iter_(\d)_(left|right)\.separable_([12])\.(depthwise|pointwise)_conv2d\.weight",
        r"comb_iter.\1.\2.separable_\3.\4.weight",
    ),
    (r"comb_iter_(\d)_(left|right)\.bn_sep_([12])\.(\w+)", r"comb_iter.\1.\2.bn_sep_\3.\4"),
]
_TIMM_TOP = {"conv0.conv.weight": "conv0.weight"}


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a NASNet checkpoint from its keys; `WeightsError` when none fits."""
    if "last_linear.weight" in keys and any(".comb_iter.0." in k for k in keys):
        return "sotazoo"
    if "conv0.conv.weight" in keys and any(".comb_iter_0_left." in k for k in keys):
        return "timm"
    sample = sorted(keys)[:8]
    raise WeightsError(
        "unrecognised NASNet checkpoint layout: expected '<cell>.comb_iter.0.*' + "
        "'last_linear.*' (sotazoo) or 'conv0.conv.weight' + '<cell>.comb_iter_0_left.*' (timm "
        f"nasnetalarge, Cadene's pretrainedmodels); the file's first keys are {sample}"
    )


def _timm_key(key: str) -> str | None:
    if key in _TIMM_TOP:
        return _TIMM_TOP[key]
    if key.startswith("conv0.bn."):
        return "conv0_bn." + key[len("conv0.bn.") :]
    if key.startswith("last_linear."):
        return key
    m = re.fullmatch(_CELL + r"\.(.+)", key)
    if m is None:
        return None
    for pattern, repl in _TIMM_RULES:
        if re.fullmatch(pattern, m[2]):
            return f"{m[1]}.{re.sub(pattern, repl, m[2])}"
    return None


def convert_state_dict(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys.

    Returns the state dict, the config overrides it needs (its class count) and the layout's
    name. A key of the timm layout that no rule maps is an error that names it.
    """
    layout = detect_layout(set(sd))
    if layout == "timm":
        out, unknown = {}, []
        for k, v in sd.items():
            new = _timm_key(k)
            if new is None:
                unknown.append(k)
            else:
                out[new] = v
        if unknown:
            raise WeightsError(
                f"{len(unknown)} keys of the timm NASNet layout have no counterpart in ours, "
                f"e.g. {sorted(unknown)[:5]}"
            )
        sd = out
    overrides: dict[str, object] = {}
    if "last_linear.weight" in sd:
        overrides["num_classes"] = sd["last_linear.weight"].shape[0]
    return sd, overrides, layout
