"""The official DeepLabv3+ Xception-65 checkpoints (tensorflow/models research/deeplab,
g3doc/model_zoo.md: TensorFlow 1 checkpoints in tarballs of about 439 MB, with no published
hash), read without TensorFlow (`sotazoo.tfcheckpoint`) and mapped to our keys. Downloaded and
unpacked by hand, they load by path:
`sotazoo.create_model("deeplabv3plus_xception65", weights=".../model.ckpt.index")`.

The `official` layout (core/xception.py, core/utils.py `split_separable_conv2d`, model.py; TF-slim
names every normalised layer's batch norm `<scope>/BatchNorm/{gamma, beta, moving_mean,
moving_variance}`):
- the backbone under `xception_65/`: the stem `entry_flow/conv1_1`, `entry_flow/conv1_2`; each
  unit `<flow>/<block>/unit_<u>/xception_module/separable_conv<j>_depthwise` (`depthwise_weights`
  [kh, kw, C, 1]) and `separable_conv<j>_pointwise` (`weights` [1, 1, C, D]), and `shortcut`
  where the block has a convolution skip;
- the head at the top level: `aspp0`, `aspp<r>_depthwise` / `aspp<r>_pointwise`, `image_pooling`,
  `concat_projection`, `decoder/feature_projection0`, `decoder/decoder_conv<j>_depthwise` /
  `_pointwise`, and `logits/semantic/{weights, biases}`;
- `concat_projection` reads the branches in the official order, image pooling first, then
  aspp0 to aspp3 (model.py); ours (torchvision's) puts image pooling last, so its input
  channels are rotated;
- convolution kernels [kh, kw, in, out] become (out, in, kh, kw), depthwise kernels
  [kh, kw, C, 1] become (C, 1, kh, kw); training state (`global_step`, momentum slots, moving
  averages of the weights) is dropped. The class count is read from the logits.
The checkpoints expect images scaled to [-1, 1] (mean 0.5, std 0.5 on [0, 1] pixels).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from sotazoo.papers.deeplabv3plus.model import XCEPTION65
from sotazoo.weights import WeightsError

PREFIX = "xception_65/"
_BN = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
       ("running_var", "moving_variance"))  # fmt: skip
_TRAINING = re.compile(r"(^|/)(global_step|Momentum|ExponentialMovingAverage)($|/)")


def detect_layout(keys: set[str]) -> str:
    if "logits/semantic/weights" in keys and f"{PREFIX}entry_flow/conv1_1/weights" in keys:
        return "official"
    if "classifier.weight" in keys and "aspp.project.0.weight" in keys:
        return "sotazoo"
    raise WeightsError(
        "unrecognised DeepLabv3+ checkpoint: expected the official Xception-65 names "
        f"({PREFIX}entry_flow/conv1_1/weights, ..., logits/semantic/weights) or ours "
        f"(backbone..., aspp..., classifier.weight); the file's first keys are {sorted(keys)[:4]}"
    )


def official_names() -> list[tuple[str, str, str]]:
    """(our module, the official scope, kind: "conv", "depthwise" or "bn") for every layer of
    `deeplabv3plus_xception65`, the logits apart."""
    rows = [("backbone.stem.0", f"{PREFIX}entry_flow/conv1_1", "conv"),
            ("backbone.stem.1", f"{PREFIX}entry_flow/conv1_1", "bn"),
            ("backbone.stem.3", f"{PREFIX}entry_flow/conv1_2", "conv"),
            ("backbone.stem.4", f"{PREFIX}entry_flow/conv1_2", "bn")]  # fmt: skip
    i = 0
    for name, _, skip, _, units in XCEPTION65:
        flow, _, block = name.partition(".")
        for u in range(units):
            scope = f"{PREFIX}{flow}/{block or 'block1'}/unit_{u + 1}/xception_module"
            for j in range(3):
                ours, s = f"backbone.blocks.{i}.convs.{j}", f"{scope}/separable_conv{j + 1}"
                rows += [(f"{ours}.depthwise", f"{s}_depthwise", "depthwise"),
                         (f"{ours}.bn_depth", f"{s}_depthwise", "bn"),
                         (f"{ours}.pointwise", f"{s}_pointwise", "conv"),
                         (f"{ours}.bn_point", f"{s}_pointwise", "bn")]  # fmt: skip
            if skip == "conv":
                rows += [(f"backbone.blocks.{i}.shortcut.0", f"{scope}/shortcut", "conv"),
                         (f"backbone.blocks.{i}.shortcut.1", f"{scope}/shortcut", "bn")]  # fmt: skip
            i += 1
    rows += [("aspp.convs.0.0", "aspp0", "conv"), ("aspp.convs.0.1", "aspp0", "bn")]
    separable = [(f"aspp.convs.{r}", f"aspp{r}") for r in (1, 2, 3)]
    separable += [(f"decoder.convs.{j}", f"decoder/decoder_conv{j}") for j in (0, 1)]
    for ours, scope in separable:  # `separable_conv`: depthwise, BN, ReLU, pointwise, BN, ReLU
        rows += [(f"{ours}.0", f"{scope}_depthwise", "depthwise"), (f"{ours}.1", f"{scope}_depthwise", "bn"),
                 (f"{ours}.3", f"{scope}_pointwise", "conv"), (f"{ours}.4", f"{scope}_pointwise", "bn")]  # fmt: skip
    rows += [("aspp.convs.4.1", "image_pooling", "conv"), ("aspp.convs.4.2", "image_pooling", "bn"),
             ("aspp.project.0", "concat_projection", "conv"), ("aspp.project.1", "concat_projection", "bn"),
             ("decoder.reduce.0", "decoder/feature_projection0", "conv"),
             ("decoder.reduce.1", "decoder/feature_projection0", "bn")]  # fmt: skip
    return rows


def convert_state_dict(state_dict: dict) -> tuple[dict, dict, str]:
    """(state dict in our keys, the config overrides its shapes imply, the layout's name)."""
    layout = detect_layout(set(state_dict))
    if layout == "sotazoo":
        return dict(state_dict), {}, layout
    tf = {k: torch.as_tensor(np.asarray(v)) for k, v in state_dict.items() if not _TRAINING.search(k)}
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in tf:
            raise WeightsError(f"DeepLabv3+ checkpoint: missing variable {key!r}")
        used.add(key)
        return tf[key]

    out: dict[str, torch.Tensor] = {}
    for ours, scope, kind in official_names():
        if kind == "conv":
            out[f"{ours}.weight"] = take(f"{scope}/weights").permute(3, 2, 0, 1).contiguous()
        elif kind == "depthwise":
            out[f"{ours}.weight"] = take(f"{scope}/depthwise_weights").permute(2, 3, 0, 1).contiguous()
        else:
            for name, tf_name in _BN:
                out[f"{ours}.{name}"] = take(f"{scope}/BatchNorm/{tf_name}")
            out[f"{ours}.num_batches_tracked"] = torch.tensor(0)
    proj, c = out["aspp.project.0.weight"], out["aspp.project.0.weight"].shape[1] // 5
    out["aspp.project.0.weight"] = torch.cat([proj[:, c:], proj[:, :c]], 1)  # pooling last
    out["classifier.weight"] = take("logits/semantic/weights").permute(3, 2, 0, 1).contiguous()
    out["classifier.bias"] = take("logits/semantic/biases")
    if left := sorted(set(tf) - used):
        raise WeightsError(f"DeepLabv3+ checkpoint: {len(left)} unexpected variables, e.g. {left[:3]}")
    return out, {"num_classes": int(out["classifier.bias"].shape[0])}, layout


def load(path: Path, model: str, overrides: dict) -> tuple[dict, dict]:
    """The contract's reader: a TensorFlow checkpoint (its `.index`, a `.data-*` shard or the
    prefix), or a torch / safetensors file; each mapped by `convert_state_dict`."""
    from sotazoo.papers._contract import tf_aware_load

    return tf_aware_load(path, convert_state_dict)
