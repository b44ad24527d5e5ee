"""The paper contract: everything the core may ask of a paper, written down in one place.

A paper is its folder `sotazoo/papers/<id>/` and its `card.toml`. The core (registry, bench,
export, site, status, training and reproduction runners) reaches a paper's code only through
`paper(id)`, an object of this module whose methods import the folder's modules lazily and return
each hook, or its default when the paper does not provide it. Adding paper N means writing its
folder (start from `papers/_template/`) and its card; the core does not change, except for one
entry in `sotazoo.tasks` when the paper brings a new task.

The hooks, by module of the folder (every module is optional unless the card needs it):

| module         | name                 | what it is                                                  | default              |
|----------------|----------------------|-------------------------------------------------------------|----------------------|
| `model.py`     | the card's builders  | `builder(**overrides) -> nn.Module`, keyword-only; required  | —                    |
|                |                      | for every `[[models]]` entry                                |                      |
|                | `tiny_overrides`     | `(name) -> dict`: config overrides that make a model small  | `{}`                 |
|                |                      | for the registry-wide tests                                 |                      |
|                | `unused_in_forward`  | `(name) -> tuple[str, ...]`: prefixes of the parameters     | `()`                 |
|                |                      | `forward` does not reach by design (MUNIT's forward         |                      |
|                |                      | translates one way; the other way's modules train through   |                      |
|                |                      | the losses); the registry test checks they get no gradient  |                      |
|                |                      | and every other parameter does                              |                      |
| `weights.py`   | `WEIGHTS`            | `tuple[Weights, ...]`: data only (imports no torch, no model)| `()`                 |
| `convert.py`   | `convert_state_dict` | `(state_dict) -> (state_dict, overrides, layout)`: a public | ours only            |
|                |                      | checkpoint's keys to ours, the config it needs, its name    |                      |
|                | `load`               | `(path, model, overrides) -> (state_dict, overrides)`: read | `default_load`       |
|                |                      | a checkpoint file that is not a plain state dict (darknet   |                      |
|                |                      | `.weights`, whole-GAN pickles) into our layout              |                      |
| `reference.py` | `REFERENCES`         | `{"lib:name": (options, spec) -> nn.Module}`: adapters that | `{}`                 |
|                |                      | build an independent implementation as bench and oracles    |                      |
|                |                      | need it (e.g. torchvision's detector without its transform) |                      |
| `demo.py`      | `samples`            | `(out_dir) -> [path or {"path": ..., **extra}]`: the demo's | no samples           |
|                |                      | bundled inputs, written into the site                       |                      |
|                | `spec_extra`         | `() -> dict`: fields the widget needs beyond the defaults   | `{}`                 |
|                | `export_module`      | `(model) -> nn.Module` exported instead of the raw network  | the model            |
|                |                      | (may set `output_names`, `dynamic_axes`, `export_tolerance`)|                      |
|                | `example_inputs`     | `() -> [input tuple]` to check the export on, when the      | the samples,         |
|                |                      | inputs are not images                                       | pre-processed        |
| `figure.py`    | `draw`               | `() -> matplotlib Figure`: our drawing of the core idea;     | —                    |
|                |                      | required when the card sets `figure`                        |                      |
| `repro.py`     | `DEFAULT_SEEDS`,     | the laptop-scale reproduction: `run(*, quick, seeds,        | no experiment        |
|                | `run`                | progress) -> repro.Outcome`                                 |                      |
|                | `LONG_SEEDS`,        | `sotazoo repro ID --long`: the same arms past the budget,   | no long run          |
|                | `long_run`           | `long_run(*, quick, seeds, progress) -> repro.LongOutcome`  |                      |
| `train.py`     | `RECIPES`            | `{model name: train.recipes.Recipe}`: the training function | `{}`                 |
|                |                      | `(*, seed, budget, progress) -> Trained` and its budget's   |                      |
|                |                      | unit ("epochs", "thousand steps", "kimg", ...) and default |                      |
| `method.py`    | the card's methods   | `builder(*, rng, **options) -> callable`, keyword-only:     | —                    |
|                |                      | one image in, one out (`[[methods]]`: a paper whose        |                      |
|                |                      | artefact is a procedure, not a network, e.g. AutoAugment)   |                      |
|                | `detector`           | `(model, **loss_kw) -> train.detection.Detector`: how the   | not a detector       |
|                |                      | shared detection loop normalises, scores and decodes        |                      |
| `search.py`    | `SPACE`, `decode`,   | a search that `sotazoo.controller` runs (the long runs of   | no search            |
|                | `to_json`,           | NASNet and AutoAugment): the decisions' `Space`, `decode(   |                      |
|                | `make_reward`        | actions) -> sample`, `to_json(sample)` for the results file,|                      |
|                |                      | `make_reward(*, seed, quick) -> reward(sample) -> float`    |                      |

Any other module of the folder (`layers.py`, `method.py`'s losses, ...) is the paper's own and
the core never imports it. The evidence (`sotazoo verify` records, `sotazoo repro` results) names
the folder by a hash of its files (`verify.paper_fingerprint`) and turns stale when one changes;
the card counts by its data (models, claims, demo, ...), not its prose (summaries, key ideas,
deviations, reading list: `provenance.CARD_PROSE_KEYS`), so a translation, a fixed typo or a new
link leaves the evidence current. A reproduction's result names only the files its experiment is
made of (`repro.experiment_fingerprint`): `repro.py` never imports the folder's `weights`,
`demo`, `convert`, `reference` or `figure` modules, so retrained demo weights or a fixed demo
leave it current (a test reads every repro.py's imports). `check_paper(id)` lists where a folder breaks the contract; a
registry-wide test runs it on every paper, and on a paper made from the template.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sotazoo.cards import PaperCard, card_path, load_card
from sotazoo.errors import CardError, SotazooError

if TYPE_CHECKING:
    import torch

    from sotazoo.weights import Weights

StateDict = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class Hook:
    module: str
    name: str
    kind: str  # "function" or "value" (of one of the types named in `type`)
    params: tuple[str, ...] = ()  # what the core passes: by position, or by name if `keywords`
    keywords: bool = False
    type: str = ""


# The contract as data: `check_paper` checks a folder against it, the table above explains it.
HOOKS = (
    Hook("model", "tiny_overrides", "function", ("name",)),
    Hook("model", "unused_in_forward", "function", ("name",)),
    Hook("weights", "WEIGHTS", "value", type="tuple"),
    Hook("convert", "convert_state_dict", "function", ("state_dict",)),
    Hook("convert", "load", "function", ("path", "model", "overrides")),
    Hook("reference", "REFERENCES", "value", type="dict"),
    Hook("demo", "samples", "function", ("out_dir",)),
    Hook("demo", "spec_extra", "function"),
    Hook("demo", "export_module", "function", ("model",)),
    Hook("demo", "example_inputs", "function"),
    Hook("figure", "draw", "function"),
    Hook("repro", "DEFAULT_SEEDS", "value", type="list tuple"),
    Hook("repro", "run", "function", ("quick", "seeds", "progress"), keywords=True),
    Hook("repro", "LONG_SEEDS", "value", type="list tuple"),
    Hook("repro", "long_run", "function", ("quick", "seeds", "progress"), keywords=True),
    Hook("train", "RECIPES", "value", type="dict"),
    Hook("method", "detector", "function", ("model",)),
    Hook("search", "SPACE", "value", type="Space"),
    Hook("search", "decode", "function", ("actions",)),
    Hook("search", "to_json", "function", ("sample",)),
    Hook("search", "make_reward", "function", ("seed", "quick"), keywords=True),
)
# A module of the contract must provide these names when the file exists.
REQUIRED_IN_MODULE = {"weights": ("WEIGHTS",), "repro": ("DEFAULT_SEEDS", "run"),
                      "train": ("RECIPES",), "figure": ("draw",), "reference": ("REFERENCES",),
                      "search": ("SPACE", "decode", "to_json", "make_reward")}  # fmt: skip


class Paper:
    """The hooks of one paper folder; each module is imported on first use."""

    def __init__(self, paper_id: str) -> None:
        self.id = paper_id
        self.folder = card_path(paper_id).parent
        self.package = f"sotazoo.papers.{paper_id}"

    @functools.cached_property
    def card(self) -> PaperCard:
        return load_card(self.id)

    def has(self, module: str) -> bool:
        """Whether the folder has `module`.py (no import)."""
        return (self.folder / f"{module}.py").is_file()

    def module(self, module: str) -> ModuleType:
        return importlib.import_module(f"{self.package}.{module}")

    def hook(self, module: str, name: str, default: Any = None) -> Any:
        """`module.name` of the folder, or `default` when the module or the name is absent."""
        return getattr(self.module(module), name, default) if self.has(module) else default

    # ------------------------------------------------------------------ models and weights

    def builder(self, model: str) -> Callable[..., torch.nn.Module]:
        """The builder the card names for `model`; `CardError` when `model.py` lacks it."""
        entry = next((m for m in self.card.models if m.name == model), None)
        if entry is None:
            raise CardError(f"{self.card.path}: no model {model!r} in its [[models]]")
        return self._function("model", f"model {model!r}", entry.builder)

    def method_builder(self, method: str) -> Callable[..., Callable]:
        """The builder the card names for the method `method` (`[[methods]]`), in `method.py`:
        `builder(*, rng, **options)` -> a callable from one image to one image."""
        entry = next((m for m in self.card.methods if m.name == method), None)
        if entry is None:
            raise CardError(f"{self.card.path}: no method {method!r} in its [[methods]]")
        return self._function("method", f"method {method!r}", entry.builder)

    def _function(self, module_name: str, what: str, name: str) -> Callable:
        where = f"{self.card.path} declares {what} with builder {name!r}"
        if not self.has(module_name):
            raise CardError(f"{where}, but {self.folder / (module_name + '.py')} does not exist")
        module = self.module(module_name)
        build = getattr(module, name, None)
        if build is None:
            import difflib

            public = [n for n in vars(module) if not n.startswith("_")]
            close = difflib.get_close_matches(name, public, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CardError(f"{where}, but {module.__file__} has no function of that name{hint}")
        if not callable(build) or isinstance(build, ModuleType):
            raise CardError(
                f"{where}, but {module.__file__} has a {type(build).__name__}, not a function, "
                "of that name"
            )
        return build

    def tiny_overrides(self, model: str) -> dict:
        """Config overrides that make `model` small enough for the registry-wide tests (a
        forward pass in well under a second on a laptop CPU)."""
        make = self.hook("model", "tiny_overrides")
        return dict(make(model)) if make else {}

    def unused_in_forward(self, model: str) -> tuple[str, ...]:
        """Prefixes of `model`'s parameters that its `forward` leaves out by design."""
        make = self.hook("model", "unused_in_forward")
        return tuple(make(model)) if make else ()

    @property
    def weights(self) -> tuple[Weights, ...]:
        return tuple(self.hook("weights", "WEIGHTS", ()))

    @property
    def convert(self) -> Callable[[StateDict], tuple[StateDict, dict, str]] | None:
        return self.hook("convert", "convert_state_dict")

    def load(self, path: Path, model: str, overrides: Mapping[str, Any]) -> tuple[StateDict, dict]:
        """Our state dict of the checkpoint file `path` for `model`, and the config overrides it
        needs: the paper's `convert.load`, else `default_load` with its converter."""
        custom = self.hook("convert", "load")
        if custom is not None:
            return custom(path, model, dict(overrides))
        return default_load(path, self.convert)

    @property
    def references(self) -> Mapping[str, Callable[[dict, str], torch.nn.Module]]:
        return self.hook("reference", "REFERENCES", {})

    # ------------------------------------------------------------------ demo, figure, runs

    @property
    def demo(self) -> DemoHooks:
        return DemoHooks(self.module("demo") if self.has("demo") else None)

    def figure(self) -> Any:
        """The card's figure, drawn (a matplotlib Figure)."""
        draw = self.hook("figure", "draw")
        if draw is None:
            raise CardError(f"{self.card.path} sets a figure, but figure.py has no draw()")
        return draw()

    @property
    def experiment(self) -> ModuleType | None:
        """The reproduction module (`DEFAULT_SEEDS`, `run`), or None."""
        return self.module("repro") if self.has("repro") else None

    @property
    def has_long_run(self) -> bool:
        return self.hook("repro", "long_run") is not None

    @property
    def search(self) -> ModuleType | None:
        """The search module (`SPACE`, `decode`, `to_json`, `make_reward`: `sotazoo.controller`'s
        long run), or None."""
        return self.module("search") if self.has("search") else None

    @property
    def recipes(self) -> Mapping[str, Callable]:
        return self.hook("train", "RECIPES", {})

    def detector(self, model: torch.nn.Module, **loss_kw):
        make = self.hook("method", "detector")
        if make is None:
            raise SotazooError(f"paper {self.id!r} provides no detector (method.detector)")
        return make(model, **loss_kw)


