"""Speed and size of a model on this machine, beside a reference in the same run: an independent
implementation, or where none installs one of our own models, labelled as ours.

Params are counted; multiply-adds come from `torch.utils.flop_counter` (its FLOPs / 2, the unit
papers call "GFLOPs"). Latency is the median of timed runs after warm-up, at batch 1; throughput
is images per second at batch N. With a reference, both models get the same weights (through the
paper's converter) and are timed interleaved — ours, theirs, theirs, ours, … — so that load on
this shared machine hits both alike; the ratio ours/theirs is what to compare across machines.
Both run on the same random input of the model's card size (`input_size` to change it).

Sharing weights: the reference's state dict goes through the paper's `convert_state_dict`, and
ours is built with the config overrides that the converter says the reference's layout needs
(e.g. torchvision's RetinaNet: P6 on P5, stride on the 3×3, 91 class slots, FrozenBN eps 0), so
that both compute the same function; the overrides are recorded in `BenchResult.ours_overrides`.
A reference the converter does not read (another architecture: YOLOv3 against RetinaNet) is
timed as it is, with a note.

Reference specs (`create_reference`): `timm:NAME`, `torchvision:NAME:k=v,...`,
`torchsr:NAME:k=v,...`, `opencv:NAME:k=v,...`, `monai:NAME:k=v,...`, `sotazoo:NAME:k=v,...`.
The `k=v` values are Python literals where they parse (`2`, `True`, `None`), else strings, and
go to the library's builder. A paper may provide an adapter for a reference it needs built
another way (the paper contract's `reference.REFERENCES`: e.g. RetinaNet's
`torchvision:retinanet_resnet50_fpn:raw=True,frozen_bn=True`, torchvision's network without its
transform and post-processing; YOLOv3's `opencv:yolov3_416`, OpenCV's DNN module running the
darknet cfg with our weights; SID's `monai:basicunet`, MONAI's plain U-Net at SID's size); its
options are documented there. `opencv:` and `monai:` specs exist only as such adapters
(`ADAPTER_ONLY`). A reference that runs outside torch names the torch module of the same network
in its `torch_equivalent` attribute, on which its multiply-adds are counted.

Which kind of reference (`sotazoo.bench_labels`, re-exported here): any library but ours is an
independent implementation; a `sotazoo:` spec is one of our own models, used where no library
that installs implements the paper, and its card says why (`reference_note`). The result records
`reference_kind` ("independent" or "ours") and `reference_label`, the words that say which; what
prints a ratio prints them (`reference_cell` in tables).

torchvision builders get `weights=None` and, where they take one, `weights_backbone=None` unless
the spec sets them: a benchmark needs no download.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch

# what a result was compared with, in words; torch-free for `sotazoo status`, re-exported here
from sotazoo.bench_labels import ADAPTER_ONLY, LIBRARIES, reference_kind, reference_label
from sotazoo.bench_labels import reference_cell as reference_cell
from sotazoo.cards import ExtraInput
from sotazoo.errors import SotazooError
from sotazoo.inputs import random_inputs
from sotazoo.papers._contract import find_reference
from sotazoo.provenance import cpu_name


@dataclass
class Measurement:
    name: str
    params: int
    gmacs: float
    latency_ms: float  # median, batch 1
    latency_spread_ms: float  # interquartile range, batch 1
    throughput: float  # images/s at batch `batch`
    batch: int


@dataclass
class BenchResult:
    model: str
    input_size: tuple[int, ...]
    device: str
    threads: int
    torch: str
    cpu: str
    ours: Measurement
    reference: Measurement | None = None
    latency_ratio: float | None = None  # ours / reference; below 1 means ours is faster
    throughput_ratio: float | None = None  # ours / reference; above 1 means ours is faster
    weights_shared: bool = False
    reference_kind: str = ""  # "independent" (another library) or "ours" (a sotazoo: spec)
    reference_label: str = ""  # what the reference is, in words (`reference_label`)
    # config fields ours was built with to take the reference's layout and share its weights
    ours_overrides: dict[str, object] = field(default_factory=dict)
    git_commit: str = ""  # "+dirty" appended when made from uncommitted code
    command: str = ""  # what to run to make this file again (`sotazoo bench ... --save`)
    versions: dict[str, str] = field(default_factory=dict)  # torch, numpy, ... (provenance)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gmacs(
    model: torch.nn.Module, input_size: tuple[int, ...], extra_inputs: Sequence[ExtraInput] = ()
) -> float:
    """Multiply-adds (G) of one forward pass at batch 1: flop_counter's FLOPs / 2. A model that
    runs outside torch (OpenCV) is counted on its `torch_equivalent`, the same network in torch."""
    from torch.utils.flop_counter import FlopCounterMode

    model = getattr(model, "torch_equivalent", model)
    device = next(model.parameters()).device
    inputs = random_inputs(input_size, extra_inputs, 1, device=device)
    # no_grad, not inference_mode: the counter's module tracker hooks the autograd graph of
    # every submodule's inputs, and a parametrization's input is a parameter (spectral norm's
    # W), whose views have no graph under inference_mode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() / 2e9


def _options(opts: str, spec: str = "") -> dict:
    """`k=v,k2=v2` -> kwargs; values are Python literals where they parse (2, 0.1), else strings."""
    import ast

    out = {}
    for kv in filter(None, opts.split(",")):
        k, eq, v = kv.partition("=")
        if not eq or not k.isidentifier():
            raise SotazooError(
                f"reference {spec!r}: option {kv!r} is not key=value (e.g. raw=True, scale=2)"
            )
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def flag(opts: dict, key: str, spec: str) -> bool:
    """Pop the True/False option `key` of a reference spec's options (default False)."""
    value = opts.pop(key, False)
    if not isinstance(value, bool):
        raise SotazooError(f"reference {spec!r}: {key} must be True or False, not {value!r}")
    return value


