"""Paper cards: the typed schema of `papers/<id>/card.toml` and its validation.

A card is data, read with `tomllib`; nothing here imports a paper's code, so listing papers and
models stays fast. The dataclasses below are the schema: every key of a card (and of
`catalog.toml`) is checked against the type annotation of its field, nested tables included, so
a field added later is checked too; unknown keys (typos) and missing keys are errors. The rules
on values (known tasks, summary lengths, unique names) come after the types are right.

`validate_card` returns every problem at once, so a card author sees the whole list;
`read_card` (any card file) and `load_card` (a paper's) raise `CardError` naming the file and
listing them. A model's `builder` is checked where `model.py` is imported,
`sotazoo.registry.builder`.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path

from sotazoo.errors import CardError
from sotazoo.tasks import TASKS as TASK_TABLE

SUMMARY_EN_WORDS = (120, 250)
# Chinese has no spaces: a CJK character counts as a unit, about half an English word.
SUMMARY_ZH_CHARS = (200, 600)
TASKS = tuple(TASK_TABLE)  # the task names; what each takes and returns: sotazoo.tasks
CLAIM_KINDS = ("accuracy", "cost", "speed")
READING_LANGS = ("zh", "en")
READING_KINDS = ("blog post", "annotated code", "talk or video", "lecture notes",
                 "official project page")  # fmt: skip
READING_MAX = 5  # entries a card lists: the best few, not a bibliography
WHY_EN_CHARS, WHY_ZH_CHARS = 200, 100  # one line: characters; Chinese by zh_length
# The site's demo widgets, one module each (src/sotazoo/site/static/widgets/<kind>.mjs): what goes
# in, what comes out.
DEMO_KINDS = (
    "classify",  # image -> top-5 labels
    "image2image",  # image -> image, before/after slider
    "inpaint",  # image + user-drawn mask -> image
    "raw2image",  # a dark raw sensor mosaic + amplification ratio -> image
    "detect",  # image -> boxes drawn on a canvas
    "instances",  # image -> boxes and each object's mask painted on a canvas
    "segment",  # image -> a class per pixel, painted over the image
    "generate",  # noise + seed -> image
    "text2image",  # text -> image
    "vqa",  # image + question -> answer
    "augment",  # image -> a method's random variant of it, re-drawn on each click
    "stylize",  # content image + a style image (bundled or the reader's) [+ a random code] -> images
    "recombine",  # a source sample for each factor (of samples held in the graph) -> images
)
# The status columns a card may declare not applicable (`[[not_applicable]]`), with the reason
# the site shows: no public weights exist (a method's artefact is data, not a network), or no
# browser can run the model (the definition of done's exception).
NOT_APPLICABLE_COLUMNS = ("weights", "browser")


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
    """A place where sotazoo departs from the paper, and why (in both languages)."""

    what: str
    why: str
    what_zh: str = ""
    why_zh: str = ""


@dataclass(frozen=True, kw_only=True)
class Demo:
    """The browser demo of a paper: a widget kind, the model it runs and that model's weights.

    The site exports `model` with `weights` (a tag of `papers/<id>/weights.py`) to ONNX; the
    weights entry's `transforms` give the pre-processing and labels. Bundled sample inputs come
    from `samples(out_dir)` in `papers/<id>/demo.py`, when the paper has one.
    """

    kind: str
    model: str  # one of the card's models, or of its methods
    weights: str = ""  # a model's weights tag; a method has none


@dataclass(frozen=True, kw_only=True)
class NotApplicable:
    """A status column that does not apply to the paper, and why, in both languages: shown on
    its page and in `sotazoo status` as "n/a"."""

    column: str  # NOT_APPLICABLE_COLUMNS
    why: str
    why_zh: str


@dataclass(frozen=True, kw_only=True)
class Reading:
    """A `[[reading]]` table: somebody else's explanation of the paper worth reading, and one
    line of ours on what it explains best (the site's "Further reading", `sotazoo info`)."""

    title: str
    url: str  # an address seen in public material, never composed
    lang: str  # the language of the page's text: READING_LANGS
    kind: str  # READING_KINDS
    why: str  # ours, English, one line
    why_zh: str  # ours, Chinese, one line


@dataclass(frozen=True, kw_only=True)
class ReadingNote:
    """`[reading_note]`: the languages no write-up was found in, and why."""

    missing: tuple[str, ...]
    en: str
    zh: str


@dataclass(frozen=True, kw_only=True)
class ExtraInput:
    """An input a model takes after the image (a question, a mask, a class label)."""

    name: str
    shape: tuple[int, ...]  # without the batch dimension
    dtype: str = "float32"  # or "int64"
    high: int = 2  # int64 inputs: example values are drawn from [0, high)
    values: str = "normal"  # float32 example values: "normal" (N(0, 1)) or "binary" (0/1, a mask)


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
    reference: str = ""  # what `sotazoo bench --vs` compares with (sotazoo.bench's specs)
    # Why the reference is one of our own models (a `sotazoo:` spec) and not an independent
    # implementation, in a phrase the bench label quotes: "no installable DBPN: ...".
    reference_note: str = ""
    laptop: bool = False
    extra_inputs: tuple[ExtraInput, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MethodEntry:
    """A registered method: the artefact of a paper that is a procedure applied to data (an
    augmentation policy), not a network. `builder` in `papers/<id>/method.py` makes it:
    `builder(*, rng, **options)` returns a callable from one image to one image, whose only
    randomness is `rng` (a seed or a generator). `sotazoo verify` checks a method where it checks
    a model (it runs, replays its seed, and refuses bad images)."""

    name: str
    builder: str
    task: str
    summary: str  # one line: what the method does
    reference: str = ""  # what `sotazoo bench --vs` compares with: another library's method


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
    key_ideas_zh: tuple[str, ...] = ()  # the same ideas in Chinese, in the same order
    claims: tuple[Claim, ...] = ()
    baselines: tuple[Baseline, ...] = ()
    deviations: tuple[Deviation, ...] = ()
    models: tuple[ModelEntry, ...] = ()
    methods: tuple[MethodEntry, ...] = ()
    not_applicable: tuple[NotApplicable, ...] = ()
    figure: str = ""
    figure_zh: str = ""
    demo: Demo | None = None
    browser_note: str = ""
    browser_note_zh: str = ""
    # prose, like the summaries: not part of the evidence fingerprint (provenance.CARD_PROSE_KEYS)
    reading: tuple[Reading, ...] = ()
    reading_note: ReadingNote | None = None
    # Where the card was read from; set by the loader, not a key of the file.
    path: Path | None = field(default=None, compare=False, metadata={"toml": False})

    def not_applicable_reason(self, column: str) -> NotApplicable | None:
        """The card's reason why `column` of the status does not apply, or None."""
        return next((n for n in self.not_applicable if n.column == column), None)

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
    section_zh: str
    title: str
    arxiv: str
    remark: str
    remark_zh: str  # empty where `remark` is


def zh_length(text: str) -> int:
    """Length of a Chinese text: CJK characters plus Latin words."""
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    latin = len(re.findall(r"[A-Za-z0-9][A-Za-z0-9.\-]*", text))
    return cjk + latin


_BAD = object()  # what `_convert` returns for a value that breaks the schema
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_PLURALS = {str: "strings", int: "integers", float: "numbers", bool: "booleans"}


@functools.cache
def _schema(cls) -> tuple[dict[str, object], frozenset[str]]:
    """The keys a TOML table of `cls` (a schema dataclass) may set, with their types (`X` for
    `X | None`), and the keys it must set."""
    hints = typing.get_type_hints(cls)  # the annotations are strings (`from __future__`)
    keys = [f for f in fields(cls) if f.metadata.get("toml", True)]
    required = [f.name for f in keys if f.default is MISSING and f.default_factory is MISSING]
    return {f.name: _unwrap_optional(hints[f.name]) for f in keys}, frozenset(required)


def _unwrap_optional(hint):
    """X for `X | None` (TOML has no null: None is only ever a default), else `hint`."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint


def _expected(hint) -> str:
    """How a type of the schema reads in an error message ("an array of strings")."""
    hint = _unwrap_optional(hint)
    if typing.get_origin(hint) is tuple:  # `tuple[X, ...]`, a TOML array
        item = typing.get_args(hint)[0]
        return "an array of " + (_PLURALS.get(item) or "tables")
    if is_dataclass(hint):
        return "a table"
    if hint in _TYPE_NAMES:
        return _TYPE_NAMES[hint]
    raise TypeError(f"the card schema has no TOML rule for the type {hint!r}")


def _got(value) -> str:
    """A value read from TOML, as an error message shows it: its TOML type and the value."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    kind = "table" if isinstance(value, dict) else names.get(type(value), type(value).__name__)
    text = str(value) if type(value).__module__ == "datetime" else repr(value)
    return f"{kind} {text[:60] + '...' if len(text) > 60 else text}"


def _convert(value, hint, where: str, problems: list[str]):
    """`value` read from TOML checked against the schema type `hint` (arrays become tuples,
    tables dataclasses), or `_BAD` once every problem inside it is in `problems`."""
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            problems.append(f"{where}: expected {_expected(hint)}, got {_got(value)}")
            return _BAD
        item = typing.get_args(hint)[0]
        items = [_convert(v, item, f"{where}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in items) else tuple(items)
    if is_dataclass(hint):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected {_expected(hint)}, got {_got(value)}")
            return _BAD
        return _build(hint, value, where, problems)
    if hint is float:  # an integer is a fine number (`value = 209`), a boolean is not
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:  # str, int, bool: exactly that type (True is an int to Python, not to TOML)
        ok = type(value) is hint
    if not ok:
        problems.append(f"{where}: expected {_expected(hint)}, got {_got(value)}")
        return _BAD
    if hint is float and not math.isfinite(value):  # TOML has nan and inf
        problems.append(f"{where}: expected a finite number, got {_got(value)}")
        return _BAD
    return value


def _build(cls, data: dict, where: str, problems: list[str], *, label: str = ""):
    """A schema dataclass from a TOML table: every field's type is checked against the
    dataclass annotation, so a field added to the schema is validated without more code.

    Unknown keys (typos) and missing keys are problems too. `where` is the table's path in
    the file ("" for the whole file, which messages call `label`); returns `_BAD` on any
    problem, after listing all of them.
    """
    schema, required = _schema(cls)
    name = where or label
    n_before = len(problems)
    for key in data:
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{name}: unknown key {key!r}{hint}")
    missing = [k for k in schema if k in required and k not in data]
    if missing:
        problems.append(f"{name}: missing keys {missing}")
    values = {
        k: _convert(v, schema[k], f"{where}.{k}" if where else k, problems)
        for k, v in data.items()
        if k in schema
    }
    if len(problems) > n_before:
        return _BAD
    return cls(**values)


def validate_card(data: dict, *, expected_id: str | None = None) -> list[str]:
    """Every schema problem of a parsed card, as readable sentences (empty when valid)."""
    problems: list[str] = []
    parse_card(data, problems, expected_id=expected_id)
    return problems


def parse_card(
    data: dict, problems: list[str], *, expected_id: str | None = None, path: Path | None = None
) -> PaperCard | None:
    """The card of a parsed `card.toml`, or None; its problems are appended to `problems`.

    Types are checked first (every field, nested tables included); the rules on values
    (summary lengths, known tasks, unique names, ...) are checked once the types are right.
    """
    card = _build(PaperCard, data, "", problems, label="card")
    if card is _BAD:
        return None
    card = replace(card, path=path)
    _check_values(card, problems, expected_id)
    return card


def _repeats(values: list[str]) -> list[str]:
    return sorted({v for v in values if values.count(v) > 1})


def _check_values(card: PaperCard, problems: list[str], expected_id: str | None) -> None:
    """The rules on a card's values; its types are already right."""
    if expected_id is not None and card.id != expected_id:
        problems.append(f"id {card.id!r} does not match its folder {expected_id!r}")
    if not 1950 <= card.year <= 2100:
        problems.append(f"year {card.year} is not a publication year like 2017")
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
    if len(card.key_ideas_zh) != len(card.key_ideas):
        problems.append(f"key_ideas_zh has {len(card.key_ideas_zh)} items for "
                        f"{len(card.key_ideas)} key_ideas: one translation each, in order")  # fmt: skip
    for i, text in enumerate(card.key_ideas_zh):
        if not re.search(r"[\u4e00-\u9fff]", text):
            problems.append(f"key_ideas_zh[{i}] has no Chinese text")
    if len(card.claims) < 3:
        problems.append(f"only {len(card.claims)} claims, expected at least 3")
    if repeated := _repeats([c.id for c in card.claims]):
        problems.append(f"claim ids repeat: {repeated}")
    for i, c in enumerate(card.claims):
        for name in ("dataset", "metric", "source", "statement"):
            if not getattr(c, name).strip():
                problems.append(f"claims[{i}].{name} of claim {c.id!r} is empty")
        if c.kind not in CLAIM_KINDS:
            problems.append(f"claims[{i}].kind {c.kind!r} is not one of {CLAIM_KINDS}")
    if card.demo is not None:
        if card.demo.kind not in DEMO_KINDS:
            problems.append(f"demo.kind {card.demo.kind!r} is not one of {DEMO_KINDS}")
        demo_model = next((m for m in (*card.models, *card.methods)
                           if m.name == card.demo.model), None)  # fmt: skip
        if demo_model is None:
            problems.append(
                f"demo.model {card.demo.model!r} is not one of the card's models or methods"
            )
        elif isinstance(demo_model, MethodEntry) and card.demo.weights:
            problems.append(f"demo.weights {card.demo.weights!r}: a method has no weights")
        elif isinstance(demo_model, ModelEntry) and not card.demo.weights:
            problems.append(f"demo.weights is missing: the tag of {demo_model.name}'s weights")
        if demo_model is not None and demo_model.task in TASK_TABLE:
            widget = TASK_TABLE[demo_model.task].widget  # the task table picks the widget
            if card.demo.kind != widget:
                problems.append(
                    f"demo.kind {card.demo.kind!r} does not show a {demo_model.task} model: the "
                    f"task's widget is {widget!r} (sotazoo.tasks)"
                )
    methods, models = [m.name for m in card.methods], {m.name for m in card.models}
    if repeated := sorted(set(_repeats(methods)) | (set(methods) & models)):
        problems.append(f"method names repeat (methods[].name, or a model's name): {repeated}")
    for i, m in enumerate(card.methods):
        at, of = f"methods[{i}]", f"(method {m.name!r})"
        if not m.builder.isidentifier():
            problems.append(f"{at}.builder {m.builder!r} is not a Python function name {of}")
        if m.task not in TASKS:
            problems.append(f"{at}.task {m.task!r} is not one of {TASKS} {of}")
        if not m.summary.strip() or "\n" in m.summary:
            problems.append(f"{at}.summary must be one non-empty line {of}")
    if repeated := _repeats([n.column for n in card.not_applicable]):
        problems.append(f"not_applicable columns repeat: {repeated}")
    for i, n in enumerate(card.not_applicable):
        at = f"not_applicable[{i}]"
        if n.column not in NOT_APPLICABLE_COLUMNS:
            problems.append(f"{at}.column {n.column!r} is not one of {NOT_APPLICABLE_COLUMNS}")
        if not n.why.strip() or not re.search(r"[\u4e00-\u9fff]", n.why_zh):
            problems.append(f"{at} needs why and why_zh: the reason, in both languages")
    if card.demo is not None and card.not_applicable_reason("browser"):
        problems.append("the card has a demo and says the browser column does not apply")
    if bool(card.browser_note) != bool(card.browser_note_zh):
        problems.append("browser_note and browser_note_zh go together (the note in both languages)")
    for i, d in enumerate(card.deviations):
        for name in ("what_zh", "why_zh"):
            if not re.search(r"[\u4e00-\u9fff]", getattr(d, name)):
                problems.append(f"deviations[{i}].{name} is missing (the Chinese of {name[:-3]})")
    _check_reading(card, problems)
    if repeated := _repeats([m.name for m in card.models]):
        problems.append(f"model names repeat (models[].name): {repeated}")
    for i, m in enumerate(card.models):
        at, of = f"models[{i}]", f"(model {m.name!r})"
        if not m.builder.isidentifier():
            problems.append(f"{at}.builder {m.builder!r} is not a Python function name {of}")
        if m.params is not None and not m.params_source:
            problems.append(f"{at} has params but no params_source {of}")
        if not m.laptop and m.params is None:
            problems.append(f"{at} is a paper variant with no reference params {of}")
        if m.reference.startswith("sotazoo:") and not m.reference_note.strip():
            problems.append(
                f"{at}.reference {m.reference!r} is one of our own models: say in "
                f"reference_note why no independent implementation is the reference {of}"
            )
        if m.reference_note and not m.reference:
            problems.append(f"{at} has a reference_note but no reference {of}")
        if m.task not in TASKS:
            problems.append(f"{at}.task {m.task!r} is not one of {TASKS} {of}")
        elif not TASK_TABLE[m.task].accepts_rank(len(m.input_size)):
            problems.append(
                f"{at}.input_size {list(m.input_size)} must have "
                f"{' or '.join(map(str, TASK_TABLE[m.task].ranks))} sizes for a {m.task} model: "
                f"{TASK_TABLE[m.task].takes} {of}"
            )
        if any(n <= 0 for n in m.input_size):
            problems.append(f"{at}.input_size {list(m.input_size)} has a size below 1 {of}")
        for k, x in enumerate(m.extra_inputs):
            at_x = f"{at}.extra_inputs[{k}]"
            if x.dtype not in ("float32", "int64"):
                problems.append(f"{at_x}.dtype {x.dtype!r} must be float32 or int64 {of}")
            if any(n <= 0 for n in x.shape):
                problems.append(f"{at_x}.shape {list(x.shape)} has a size below 1 {of}")
            if x.high < 1:
                problems.append(f"{at_x}.high {x.high} must be at least 1 {of}")
            if x.values not in ("normal", "binary"):
                problems.append(f"{at_x}.values {x.values!r} must be normal or binary {of}")
            elif x.values == "binary" and x.dtype != "float32":
                problems.append(f"{at_x}.values binary needs dtype float32 {of}")


def _check_reading(card: PaperCard, problems: list[str]) -> None:
    """The rules on `[[reading]]` and `[reading_note]`: http(s) addresses, known languages and
    kinds, one-line reasons, no address twice, and every language either linked or noted."""
    if len(card.reading) > READING_MAX:
        problems.append(f"reading has {len(card.reading)} entries, expected at most {READING_MAX}")
    if repeated := _repeats([r.url for r in card.reading]):
        problems.append(f"reading urls repeat: {repeated}")
    for i, r in enumerate(card.reading):
        at = f"reading[{i}]"
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/\S*)?", r.url):
            problems.append(f"{at}.url {r.url!r} is not an http(s) address with a host name")
        if r.lang not in READING_LANGS:
            problems.append(f"{at}.lang {r.lang!r} is not one of {READING_LANGS}")
        if r.kind not in READING_KINDS:
            problems.append(f"{at}.kind {r.kind!r} is not one of {READING_KINDS}")
        for name in ("title", "why", "why_zh"):
            text = getattr(r, name)
            if not text.strip() or "\n" in text:
                problems.append(f"{at}.{name} must be one non-empty line")
        if len(r.why) > WHY_EN_CHARS:
            problems.append(
                f"{at}.why has {len(r.why)} characters, expected at most {WHY_EN_CHARS}"
            )
        if zh_length(r.why_zh) > WHY_ZH_CHARS:
            problems.append(f"{at}.why_zh is longer than {WHY_ZH_CHARS} characters")
        if not re.search(r"[\u4e00-\u9fff]", r.why_zh):
            problems.append(f"{at}.why_zh has no Chinese text")
    note = card.reading_note
    linked = {r.lang for r in card.reading}
    missing = set(note.missing) if note else set()
    for lang in sorted(missing - set(READING_LANGS)):
        problems.append(f"reading_note.missing {lang!r} is not one of {READING_LANGS}")
    for lang in sorted(missing & linked):
        problems.append(f"reading_note.missing lists {lang!r}, but reading has a {lang} entry")
    if card.reading or note:
        for lang in sorted(set(READING_LANGS) - linked - missing):
            problems.append(f"reading has no {lang} entry: add one, or list {lang!r} in "
                            "reading_note.missing and say why")  # fmt: skip
    if note and not (note.en.strip() and re.search(r"[\u4e00-\u9fff]", note.zh)):
        problems.append("reading_note needs en and zh sentences saying what was searched")


def _read_toml(path: Path, what: str) -> dict:
    """The parsed TOML file `path`; `CardError` naming the file when it cannot be read."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CardError(f"no {what} file at {path}") from e
    except UnicodeDecodeError as e:
        raise CardError(f"{path}: not UTF-8 text ({e})") from e
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"{path}: not valid TOML: {e}") from e
    except OSError as e:
        raise CardError(f"{path}: cannot read the {what} file: {e}") from e


def papers_dir() -> Path:
    return Path(str(resources.files("sotazoo") / "papers"))


def card_path(paper_id: str) -> Path:
    """`<folder>/<paper_id>/card.toml` for the first folder of the `sotazoo.papers` package path
    that holds it (the package's own folder first; a folder appended to `sotazoo.papers.__path__`
    adds papers from outside the package), else where it would be in the package."""
    import sotazoo.papers

    for root in sotazoo.papers.__path__:
        path = Path(root) / paper_id / "card.toml"
        if path.is_file():
            return path
    return papers_dir() / paper_id / "card.toml"


def read_card(path: Path) -> PaperCard:
    """Read and validate a card file, `<folder named by the card's id>/card.toml`.

    `load_card` reads the cards of the package this way; pass any other path to check a card
    you are writing. `CardError` names the file and lists every problem.
    """
    path = Path(path)
    if not path.is_file():
        raise CardError(f"no card file at {path}")
    data = _read_toml(path, "card")
    problems: list[str] = []
    card = parse_card(data, problems, expected_id=path.parent.name, path=path)
    if card is not None and card.figure:
        if not (path.parent / "figure.py").is_file():
            problems.append(f"figure is set but {path.parent / 'figure.py'} does not exist")
        if not card.figure_zh:
            problems.append("figure has an English caption but no figure_zh")
    if problems or card is None:
        raise CardError(f"{path} breaks the card schema:\n  - " + "\n  - ".join(problems))
    return card


@functools.cache
def load_card(paper_id: str) -> PaperCard:
    """Read and validate `papers/<paper_id>/card.toml`; `CardError` lists every problem."""
    path = card_path(paper_id)
    if not path.is_file():
        raise CardError(f"paper {paper_id!r} has no card yet (expected {path})")
    return read_card(path)


@dataclass(frozen=True, kw_only=True)
class _Catalog:
    """The schema of `catalog.toml`: an array of `[[paper]]` tables."""

    paper: tuple[CatalogEntry, ...]


def catalog_path() -> Path:
    return Path(str(resources.files("sotazoo") / "catalog.toml"))


def read_catalog(path: Path) -> tuple[CatalogEntry, ...]:
    """Read and validate a catalog file; `CardError` names the file and lists every problem."""
    path = Path(path)
    problems: list[str] = []
    catalog = _build(_Catalog, _read_toml(path, "catalog"), "", problems, label="catalog")
    if catalog is not _BAD:
        for i, p in enumerate(catalog.paper):
            # An id names a folder and a module: `papers/<id>/`, `sotazoo.papers.<id>`.
            if not re.fullmatch(r"[a-z][a-z0-9_]*", p.id):
                problems.append(f"paper[{i}].id {p.id!r} is not a lower-case Python name")
        if repeated := _repeats([p.id for p in catalog.paper]):
            problems.append(f"paper ids repeat (paper[].id): {repeated}")
        if not catalog.paper:
            problems.append("no [[paper]] tables")
    if problems:
        raise CardError(f"{path} breaks the catalog schema:\n  - " + "\n  - ".join(problems))
    return catalog.paper


@functools.cache
def load_catalog() -> tuple[CatalogEntry, ...]:
    """The 27 papers of the page, in the page's order."""
    return read_catalog(catalog_path())
