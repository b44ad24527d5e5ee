"""Name -> builder, paper id -> module: the registry, read from the cards.

Model names are declared in each card's `[[models]]` table, so listing models reads TOML and
imports no paper code; a paper's `model.py` is imported only when one of its models is built.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sotazoo.cards import MethodEntry, ModelEntry, PaperCard, card_path, load_card, load_catalog
from sotazoo.errors import CardError, UnknownNameError, WeightsError
from sotazoo.papers._contract import default_load, paper
from sotazoo.weights import Weights, fetch, load_into

if TYPE_CHECKING:
    import torch


def _suggest(name: str, choices: list[str], what: str) -> UnknownNameError:
    close = difflib.get_close_matches(name, choices, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    if len(choices) <= 12:  # few enough to name them all
        return UnknownNameError(
            f"unknown {what} {name!r}{hint} (the {what if what.endswith('s') else what + 's'}: "
            f"{', '.join(choices)})"
        )
    listing = {"model": "sotazoo list --models", "weights": "sotazoo list --weights"}
    shows = f"`{listing.get(what, 'sotazoo list')}` shows them all"
    return UnknownNameError(f"unknown {what} {name!r}{hint} ({shows})")


def paper_ids() -> list[str]:
    return [p.id for p in load_catalog()]


def carded_paper_ids() -> list[str]:
    return [pid for pid in paper_ids() if card_path(pid).is_file()]


def get_paper(paper_id: str) -> PaperCard:
    """The card of a paper of the list; `UnknownNameError` or `CardError` otherwise."""
    if paper_id not in paper_ids():
        raise _suggest(paper_id, paper_ids(), "paper")
    return load_card(paper_id)


def list_papers() -> list[str]:
    """Ids of the papers that have a card, in the order of the original page."""
    return carded_paper_ids()


@functools.cache
def _index() -> dict[str, tuple[str, ModelEntry | MethodEntry]]:
    """Every model and method name of the cards -> (paper id, card entry): one name, one entry."""
    index: dict[str, tuple[str, ModelEntry | MethodEntry]] = {}
    for pid in carded_paper_ids():
        card = load_card(pid)
        for entry in (*card.models, *card.methods):
            if entry.name in index:
                raise CardError(
                    f"{entry.name!r} is declared by both {index[entry.name][0]!r} and {pid!r}"
                )
            index[entry.name] = (pid, entry)
    return index


def _model_index() -> dict[str, tuple[str, ModelEntry]]:
    return {n: v for n, v in _index().items() if isinstance(v[1], ModelEntry)}


def _method_index() -> dict[str, tuple[str, MethodEntry]]:
    return {n: v for n, v in _index().items() if isinstance(v[1], MethodEntry)}


def model_entry(name: str) -> tuple[str, ModelEntry]:
    """(paper id, card entry) of a model name."""
    found = _index().get(name)
    if found is None or not isinstance(found[1], ModelEntry):
        raise _suggest(name, list(_model_index()), "model")
    return found


def list_models(
    pattern: str = "*", *, paper: str | None = None, task: str | None = None
) -> list[str]:
    """Model names, optionally filtered by a glob pattern, a paper id or a task."""
    if paper is not None and paper not in paper_ids():
        raise _suggest(paper, paper_ids(), "paper")
    tasks = sorted({entry.task for _, entry in _model_index().values()})
    if task is not None and task not in tasks:
        raise _suggest(task, tasks, "task")
    return sorted(
        name
        for name, (pid, entry) in _model_index().items()
        if fnmatch.fnmatch(name, pattern)
        and (paper is None or pid == paper)
        and (task is None or entry.task == task)
    )


def method_entry(name: str) -> tuple[str, MethodEntry]:
    """(paper id, card entry) of a method name."""
    found = _index().get(name)
    if found is None or not isinstance(found[1], MethodEntry):
        raise _suggest(name, list(_method_index()), "method")
    return found


def list_methods(pattern: str = "*", *, paper: str | None = None) -> list[str]:
    """Method names (`[[methods]]` of the cards: procedures such as augmentation policies)."""
    if paper is not None and paper not in paper_ids():
        raise _suggest(paper, paper_ids(), "paper")
    return sorted(name for name, (pid, _) in _method_index().items()
                  if fnmatch.fnmatch(name, pattern) and paper in (None, pid))  # fmt: skip


def create_method(name: str, *, rng: int | object = 0, **options) -> Callable:
    """Method `name` made by its builder: a callable from one image to one image whose only
    randomness is `rng` (a seed, or a generator of the kind the method documents)."""
    pid, _ = method_entry(name)
    return paper(pid).method_builder(name)(rng=rng, **options)


def builder(name: str) -> Callable[..., torch.nn.Module]:
    """The builder function of model `name`: `builder = "..."` of its card, in `model.py`
    (`CardError` naming the card, the model and the function when it is missing)."""
    pid, _ = model_entry(name)
    return paper(pid).builder(name)


def paper_weights(paper_id: str) -> tuple[Weights, ...]:
    return paper(paper_id).weights


def list_weights(name: str) -> list[Weights]:
    pid, _ = model_entry(name)
    return [w for w in paper_weights(pid) if w.model == name]


def get_weights(name: str, tag: str) -> Weights:
    """The weights entry `tag` (`official`, `sotazoo`, or `<model>.<tag>`) of a model."""
    tag = tag.removeprefix(f"{name}.")
    found = {w.tag: w for w in list_weights(name)}
    if tag not in found:
        raise _suggest(f"{name}.{tag}", [w.name for w in found.values()], "weights")
    return found[tag]


def _resolve_converter(spec: str) -> Callable:
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def resolve_weights(name: str, weights: str | Path) -> Weights | Path:
    """What `weights=` names for model `name`: a weights entry, or a checkpoint file.

    The rule has no dependence on what happens to lie in the current folder: a `Path` is a
    file; a string that is one of the model's tags (`official`, `sotazoo`, or `<model>.<tag>`)
    is that entry, even when a file of that name exists; any other string is a file when it
    looks like one (it holds a `/`, a `.` or starts with `~`), else an unknown tag.
    """
    if isinstance(weights, os.PathLike):
        return Path(weights).expanduser()
    if not isinstance(weights, str) or not weights:
        raise WeightsError(
            f"weights must be a tag or a checkpoint path, got {weights!r} ({type(weights).__name__})"
        )
    tags = {w.tag: w for w in list_weights(name)}
    tag = weights.removeprefix(f"{name}.")
    if tag in tags:
        return tags[tag]
    if any(c in weights for c in "/\\.") or weights.startswith("~"):
        return Path(weights).expanduser()
    err = _suggest(f"{name}.{tag}", [w.name for w in tags.values()], "weights")
    if Path(weights).exists():  # a file of that name is here, but a bare word is a tag
        err.args = (f"{err.args[0]}; to load the file {weights!r} here, pass ./{weights}",)
    raise err


def create_model(
    name: str, *, weights: str | Path | None = None, progress: bool = True, **overrides
) -> torch.nn.Module:
    """Build a model by name, in eval mode when weights are loaded.

    Args:
        name: a registered model name (`sotazoo.list_models()`).
        weights: None for random initialisation; a tag of the model's weights (`"official"`,
            `"sotazoo"`), fetched into the cache and checked by sha256; or the path of a
            checkpoint (a `Path`, or a string with a `/` or a `.` in it), whose key layout (ours
            or a known third-party one) is recognised and converted.
        progress: show a progress bar while downloading.
        **overrides: fields of the model's config (e.g. `num_classes=10`).
    """
    build = builder(name)
    if weights is None:
        return build(**overrides)
    pid, _ = model_entry(name)
    which = resolve_weights(name, weights)
    if isinstance(which, Weights):
        path = fetch(which, progress=progress)
    else:
        path = which
        if not path.is_file():
            what = "a folder, not a weight file:" if path.is_dir() else "no weight file at"
            raise WeightsError(
                f"{what} {path.resolve()} (weights tags of {name!r}: "
                f"{[w.tag for w in list_weights(name)] or 'none'})"
            )
    if isinstance(which, Weights) and which.converter:  # an entry with its own key map
        sd, needed = default_load(path, _resolve_converter(which.converter))
    else:  # the paper's reader and converter (sotazoo.papers._contract: convert.load)
        sd, needed = paper(pid).load(path, name, overrides)
    for key, value in needed.items():
        if key in overrides and overrides[key] != value:
            raise WeightsError(
                f"{path} needs {key}={value!r} but {key}={overrides[key]!r} was asked for"
            )
        overrides.setdefault(key, value)
    model = build(**overrides)
    load_into(model, sd, str(path))
    return model.eval()


def example_inputs(
    entry: ModelEntry, batch: int = 2, *, size: tuple[int, int, int] | None = None, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Random inputs a model of `entry` takes: the image batch, then its `extra_inputs`."""
    from sotazoo.inputs import random_inputs

    return random_inputs(size or entry.input_size, entry.extra_inputs, batch, seed=seed)
