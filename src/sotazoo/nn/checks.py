"""Checks shared by every model: a wrong input or config is an error that names the problem.

The dtype rule. A model computes in the dtype of its parameters (float32 as built; float16 after
`model.half()`, float64 after `model.double()`), and its floating-point inputs must have that
dtype: anything else is an `InputError` that names both dtypes and the fix (`x.float()`, or
`model.double()`). We do not convert silently: torch and torchvision refuse the mismatch too,
and a silent float64 -> float32 copy would hide a doubled memory cost and a precision the user
did not get. Inside `torch.autocast`, the autocast dtype is accepted as well.

The tensor checks are skipped while a graph is being traced or exported (they depend on values,
which an ONNX graph cannot branch on); the exported graph is checked by `sotazoo.export` instead.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import numbers
import re
import typing
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from sotazoo.errors import InputError

# How to convert a tensor (or a model) to each floating dtype.
_TO = {
    torch.float32: ".float()",
    torch.float64: ".double()",
    torch.float16: ".half()",
    torch.bfloat16: ".bfloat16()",
}


def _tracing() -> bool:
    return (
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


def model_dtype(module: nn.Module) -> torch.dtype:
    """The dtype `module` computes in: that of its first floating-point parameter or buffer
    (float32 for a module that has none)."""
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def _to(dtype: torch.dtype) -> str:
    return _TO.get(dtype, f".to({dtype})")


def check_dtype(
    x: torch.Tensor, dtype: torch.dtype | None, name: str = "input", *, hint: str = ""
) -> None:
    """Raise `InputError` unless `x` is floating-point and, when `dtype` is given, of `dtype`
    (the model's, `model_dtype`) or of the enclosing `torch.autocast`'s.

    `hint` is appended to the message of an integer tensor (e.g. how to scale 8-bit pixels).
    """
    if _tracing():
        return
    if not x.is_floating_point():
        raise InputError(f"{name}: expected a floating-point tensor, got {x.dtype}{hint}")
    if dtype is None or x.dtype == dtype:
        return
    device = x.device.type
    if torch.is_autocast_enabled(device) and x.dtype == torch.get_autocast_dtype(device):
        return
    raise InputError(
        f"{name}: expected {dtype} (the model's dtype), got {x.dtype}; convert the input with "
        f"x{_to(dtype)}, or the model with model{_to(x.dtype)}"
    )


def check_image_batch(
    x: torch.Tensor, in_chans: int, *, min_size: int = 1, dtype: torch.dtype | None = None
) -> None:
    """Raise `InputError` unless `x` is a float image batch of shape (B, in_chans, H, W), with
    H and W at least `min_size`, of the model's `dtype` (see the dtype rule above).

    Reads only metadata, so it never waits for the device; `ensure_finite` checks the values.
    """
    if _tracing():
        return
    if not isinstance(x, torch.Tensor):
        raise InputError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        hint = " (add a batch dimension with x.unsqueeze(0))" if x.ndim == 3 else ""
        raise InputError(f"expected a 4-D batch (B, C, H, W), got shape {tuple(x.shape)}{hint}")
    if x.shape[1] != in_chans:
        raise InputError(
            f"expected {in_chans} input channels, got {x.shape[1]} (shape {tuple(x.shape)})"
        )
    hint = "; convert images with x.float() / 255 and normalise them first"
    check_dtype(x, dtype, "image batch", hint=hint)
    if min(x.shape[2], x.shape[3]) < min_size:
        raise InputError(
            f"input {x.shape[2]}x{x.shape[3]} is smaller than the {min_size}x{min_size} minimum"
        )


def check_tensor(x, name: str, shape: tuple, dtype: torch.dtype | None = None, *,
                 hint: str = "") -> None:  # fmt: skip
    """Raise `InputError` unless `x` is a tensor of `shape`, whose entries are a size (an int)
    or any size (a name such as "B"), and, when `dtype` is given, a finite floating-point tensor
    of `dtype` (`check_dtype`, `ensure_finite`). `hint` follows the message of a wrong shape."""
    if _tracing():
        return
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != len(shape) or any(isinstance(s, int) and s != n
                                   for s, n in zip(shape, x.shape, strict=True)):  # fmt: skip
        want = "(" + ", ".join(str(s) for s in shape) + ")"
        raise InputError(f"{name} must have shape {want}, got {tuple(x.shape)}{hint}")
    if dtype is not None:
        check_dtype(x, dtype, name)
        ensure_finite(x, name)


def check_ids(ids: torch.Tensor, high: int, name: str) -> None:
    """Raise `InputError` unless every element of the integer tensor `ids` lies in [0, high)
    (the rows of an embedding, the classes of a label). Reads the values: one synchronisation."""
    if _tracing() or not ids.numel():
        return
    lo, hi = (int(v) for v in torch.aminmax(ids))
    if lo < 0 or hi >= high:
        raise InputError(f"{name} out of range: ids must lie in [0, {high}), got {lo}..{hi}")


def _count(name: str, *xs: torch.Tensor) -> str:
    n_nan = sum(int(torch.isnan(x).sum()) for x in xs)
    n_inf = sum(int(torch.isinf(x).sum()) for x in xs)
    return f"{name} holds {n_nan} NaN and {n_inf} infinite values"


def ensure_finite(x: torch.Tensor, name: str = "input") -> None:
    """Raise `InputError` if the input `x` holds NaN or infinite values; the message counts them
    and calls `x` `name`. For a model's output, use `ensure_finite_output`."""
    if _tracing():
        return
    if not bool(torch.isfinite(x).all()):
        raise InputError(_count(name, x))


def ensure_finite_output(
    outputs: torch.Tensor | Sequence[torch.Tensor],
    inputs: Mapping[str, torch.Tensor],
    model: nn.Module | None = None,
) -> None:
    """Raise `InputError` if the output (one tensor or several) or one of the floating-point
    `inputs` (name -> tensor) holds NaN or infinite values.

    The message says which: an input that holds them (with its own counts), or else an output
    that overflowed from finite inputs, because the weights of `model` hold NaN or infinite
    values (a diverged training run, a bad file) or, with finite weights, because the input is
    far outside the range the model expects or the weights have diverged.

    Models call it after their forward pass, so that on a GPU the one synchronisation it needs
    falls where the caller waits for the output anyway instead of stalling the launch queue.
    """
    if _tracing():
        return
    outs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)
    floats = {k: v for k, v in inputs.items() if v.is_floating_point()}
    flags = [torch.isfinite(t).all() for t in (*outs, *floats.values())]
    if bool(torch.stack(flags).all()):
        return
    for name, x in floats.items():
        if not bool(torch.isfinite(x).all()):
            raise InputError(_count(name, x))
    what = " and ".join(inputs) or "input"
    weights = () if model is None else itertools.chain(model.parameters(), model.buffers())
    if not all(bool(torch.isfinite(t).all()) for t in weights if t.is_floating_point()):
        cause = "the model's weights hold NaN or infinite values (diverged training or a bad file)"
    else:
        cause = (
            "the weights are finite, so the input is probably far outside the range the model "
            "expects (e.g. 0..255 pixels where 0..1 is expected), or the weights have diverged"
        )
    raise InputError(f"{_count('output', *outs)} from a finite {what}: {cause}")


