"""Paper cards: the typed schema of `papers/<id>/card.toml` and its validation.

A card is data, read with `tomllib`; nothing here imports a paper's code, so listing papers and
models stays fast. `validate_card` returns every problem at once, so a card author sees the whole
list, and `load_card` raises `CardError` with that list.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import MISSING, dataclass, field
from importlib import resources
from pathlib import Path

from sotazoo.errors import CardError

SUMMARY_EN_WORDS = (120, 250)
# Chinese has no spaces: a CJK character counts as a unit, about half an English word.
SUMMARY_ZH_CHARS = (200, 600)
TASKS = (
    "classification",
    "detection",
    "segmentation",
    "super_resolution",
    "restoration",
    "inpainting",
    "generation",
    "translation",
    "style_transfer",
    "augmentation",
    "captioning",
    "vqa",
    "depth",
    "face3d",
    "body3d",
    "text_to_image",
)
CLAIM_KINDS = ("accuracy", "cost", "speed")
# The site's demo widgets (src/sotazoo/site/static/sotazoo.mjs): what goes in, what comes out.
DEMO_KINDS = (
    "classify",  # image -> top-5 labels
    "image2image",  # image -> image, before/after slider
    "inpaint",  # image + user-drawn mask -> image
    "detect",  # image -> boxes drawn on a canvas
    "generate",  # noise + seed -> image
    "text2image",  # text -> image
    "vqa",  # image + question -> answer
)


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One headline result of the paper, as data."""

    id: str
    statement: str
    dataset: str
    metric: str
    value: float
    source: str
    split: str = ""
    unit: str = ""
    variant: str = ""
    lower_is_better: bool = False
    baseline_value: float | None = None
    kind: str = "accuracy"
    gflops: float | None = None  # the variant's multiply-adds per image, for the site's charts
    verified: bool = True  # false: not read in the paper itself (the card says why, in a comment)


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """A classic model the paper compares against, with its number from the same table."""

    name: str
    dataset: str
    metric: str
    value: float
    source: str
    unit: str = ""
    gflops: float | None = None
    params_m: float | None = None
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class Deviation:
    """A place where sotazoo departs from the paper, and why."""

    what: str
    why: str


@dataclass(frozen=True, kw_only=True)
class Demo:
    """The browser demo of a paper: a widget kind, the model it runs and that model's weights.

    The site exports `model` with `weights` (a tag of `papers/<id>/weights.py`) to ONNX; the
    weights entry's `transforms` give the pre-processing and labels. Bundled sample inputs come
    from `samples(out_dir)` in `papers/<id>/demo.py`, when the paper has one.
    """

    kind: str
    model: str
    weights: str


@dataclass(frozen=True, kw_only=True)
class ExtraInput:
    """An input a model takes after the image (a question, a mask, a class label)."""

    name: str
    shape: tuple[int, ...]  # without the batch dimension
    dtype: str = "float32"  # or "int64"
    high: int = 2  # int64 inputs: example values are drawn from [0, high)


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """A registered model: its name, its builder in `papers/<id>/model.py`, and what it checks.

    `params` is the reference parameter count and `params_source` where that number comes from
    (the paper's table or the official code). Laptop-scale models have no reference (`laptop`).
    """

    name: str
    builder: str
    task: str
    input_size: tuple[int, ...]  # (C, H, W); a generator's: (Z,), the length of its noise
    params: int | None = None
    params_source: str = ""
    gflops: float | None = None
    gflops_source: str = ""
    reference: str = ""
    laptop: bool = False
    extra_inputs: tuple[ExtraInput, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PaperCard:
    """Everything a reader needs to understand one paper, and what the code checks against."""

    id: str
    title: str
    authors: tuple[str, ...]
    year: int
    venue: str
    arxiv: str
    section: str
    remark: str
    task: str
    code: str
    weights_url: str
    bibtex: str
    summary_en: str
    summary_zh: str
    key_ideas: tuple[str, ...]
    claims: tuple[Claim, ...] = ()
    baselines: tuple[Baseline, ...] = ()
    deviations: tuple[Deviation, ...] = ()
    models: tuple[ModelEntry, ...] = ()
    figure: str = ""
    figure_zh: str = ""
    demo: Demo | None = None
    browser_note: str = ""
    path: Path | None = field(default=None, compare=False)

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"paper {self.id!r} has no claim {claim_id!r}")