@dataclass(frozen=True)
class DemoHooks:
    """The demo hooks of a paper, each with its default."""

    module: ModuleType | None

    def _get(self, name: str):
        return getattr(self.module, name, None) if self.module is not None else None

    def samples(self, out_dir: Path) -> list[dict]:
        """The bundled sample inputs, written into `out_dir`, as dicts with a `path`."""
        make = self._get("samples")
        return [s if isinstance(s, dict) else {"path": s} for s in make(out_dir)] if make else []

    def spec_extra(self) -> dict:
        make = self._get("spec_extra")
        return make() if make else {}

    def export_module(self, model: torch.nn.Module) -> torch.nn.Module | None:
        """What the site exports instead of the raw network, or None for the network."""
        make = self._get("export_module")
        return make(model) if make else None

    def example_inputs(self) -> list[tuple] | None:
        make = self._get("example_inputs")
        return make() if make else None


def default_load(
    path: Path, convert: Callable | None = None, *, read: Callable[[Path], dict] | None = None
) -> tuple[StateDict, dict]:
    """The usual way to load a checkpoint: read it (safetensors, or torch with
    `weights_only=True`; `read` for a paper's own format), then map its keys to ours. A file we
    wrote (`sotazoo.weights.save_safetensors`, whose metadata names the model) is in our layout
    already and is not converted: a converter reading it as a third-party layout would impose
    that layout's options (RetinaNet's keys are torchvision's, for one)."""
    from sotazoo.weights import read_state_dict, written_by_sotazoo

    sd = (read or read_state_dict)(path)
    if convert is None or written_by_sotazoo(path):
        return sd, {}
    sd, overrides, _layout = convert(sd)
    return sd, dict(overrides)


