"""Input checks shared by every model's `forward`: a wrong input is an error that names the problem.

The checks are skipped while a graph is being traced or exported (they depend on values, which an
ONNX graph cannot branch on); the exported graph is checked by `sotazoo.export` instead.
"""

from __future__ import annotations

import torch

from sotazoo.errors import InputError


def _tracing() -> bool:
    return (
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


def check_image_batch(x: torch.Tensor, in_chans: int, *, min_size: int = 1) -> None:
    """Raise `InputError` unless `x` is a float image batch of shape (B, in_chans, H, W).

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
    if not x.is_floating_point():
        raise InputError(
            f"expected a floating-point tensor, got {x.dtype}; "
            "convert images with x.float() / 255 and normalise them first"
        )
    if min(x.shape[2], x.shape[3]) < min_size:
        raise InputError(
            f"input {x.shape[2]}x{x.shape[3]} is smaller than the {min_size}x{min_size} minimum"
        )


def ensure_finite(x: torch.Tensor) -> None:
    """Raise `InputError` if `x` holds NaN or infinite values.

    Models call it after their forward pass, so that on a GPU the one synchronisation it needs
    falls where the caller waits for the output anyway instead of stalling the launch queue.
    """
    if _tracing():
        return
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise InputError(f"input holds {n_nan} NaN and {n_inf} infinite values")
