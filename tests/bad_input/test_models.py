"""The bad-input corpus, models: what a user feeds a model's forward pass or its builder.

The registry-wide part is generated from `sotazoo.list_models()` and each model's card entry
(`input_size`, `extra_inputs`, `task`), so a new paper joins it with no edit here: for every
model, inputs of the wrong dtype (float64, float16, bfloat16, uint8), an empty batch, a wrong
channel count, a missing batch dimension, NaN and +inf values, out-of-range ids in its integer
inputs; and, for every config family, counts of 0 or -1. The rule they check (`sotazoo.nn.checks`):
a model takes inputs of its own dtype (float32 as built, float64 after `model.double()`) and
refuses any other with an error that names both dtypes and the fix; an empty batch gives an
empty output. Paper-specific cases follow.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re

import pytest
import torch

import sotazoo
from sotazoo.papers._contract import paper
from sotazoo.registry import example_inputs, model_entry
from sotazoo.verify import tiny_model

from .harness import Case, check

# An input named in a NaN / inf message: the image, or a generator's noise / latents.
INPUT = r"(input|image|latents|noise|features)"  # the first input's names (features: of regions)
DTYPE_NAMES = {torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16"}
# Counts that must be positive (not only non-negative): zero of them is refused too.
ZERO_FIELDS = re.compile(r"num_\w+|\w*chans|\w*channels|\w*_dim")


@functools.cache
def _model(name: str) -> tuple[torch.nn.Module, tuple[int, ...], object]:
    model, size, entry = tiny_model(name)
    return model.eval(), size, entry


def _inputs(name: str, batch: int = 2) -> list[torch.Tensor]:
    _, size, entry = _model(name)
    return list(example_inputs(entry, batch, size=size))


def _call(name: str, edit=None, batch: int = 2, model=None):
    """A case's `run`: the tiny model of `name` on its example inputs, `edit(inputs)` applied."""

    def run():
        m = model() if model is not None else _model(name)[0]
        xs = _inputs(name, batch)
        if edit is not None:
            xs = edit(xs)
        with torch.no_grad():
            return m(*xs)

    return run


def _set(i: int, fn):
    """An `edit` that replaces input `i` by fn(input i)."""

    def edit(xs):
        xs = list(xs)
        xs[i] = fn(xs[i])
        return xs

    return edit


def _empty_batch(name: str):
    def run():
        out = _call(name, batch=0)()
        want = _call(name, batch=1)().shape[1:]
        assert out.shape == (0, *want), f"empty batch gave {tuple(out.shape)}, not (0, {want})"
        return out

    return run


def _own_dtype(name: str, dtype: torch.dtype):
    """A model converted to `dtype` takes inputs of `dtype` (the rule compares with the model's
    parameters, not with a hard-coded float32)."""

    def run():
        model = copy.deepcopy(_model(name)[0]).to(dtype)

        def edit(xs):  # every floating-point input, the image and e.g. a question vector
            return [x.to(dtype) if x.is_floating_point() else x for x in xs]

        out = _call(name, edit, model=lambda: model)()
        assert out.dtype == dtype and bool(torch.isfinite(out).all()), out.dtype
        return out

    return run