def tf_aware_load(path: Path, convert: Callable) -> tuple[StateDict, dict]:
    """`default_load`, reading a TensorFlow checkpoint (its `.index`, a `.data-*` shard or the
    prefix) without TensorFlow (`sotazoo.tfcheckpoint`); any other file as `default_load` does."""
    import re

    import numpy as np

    path = Path(path)
    tf_like = path.suffix == ".index" or re.search(r"\.data-\d+-of-\d+$", path.name) or (
        not path.exists() and Path(f"{path}.index").is_file())  # fmt: skip
    if not tf_like:
        return default_load(path, convert)

    def read(p: Path) -> StateDict:
        import torch

        from sotazoo.tfcheckpoint import read_tf_checkpoint

        return {k: torch.from_numpy(np.array(v)) for k, v in read_tf_checkpoint(p).items()}

    return default_load(path, convert, read=read)


@functools.cache
def paper(paper_id: str) -> Paper:
    """The contract object of a paper of the catalogue."""
    return Paper(paper_id)


def paper_of(model: torch.nn.Module) -> Paper:
    """The paper whose `model.py` (or another module of its folder) defines `model`'s class."""
    parts = type(model).__module__.split(".")
    if parts[:2] != ["sotazoo", "papers"] or len(parts) < 3:
        raise SotazooError(f"{type(model).__name__} is not a model of a sotazoo paper")
    return paper(parts[2])


