"""The bad-input corpus, cards and catalog: each case breaks one field of a valid file (the SENet
card, a copy of the catalog) and the loader must raise `CardError` naming the file, the field,
what it expected and what it got; never a raw traceback or a silently wrong value.

A card is written into `<tmp>/senet/card.toml` and read with `sotazoo.cards.read_card`; a catalog
into `<tmp>/catalog.toml`, read with `read_catalog`. The code before these functions existed had
only `load_card(<id>)` and `load_catalog()`, reading the package's own folder: there the same
files are read by pointing those (module-level `papers_dir`, `resources`) at the temporary
folder, so the corpus measures the code before and after alike.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

import sotazoo
from sotazoo import cards
from sotazoo.errors import CardError
from sotazoo.papers import _contract as contract

from .harness import Case, check, cli

PACKAGE = Path(sotazoo.__file__).parent
SENET = tomllib.loads((PACKAGE / "papers" / "senet" / "card.toml").read_text(encoding="utf-8"))
CATALOG = tomllib.loads((PACKAGE / "catalog.toml").read_text(encoding="utf-8"))
CARD_FILE = r"senet[/\\]card\.toml"  # the file every card case's message must name
CATALOG_FILE = r"catalog\.toml"


def toml_dumps(data: dict) -> str:
    """A tiny TOML writer: every top-level key on one line, tables and arrays inline."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)  # nan and inf read back as TOML's nan and inf
        if isinstance(v, str):
            return json.dumps(v)  # JSON's escapes are TOML's
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        return str(v)  # a date: TOML writes it as Python prints it

    return "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in data.items())


def read_card_file(path: Path):
    """What a user gets reading the card at `path` (`<tmp>/<id>/card.toml`)."""
    read_card = getattr(cards, "read_card", None)
    if read_card is not None:
        return read_card(path)
    # Before `read_card`: `load_card(<id>)`, pointed at the temporary papers folder.
    cards.load_card.cache_clear()
    try:
        with mock.patch.object(cards, "papers_dir", lambda: path.parent.parent):
            return cards.load_card(path.parent.name)
    finally:
        cards.load_card.cache_clear()


def read_catalog_file(path: Path):
    """What a user gets reading the catalog at `path` (`<tmp>/catalog.toml`)."""
    read_catalog = getattr(cards, "read_catalog", None)
    if read_catalog is not None:
        return read_catalog(path)
    # Before `read_catalog`: `load_catalog()` read `resources.files("sotazoo") / "catalog.toml"`.
    cards.load_catalog.cache_clear()
    try:
        with mock.patch.object(cards, "resources", SimpleNamespace(files=lambda _: path.parent)):
            return cards.load_catalog()
    finally:
        cards.load_catalog.cache_clear()


def card_text(text: str | bytes, *, figure: bool = True) -> Callable[[], object]:
    """A case's `run`: the card `text` in `<tmp>/senet/`, with a `figure.py` beside it."""

    def run():
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "senet"
            folder.mkdir()
            if figure:
                (folder / "figure.py").write_text("")
            path = folder / "card.toml"
            if isinstance(text, bytes):
                path.write_bytes(text)
            elif text is not None:
                path.write_text(text, encoding="utf-8")
            return read_card_file(path)

    return run


def card(edit: Callable[[dict], object]) -> Callable[[], object]:
    """A case's `run`: the SENet card with one `edit` applied to its parsed data."""
    data = copy.deepcopy(SENET)
    edit(data)
    return card_text(toml_dumps(data))


def catalog_text(text: str | None) -> Callable[[], object]:
    def run():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "catalog.toml"
            if text is not None:
                path.write_text(text, encoding="utf-8")
            return read_catalog_file(path)

    return run


def catalog(edit: Callable[[dict], object]) -> Callable[[], object]:
    data = copy.deepcopy(CATALOG)
    edit(data)
    return catalog_text(toml_dumps(data))


def setter(*keys, value) -> Callable[[dict], None]:
    """An edit that sets data[k0][k1]...[kn] = value."""

    def edit(data: dict) -> None:
        for k in keys[:-1]:
            data = data[k]
        data[keys[-1]] = value

    return edit


def deleter(*keys) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        for k in keys[:-1]:
            data = data[k]
        del data[keys[-1]]

    return edit