@dataclass(frozen=True, kw_only=True)
class CatalogEntry:
    """A paper of the original page: its place in the list, whether or not it has a card yet."""

    id: str
    section: str
    title: str
    arxiv: str
    remark: str


def zh_length(text: str) -> int:
    """Length of a Chinese text: CJK characters plus Latin words."""
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    latin = len(re.findall(r"[A-Za-z0-9][A-Za-z0-9.\-]*", text))
    return cjk + latin


def _typed(cls, data: dict, where: str, problems: list[str]):
    """Build a dataclass from a TOML table, collecting unknown and missing keys."""
    fields = cls.__dataclass_fields__
    unknown = sorted(set(data) - set(fields))
    if unknown:
        problems.append(f"{where}: unknown keys {unknown}")
    missing = [
        n
        for n, f in fields.items()
        if n not in data and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        problems.append(f"{where}: missing keys {missing}")
        return None
    try:
        return cls(**{k: v for k, v in data.items() if k in fields})
    except TypeError as e:
        problems.append(f"{where}: {e}")
        return None


def validate_card(data: dict, *, expected_id: str | None = None) -> list[str]:
    """Every schema problem of a parsed card, as readable sentences (empty when valid)."""
    problems: list[str] = []
    parse_card(data, problems, expected_id=expected_id)
    return problems


def parse_card(
    data: dict, problems: list[str], *, expected_id: str | None = None, path: Path | None = None
) -> PaperCard | None:
    data = dict(data)
    claims = [
        _typed(Claim, c, f"claims[{i}]", problems) for i, c in enumerate(data.pop("claims", []))
    ]
    baselines = [
        _typed(Baseline, b, f"baselines[{i}]", problems)
        for i, b in enumerate(data.pop("baselines", []))
    ]
    deviations = [
        _typed(Deviation, d, f"deviations[{i}]", problems)
        for i, d in enumerate(data.pop("deviations", []))
    ]
    models = []
    for i, m in enumerate(data.pop("models", [])):
        m = dict(m)
        if "input_size" in m:
            m["input_size"] = tuple(m["input_size"])
        if "extra_inputs" in m:
            extras = [
                _typed(
                    ExtraInput,
                    {**x, "shape": tuple(x.get("shape", ()))},
                    f"models[{i}].extra_inputs[{k}]",
                    problems,
                )  # fmt: skip
                for k, x in enumerate(m["extra_inputs"])
            ]
            m["extra_inputs"] = tuple(x for x in extras if x)
        models.append(_typed(ModelEntry, m, f"models[{i}]", problems))
    demo = data.pop("demo", None)
    if demo is not None:
        demo = _typed(Demo, demo, "demo", problems)
    for key in ("authors", "key_ideas"):
        if key in data:
            data[key] = tuple(data[key])
    card = _typed(PaperCard, data, "card", problems)
    if card is None:
        return None
    card = PaperCard(
        **{
            **{k: getattr(card, k) for k in card.__dataclass_fields__},
            "claims": tuple(c for c in claims if c),
            "baselines": tuple(b for b in baselines if b),
            "deviations": tuple(d for d in deviations if d),
            "models": tuple(m for m in models if m),
            "demo": demo,
            "path": path,
        }
    )
    _check_values(card, problems, expected_id)
    return card


def _check_values(card: PaperCard, problems: list[str], expected_id: str | None) -> None:
    if expected_id is not None and card.id != expected_id:
        problems.append(f"id {card.id!r} does not match its folder {expected_id!r}")
    if not re.fullmatch(r"\d{4}\.\d{4,5}", card.arxiv):
        problems.append(f"arxiv {card.arxiv!r} is not an arXiv id like 1709.01507")
    if card.task not in TASKS:
        problems.append(f"task {card.task!r} is not one of {TASKS}")
    n_en = len(card.summary_en.split())
    if not SUMMARY_EN_WORDS[0] <= n_en <= SUMMARY_EN_WORDS[1]:
        problems.append(f"summary_en has {n_en} words, expected {SUMMARY_EN_WORDS}")
    n_zh = zh_length(card.summary_zh)
    if not SUMMARY_ZH_CHARS[0] <= n_zh <= SUMMARY_ZH_CHARS[1]:
        problems.append(f"summary_zh has {n_zh} characters, expected {SUMMARY_ZH_CHARS}")
    if not 3 <= len(card.key_ideas) <= 6:
        problems.append(f"key_ideas has {len(card.key_ideas)} items, expected 3 to 6")
    if len(card.claims) < 3:
        problems.append(f"only {len(card.claims)} claims, expected at least 3")
    ids = [c.id for c in card.claims]
    if len(set(ids)) != len(ids):
        problems.append(f"claim ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    for c in card.claims:
        for name in ("dataset", "metric", "source", "statement"):
            if not str(getattr(c, name)).strip():
                problems.append(f"claim {c.id!r} has an empty {name}")
        if not isinstance(c.value, int | float) or isinstance(c.value, bool):
            problems.append(f"claim {c.id!r} value {c.value!r} is not a number")
        if c.kind not in CLAIM_KINDS:
            problems.append(f"claim {c.id!r} kind {c.kind!r} is not one of {CLAIM_KINDS}")
    if card.demo is not None:
        if card.demo.kind not in DEMO_KINDS:
            problems.append(f"demo kind {card.demo.kind!r} is not one of {DEMO_KINDS}")
        if card.demo.model not in [m.name for m in card.models]:
            problems.append(f"demo model {card.demo.model!r} is not one of the card's models")
    names = [m.name for m in card.models]
    if len(set(names)) != len(names):
        problems.append("model names repeat")
    for m in card.models:
        if m.params is not None and not m.params_source:
            problems.append(f"model {m.name!r} has params but no params_source")
        if not m.laptop and m.params is None:
            problems.append(f"model {m.name!r} is a paper variant with no reference params")
        if m.task == "generation" and len(m.input_size) != 1:
            problems.append(f"generator {m.name!r}: input_size must be (Z,), its noise vector")
        elif m.task != "generation" and len(m.input_size) != 3:
            problems.append(f"model {m.name!r} input_size must be (C, H, W)")
        for x in m.extra_inputs:
            if x.dtype not in ("float32", "int64"):
                problems.append(
                    f"model {m.name!r} input {x.name!r}: dtype must be float32 or int64"
                )


def papers_dir() -> Path:
    return Path(str(resources.files("sotazoo") / "papers"))


def card_path(paper_id: str) -> Path:
    return papers_dir() / paper_id / "card.toml"


@functools.cache
def load_card(paper_id: str) -> PaperCard:
    """Read and validate `papers/<paper_id>/card.toml`; `CardError` lists every problem."""
    path = card_path(paper_id)
    if not path.is_file():
        raise CardError(f"paper {paper_id!r} has no card yet (expected {path})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"{path}: not valid TOML: {e}") from e
    problems: list[str] = []
    card = parse_card(data, problems, expected_id=paper_id, path=path)
    if card is not None and card.figure:
        if not (path.parent / "figure.py").is_file():
            problems.append(f"figure is set but {path.parent / 'figure.py'} does not exist")
        if not card.figure_zh:
            problems.append("figure has an English caption but no figure_zh")
    if problems or card is None:
        raise CardError(f"{path} breaks the card schema:\n  - " + "\n  - ".join(problems))
    return card


@functools.cache
def load_catalog() -> tuple[CatalogEntry, ...]:
    """The 27 papers of the page, in the page's order."""
    text = (resources.files("sotazoo") / "catalog.toml").read_text(encoding="utf-8")
    return tuple(CatalogEntry(**p) for p in tomllib.loads(text)["paper"])