# ---------------------------------------------------------------------- checking a folder


def _accepts(func: Callable, params: tuple[str, ...], *, keywords: bool = True) -> list[str]:
    """Why `func` cannot be called as the core calls it: with `params` by name (`keywords`) or
    as that many positional arguments; empty when it can."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    try:
        if keywords:
            sig.bind(**dict.fromkeys(params))
        else:
            sig.bind(*params)
    except TypeError as e:
        return [f"{'keywords' if keywords else 'arguments'} {list(params)}: {e}"]
    return []


def check_paper(paper_id: str) -> list[str]:
    """Where the folder of `paper_id` breaks the contract (empty when it keeps it). Imports the
    folder's contract modules; the card is checked by its own schema first."""
    p = paper(paper_id)
    try:
        card = p.card
    except CardError as e:
        return [str(e)]
    problems = []
    for m in (*card.models, *card.methods):
        try:
            build = p.builder(m.name) if m in card.models else p.method_builder(m.name)
        except CardError as e:
            problems.append(str(e))
            continue
        if m in card.methods and (why := _accepts(build, ("rng",))):
            problems.append(f"method.py: builder {m.builder} cannot be called with {why[0]}")
        positional = [
            q.name
            for q in inspect.signature(build).parameters.values()
            if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)
        ]
        if positional:
            where = "model.py" if m in card.models else "method.py"
            problems.append(f"{where}: builder {m.builder} takes {positional} by position; "
                            "builders are keyword-only (`def name(**overrides)`)")  # fmt: skip
    if card.figure and not p.has("figure"):
        problems.append("the card sets a figure, but there is no figure.py")
    if card.demo is not None and card.demo.weights:
        names = {w.tag for w in p.weights if w.model == card.demo.model}
        if card.demo.weights not in names:
            problems.append(f"the demo runs {card.demo.model}.{card.demo.weights}, which "
                            f"weights.py does not list (tags: {sorted(names)})")  # fmt: skip
    for module in {h.module for h in HOOKS}:
        if not p.has(module):
            continue
        try:
            mod = p.module(module)
        except Exception as e:  # noqa: BLE001 - an import error is the finding
            problems.append(f"{module}.py does not import: {type(e).__name__}: {e}")
            continue
        for name in REQUIRED_IN_MODULE.get(module, ()):
            if not hasattr(mod, name):
                problems.append(f"{module}.py has no {name}")
        for h in (h for h in HOOKS if h.module == module and hasattr(mod, h.name)):
            value = getattr(mod, h.name)
            if h.kind == "function":
                if not callable(value):
                    problems.append(f"{module}.{h.name} is not a function")
                elif why := _accepts(value, h.params, keywords=h.keywords):
                    problems.append(f"{module}.{h.name} cannot be called with {why[0]}")
            elif type(value).__name__ not in h.type.split():
                problems.append(f"{module}.{h.name} is a {type(value).__name__}, not a {h.type}")
    problems += _check_values(p)
    return problems


