"""Checkpoint layouts for Relation Networks, recognised by their keys and mapped onto ours.

There is no official release. The most used public port is kimhc6028/relational-networks
(PyTorch, Python 2.7); its July 2017 checkpoint `model/epoch_20_saved.pth` is the Sort-of-CLEVR
RN of its README (99% non-relational, 89% relational after 20 epochs, on its own generator).

- `sotazoo`: our keys (`cnn.*`, `g.*`, `f.*`, `classifier.*`), loaded as they are.
- `kimhc6028`: `conv1..4` / `batchNorm1..4`, `g_fc1..4`, `f_fc1..3`. What differs from ours:
  1. each conv is followed by ReLU *then* batch norm (`bn_after_relu=True`);
  2. its images are what OpenCV drew, BGR, and `np.swapaxes(img, 0, 2)` makes them
     (channel, x, y), the transpose of ours (channel, y, x): the first conv's input channels
     are reversed and every kernel is transposed, after which the convolutions compute the
     transpose of its feature map, for any weights (stride 2, symmetric padding);
  3. so its cell i = 5u + v sits at image position (x, y) = (u, v); its tag is meant to be
     ((u - 2) / 2, (v - 2) / 2) but `(i/5-2)/2.` is a float division under Python 3, which is
     what the released checkpoint was trained with (on our generator it answers 78% / 86% of
     relational / non-relational questions with these tags and 69% / 69% with the intended
     ones), so the converter writes that table into our `coords` buffer; the objects are the
     same set and the sum over ordered pairs ignores their order, so `g_fc1` maps as it is
     ((o_a, o_b, q) per pair, like ours);
  4. its sizes are 24-kernel convs, g = 4 x 256, f = 256, 256 with dropout 0.5, 10 answers, the
     11-bit question of the paper (later versions of the port use 18 bits; those fail to load
     with a shape error naming `g.0.weight`).
"""

from __future__ import annotations

import torch

from sotazoo.weights import WeightsError


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a Relation Network checkpoint from its keys."""
    if "classifier.weight" in keys and "g.0.weight" in keys:
        return "sotazoo"
    if {"conv1.weight", "g_fc1.weight", "f_fc3.weight"} <= keys:
        return "kimhc6028"
    raise WeightsError(
        "unrecognised Relation Network checkpoint layout: expected 'g.0.*' + 'classifier.*' "
        "(sotazoo) or 'conv1.*' + 'g_fc1.*' + 'f_fc3.*' (kimhc6028/relational-networks); the "
        f"file's first keys are {sorted(keys)[:8]}"
    )


def _kimhc(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        name, _, leaf = k.partition(".")
        if name.startswith("conv"):
            out[f"cnn.{3 * (int(name[4:]) - 1)}.{leaf}"] = v
        elif name.startswith("batchNorm"):
            out[f"cnn.{3 * (int(name[9:]) - 1) + 2}.{leaf}"] = v
        elif name.startswith("g_fc"):
            out[f"g.{2 * (int(name[4:]) - 1)}.{leaf}"] = v
        elif name in ("f_fc1", "f_fc2"):
            out[f"f.{2 * (int(name[4:]) - 1)}.{leaf}"] = v
        elif name == "f_fc3":
            out[f"classifier.{leaf}"] = v
        else:
            raise WeightsError(f"unexpected key {k!r} in a kimhc6028 checkpoint")
    for k in [k for k in out if k.startswith("cnn.") and out[k].ndim == 4]:
        out[k] = out[k].transpose(2, 3).contiguous()  # (O, I, kh, kw) for (x, y) -> (y, x)
    out["cnn.0.weight"] = out["cnn.0.weight"].flip(1)  # BGR -> RGB input channels
    side = 5  # 75 px through four stride-2 convs
    y, x = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    i = (side * x + y).flatten().float()  # its cell index of our cell (y, x), row-major
    out["coords"] = torch.stack([(i / side - 2) / 2, (y.flatten().float() - 2) / 2], dim=1)
    return out


def convert_state_dict(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys; returns it, the config it needs, and the layout's name."""
    layout = detect_layout(set(sd))
    overrides: dict[str, object] = {}
    if layout == "kimhc6028":
        sd = _kimhc(sd)

        def widths(prefix: str, step: int) -> tuple[int, ...]:
            out, i = [], 0
            while f"{prefix}.{step * i}.weight" in sd:
                out.append(sd[f"{prefix}.{step * i}.weight"].shape[0])
                i += 1
            return tuple(out)

        overrides = {
            "conv_channels": widths("cnn", 3),
            "bn_after_relu": True,
            "g_layers": widths("g", 2),
            "f_layers": widths("f", 2),
            "f_dropout": 0.5,  # F.dropout() in its f, default p
        }
    if "classifier.weight" in sd:
        overrides["num_answers"] = sd["classifier.weight"].shape[0]
    return sd, overrides, layout
