"""Checkpoint layouts for DBPN, recognised by their keys; the configuration is read from the shapes.

Our modules keep the key names of the official PyTorch code (alterzero/DBPN-Pytorch), so the one
layout, `official`, is both theirs and ours and needs no renaming. It covers the files of the
official model zoo written by `dbpn.py` (D-DBPN, `DBPN_x2/x4/x8.pth`), `dbpns.py` (the T = 2
network) and `dbpn_v1.py` (`DBPNLL`, T = 10, the NTIRE 2018 model): they differ only in the
number of units and in whether the dense merging convs exist. The official training script wraps
the model in DataParallel, so the saved keys start with `module.`, which is stripped.

What the shapes tell (the config overrides returned):
- `scale`: the kernel of `up1.up_conv1.deconv` (6, 8, 12 for x2, x4, x8);
- `in_chans`, `n0`: `feat0.conv.weight` (n0, C, 3, 3); `nr`: `feat1.conv.weight` (nR, n0, 1, 1);
- `stages`: the number of `up<t>` units; `dense`: whether `down2.conv` (a merging conv) exists;
- `recon_kernel`: the kernel of `output_conv.conv`.
`feedback` cannot be read (the ablation has the same parameters): it keeps its default, True.

Rejected with a `WeightsError` that names the problem: other key layouts (EDSR-style files, the
`*Pix` units of `base_networks.py`), kernels that match no scale, and the recurrent
`DBPN-RES-MR64-3` of `dbpn_iterative.py` (TPAMI extension), whose reconstruction reads the last
up unit of each of its iterations, not the T maps of one pass.
"""

from __future__ import annotations

import re

import torch

from sotazoo.papers.dbpn.model import PROJECTION
from sotazoo.weights import WeightsError

_REQUIRED = (
    "feat0.conv.weight",
    "feat1.conv.weight",
    "up1.up_conv1.deconv.weight",
    "output_conv.conv.weight",
)
_KERNEL_TO_SCALE = {k: s for s, (k, _, _) in PROJECTION.items()}


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a DBPN checkpoint from its keys; `WeightsError` when none fits."""
    if set(_REQUIRED) <= keys:
        return "official"
    raise WeightsError(
        "unrecognised DBPN checkpoint layout: expected the keys of alterzero/DBPN-Pytorch "
        f"(dbpn.py, dbpns.py, dbpn_v1.py), including {list(_REQUIRED)}; missing "
        f"{sorted(set(_REQUIRED) - keys)}; the file's first keys are {sorted(keys)[:8]}"
    )


def _count(keys: set[str], kind: str) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(rf"{kind}(\d+)\.", k))}
    n = len(found)
    if found != set(range(1, n + 1)):
        raise WeightsError(
            f"the {kind} units of this DBPN checkpoint are not numbered 1..{n}: {sorted(found)}"
        )
    return n


def infer_config(sd: dict[str, torch.Tensor]) -> dict[str, object]:
    """The DBPNConfig fields a checkpoint in the official layout needs, read from its shapes."""
    keys = set(sd)
    kernel = sd["up1.up_conv1.deconv.weight"].shape[-1]
    if kernel not in _KERNEL_TO_SCALE:
        raise WeightsError(
            f"projection kernel {kernel}x{kernel} (up1.up_conv1.deconv) matches no DBPN scale; "
            f"expected {', '.join(f'{k} for x{s}' for k, s in _KERNEL_TO_SCALE.items())}"
        )
    n0, in_chans = sd["feat0.conv.weight"].shape[:2]
    nr = sd["feat1.conv.weight"].shape[0]
    stages = _count(keys, "up")
    downs = _count(keys, "down")
    if downs != stages - 1:
        raise WeightsError(
            f"a DBPN has one down unit fewer than up units; this file has {stages} up and "
            f"{downs} down units"
        )
    recon = sd["output_conv.conv.weight"]
    if recon.shape[1] != stages * nr:
        raise WeightsError(
            f"output_conv reads {recon.shape[1]} channels but {stages} up units of {nr} give "
            f"{stages * nr}: not the single-pass DBPN of dbpn.py/dbpns.py/dbpn_v1.py (the "
            "recurrent DBPN-RES-MR64-3 of dbpn_iterative.py has this layout and is not supported)"
        )
    return {
        "scale": _KERNEL_TO_SCALE[kernel],
        "in_chans": int(in_chans),
        "n0": int(n0),
        "nr": int(nr),
        "stages": stages,
        "dense": "down2.conv.conv.weight" in keys,
        "recon_kernel": int(recon.shape[-1]),
    }


def convert_state_dict(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys; returns it, the config it needs, and the layout's name."""
    if sd and all(k.startswith("module.") for k in sd):  # saved from DataParallel
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    layout = detect_layout(set(sd))
    return dict(sd), infer_config(sd), layout
