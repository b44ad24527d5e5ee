"""Darknet `.weights` files read into (and written from) our modules; our own checkpoints.

The darknet format (pjreddie/darknet `src/parser.c`: `load_weights_upto`, `save_weights_upto`,
`load_convolutional_weights`), little-endian:

    int32 major, int32 minor, int32 revision        darknet writes 0, 2, 0
    seen: int64 if major*10 + minor >= 2 (and both < 1000), else int32   images seen in training
    then, for every `[convolutional]` layer in the order of the cfg file, float32:
        biases (n)                          with batch norm: BN's shift (beta)
        scales, rolling mean, rolling var   (n each) only when batch_normalize=1
        weights (n * c * k * k)             in (out, in, kh, kw) order, PyTorch's own layout

Nothing else is stored: no layer names, shapes or count, so the file only makes sense with its
cfg. The released yolov3.weights holds 62,001,757 floats (61,949,149 parameters plus the BN
running statistics) after a 20-byte header: 248,007,048 bytes. Darknet itself reads on without
checks (a short file leaves the last layers as initialised, a long one is ignored); we count the
floats and raise a `WeightsError` that names the problem instead. `darknet53.conv.74` (the
ImageNet backbone used to start training) holds only the backbone's 52 convolutions: read it
into `model.backbone`. Any module with a `darknet_convs()` method (model.py) can be read.

Our checkpoints (.pth/.safetensors) use our module names; `convert_state_dict` recognises them
and reads the config (classes, width, blocks) from the shapes.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sotazoo.errors import WeightsError
from sotazoo.fileio import atomic_path
from sotazoo.weights import load_into


def darknet_entries(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(state-dict key, tensor) of every float a .weights file stores, in the file's order."""
    if not hasattr(model, "darknet_convs"):
        raise WeightsError(
            f"{type(model).__name__} has no darknet layer order (darknet_convs); darknet files "
            "load into the YOLOv3 models, their .backbone (darknet53.conv.74) or darknet53"
        )
    names = {m: n for n, m in model.named_modules()}
    state = model.state_dict()
    out = []
    for m in model.darknet_convs():
        p = names[m] + "." if names[m] else ""
        if isinstance(m, nn.Conv2d):  # a linear conv with bias (the prediction layers)
            keys = ["bias", "weight"]
        else:  # ConvBNLeaky: biases = BN shift, then scales, rolling mean, rolling variance
            keys = ["bn.bias", "bn.weight", "bn.running_mean", "bn.running_var", "conv.weight"]
        out += [(p + k, state[p + k]) for k in keys]
    return out


def read_header(buf: bytes, source: str) -> tuple[dict[str, int], int]:
    """The header's fields and its length in bytes (16 or 20)."""
    if len(buf) < 16:
        raise WeightsError(f"{source}: {len(buf)} bytes, shorter than a darknet header (16-20)")
    major, minor, revision = struct.unpack("<3i", buf[:12])
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000  # parser.c's test
    size = 20 if wide else 16
    if len(buf) < size:
        raise WeightsError(f"{source}: {len(buf)} bytes, shorter than its {size}-byte header")
    seen = struct.unpack("<q" if wide else "<i", buf[12:size])[0]
    return {"major": major, "minor": minor, "revision": revision, "seen": seen}, size