@functools.cache
def _checked_fields(cls: type) -> dict[str, bool | tuple]:
    """Fields of the config dataclass `cls` that hold an int (False), a tuple of ints (True), or
    one of a `Literal`'s values (those values)."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError:  # an annotation names something imported for type checking only
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, str):  # unresolved: read the annotation's text
            text = hint.replace(" ", "")
            if text == "int":
                out[f.name] = False
            elif re.fullmatch(r"tuple\[int(,int)*(,\.\.\.)?\]", text):
                out[f.name] = True
            continue
        args = typing.get_args(hint)
        if typing.get_origin(hint) is typing.Literal:
            out[f.name] = args
        elif hint is int:
            out[f.name] = False
        elif typing.get_origin(hint) is tuple and args and all(a in (int, ...) for a in args):
            out[f.name] = True
    return out


def check_config(cfg: object, minimum: Mapping[str, int] | None = None) -> None:
    """Raise `InputError` naming the first field of the config dataclass `cfg` that makes no
    sense: every `int` field, and every element of a `tuple[int, ...]` field, must be an integer
    of at least 1 (channels, classes, widths, layers, ...), or of at least `minimum[field]` for
    a count that may be zero; a `Literal[...]` field must hold one of its values. Configs call
    it first thing in their `__post_init__` and check the rest (ranges, relations) themselves."""
    minimum = minimum or {}
    name = type(cfg).__name__
    for field, kind in _checked_fields(type(cfg)).items():
        value = getattr(cfg, field)
        if isinstance(kind, tuple):
            if value not in kind:
                raise InputError(f"{name}: {field} must be one of {list(kind)}, got {value!r}")
            continue
        is_tuple = kind
        lo = minimum.get(field, 1)
        if is_tuple and not isinstance(value, tuple | list):
            raise InputError(f"{name}: {field} must be a tuple of integers, got {value!r}")
        for v in value if is_tuple else (value,):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < lo:
                what = f"every entry of {field}" if is_tuple else field
                raise InputError(f"{name}: {what} must be an integer >= {lo}, got {value!r}")


def build_configured(model_cls: typing.Callable[..., nn.Module], cfg: typing.Any,
                     overrides: Mapping[str, typing.Any]) -> typing.Any:  # fmt: skip
    """`model_cls(dataclasses.replace(cfg, **overrides))` (a builder's `**overrides`), where an
    unknown override raises a TypeError that lists the fields the config takes."""
    try:
        changed = dataclasses.replace(cfg, **overrides)
    except TypeError as e:
        known = ", ".join(f.name for f in dataclasses.fields(cfg))
        raise TypeError(f"{e}; {type(cfg).__name__} takes: {known}") from None
    return model_cls(changed)
