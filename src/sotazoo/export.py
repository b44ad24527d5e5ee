"""ONNX export, checked: the file is written atomically, then onnxruntime runs it and its output is
compared with PyTorch's on the same random input.

We use the TorchScript-based exporter (`dynamo=False`) at opset 17 with a dynamic batch axis: it
writes one self-contained file (no external `.data`) that onnxruntime-web loads as it is, and it
handles every op our models use. The exporter and opset are recorded in the result.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sotazoo.cards import ExtraInput
from sotazoo.errors import SotazooError
from sotazoo.inputs import random_inputs

DEFAULT_OPSET = 17
# float32 through ~50 conv/BN layers: ORT fuses BN into the convs and sums in another order, so
# logits differ by a few 1e-6; 1e-4 leaves room and still catches any real mismatch.
DEFAULT_TOLERANCE = 1e-4


class ExportError(SotazooError):
    """Export failed, or onnxruntime disagrees with PyTorch beyond the tolerance."""


@dataclass
class ExportResult:
    path: str
    opset: int
    exporter: str
    max_abs_diff: float
    tolerance: float
    size_mb: float
    input_shape: tuple[int, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def export_onnx(
    model: torch.nn.Module,
    input_size: tuple[int, ...],
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    extra_inputs: Sequence[ExtraInput] = (),
) -> ExportResult:
    """Export `model` for inputs of shape (B, *input_size) (then `extra_inputs`, when the model
    takes more than an image) and verify it with onnxruntime."""
    import onnx
    import onnxruntime as ort

    if opset < 17:
        raise ExportError(f"opset {opset} is below 17, the oldest we support")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    inputs = random_inputs(input_size, extra_inputs, 2, seed=seed)
    names = ["input", *(e.name for e in extra_inputs)]
    tmp = path.with_name(path.name + ".part")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter
            torch.onnx.export(
                model,
                inputs,
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=names,
                output_names=["output"],
                dynamic_axes={n: {0: "batch"} for n in [*names, "output"]},
            )
        onnx.checker.check_model(str(tmp))
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        (got,) = sess.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})
        with torch.inference_mode():
            want = model(*inputs).numpy()
        if got.shape != want.shape:
            raise ExportError(f"onnxruntime output shape {got.shape} != PyTorch {want.shape}")
        diff = float(abs(got - want).max())
        if not diff <= tolerance:
            raise ExportError(
                f"onnxruntime and PyTorch differ by {diff:.3g} (tolerance {tolerance:g})"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(
        path=str(path),
        opset=opset,
        exporter="torch.onnx (TorchScript, dynamo=False)",
        max_abs_diff=diff,
        tolerance=tolerance,
        size_mb=path.stat().st_size / 2**20,
        input_shape=tuple(inputs[0].shape),
    )
