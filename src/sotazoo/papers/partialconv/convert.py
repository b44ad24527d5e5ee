"""Checkpoint layouts for the partial-convolution U-Net.

The paper's authors released the layer only (NVIDIA/partialconv): no network, no weights. The
public weights are mmagic's (formerly mmediting) own re-training at 256x256 on Places and
CelebA-HQ (`pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth`, `..._celeba_20200619-
860f8b95.pth`, download.openmmlab.com/mmediting/inpainting/pconv/). OpenMMLab publishes only the
first 8 hex digits of their sha256 (the suffix of the name), so they have no entry in
`weights.py`; downloaded by hand, they load by path: `sotazoo.create_model("pconv_unet_256",
weights="pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth")`.

The `mmagic` layout (the inpaintor's state dict): `generator.encoder.enc<i>.conv.weight` (and
`.conv.bias` on enc1), `generator.encoder.enc<i>.bn.*` (mmcv's ConvModule names its BatchNorm
`bn`), `generator.decoder.dec<i>.conv.*` / `.bn.*` (dec1, the last, with a bias and no norm),
and each partial convolution's `conv.weight_mask_updater`, an all-ones buffer that we compute
instead (dropped; a file where it is not all ones is refused). Level i of theirs is index i - 1
of ours in both halves. The configuration read from the shapes: the number of levels, the
encoder widths and kernels, the input channels.
"""

from __future__ import annotations

import re

import torch

from sotazoo.weights import WeightsError

_KEY = re.compile(r"(?:generator\.)?(encoder|decoder)\.(enc|dec)(\d+)\.(conv|bn)\.(.+)")


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a PConv checkpoint from its keys; `WeightsError` when none fits."""
    if any(k.startswith(("generator.encoder.enc1.conv.", "encoder.enc1.conv.")) for k in keys):
        return "mmagic"
    if "encoder.0.conv.weight" in keys:
        return "sotazoo"
    raise WeightsError(
        "unrecognised partial-convolution checkpoint: expected mmagic's PConvInpaintor keys "
        "(generator.encoder.enc1.conv.weight, ...) or ours (encoder.0.conv.weight, ...); the "
        f"file's first keys are {sorted(keys)[:8]}"
    )


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict, dict, str]:
    """(state dict in our keys, the config overrides its shapes imply, the layout's name)."""
    layout = detect_layout(set(state_dict))
    if layout == "sotazoo":
        return dict(state_dict), {}, layout
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = _KEY.fullmatch(key)
        if m is None:
            if key.startswith(("generator.", "encoder.", "decoder.")):
                raise WeightsError(f"mmagic PConv checkpoint: unexpected key {key!r}")
            continue  # the inpaintor's other members (a loss network's buffers, if any)
        half, _, level, part, rest = m.groups()
        if rest == "weight_mask_updater":
            if not bool((value == 1).all()):
                raise WeightsError(f"{key} is not all ones: not a partial convolution's mask "
                                   "kernel, so not a file this converter understands")  # fmt: skip
            continue
        out[f"{half}.{int(level) - 1}.{part}.{rest}"] = value
    levels = 1 + max(int(k.split(".")[1]) for k in out if k.startswith("encoder."))
    try:
        enc = [out[f"encoder.{i}.conv.weight"] for i in range(levels)]
    except KeyError as e:
        raise WeightsError(f"mmagic PConv checkpoint: missing encoder level {e}") from None
    overrides = {
        "widths": tuple(int(w.shape[0]) for w in enc),
        "kernels": tuple(int(w.shape[-1]) for w in enc),
        "in_chans": int(enc[0].shape[1]),
        "image_size": max(256, 2**levels),
    }
    return out, overrides, layout