def read_darknet_weights(path: str | Path, model: nn.Module) -> dict[str, int]:
    """Load a darknet .weights file into `model` (in place); returns the header's fields.

    Raises `WeightsError` when the file is not a whole number of floats, holds fewer or more
    floats than the model's layers need (the message says which layer it stops in, and the
    class count the file would fit), or holds NaN/inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no darknet weights file at {path}")
    buf = path.read_bytes()
    header, start = read_header(buf, str(path))
    body = len(buf) - start
    if body % 4:
        raise WeightsError(
            f"{path}: {body} bytes after the {start}-byte header is not a whole number of float32"
        )
    floats = np.frombuffer(buf, dtype="<f4", offset=start)
    entries = darknet_entries(model)
    need = sum(t.numel() for _, t in entries)
    if floats.size != need:
        raise WeightsError(_size_problem(path, floats.size, need, entries, model))
    sd, pos = dict(model.state_dict()), 0
    for key, t in entries:
        chunk = floats[pos : pos + t.numel()]
        sd[key] = torch.from_numpy(chunk.copy()).reshape(t.shape).to(t.dtype)
        pos += t.numel()
    load_into(model, sd, str(path))  # also rejects NaN/inf
    return header


def _size_problem(
    path: Path, have: int, need: int, entries: list[tuple[str, torch.Tensor]], model: nn.Module
) -> str:
    what = "short" if have < need else "long"
    msg = (
        f"{path} is too {what}: it holds {have:,} floats after the header, the model needs {need:,}"
    )
    if have < need:  # name the first tensor the file does not cover
        pos = 0
        for key, t in entries:
            if pos + t.numel() > have:
                msg += f" (the file ends inside {key}, {have - pos:,} of its {t.numel():,} floats)"
                break
            pos += t.numel()
    else:
        msg += f" ({have - need:,} floats more)"
    # Only the prediction convs grow with the class count: anchors x (c_in + 1) floats per class.
    cfg = getattr(model, "cfg", None)
    if cfg is not None and hasattr(model, "forward_maps"):
        preds = [m for m in model.darknet_convs() if isinstance(m, nn.Conv2d)]
        per_class = sum(len(cfg.masks[0]) * (m.in_channels + 1) for m in preds)
        extra, rem = divmod(have - need, per_class)
        if rem == 0 and cfg.num_classes + extra >= 1:
            msg += (
                f"; it fits num_classes={cfg.num_classes + extra} (the model has {cfg.num_classes})"
            )
    return msg + "; is it the weights of another cfg?"


def write_darknet_weights(
    model: nn.Module,
    path: str | Path,
    *,
    seen: int = 0,
    version: tuple[int, int, int] = (0, 2, 0),
    reader_eps: float | None = None,
) -> Path:
    """Write `model` as a darknet .weights file (atomically); darknet itself writes 0, 2, 0.

    `reader_eps`: the batch-norm epsilon of the program that will read the file, when it is not
    the model's (OpenCV normalises with sqrt(var + 1e-6), ours with `bn_eps`, 1e-5). The running
    variances are then written plus (model's eps - reader's), so that the reader computes the
    model's function; the file no longer holds the model's own statistics.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    major, minor, revision = version
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    header = struct.pack("<3i", *version) + struct.pack("<q" if wide else "<i", seen)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header)
        for key, t in darknet_entries(model):
            t = t.detach().cpu().float()
            if reader_eps is not None and key.endswith("bn.running_var"):
                bn = model.get_submodule(key.removesuffix(".running_var"))
                t = t + (bn.eps - reader_eps)
            f.write(t.numpy().astype("<f4").tobytes())
    return path


def load_darknet(model_name: str, path: str | Path, **overrides) -> nn.Module:
    """Build a registered model (e.g. `yolov3_416`, `yolov3_tiny`, `darknet53`) and read a darknet
    .weights file into it; returns it in eval mode."""
    from sotazoo.registry import create_model

    model = create_model(model_name, **overrides)
    read_darknet_weights(path, model)
    return model.eval()


def load(path: Path, model: str, overrides: dict) -> tuple[dict, dict]:
    """The contract's reader (`sotazoo.papers._contract`): a darknet `.weights` file holds its
    tensors in layer order with no names, so it is read into a built `model` whose state dict is
    returned; any other file is a state dict of ours, read and checked as usual."""
    from sotazoo.papers._contract import default_load
    from sotazoo.registry import create_model

    if Path(path).suffix == ".weights":
        built = create_model(model, **overrides)
        read_darknet_weights(path, built)
        return built.state_dict(), {}
    return default_load(Path(path), convert_state_dict)


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a checkpoint of ours; `WeightsError` when none fits."""
    if {"backbone.stem.conv.weight", "heads.2.pred.weight"} <= keys:
        return "sotazoo_yolov3"
    if {"backbone.0.conv.weight", "neck.conv.weight", "heads.1.pred.weight"} <= keys:
        return "sotazoo_yolov3_tiny"
    if {"backbone.stem.conv.weight", "fc.weight"} <= keys:
        return "sotazoo_darknet53"
    raise WeightsError(
        "unrecognised YOLOv3 checkpoint layout: expected sotazoo's keys (backbone.stem.*, "
        "heads.N.pred.*; yolov3-tiny: backbone.0.*, neck.*; darknet53: fc.*); darknet .weights "
        f"files load with load_darknet(); the file's first keys are {sorted(keys)[:8]}"
    )


def convert_state_dict(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Recognise a checkpoint of ours; returns it, the config fields its shapes fix, the layout."""
    layout = detect_layout(set(sd))
    stem = sd[
        "backbone.0.conv.weight" if layout == "sotazoo_yolov3_tiny" else "backbone.stem.conv.weight"
    ]
    needed: dict[str, object] = {"width": int(stem.shape[0]), "in_chans": int(stem.shape[1])}
    if layout != "sotazoo_yolov3_tiny":
        counts = {}
        for k in sd:
            if m := re.match(r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.", k):
                s, b = int(m.group(1)), int(m.group(2))
                counts[s] = max(counts.get(s, 0), b + 1)
        needed["blocks"] = tuple(counts[s] for s in sorted(counts))
    if layout == "sotazoo_darknet53":
        needed["num_classes"] = int(sd["fc.weight"].shape[0])
    else:
        n_out = int(sd["heads.0.pred.weight"].shape[0])
        if n_out % 3 or n_out // 3 < 6:
            raise WeightsError(
                f"the prediction conv has {n_out} outputs, not 3 x (5 + classes) for any classes"
            )
        needed["num_classes"] = n_out // 3 - 5
    return dict(sd), needed, layout
