"""ONNX export, checked: the file is written atomically, then onnxruntime runs it and its outputs
are compared with PyTorch's on the same inputs.

We use the TorchScript-based exporter (`dynamo=False`) at opset 17 with a dynamic batch axis: it
writes one self-contained file (no external `.data`) that onnxruntime-web loads as it is, and it
handles every op our models use. The exporter and opset are recorded in the result.

A model returns one tensor (named "output") or a tuple of tensors (named by `output_names`, or
"output0", "output1", ...). Every output is compared, shape and values. A graph whose output
sizes depend on the data (a detector with NMS inside) is checked on `example_inputs`, real inputs
chosen by the caller; the check refuses to pass when some output is empty on every one of them,
since comparing empty tensors proves nothing.

The comparison is relative to each output's scale: an output passes when

    max |onnxruntime - PyTorch| <= tolerance * max(1, max |PyTorch|)

over the whole tensor (on each checked input). Why: both engines compute in float32 (eps = 2^-23,
about 1.2e-7), but they sum their reductions (convolutions, matmuls, ReduceSum) in other orders,
with other SIMD widths that each CPU picks at run time, so they differ by some ulps of the largest
values flowing through the graph: an absolute difference that grows with the output's magnitude,
also in its small entries (a logit near 0 computed from a sum of 10^3 is off by ulps of 10^3),
which is why the scale is the tensor's largest value rather than each entry's (allclose's rtol).
Measured on every registered model's tiny version (AMD EPYC; PyTorch on its AVX-512, AVX2 and
scalar ATen kernels, oneDNN capped at AVX2 and MKL in its compatible mode; 1 or 2 threads): at most
3e-6 of the scale, 1.8e-5 for ProGAN; onnxruntime's own kernels (MLAS) choose their SIMD path from
the CPU and no setting varies them, so this check is the one most exposed to another CPU.
rn_clevr's RN sums g over 64^2 = 4096 object pairs, so its random logits reach 10^2 to 10^3 and the
engines differ by up to 3.4e-4 (ulp(512) is 6e-5; onnxruntime's ReduceSum over the pairs lands
further from a float64 run than PyTorch's); YOLOv3's boxes are anchor * exp(t_w), so a logit off by
4e-6 moves a 700 px half-width by 1.3e-3 px; ProGAN's pixel norm divides 8-channel features (tiny
config) by an RMS as small as 0.02, which magnifies float32's own rounding (PyTorch alone is 1e-5
from float64). The floor of 1 keeps outputs near zero (probabilities, images in [-1, 1]) to an
absolute bound, since their rounding is set by intermediates of order 1, not by their own size.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sotazoo.cards import ExtraInput
from sotazoo.errors import SotazooError
from sotazoo.fileio import atomic_path
from sotazoo.inputs import random_inputs

DEFAULT_OPSET = 17
# Relative to max(1, max |output|) (see above). 1e-4 is ~840 float32 ulps of the scale: room for
# rounding compounded through ~100 layers with reductions of up to ~10^4 terms, on any CPU's
# kernels (measured at most 1.8e-5, ProGAN; 3e-6 for the others), while a wrong graph (a missing
# op, layers out of order, a wrong constant) is off by ~1e-1 of the scale, 1000x above.
DEFAULT_TOLERANCE = 1e-4


class ExportError(SotazooError):
    """Export failed, or onnxruntime disagrees with PyTorch beyond the tolerance."""


@dataclass
class ExportResult:
    path: str
    opset: int
    exporter: str
    max_abs_diff: float  # max |onnxruntime - PyTorch|, over every output and checked input
    # what `tolerance` bounds: each output's max abs diff / max(1, max |its PyTorch values|)
    max_rel_diff: float
    tolerance: float | dict[str, float]
    size_mb: float
    input_shape: tuple[int, ...]
    output_names: tuple[str, ...] = ("output",)
    checked_inputs: int = 1  # how many input batches onnxruntime and PyTorch were compared on

    def to_dict(self) -> dict:
        return asdict(self)


def _as_tuple(out) -> tuple[torch.Tensor, ...]:
    if isinstance(out, torch.Tensor):
        return (out,)
    if isinstance(out, (tuple, list)) and out and all(isinstance(t, torch.Tensor) for t in out):
        return tuple(out)
    raise ExportError(f"the model must return a tensor or a tuple of tensors, got {type(out)}")


def export_onnx(
    model: torch.nn.Module,
    input_size: tuple[int, ...],
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    tolerance: float | Mapping[str, float] = DEFAULT_TOLERANCE,
    seed: int = 0,
    extra_inputs: Sequence[ExtraInput] = (),
    example_inputs: Sequence[Sequence[torch.Tensor]] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    task: str | None = None,
) -> ExportResult:
    """Export `model` for inputs of shape (B, *input_size) (then `extra_inputs`, when the model
    takes more than an image) and verify it with onnxruntime.

    Args:
        example_inputs: input tuples (image, then the extra inputs) to trace with (the first) and
            to check on (all); by default one random batch of 2 drawn with `seed`.
        input_names: the graph's input names; by default "input", then the extra inputs' names.
        output_names: the graph's output names; by default "output" for a single tensor and
            "output0", "output1", ... for a tuple.
        dynamic_axes: as `torch.onnx.export`'s, keyed by input and output names; by default
            axis 0 of every input and output is "batch".
        tolerance: the largest difference allowed relative to the output's scale,
            max(1, max |PyTorch output|) (module docstring), for every output or per output name
            (those not named get `DEFAULT_TOLERANCE`); 0 asks for equal values (integer labels).
        task: the model's task (`sotazoo.tasks.TASKS`) when the raw network is exported: its
            first output must be what the task returns before anything is written.
    """
    import onnx
    import onnxruntime as ort

    if opset < 17:
        raise ExportError(f"opset {opset} is below 17, the oldest we support")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    if example_inputs is None:
        checks = [random_inputs(input_size, extra_inputs, 2, seed=seed)]
    else:
        checks = [tuple(x) for x in example_inputs]
        if not checks:
            raise ExportError("example_inputs is empty: nothing to trace or check with")
    names = list(input_names) if input_names else ["input", *(e.name for e in extra_inputs)]
    if len(names) != len(checks[0]):
        raise ExportError(f"{len(names)} input names {names} for {len(checks[0])} inputs")
    with torch.inference_mode():
        wants = [_as_tuple(model(*x)) for x in checks]
    if task is not None:
        from sotazoo.tasks import TASKS

        for x, out in zip(checks, wants, strict=True):
            problems = TASKS[task].output_problems(out[0].shape, x[0].shape)
            if problems:
                raise ExportError(f"not a {task} model's output: {'; '.join(problems)}")
    n_out = len(wants[0])
    if output_names is None:
        output_names = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
    output_names = list(output_names)
    if len(output_names) != n_out:
        raise ExportError(f"{len(output_names)} output names for {n_out} outputs")
    if dynamic_axes is None:
        dynamic_axes = {n: {0: "batch"} for n in [*names, *output_names]}
    diff = rel = 0.0
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter
            torch.onnx.export(
                model,
                checks[0],
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=names,
                output_names=output_names,
                dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
            )
        onnx.checker.check_model(str(tmp))
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        filled = [False] * n_out  # which outputs were non-empty on some checked input
        for j, (inputs, want) in enumerate(zip(checks, wants, strict=True)):
            feeds = {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
            got = sess.run(output_names, feeds)
            for i, (name, g, w) in enumerate(zip(output_names, got, want, strict=True)):
                w = w.numpy()
                where = f"output {name!r}" + (f" on example input {j}" if len(checks) > 1 else "")
                if g.shape != w.shape:
                    raise ExportError(f"onnxruntime {where} has shape {g.shape}, PyTorch {w.shape}")
                if g.size == 0:
                    continue
                filled[i] = True
                w = w.astype("float64")
                d = float(abs(g.astype("float64") - w).max())
                scale = max(1.0, float(abs(w).max()))
                tol = (tolerance.get(name, DEFAULT_TOLERANCE)
                       if isinstance(tolerance, Mapping) else tolerance)  # fmt: skip
                if not d <= tol * scale:
                    raise ExportError(
                        f"onnxruntime and PyTorch differ by {d:.3g} on {where}, {d / scale:.3g} "
                        f"of its scale max(1, max |output|) = {scale:.3g} (tolerance {tol:g})"
                    )
                diff, rel = max(diff, d), max(rel, d / scale)
        empty = [n for n, f in zip(output_names, filled, strict=True) if not f]
        if empty:
            raise ExportError(
                f"output(s) {empty} are empty on every checked input, so the comparison proves "
                "nothing; check on inputs that give some (e.g. scenes with objects for a detector)"
            )
    return ExportResult(
        path=str(path),
        opset=opset,
        exporter="torch.onnx (TorchScript, dynamo=False)",
        max_abs_diff=diff,
        max_rel_diff=rel,
        tolerance=dict(tolerance) if isinstance(tolerance, Mapping) else tolerance,
        size_mb=path.stat().st_size / 2**20,
        input_shape=tuple(checks[0][0].shape),
        output_names=tuple(output_names),
        checked_inputs=len(checks),
    )


class DetectionGraph(torch.nn.Module):
    """Base of a detector's demo graph: the network and its post-processing for one square
    image, returning decoded detections, boxes (D, 4) xyxy in input pixels, scores (D,) and
    labels (D,), as the site's `detect` widget wants them. D depends on the image (a dynamic
    axis), so `export_onnx` checks it on real sample images."""

    output_names = ("boxes", "scores", "labels")
    dynamic_axes = {name: {0: "detections"} for name in output_names}
    # Relative to each output's scale (see the module docstring). Boxes are pixels out of an
    # exp(): a logit off by d moves an edge by (half-width) * d, so their error is relative to the
    # largest box, which the scale tracks (measured 2e-6 to 3e-6 of it); scores are products of
    # sigmoids, in [0, 1], checked absolutely. Labels come from argmax and NMS: equal or wrong.
    export_tolerance = {"boxes": DEFAULT_TOLERANCE, "scores": DEFAULT_TOLERANCE, "labels": 0.0}

    def __init__(self, model: torch.nn.Module, size: int) -> None:
        super().__init__()
        self.model = model.eval()
        self.size = size

    def check_input(self, x: torch.Tensor) -> None:
        from sotazoo.errors import InputError

        if tuple(x.shape) != (1, 3, self.size, self.size):
            raise InputError(f"the demo graph takes one (1, 3, {self.size}, {self.size}) image, "
                             f"got {tuple(x.shape)}")  # fmt: skip
