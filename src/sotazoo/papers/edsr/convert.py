"""Checkpoint layouts for EDSR and MDSR, recognised by their keys and mapped onto ours.

- `official`: sanghyun-son/EDSR-PyTorch (`edsr_baseline_x2-1bc95232.pt`, ..., `mdsr-*.pt`) and
  torchsr, which reuses its names: `sub_mean`, `head.0`, `body.<i>.body.{0,2}`, `body.<B>`,
  `tail.0.<j>` (EDSR's upsampler) or `upsample.<s>.<j>` and `pre_process.<s>` (MDSR). Our keys;
  loaded as they are.
- `basicsr`: BasicSR's re-packed EDSR files (`EDSR_Mx2_f64b16_DIV2K_official-3ba7b086.pth`,
  wrapped in `{"params": ...}`): `conv_first`, `body.<i>.conv{1,2}`, `conv_after_body`,
  `upsample.<j>`, `conv_last`, and no mean-shift tensors (BasicSR keeps the DIV2K mean as a
  constant), so ours are filled in with the same mean.

The configuration is read from the tensors: number of blocks, width, upsampling factor; the
residual scaling is not stored in a checkpoint, so F >= 256 gets the paper's 0.1 (§3.2, the
only released models of that width use it) and narrower ones 1.0.
"""

from __future__ import annotations

import re

import torch

from sotazoo.papers.edsr.model import DIV2K_MEAN
from sotazoo.weights import WeightsError


def detect_layout(keys: set[str]) -> str:
    """Name the layout of an EDSR/MDSR checkpoint from its keys; `WeightsError` when none fits."""
    if "head.0.weight" in keys and any(k.startswith("body.") for k in keys):
        return "official_mdsr" if any(k.startswith("upsample.") for k in keys) else "official"
    if "conv_first.weight" in keys and "conv_last.weight" in keys:
        return "basicsr"
    raise WeightsError(
        "unrecognised EDSR checkpoint layout: expected 'head.0.*' + 'body.*' + 'tail.*' "
        "(EDSR-PyTorch, torchsr) or 'conv_first.*' + 'conv_last.*' (BasicSR); the file's first "
        f"keys are {sorted(keys)[:8]}"
    )


def _factor(convs: list[torch.Tensor], n_feats: int) -> int:
    """The upsampling factor of a chain of sub-pixel convs (F -> F * r^2 each)."""
    scale = 1
    for w in convs:
        r2, rem = divmod(w.shape[0], n_feats)
        r = round(r2**0.5)
        if rem or r * r != r2:
            raise WeightsError(f"an upsampler conv maps {n_feats} to {w.shape[0]} channels")
        scale *= r
    return scale


def _blocks(keys: set[str], pattern: str) -> int:
    return len({m.group(1) for k in keys if (m := re.match(pattern, k))})


def _from_basicsr(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    n_blocks = _blocks(set(sd), r"body\.(\d+)\.conv1\.weight")
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if m := re.match(r"body\.(\d+)\.conv([12])\.(.*)", k):
            k = f"body.{m.group(1)}.body.{0 if m.group(2) == '1' else 2}.{m.group(3)}"
        elif k.startswith("conv_first."):
            k = "head.0." + k.removeprefix("conv_first.")
        elif k.startswith("conv_after_body."):
            k = f"body.{n_blocks}." + k.removeprefix("conv_after_body.")
        elif k.startswith("upsample."):
            k = "tail.0." + k.removeprefix("upsample.")  # same Sequential indices as ours
        elif k.startswith("conv_last."):
            k = "tail.1." + k.removeprefix("conv_last.")
        out[k] = v
    mean = torch.tensor(DIV2K_MEAN) * 255  # BasicSR: img_range 255, the same DIV2K mean
    eye = torch.eye(3).reshape(3, 3, 1, 1)
    out |= {"sub_mean.weight": eye, "sub_mean.bias": -mean,
            "add_mean.weight": eye.clone(), "add_mean.bias": mean.clone()}  # fmt: skip
    return out


def convert_state_dict(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys.

    Returns the state dict, the config it needs (`n_resblocks`, `n_feats`, `res_scale`, and
    `scales` for EDSR; MDSR's scales are those of its upsamplers, (2, 3, 4) in the release) and
    the layout's name.
    """
    layout = detect_layout(set(sd))
    if layout == "basicsr":
        sd = _from_basicsr(sd)
    keys = set(sd)
    n_feats = sd["head.0.weight"].shape[0]
    n_blocks = _blocks(keys, r"body\.(\d+)\.body\.0\.weight")
    overrides: dict[str, object] = {
        "n_resblocks": n_blocks,
        "n_feats": n_feats,
        "res_scale": 0.1 if n_feats >= 256 else 1.0,
    }
    if layout == "official_mdsr":
        n_up = _blocks(keys, r"upsample\.(\d+)\.")
        overrides["scales"] = tuple(
            _factor([sd[k] for k in sorted(keys) if re.match(rf"upsample\.{i}\.\d+\.weight", k)],
                    n_feats)
            for i in range(n_up)
        )  # fmt: skip
    else:
        convs = sorted((k for k in keys if re.match(r"tail\.0\.\d+\.weight", k)),
                       key=lambda k: int(k.split(".")[2]))  # fmt: skip
        overrides["scales"] = (_factor([sd[k] for k in convs], n_feats),)
    return sd, overrides, layout