def _check_values(p: Paper) -> list[str]:
    from sotazoo.weights import Weights

    problems = []
    models = {m.name for m in p.card.models}
    for w in p.weights:
        if not isinstance(w, Weights):
            problems.append(f"weights.WEIGHTS holds a {type(w).__name__}, not a Weights")
        elif w.model not in models:
            problems.append(f"weights.WEIGHTS lists {w.name}, not a model of the card")
    from sotazoo.train.recipes import Recipe

    for name, recipe in p.recipes.items():
        if name not in models:
            problems.append(f"train.RECIPES has a recipe for {name!r}, not a model of the card")
        elif not isinstance(recipe, Recipe):
            problems.append(f"train.RECIPES[{name!r}] is a {type(recipe).__name__}, not a Recipe")
        elif why := _accepts(recipe.train, ("seed", "budget", "progress")):
            problems.append(f"train.RECIPES[{name!r}] cannot be called with {why[0]}")
    if p.experiment is not None:
        seeds = p.experiment.DEFAULT_SEEDS
        if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
            problems.append(f"repro.DEFAULT_SEEDS must be non-negative ints, got {seeds!r}")
        if p.has_long_run and not getattr(p.experiment, "LONG_SEEDS", None):
            problems.append("repro.long_run needs repro.LONG_SEEDS, the seeds of the long run")
    for key in p.references:
        lib, _, name = key.partition(":")
        if not lib or not name or ":" in name:
            problems.append(f"reference.REFERENCES key {key!r} is not 'library:name'")
    return problems


def find_reference(key: str) -> Callable[[dict, str], torch.nn.Module] | None:
    """The adapter some paper provides for the reference `lib:name`, if any (papers with a
    `reference.py` only are imported)."""
    from sotazoo.cards import load_catalog

    for entry in load_catalog():
        p = paper(entry.id)
        if p.has("reference") and key in p.references:
            return p.references[key]
    return None