def _generic(name: str) -> list[Case]:
    _, entry = model_entry(name)
    size = _model(name)[1]
    c, n = size[0], 2 * _numel(size)
    cases = []
    for dtype, dname in DTYPE_NAMES.items():
        # names the model's dtype, the input's, and the conversion (x.float(), z.to(...))
        words = rf"(?=.*float32)(?=.*\b{dname})(?=.*(\.float\(\)|\.to\())"
        cases.append(
            Case(f"{name}-{dname}", _call(name, _set(0, lambda x, d=dtype: x.to(d))), words)
        )
    cases += [
        Case(f"{name}-model-float64", _own_dtype(name, torch.float64), expect="ok"),
        Case(f"{name}-empty-batch", _empty_batch(name), expect="ok"),
        Case(
            f"{name}-channels-{c + 1}",
            _call(name, _set(0, lambda x: torch.randn(x.shape[0], c + 1, *x.shape[2:]))),
            rf"\b{c}\b.*\b{c + 1}\b",
        ),
        Case(f"{name}-no-batch-dim", _call(name, _set(0, lambda x: x[0])), r"\(B, "),
        Case(
            f"{name}-nan",
            _call(name, _set(0, lambda x: torch.full_like(x, float("nan")))),
            rf"{INPUT}\b.*holds {n} NaN and 0 infinite",
        ),
        Case(
            f"{name}-inf",
            _call(name, _set(0, lambda x: torch.full_like(x, float("inf")))),
            rf"{INPUT}\b.*holds 0 NaN and {n} infinite",
        ),
        Case(
            f"{name}-uint8",
            _call(name, _set(0, lambda x: torch.randint(0, 256, x.shape, dtype=torch.uint8))),
            r"(?=.*uint8)(?=.*float)",
        ),
    ]
    for i, extra in enumerate(entry.extra_inputs, start=1):
        if extra.dtype == "int64":  # ids in [0, high): one past the end, and a negative one
            for bad in (extra.high, -1):
                edit = _set(i, functools.partial(_first_id, bad))
                words = rf"{extra.name}.*\[0, {extra.high}\)"
                cases.append(Case(f"{name}-{extra.name}-id-{bad}", _call(name, edit), words))
        else:
            m = 2 * _numel(extra.shape)
            cases += [
                Case(
                    f"{name}-{extra.name}-float64",
                    _call(name, _set(i, lambda t: t.double())),
                    rf"{extra.name}.*expected torch\.float32.*got torch\.float64",
                ),
                Case(
                    f"{name}-{extra.name}-nan",
                    _call(name, _set(i, lambda t: torch.full_like(t, float("nan")))),
                    rf"{extra.name} holds {m} NaN",
                ),
            ]
    return cases


def _first_id(bad: int, ids: torch.Tensor) -> torch.Tensor:
    """`ids` with its first element set to `bad`."""
    ids = ids.clone()
    ids.view(-1)[0] = bad
    return ids


def _numel(shape) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _families() -> dict[type, str]:
    """One model per config class (the first in name order): the config cases' subjects."""
    out: dict[type, str] = {}
    for name in sotazoo.list_models():
        cfg = getattr(_model(name)[0], "cfg", None)
        if dataclasses.is_dataclass(cfg):
            out.setdefault(type(cfg), name)
    return out


def _build(name: str, **bad):
    tiny = paper(model_entry(name)[0]).tiny_overrides(name)
    return lambda: sotazoo.create_model(name, **{**tiny, **bad})


