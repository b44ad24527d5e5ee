"""The official SID checkpoints (cchen156/Learning-to-See-in-the-Dark, `checkpoint/Sony` and
`checkpoint/Fuji`: TensorFlow 1 checkpoints, about 84 MB, on Google Drive through the repo's
download_models.py, with no published hash), read without TensorFlow (`sotazoo.tfcheckpoint`)
and mapped to our keys. Downloaded by hand, they load by path:
`sotazoo.create_model("sid_sony", weights="checkpoint/Sony/model.ckpt.index")`.

The `official` layout (train_Sony.py / train_Fuji.py; the names and shapes were checked against
the repository's own `checkpoint/Sony/model.ckpt.index`):
- `g_conv<l>_<k>/weights` [kh, kw, in, out] and `/biases`: levels 1-5 down (`down.<l-1>`),
  6-9 up (`up_conv.<9-l>`), `g_conv10` the 1x1 head; weights transposed to (out, in, kh, kw);
- `Variable`, `Variable_1`, `Variable_2`, `Variable_3`: the transposed convolutions' filters,
  unnamed in the code, numbered in the order the network creates them (up6 first), shaped
  [kh, kw, out, in], transposed to PyTorch's (in, out, kh, kw): `up.3`, `up.2`, `up.1`, `up.0`;
- the head's outputs permuted from TensorFlow's depth_to_space order (row, column, colour) to
  pixel_shuffle's (colour, row, column) (see model.py);
- Adam's slots (`.../Adam`, `.../Adam_1`) and `beta1_power` / `beta2_power`: dropped.
The widths, the input channels and the depth-to-space factor are read from the shapes (the
head has 3 s^2 outputs), so the Fuji checkpoint (9 in, 27 out) and reduced test files load too.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from sotazoo.weights import WeightsError

_CONV = re.compile(r"g_conv(\d+)(?:_(\d))?/(weights|biases)")
_DECONV = re.compile(r"Variable(?:_(\d+))?")


def detect_layout(keys: set[str]) -> str:
    if {"g_conv1_1/weights", "g_conv10/weights", "Variable"} <= keys:
        return "official"
    if "down.0.conv1.weight" in keys:
        return "sotazoo"
    raise WeightsError(
        "unrecognised SID checkpoint: expected the official TensorFlow names (g_conv1_1/weights, "
        f"..., Variable, g_conv10/weights) or ours (down.0.conv1.weight, ...); the file's first "
        f"keys are {sorted(keys)[:8]}"
    )


def _dcr_to_crd(n_out: int, scale: int) -> list[int]:
    """perm[k] = the TensorFlow channel that our channel k reads: ours k = c s^2 + i s + j,
    TensorFlow's (i s + j) C + c."""
    colours = n_out // scale**2
    return [(i * scale + j) * colours + c
            for c in range(colours) for i in range(scale) for j in range(scale)]  # fmt: skip


def convert_state_dict(state_dict: dict) -> tuple[dict, dict, str]:
    """(state dict in our keys, the config overrides its shapes imply, the layout's name)."""
    layout = detect_layout(set(state_dict))
    if layout == "sotazoo":
        return dict(state_dict), {}, layout
    t = {k: torch.as_tensor(np.asarray(v)) for k, v in state_dict.items()}
    levels = max(int(m.group(1)) for k in t if (m := _CONV.fullmatch(k)) and m.group(2))
    depth = (levels + 1) // 2  # 9 conv levels: 5 down, 4 up
    out: dict[str, torch.Tensor] = {}
    for key, value in t.items():
        if (m := _CONV.fullmatch(key)) is not None:
            level, k, kind = int(m.group(1)), m.group(2), m.group(3)
            if k is None:  # the head
                name = "head"
            elif level <= depth:
                name = f"down.{level - 1}.conv{k}"
            else:
                name = f"up_conv.{levels - level}.conv{k}"
            out[f"{name}.{'weight' if kind == 'weights' else 'bias'}"] = (
                value.permute(3, 2, 0, 1).contiguous() if kind == "weights" else value
            )
        elif (m := _DECONV.fullmatch(key)) is not None:
            order = int(m.group(1) or 0)  # 0: up6, the deepest
            out[f"up.{depth - 2 - order}.weight"] = value.permute(3, 2, 0, 1).contiguous()
        elif "/Adam" in key or key in ("beta1_power", "beta2_power", "global_step"):
            continue
        else:
            raise WeightsError(f"SID checkpoint: unexpected variable {key!r}")
    n_out = out["head.weight"].shape[0]
    scale = math.isqrt(n_out // 3)
    if 3 * scale * scale != n_out:
        raise WeightsError(f"SID checkpoint: g_conv10 has {n_out} outputs, not 3 s^2")
    perm = _dcr_to_crd(n_out, scale)
    out["head.weight"], out["head.bias"] = out["head.weight"][perm], out["head.bias"][perm]
    widths = tuple(int(out[f"down.{i}.conv1.weight"].shape[0]) for i in range(depth))
    overrides = {"widths": widths, "in_chans": int(out["down.0.conv1.weight"].shape[1]),
                 "scale": scale}  # fmt: skip
    return out, overrides, layout


def load(path: Path, model: str, overrides: dict) -> tuple[dict, dict]:
    """The contract's reader: a TensorFlow checkpoint (its `.index`, a `.data-*` shard or the
    prefix), or a torch / safetensors file; each mapped by `convert_state_dict`."""
    from sotazoo.papers._contract import tf_aware_load

    return tf_aware_load(path, convert_state_dict)