def renamer(*keys, to: str) -> Callable[[dict], None]:
    """An edit that renames a key in place (a typo), keeping the order of the table."""

    def edit(data: dict) -> None:
        for k in keys[:-1]:
            data = data[k]
        items = [(to if k == keys[-1] else k, v) for k, v in data.items()]
        data.clear()
        data.update(items)

    return edit


def expect_card(path: str, expected: str, got: str) -> str:
    """The words of a type error: the file, the field's path, what was expected, what came."""
    return rf"{CARD_FILE}.*\b{path}: expected {expected}, got {got}"


def control_card():
    """The unchanged card, written by `toml_dumps` and read back: it loads, equal to the real
    one (so every other case breaks exactly what it says)."""
    loaded = card(lambda d: None)()
    assert loaded == cards.load_card("senet"), "the round trip changed the card"
    return loaded


def control_catalog():
    assert catalog(lambda d: None)() == cards.load_catalog()


def builder_named(builder: str) -> Callable[[], object]:
    """A case's `run`: look up SENet's first model with the card's `builder` set to `builder`
    (the card entry is replaced, the real `papers/senet/model.py` is imported)."""

    def run():
        p = contract.Paper("senet")  # a fresh contract object, its card replaced
        models = tuple(
            dataclasses.replace(m, builder=builder) if m.name == "seresnet50" else m
            for m in p.card.models
        )
        with mock.patch.object(p, "card", dataclasses.replace(p.card, models=models)):
            return p.builder("seresnet50")

    return run


def every_card_loads():
    for pid in sotazoo.list_papers():
        assert sotazoo.get_paper(pid).id == pid
    assert len(sotazoo.list_models()) > 0


def status_and_info_run():
    assert "senet" in cli("status")()
    assert "Squeeze-and-Excitation" in cli("info", "senet")()