def torchvision_model(name: str, opts: dict, spec: str) -> torch.nn.Module:
    """torchvision's builder `name` with `opts`, random weights unless the spec sets them (a
    benchmark downloads nothing)."""
    import inspect

    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        raise SotazooError(f"reference {spec!r}: torchvision has no model {name!r}") from None
    opts.setdefault("weights", None)
    if "weights_backbone" in inspect.signature(builder).parameters:
        opts.setdefault("weights_backbone", None)
    try:
        return builder(**opts)
    except (TypeError, ValueError) as e:
        raise SotazooError(f"reference {spec!r}: {e}") from None


def torchvision_detector(
    name: str,
    opts: dict,
    spec: str,
    *,
    frozen_name: str,
    build_frozen: Callable[[int, int, dict], torch.nn.Module],
    network: Callable[[torch.nn.Module], torch.nn.Module],
) -> torch.nn.Module:
    """torchvision's detector builder `name` as a reference, with two options of ours (the
    detection papers' `reference.py` adapters):

    - `frozen_bn=True` (`frozen_name` only): the network torchvision runs for its COCO weights,
      random: `build_frozen(num_classes, trainable_backbone_layers, other options)` assembles it
      on a FrozenBatchNorm2d ResNet, whose eps is then set to 0 as torchvision's builder does for
      those weights (`overwrite_eps`); nothing downloaded;
    - `raw=True`: `network(detector)`, the detector without its `GeneralizedRCNNTransform`, on
      a normalised batch, as the paper's model runs.
    """
    from torchvision.models.detection._utils import overwrite_eps

    raw = flag(opts, "raw", spec)
    if flag(opts, "frozen_bn", spec):
        if name != frozen_name:
            raise SotazooError(
                f"reference {spec!r}: frozen_bn=True is implemented for torchvision:{frozen_name} "
                "only"
            )
        for key in ("weights", "weights_backbone"):
            if opts.pop(key, None) is not None:
                raise SotazooError(
                    f"reference {spec!r}: frozen_bn=True builds random weights; drop {key}"
                )
        num_classes = opts.pop("num_classes", 91)
        layers = opts.pop("trainable_backbone_layers", 3)
        try:
            model = build_frozen(num_classes, layers, opts)
        except TypeError as e:
            raise SotazooError(f"reference {spec!r}: {e}") from None
        overwrite_eps(model, 0.0)
    else:
        model = torchvision_model(name, opts, spec)
    return network(model) if raw else model


