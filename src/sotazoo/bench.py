"""Speed and size of a model on this machine, beside a reference implementation in the same run.

Params are counted; multiply-adds come from `torch.utils.flop_counter` (its FLOPs / 2, the unit
papers call "GFLOPs"). Latency is the median of timed runs after warm-up, at batch 1; throughput
is images per second at batch N. With a reference, both models get the same weights (through the
paper's converter) and are timed interleaved — ours, theirs, theirs, ours, … — so that load on
this shared machine hits both alike; the ratio ours/theirs is what to compare across machines.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from sotazoo.cards import ExtraInput
from sotazoo.errors import SotazooError
from sotazoo.inputs import random_inputs


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
    git_commit: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gmacs(
    model: torch.nn.Module, input_size: tuple[int, ...], extra_inputs: Sequence[ExtraInput] = ()
) -> float:
    """Multiply-adds (G) of one forward pass at batch 1: flop_counter's FLOPs / 2."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    inputs = random_inputs(input_size, extra_inputs, 1, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() / 2e9


def _options(opts: str) -> dict:
    """`k=v,k2=v2` -> kwargs; values are Python literals where they parse (2, 0.1), else strings."""
    import ast

    out = {}
    for kv in filter(None, opts.split(",")):
        k, _, v = kv.partition("=")
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def create_reference(spec: str) -> torch.nn.Module:
    """Build a reference implementation from `timm:NAME`, `torchvision:NAME`,
    `torchsr:NAME:key=value,...` (torchsr's models, e.g. `torchsr:edsr_baseline:scale=2`), or
    `sotazoo:NAME:key=value,...` (one of our models built another way, for papers that no
    installable library implements; e.g. the literal form of an equation we compute faster)."""
    lib, _, name = spec.partition(":")
    name, _, opts = name.partition(":")
    if lib == "sotazoo":
        from sotazoo.registry import create_model

        return create_model(name, **_options(opts))
    if lib == "timm":
        try:
            import timm
        except ImportError as e:
            raise SotazooError("the reference needs timm: pip install timm") from e
        return timm.create_model(name, pretrained=False)
    if lib == "torchvision":
        import torchvision

        return torchvision.models.get_model(name, weights=None, **_options(opts))
    if lib == "torchsr":
        try:
            import torchsr.models
        except ImportError as e:
            raise SotazooError("the reference needs torchsr: pip install torchsr") from e
        return getattr(torchsr.models, name)(**_options(opts))
    raise SotazooError(
        f"reference {spec!r} must look like timm:NAME, torchvision:NAME, torchsr:NAME:k=v or "
        "sotazoo:NAME:k=v"
    )


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def bench(
    name: str,
    *,
    vs: str | None = None,
    batch: int = 8,
    warmup: int = 3,
    reps: int = 15,
    device: str = "cpu",
    progress: bool = True,
) -> BenchResult:
    """Measure model `name` (random weights) and, with `vs`, a reference in the same process."""
    from tqdm.auto import tqdm

    from sotazoo.registry import create_model, model_entry, paper_converter
    from sotazoo.repro import git_commit

    pid, entry = model_entry(name)
    input_size = entry.input_size
    commit, dirty = git_commit()
    notes = []
    ours = create_model(name).eval()
    models = {name: ours}
    shared = False
    if vs:
        ref = create_reference(vs).eval()
        convert = paper_converter(pid)
        if convert is not None:
            try:
                sd, _, _ = convert(ref.state_dict())
                ours.load_state_dict(sd)
                shared = True
            except Exception as e:  # different architectures: time them as they are
                notes.append(f"weights not shared ({type(e).__name__}: {e})")
        models[vs] = ref
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
        input_size=tuple(input_size),
        device=device if device == "cpu" else torch.cuda.get_device_name(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        cpu=cpu_name(),
        ours=measurements[0],
        weights_shared=shared,
        git_commit=commit + ("+dirty" if dirty else ""),
        notes=notes,
    )
    if vs:
        res.reference = measurements[1]
        res.latency_ratio = measurements[0].latency_ms / measurements[1].latency_ms
        res.throughput_ratio = measurements[0].throughput / measurements[1].throughput
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
            f"ratio ours/reference: latency {r.latency_ratio:.3f} (below 1 = ours faster), "
            f"throughput {r.throughput_ratio:.3f} (above 1 = ours faster)"
            + ("; same weights in both" if r.weights_shared else "")
        )
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)