def _config_cases() -> list[Case]:
    cases = []
    for cls, name in _families().items():
        cfg = _model(name)[0].cfg
        for f in dataclasses.fields(cls):
            value = getattr(cfg, f.name)
            if isinstance(value, int) and not isinstance(value, bool):
                bad = [-1, 0] if ZERO_FIELDS.fullmatch(f.name) else [-1]
                for v in bad:
                    words = rf"\b{f.name}\b.*{v}\b"
                    cases.append(
                        Case(f"{cls.__name__}-{f.name}={v}", _build(name, **{f.name: v}), words)
                    )
            elif (
                isinstance(value, tuple)
                and value
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                bad_tuple = (0, *value[1:])
                words = rf"\b{f.name}\b"
                cases.append(
                    Case(f"{cls.__name__}-{f.name}-0", _build(name, **{f.name: bad_tuple}), words)
                )
            elif isinstance(value, float) and f.name.endswith("dropout"):
                cases.append(
                    Case(
                        f"{cls.__name__}-{f.name}=1.5",
                        _build(name, **{f.name: 1.5}),
                        rf"\b{f.name}\b",
                    )
                )
    return cases


# ---------------------------------------------------------------- paper-specific cases


def _at_size(name: str, side: int, **extra):
    def run():
        model, size, _ = tiny_model(name, **extra)
        with torch.no_grad():
            return model.eval()(torch.randn(1, size[0], side, side))

    return run


def _train_empty(name: str):
    """An empty batch in training mode (batch norm's statistics path) gives an empty output and
    leaves the running statistics untouched."""

    def run():
        model = copy.deepcopy(_model(name)[0]).train()
        before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
        out = _call(name, batch=0, model=lambda: model)()
        after = model.state_dict()
        assert out.shape[0] == 0 and all(torch.equal(v, after[k]) for k, v in before.items())
        return out

    return run


def _nan_weights(name: str):
    def run():
        model = copy.deepcopy(_model(name)[0])
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
        return _call(name, model=lambda: model)()

    return run


def _half_model_on(name: str):
    def run():
        model = copy.deepcopy(_model(name)[0]).half()
        return _call(name, _set(0, lambda x: x.half()), model=lambda: model)()

    return run


def _autocast(name: str):
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = _call(name, _set(0, lambda x: x.bfloat16()))()
        assert out.shape[0] == 2
        return out

    return run


def _half_model_float_input(name: str):
    def run():
        model = copy.deepcopy(_model(name)[0]).half()
        return _call(name, model=lambda: model)()

    return run


SPECIFIC = [
    # SENet: the Caffe stem's ceil-mode max-pool needs a 2x2 map, i.e. a 3x3 input.
    Case("seresnet50-2x2", _at_size("seresnet50", 2), r"2x2 is smaller than the 3x3 minimum"),
    Case("senet154-1x1", _at_size("senet154", 1), r"1x1 is smaller than the 3x3 minimum"),
    Case("seresnet50-3x3", _at_size("seresnet50", 3), expect="ok"),
    Case("seresnet50-pool-pad-1x1", _at_size("seresnet50", 1, pool="pad"), expect="ok"),
    # Empty batches through batch norm in training mode.
    Case("yolov3_mini-empty-batch-train", _train_empty("yolov3_mini"), expect="ok"),
    Case("sagan_mini-empty-batch-train", _train_empty("sagan_mini"), expect="ok"),
    Case("retinanet_mini-empty-batch-train", _train_empty("retinanet_mini"), expect="ok"),
    # RN-CLEVR: a float question where word ids are expected.
    Case(
        "rn_clevr-float-question",
        _call("rn_clevr", _set(1, lambda q: q.float())),
        r"integer word ids",
    ),
    # The output check names what it checked: finite input, non-finite output.
    Case(
        "edsr_mini_x2-nan-weights",
        _nan_weights("edsr_mini_x2"),
        r"output holds \d+ NaN.*from a finite input.*weights hold NaN",
    ),
    Case(
        "seresnet_mini-nan-weights",
        _nan_weights("seresnet_mini"),
        r"output holds \d+ NaN.*from a finite input.*weights hold NaN",
    ),
    Case(
        "edsr_mini_x2-overflow",
        _call("edsr_mini_x2", _set(0, lambda x: x * 1e37)),
        r"output holds .* from a finite input.*outside the range",
    ),
    # dtype rule: a half model takes half input, and refuses float32 naming the fix.
    Case("seresnet_mini-half-model", _half_model_on("seresnet_mini"), expect="ok"),
    Case(
        "seresnet_mini-half-model-float32-input",
        _half_model_float_input("seresnet_mini"),
        r"expected torch\.float16.*got torch\.float32.*x\.half\(\).*model\.float\(\)",
    ),
    Case("seresnet_mini-autocast-bfloat16", _autocast("seresnet_mini"), expect="ok"),
    # Config values that are not counts at all.
    Case(
        "SENetConfig-num_classes=True",
        _build("seresnet_mini", num_classes=True),
        r"num_classes.*integer",
    ),
    Case(
        "SENetConfig-num_classes=10.5",
        _build("seresnet_mini", num_classes=10.5),
        r"num_classes.*integer",
    ),
    Case("RetinaNetConfig-prior=0", _build("retinanet_mini", prior=0.0), r"prior"),
]

CASES = [case for name in sotazoo.list_models() for case in _generic(name)]
CASES += _config_cases() + SPECIFIC


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_model_input(case):
    check(case)