def create_reference(spec: str) -> torch.nn.Module:
    """Build a reference implementation from `timm:NAME`, `torchvision:NAME:key=value,...`
    (`raw=True` and `frozen_bn=True` are ours: see the module's docstring),
    `torchsr:NAME:key=value,...` (torchsr's models, e.g. `torchsr:edsr_baseline:scale=2`),
    `opencv:NAME:key=value,...` (OpenCV's DNN module, through a paper's adapter: YOLOv3's
    `opencv:yolov3_416`), or `sotazoo:NAME:key=value,...` (one of our models built another way,
    for papers that no installable library implements; e.g. the literal form of an equation we
    compute faster)."""
    lib, _, name = spec.partition(":")
    name, _, opts = name.partition(":")
    forms = ("timm:NAME, torchvision:NAME, torchsr:NAME:k=v, opencv:NAME:k=v, monai:NAME:k=v or "
             "sotazoo:NAME:k=v")
    if lib not in LIBRARIES:
        raise SotazooError(f"reference {spec!r} must look like {forms}")
    if not name:
        raise SotazooError(f"reference {spec!r} names no model: it must look like {forms}")
    kwargs = _options(opts, spec)
    adapter = find_reference(f"{lib}:{name}")  # a paper's adapter (its reference.py), if any
    if adapter is not None:
        return adapter(kwargs, spec)
    if lib in ADAPTER_ONLY:
        label = LIBRARIES[lib]
        raise SotazooError(
            f"reference {spec!r}: no paper provides {'an' if label[0] in 'AEIOU' else 'a'} "
            f"{label} network named {name!r} ({', '.join(_adapters(lib))})"
        )
    if lib == "sotazoo":
        from sotazoo.registry import create_model

        return create_model(name, **kwargs)
    if lib == "timm":
        try:
            import timm
        except ImportError as e:
            raise SotazooError('the reference needs timm: pip install "sotazoo[bench]"') from e
        try:
            return timm.create_model(name, pretrained=False, **kwargs)
        except RuntimeError as e:  # timm: "Unknown model (name)"
            raise SotazooError(f"reference {spec!r}: {e}") from None
    if lib == "torchvision":
        return torchvision_model(name, kwargs, spec)
    try:
        import torchsr.models
    except ImportError as e:
        raise SotazooError('the reference needs torchsr: pip install "sotazoo[bench]"') from e
    if not hasattr(torchsr.models, name):
        raise SotazooError(f"reference {spec!r}: torchsr has no model {name!r}")
    return getattr(torchsr.models, name)(**kwargs)


def _adapters(lib: str) -> list[str]:
    """The `lib:NAME` references that papers' adapters provide (imports their reference.py)."""
    from sotazoo.cards import load_catalog
    from sotazoo.papers._contract import paper

    keys = []
    for entry in load_catalog():
        p = paper(entry.id)
        if p.has("reference"):
            keys += [k for k in p.references if k.startswith(f"{lib}:")]
    return sorted(keys)