# fmt: off
CASES = [
    # ------------------------------------------------------------ what must keep working
    Case("control-card-round-trip", control_card, expect="ok"),
    Case("control-catalog-round-trip", control_catalog, expect="ok"),
    Case("every-real-card-loads", every_card_loads, expect="ok"),
    Case("cli-status-and-info", status_and_info_run, expect="ok"),
    # ------------------------------------------------------------ the file itself
    Case("card-missing", card_text(None), rf"no card.*{CARD_FILE}", CardError),
    Case("card-not-toml", card_text('id = "senet\n'), rf"{CARD_FILE}.*not valid TOML", CardError),
    Case("card-not-utf8", card_text(b'id = "s\xe9net"\n'), rf"{CARD_FILE}.*UTF-8", CardError),
    Case("card-empty", card_text(""), rf"{CARD_FILE}.*missing keys.*'id'", CardError),
    # ------------------------------------------------------------ top-level fields: types
    Case("authors-string", card(setter("authors", value="Jie Hu, Li Shen")),
         expect_card("authors", "an array of strings", "string 'Jie Hu, Li Shen'"), CardError),
    Case("authors-item-int", card(setter("authors", 1, value=42)),
         expect_card(r"authors\[1\]", "a string", "integer 42"), CardError),
    Case("year-string", card(setter("year", value="2017")),
         expect_card("year", "an integer", "string '2017'"), CardError),
    Case("year-float", card(setter("year", value=2017.0)),
         expect_card("year", "an integer", "float 2017.0"), CardError),
    Case("year-bool", card(setter("year", value=True)),
         expect_card("year", "an integer", "boolean True"), CardError),
    Case("year-out-of-range", card(setter("year", value=17)),
         rf"{CARD_FILE}.*year 17 is not a publication year", CardError),
    Case("arxiv-float", card(setter("arxiv", value=1709.01507)),
         expect_card("arxiv", "a string", "float 1709.01507"), CardError),
    Case("title-array", card(setter("title", value=["Squeeze", "Excitation"])),
         expect_card("title", "a string", "array"), CardError),
    Case("summary-en-int", card(setter("summary_en", value=5)),
         expect_card("summary_en", "a string", "integer 5"), CardError),
    Case("summary-zh-table", card(setter("summary_zh", value={"text": "挤压"})),
         expect_card("summary_zh", "a string", "table"), CardError),
    Case("key-ideas-string", card(setter("key_ideas", value="one idea")),
         expect_card("key_ideas", "an array of strings", "string 'one idea'"), CardError),
    Case("bibtex-missing", card(deleter("bibtex")),
         rf"{CARD_FILE}.*missing keys \['bibtex'\]", CardError),
    Case("figure-zh-int", card(setter("figure_zh", value=3)),
         expect_card("figure_zh", "a string", "integer 3"), CardError),
    Case("remark-date", card(setter("remark", value=tomllib.loads("d = 2017-09-05")["d"])),
         expect_card("remark", "a string", "date"), CardError),
    # ------------------------------------------------------------ top-level fields: names
    Case("typo-summary-key", card(renamer("summary_en", to="sumary_en")),
         rf"{CARD_FILE}.*unknown key 'sumary_en' \(did you mean 'summary_en'\?\)", CardError),
    Case("extra-key", card(setter("homepage", value="https://example.org")),
         rf"{CARD_FILE}.*unknown key 'homepage'", CardError),
    Case("path-is-not-a-key", card(setter("path", value="/etc/passwd")),
         rf"{CARD_FILE}.*unknown key 'path'", CardError),
    Case("id-not-its-folder", card(setter("id", value="senet2")),
         rf"{CARD_FILE}.*id 'senet2' does not match its folder 'senet'", CardError),
    # ------------------------------------------------------------ [[claims]]
    Case("claims-a-table", card(setter("claims", value=SENET["claims"][0])),
         expect_card("claims", "an array of tables", "table"), CardError),
    Case("claims-item-string", card(setter("claims", 0, value="23.29% top-1")),
         expect_card(r"claims\[0\]", "a table", "string"), CardError),
    Case("claim-value-string", card(setter("claims", 0, "value", value="23.29")),
         expect_card(r"claims\[0\]\.value", "a number", "string '23.29'"), CardError),
    Case("claim-value-bool", card(setter("claims", 0, "value", value=True)),
         expect_card(r"claims\[0\]\.value", "a number", "boolean True"), CardError),
    Case("claim-value-nan", card(setter("claims", 2, "value", value=float("nan"))),
         expect_card(r"claims\[2\]\.value", "a finite number", "float nan"), CardError),
    Case("claim-baseline-inf", card(setter("claims", 1, "baseline_value", value=float("inf"))),
         expect_card(r"claims\[1\]\.baseline_value", "a finite number", "float inf"), CardError),
    Case("claim-gflops-string", card(setter("claims", 0, "gflops", value="3.87")),
         expect_card(r"claims\[0\]\.gflops", "a number", "string '3.87'"), CardError),
    Case("claim-lower-is-better-string", card(setter("claims", 0, "lower_is_better", value="yes")),
         expect_card(r"claims\[0\]\.lower_is_better", "true or false", "string 'yes'"), CardError),
    Case("claim-verified-int", card(setter("claims", 3, "verified", value=0)),
         expect_card(r"claims\[3\]\.verified", "true or false", "integer 0"), CardError),
    Case("claim-id-int", card(setter("claims", 4, "id", value=7)),
         expect_card(r"claims\[4\]\.id", "a string", "integer 7"), CardError),
    Case("claim-source-missing", card(deleter("claims", 5, "source")),
         rf"{CARD_FILE}.*claims\[5\]: missing keys \['source'\]", CardError),
    Case("claim-key-typo", card(renamer("claims", 0, "baseline_value", to="baseline_valu")),
         rf"{CARD_FILE}.*claims\[0\]: unknown key 'baseline_valu'", CardError),
    Case("claim-ids-repeat", card(setter("claims", 1, "id", value=SENET["claims"][0]["id"])),
         rf"{CARD_FILE}.*claim ids repeat.*se_resnet50_top1", CardError),
    Case("claim-kind-unknown", card(setter("claims", 0, "kind", value="accuracyy")),
         rf"{CARD_FILE}.*claims\[0\]\.kind 'accuracyy' is not one of", CardError),
    # ------------------------------------------------------------ [[baselines]], [[deviations]]
    Case("baseline-params-string", card(setter("baselines", 7, "params_m", value="25.6M")),
         expect_card(r"baselines\[7\]\.params_m", "a number", "string '25.6M'"), CardError),
    Case("baseline-value-missing", card(deleter("baselines", 0, "value")),
         rf"{CARD_FILE}.*baselines\[0\]: missing keys \['value'\]", CardError),
    Case("deviation-what-int", card(setter("deviations", 0, "what", value=1)),
         expect_card(r"deviations\[0\]\.what", "a string", "integer 1"), CardError),
    Case("deviations-strings", card(setter("deviations", value=["laptop scale"])),
         expect_card(r"deviations\[0\]", "a table", "string 'laptop scale'"), CardError),
    # ------------------------------------------------------------ [[models]]
    Case("model-builder-int", card(setter("models", 0, "builder", value=5)),
         expect_card(r"models\[0\]\.builder", "a string", "integer 5"), CardError),
    Case("model-builder-not-a-name", card(setter("models", 0, "builder", value="se-resnet50")),
         rf"{CARD_FILE}.*models\[0\].*builder 'se-resnet50' is not a Python function name",
         CardError),
    Case("model-input-size-string", card(setter("models", 0, "input_size", value="3x224x224")),
         expect_card(r"models\[0\]\.input_size", "an array of integers", "string '3x224x224'"),
         CardError),
    Case("model-input-size-float", card(setter("models", 0, "input_size", 1, value=224.0)),
         expect_card(r"models\[0\]\.input_size\[1\]", "an integer", "float 224.0"), CardError),
    Case("model-input-size-zero", card(setter("models", 6, "input_size", 1, value=0)),
         rf"{CARD_FILE}.*models\[6\].*input_size \[3, 0, 32\] has a size below 1", CardError),
    Case("model-params-float", card(setter("models", 0, "params", value=28.1e6)),
         expect_card(r"models\[0\]\.params", "an integer", "float 28100000.0"), CardError),
    Case("model-laptop-string", card(setter("models", 6, "laptop", value="true")),
         expect_card(r"models\[6\]\.laptop", "true or false", "string 'true'"), CardError),
    Case("model-name-missing", card(deleter("models", 1, "name")),
         rf"{CARD_FILE}.*models\[1\]: missing keys \['name'\]", CardError),
    Case("model-key-typo", card(renamer("models", 0, "params_source", to="param_source")),
         rf"{CARD_FILE}.*models\[0\]: unknown key 'param_source' \(did you mean 'params_source'",
         CardError),
    Case("model-names-repeat", card(setter("models", 1, "name", value="seresnet50")),
         rf"{CARD_FILE}.*model names repeat.*seresnet50", CardError),
    Case("model-task-unknown", card(setter("models", 0, "task", value="classify")),
         rf"{CARD_FILE}.*models\[0\].*task 'classify' is not one of", CardError),
    Case("models-a-string", card(setter("models", value="seresnet50")),
         expect_card("models", "an array of tables", "string 'seresnet50'"), CardError),
    Case("extra-inputs-strings", card(setter("models", 6, "extra_inputs", value=["mask"])),
         expect_card(r"models\[6\]\.extra_inputs\[0\]", "a table", "string 'mask'"), CardError),
    Case("extra-input-shape-string",
         card(setter("models", 6, "extra_inputs", value=[{"name": "q", "shape": "7"}])),
         expect_card(r"models\[6\]\.extra_inputs\[0\]\.shape", "an array of integers",
                     "string '7'"), CardError),
    Case("extra-input-dtype-int",
         card(setter("models", 6, "extra_inputs", value=[{"name": "q", "shape": [7], "dtype": 64}])),
         expect_card(r"models\[6\]\.extra_inputs\[0\]\.dtype", "a string", "integer 64"), CardError),
    Case("extra-input-high-zero",
         card(setter("models", 6, "extra_inputs",
                     value=[{"name": "q", "shape": [7], "dtype": "int64", "high": 0}])),
         rf"{CARD_FILE}.*extra_inputs\[0\].*high 0 must be at least 1", CardError),
    Case("extra-input-values-unknown",
         card(setter("models", 6, "extra_inputs",
                     value=[{"name": "m", "shape": [7], "values": "uniform"}])),
         rf"{CARD_FILE}.*extra_inputs\[0\].*values 'uniform' must be normal or binary",
         CardError),
    Case("extra-input-binary-int",
         card(setter("models", 6, "extra_inputs",
                     value=[{"name": "m", "shape": [7], "dtype": "int64", "values": "binary"}])),
         rf"{CARD_FILE}.*extra_inputs\[0\].*values binary needs dtype float32", CardError),
    # ------------------------------------------------------------ [demo]
    Case("demo-a-string", card(setter("demo", value="classify")),
         expect_card("demo", "a table", "string 'classify'"), CardError),
    Case("demo-an-array", card(setter("demo", value=[SENET["demo"]])),
         expect_card("demo", "a table", "array"), CardError),
    Case("demo-kind-int", card(setter("demo", "kind", value=1)),
         expect_card(r"demo\.kind", "a string", "integer 1"), CardError),
    Case("demo-weights-missing", card(deleter("demo", "weights")),
         rf"{CARD_FILE}.*demo\.weights is missing: the tag of seresnet_mini's weights", CardError),
    Case("demo-key-typo", card(renamer("demo", "model", to="modle")),
         rf"{CARD_FILE}.*demo: unknown key 'modle' \(did you mean 'model'\?\)", CardError),
    # ------------------------------------------------------------ a builder model.py lacks
    Case("builder-missing", builder_named("seresnet5O"),
         rf"{CARD_FILE}.*'seresnet50'.*'seresnet5O'.*no function.*did you mean seresnet50",
         CardError),
    Case("builder-not-callable", builder_named("nn"),
         rf"{CARD_FILE}.*'seresnet50'.*'nn'.*module, not a function", CardError),
    # ------------------------------------------------------------ catalog.toml
    Case("catalog-missing", catalog_text(None), rf"no catalog file.*{CATALOG_FILE}", CardError),
    Case("catalog-not-toml", catalog_text("[[paper]\nid = 1\n"),
         rf"{CATALOG_FILE}.*not valid TOML", CardError),
    Case("catalog-empty", catalog_text(""), rf"{CATALOG_FILE}.*missing keys \['paper'\]",
         CardError),
    Case("catalog-paper-a-table", catalog(setter("paper", value=CATALOG["paper"][0])),
         rf"{CATALOG_FILE}.*paper: expected an array of tables, got table", CardError),
    Case("catalog-title-int", catalog(setter("paper", 3, "title", value=5)),
         rf"{CATALOG_FILE}.*paper\[3\]\.title: expected a string, got integer 5", CardError),
    Case("catalog-arxiv-float", catalog(setter("paper", 0, "arxiv", value=1805.09501)),
         rf"{CATALOG_FILE}.*paper\[0\]\.arxiv: expected a string, got float", CardError),
    Case("catalog-remark-missing", catalog(deleter("paper", 2, "remark")),
         rf"{CATALOG_FILE}.*paper\[2\]: missing keys \['remark'\]", CardError),
    Case("catalog-key-typo", catalog(renamer("paper", 1, "section", to="sectoin")),
         rf"{CATALOG_FILE}.*paper\[1\]: unknown key 'sectoin' \(did you mean 'section'\?\)",
         CardError),
    Case("catalog-top-level-typo", catalog(renamer("paper", to="papers")),
         rf"{CATALOG_FILE}.*catalog: unknown key 'papers' \(did you mean 'paper'\?\)", CardError),
    Case("catalog-ids-repeat", catalog(setter("paper", 1, "id", value="autoaugment")),
         rf"{CATALOG_FILE}.*paper ids repeat.*autoaugment", CardError),
    Case("catalog-id-a-path", catalog(setter("paper", 1, "id", value="../../etc")),
         rf"{CATALOG_FILE}.*paper\[1\]\.id '\.\./\.\./etc' is not a lower-case Python name",
         CardError),
    Case("catalog-no-papers", catalog(setter("paper", value=[])),
         rf"{CATALOG_FILE}.*no \[\[paper\]\] tables", CardError),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case):
    check(case)


def test_every_schema_type_has_a_rule():
    """A field added to the schema with a type the TOML reader has no rule for fails here, not
    when a card first sets it."""
    for cls in (cards.PaperCard, cards.Claim, cards.Baseline, cards.Deviation, cards.Demo,
                cards.ExtraInput, cards.ModelEntry, cards.CatalogEntry):  # fmt: skip
        for name, hint in cards._schema(cls)[0].items():
            assert cards._expected(hint), f"{cls.__name__}.{name}"