def check_device(device: str) -> torch.device:
    """`device` as a torch.device that exists here, or a `SotazooError` that says what does."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        raise SotazooError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise SotazooError(f"device {device!r}: no CUDA device is available on this machine")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise SotazooError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif d.type != "cpu":
        raise SotazooError(f"device {device!r}: sotazoo bench runs on cpu or cuda")
    return d


def _timer(model: torch.nn.Module, x: torch.Tensor | tuple) -> Callable[[], float]:
    inputs = x if isinstance(x, tuple) else (x,)
    sync = torch.cuda.synchronize if inputs[0].is_cuda else (lambda: None)

    def run() -> float:
        sync()
        t0 = time.perf_counter()
        model(*inputs)
        sync()
        return time.perf_counter() - t0

    return run


def time_interleaved(
    models: list[torch.nn.Module], x: torch.Tensor | tuple, *, warmup: int, reps: int, progress=None
) -> list[list[float]]:
    """Seconds per forward pass of each model on `x` (a tensor or a tuple of inputs), timed in
    alternating order (ABBA…)."""
    runs = [_timer(m, x) for m in models]
    times: list[list[float]] = [[] for _ in runs]
    with torch.inference_mode():
        for _ in range(warmup):
            for r in runs:
                r()
        for i in range(reps):
            order = range(len(runs)) if i % 2 == 0 else reversed(range(len(runs)))
            for j in order:
                times[j].append(runs[j]())
            if progress is not None:
                progress(1)
    return times


def _iqr(xs: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]


def _short(e: Exception, limit: int = 200) -> str:
    msg = str(e)
    return f"{type(e).__name__}: " + (msg if len(msg) <= limit else msg[: limit - 1] + "…")


def _key_difference(ours, theirs) -> str:
    """What one state dict has that the other lacks, by module (`attention.*`: 9 tensors)."""

    def groups(keys) -> str:
        count: dict[str, int] = {}
        for k in sorted(keys):
            head = k.split(".")[0]
            count[head] = count.get(head, 0) + 1
        return ", ".join(f"{h}.* ({n})" for h, n in count.items())

    parts = []
    if only := set(ours) - set(theirs):
        parts.append(f"ours has {groups(only)} that the reference lacks")
    if only := set(theirs) - set(ours):
        parts.append(f"the reference has {groups(only)} that ours lacks")
    return "another layout: " + "; ".join(parts)


class Pair(NamedTuple):
    ours: torch.nn.Module
    reference: torch.nn.Module | None
    shared: bool  # the same weights in both
    overrides: dict[str, object]  # config fields ours was built with to take the ref's layout
    notes: list[str]  # what was not shared and why; what differs in the work timed


def build_pair(name: str, vs: str) -> Pair:
    """Our model `name` and the reference `vs`, in eval mode, with the same weights where the
    paper's converter reads the reference's state dict (ours then built with the config overrides
    that the converter says that layout needs)."""
    from sotazoo.papers._contract import paper
    from sotazoo.registry import create_model, model_entry

    pid, _ = model_entry(name)
    ref = create_reference(vs).eval()
    notes = []
    if _is_full_torchvision_detector(ref):
        notes.append(
            "the reference is torchvision's whole detector (its transform resizes to "
            "min_size/max_size and normalises; its postprocess decodes and runs NMS), ours the "
            "network alone: add raw=True to the spec to time the same work"
        )
    convert = paper(pid).convert
    if convert is None:
        notes.append("weights not shared: the paper has no converter")
        return Pair(create_model(name).eval(), ref, False, {}, notes)
    try:
        sd, overrides, layout = convert(ref.state_dict())
        ours = create_model(name, **overrides)
        if (own := ours.state_dict().keys()) != sd.keys():  # another configuration of ours
            raise ValueError(_key_difference(own, sd.keys()))
        ours.load_state_dict(sd)
    except Exception as e:  # another architecture, or a layout the converter does not read
        notes.append(f"weights not shared ({_short(e)}); the two are timed as they are")
        return Pair(create_model(name).eval(), ref, False, {}, notes)
    if changed := _departures(name, overrides):
        notes.append(
            f"ours built in the reference's layout ({layout}) to share its weights: "
            + ", ".join(changed)
        )
    return Pair(ours.eval(), ref, True, dict(overrides), notes)


def _departures(name: str, overrides: dict) -> list[str]:
    """The fields of `overrides` whose values differ from model `name`'s own config: a converter
    names every field the layout fixes (YOLOv3's reads width and blocks from the shapes), also
    those that ours has already. Ours is built on the meta device for its config (no memory, no
    arithmetic); every field counts when that fails or the model has no `cfg`."""
    from sotazoo.registry import create_model

    try:
        with torch.device("meta"):
            cfg = create_model(name).cfg
        return sorted(k for k, v in overrides.items() if getattr(cfg, k, object()) != v)
    except Exception:  # noqa: BLE001 - a model that does not build on meta: name them all
        return sorted(overrides)


def _is_full_torchvision_detector(model: torch.nn.Module) -> bool:
    return hasattr(model, "transform") and hasattr(model, "postprocess_detections")


def bench(
    name: str,
    *,
    vs: str | None = None,
    batch: int = 8,
    warmup: int = 3,
    reps: int = 15,
    device: str = "cpu",
    input_size: tuple[int, ...] | None = None,
    progress: bool = True,
) -> BenchResult:
    """Measure model `name` (random weights) and, with `vs`, a reference in the same process,
    both on inputs of `input_size` (default: the card's)."""
    from tqdm.auto import tqdm

    from sotazoo.provenance import git_commit, versions
    from sotazoo.registry import create_model, model_entry

    for what, n in (("batch", batch), ("reps", reps)):
        if not isinstance(n, int) or n < 1:
            raise SotazooError(f"{what} must be at least 1, got {n!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise SotazooError(f"warmup must be 0 or more, got {warmup!r}")
    check_device(device)
    _, entry = model_entry(name)
    input_size = tuple(input_size or entry.input_size)
    if len(input_size) != len(entry.input_size):
        raise SotazooError(
            f"input_size {input_size} for {name}, whose inputs are {tuple(entry.input_size)}"
        )
    commit, dirty = git_commit()
    pair = build_pair(name, vs) if vs else Pair(create_model(name).eval(), None, False, {}, [])
    if device != "cpu" and hasattr(pair.reference, "torch_equivalent"):
        pair.notes.append(
            "the reference runs outside torch, on the CPU: its inputs and outputs are copied, "
            "and its times are not those of the device"
        )
    models = {name: pair.ours} | ({vs: pair.reference} if vs else {})
    for m in models.values():
        m.to(device)
    results = {}
    with tqdm(total=2 * reps, desc=f"bench {name}", disable=not progress, leave=False) as bar:
        for b, key in ((1, "lat"), (batch, "thr")):
            x = random_inputs(input_size, entry.extra_inputs, b, device=device)
            results[key] = time_interleaved(
                list(models.values()), x, warmup=warmup, reps=reps, progress=bar.update
            )
    measurements = []
    for i, (mname, m) in enumerate(models.items()):
        lat = results["lat"][i]
        thr = results["thr"][i]
        measurements.append(
            Measurement(
                name=mname,
                params=count_params(m),
                gmacs=count_gmacs(m, input_size, entry.extra_inputs),
                latency_ms=1e3 * statistics.median(lat),
                latency_spread_ms=1e3 * _iqr(lat),
                throughput=batch / statistics.median(thr),
                batch=batch,
            )
        )
    res = BenchResult(
        model=name,
        input_size=input_size,
        device=device if device == "cpu" else torch.cuda.get_device_name(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        cpu=cpu_name(),
        ours=measurements[0],
        weights_shared=pair.shared,
        ours_overrides=pair.overrides,
        git_commit=commit + ("+dirty" if dirty else ""),
        versions=versions(),
        notes=pair.notes,
    )
    if vs:
        _set_reference(res, measurements[1], vs)
    return res


def _set_reference(res: BenchResult, ref: Measurement, vs: str) -> None:
    """Put the reference's measurement, the two ratios and what the reference is into `res`."""
    res.reference = ref
    res.latency_ratio = res.ours.latency_ms / ref.latency_ms
    res.throughput_ratio = res.ours.throughput / ref.throughput
    res.reference_kind = reference_kind(vs)
    res.reference_label = reference_label(res.to_dict())


def bench_method(
    name: str, *, vs: str | None = None, reps: int = 1000, warmup: int = 20,
    input_size: tuple[int, int, int] = (3, 224, 224), progress: bool = True,
) -> BenchResult:  # fmt: skip
    """Time method `name` (a card's `[[methods]]` entry: one image in, one out): its mean time
    per image on `reps` random uint8 images of `input_size`, and with `vs` a reference's on the
    same images, interleaved (ABBA...). A method has no parameters nor multiply-adds: both are 0. Each side
    draws its own random choices (ours from its seed, the reference from torch's, seeded 0): the
    ratio compares the average cost of the same policy's operations over many images."""
    from tqdm.auto import tqdm

    from sotazoo.provenance import git_commit, versions
    from sotazoo.registry import create_method, method_entry

    method_entry(name)
    if not isinstance(reps, int) or reps < 1:
        raise SotazooError(f"reps must be at least 1, got {reps!r}")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, input_size, generator=g, dtype=torch.uint8)
              for _ in range(max(reps, warmup))]  # fmt: skip
    funcs = {name: create_method(name, rng=0)} | ({vs: create_reference(vs)} if vs else {})
    times: list[list[float]] = [[] for _ in funcs]
    with tqdm(total=warmup + reps, desc=f"bench {name}", disable=not progress, leave=False) as bar:
        for i in range(warmup + reps):
            order = list(enumerate(funcs.values()))
            for j, f in order if i % 2 == 0 else order[::-1]:
                img = images[i % len(images)]
                t0 = time.perf_counter()
                f(img)
                if i >= warmup:
                    times[j].append(time.perf_counter() - t0)
            bar.update(1)
    # the mean, not the median: a policy mixes cheap and costly operations (and ops skipped by
    # their probability), and its cost per image is the average over that mixture
    rows = [Measurement(name=n, params=0, gmacs=0.0, latency_ms=1e3 * statistics.fmean(t),
                        latency_spread_ms=1e3 * _iqr(t), throughput=len(t) / sum(t), batch=1)
            for n, t in zip(funcs, times, strict=True)]  # fmt: skip
    commit, dirty = git_commit()
    res = BenchResult(
        model=name, input_size=tuple(input_size), device="cpu", threads=torch.get_num_threads(),
        torch=torch.__version__, cpu=cpu_name(), ours=rows[0],
        git_commit=commit + ("+dirty" if dirty else ""), versions=versions(),
        notes=[f"a method: mean time per image over {reps} random uint8 images of {input_size}, "
               "each side drawing its own sub-policies (the same policy, other random streams); "
               "throughput is images/s one image at a time"],
    )  # fmt: skip
    if vs:
        _set_reference(res, rows[1], vs)
    return res


def format_bench(r: BenchResult) -> str:
    rows = [r.ours] + ([r.reference] if r.reference else [])
    w = max(28, *(len(m.name) + 2 for m in rows))
    lines = [
        f"{r.model} at {'x'.join(map(str, r.input_size))} on {r.device} ({r.cpu}), "
        f"{r.threads} threads, torch {r.torch}",
        f"{'model':<{w}}{'params':>14}{'GMACs':>9}{'latency ms (b=1)':>20}"
        f"{'img/s (b=' + str(r.ours.batch) + ')':>14}",
    ]
    for m in rows:
        lines.append(
            f"{m.name:<{w}}{m.params:>14,}{m.gmacs:>9.3f}"
            f"{m.latency_ms:>12.2f} ± {m.latency_spread_ms / 2:<6.2f}{m.throughput:>13.1f}"
        )
    if r.reference:
        lines.append(
            f"{r.model} {reference_label(r.to_dict())}: latency ratio {r.latency_ratio:.3f} "
            f"(below 1 = ours faster), throughput ratio {r.throughput_ratio:.3f} "
            "(above 1 = ours faster)" + ("; same weights in both" if r.weights_shared else "")
        )
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)
