import re
import tomllib
from pathlib import Path

import pytest

from sotazoo.cards import card_path, load_card, load_catalog, validate_card, zh_length
from sotazoo.registry import list_papers

LIST_MD = Path(__file__).resolve().parents[2] / "shared" / "papers" / "LIST.md"


def test_catalog_has_the_27_papers_of_the_page():
    ids = [p.id for p in load_catalog()]
    assert len(ids) == 27 and len(set(ids)) == 27
    assert ids[0] == "autoaugment" and ids[12] == "senet" and ids[-1] == "face3d_disentangle"


@pytest.mark.skipif(not LIST_MD.is_file(), reason="shared/papers/LIST.md not beside the repo")
def test_catalog_matches_the_shared_list():
    rows = re.findall(r"^\| \d+ \| (.*?) \| `(\w+)` \|", LIST_MD.read_text(), flags=re.M)
    assert [(p.section, p.id) for p in load_catalog()] == rows


@pytest.mark.parametrize("paper_id", list_papers())
def test_every_card_validates(paper_id):
    card = load_card(paper_id)
    assert card.id == paper_id
    assert len(card.claims) >= 3
    for c in card.claims:
        assert c.dataset and c.metric and c.source and isinstance(c.value, int | float)


def _senet_data() -> dict:
    return tomllib.loads(card_path("senet").read_text(encoding="utf-8"))


def test_validation_reports_every_problem():
    data = _senet_data()
    del data["title"]
    data["arxiv"] = "not-an-id"
    data["claims"] = data["claims"][:2]
    data["summary_en"] = "too short"
    problems = validate_card(data, expected_id="senet")
    text = "\n".join(problems)
    assert "missing keys ['title']" in text


def test_validation_reports_value_problems():
    data = _senet_data()
    data["arxiv"] = "not-an-id"
    data["claims"] = data["claims"][:2]
    data["summary_en"] = "too short"
    data["task"] = "dreaming"
    problems = "\n".join(validate_card(data, expected_id="senet"))
    for needle in ("arxiv", "only 2 claims", "summary_en has 2 words", "task 'dreaming'"):
        assert needle in problems


def test_claim_without_source_is_rejected():
    data = _senet_data()
    del data["claims"][0]["source"]
    data["claims"][1]["value"] = "twenty"
    problems = "\n".join(validate_card(data))
    assert "claims[0]: missing keys ['source']" in problems
    assert "claims[1].value: expected a number, got string 'twenty'" in problems


def test_model_without_reference_params_is_rejected():
    data = _senet_data()
    del data["models"][0]["params"]
    assert any("no reference params" in p for p in validate_card(data))


def test_a_reference_of_ours_must_say_why_in_reference_note():
    """A `sotazoo:` reference is one of our own models: the card must say why no independent
    implementation is the reference (bench's label quotes it); a note needs a reference."""
    data = _senet_data()
    data["models"][0]["reference"] = "sotazoo:seresnet50:reduction=8"
    assert any("reference_note" in p for p in validate_card(data))
    data["models"][0]["reference_note"] = "no installable SENet"
    assert validate_card(data, expected_id="senet") == []
    data["models"][0]["reference_note"] = 3
    assert any("reference_note: expected" in p for p in validate_card(data))  # typed by the schema
    data = _senet_data()
    data["models"][0].pop("reference")
    data["models"][0]["reference_note"] = "why"
    assert any("reference_note but no reference" in p for p in validate_card(data))


def test_the_cards_whose_references_are_ours_say_why():
    """The papers benchmarked against a model of ours (no installable implementation) and their
    notes, which name the network they lack."""
    notes = {
        m.name: m.reference_note
        for pid in list_papers()
        for m in load_card(pid).models
        if m.reference.startswith("sotazoo:")
    }
    assert set(notes) == {"ddbpn_x4", "sagan_128", "progan_1024", "rn_sort_of_clevr",
                          "pconv_unet_256", "dpig_market"}  # fmt: skip
    for name, paper in [("ddbpn_x4", "DBPN"), ("sagan_128", "SAGAN"), ("progan_1024", "ProGAN"),
                        ("rn_sort_of_clevr", "Relation Network"),
                        ("pconv_unet_256", "PConv network"), ("dpig_market", "DPIG")]:  # fmt: skip
        assert notes[name].startswith(f"no installable {paper}")


def test_zh_length_counts_characters_and_latin_words():
    assert zh_length("挤压和激励 SE block") == 7


# -------------------------------------------------------------------------- further reading

_READING_EN = {"title": "A walkthrough", "url": "https://example.org/se-block", "lang": "en",
               "kind": "blog post", "why": "Derives the block step by step.",
               "why_zh": "逐步推导这个模块。"}  # fmt: skip
_READING_ZH = {**_READING_EN, "url": "https://example.cn/senet", "lang": "zh"}


@pytest.mark.parametrize("paper_id", list_papers())
def test_every_card_has_a_reading_list(paper_id):
    """2 to 5 links, each language linked or its absence explained; fewer than 2 only with a
    note saying what was searched (some papers have no write-up beyond the authors' own)."""
    card = load_card(paper_id)
    assert 1 <= len(card.reading) <= 5
    assert len(card.reading) >= 2 or card.reading_note is not None
    langs = {r.lang for r in card.reading} | set(
        card.reading_note.missing if card.reading_note else ()
    )
    assert langs == {"zh", "en"}


def test_a_reading_list_in_both_languages_validates():
    data = {**_senet_data(), "reading": [_READING_EN, _READING_ZH]}
    assert validate_card(data, expected_id="senet") == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"url": "ftp://example.org/x"}, "is not an http(s) address"),
        ({"url": "javascript:alert(1)"}, "is not an http(s) address"),
        ({"url": "https://example.org/a b"}, "is not an http(s) address"),
        ({"lang": "fr"}, "reading[0].lang 'fr' is not one of ('zh', 'en')"),
        ({"kind": "tweet"}, "reading[0].kind 'tweet' is not one of"),
        ({"why": " "}, "reading[0].why must be one non-empty line"),
        ({"title": "two\nlines"}, "reading[0].title must be one non-empty line"),
        ({"why": "x" * 201}, "reading[0].why has 201 characters"),
        ({"why_zh": "only English"}, "reading[0].why_zh has no Chinese text"),
        ({"url": 3}, "reading[0].url: expected a string, got integer 3"),
    ],
)
def test_a_bad_reading_entry_is_named(change, needle):
    data = {**_senet_data(), "reading": [{**_READING_EN, **change}, _READING_ZH]}
    assert needle in "\n".join(validate_card(data, expected_id="senet"))


def test_each_language_is_linked_or_noted():
    data = {**_senet_data(), "reading": [_READING_EN]}
    assert "reading has no zh entry" in "\n".join(validate_card(data, expected_id="senet"))
    note = {"missing": ["zh"], "en": "Searched; none deeper than the abstract.", "zh": "没有找到。"}
    assert validate_card({**data, "reading_note": note}, expected_id="senet") == []
    note = {**note, "missing": ["en"]}
    problems = "\n".join(validate_card({**data, "reading_note": note}, expected_id="senet"))
    assert "reading_note.missing lists 'en', but reading has a en entry" in problems
    many = [{**_READING_EN, "url": f"https://example.org/{i}"} for i in range(5)] + [_READING_ZH]
    problems = "\n".join(validate_card({**data, "reading": many}, expected_id="senet"))
    assert "reading has 6 entries, expected at most 5" in problems
    twice = {**data, "reading": [_READING_EN, _READING_EN, _READING_ZH]}
    assert "reading urls repeat" in "\n".join(validate_card(twice, expected_id="senet"))


_BLOCK = """
[[reading]]
title = "A walkthrough"
url = "https://example.org/se-block"
lang = "en"
kind = "blog post"
why = "Derives the block step by step."
why_zh = "逐步推导这个模块。"

[reading_note]
missing = ["zh"]
en = "Searched in Chinese; nothing deeper than the abstract."
zh = "没有找到比摘要更深入的中文讲解。"
"""


def _card_folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "senet"
    folder.mkdir(exist_ok=True)
    (folder / "card.toml").write_text(text, encoding="utf-8")
    (folder / "figure.py").touch()  # the card names a figure
    return folder


def test_prose_edits_leave_the_evidence_fingerprint_unchanged(tmp_path):
    """A card's words for the reader (a translation, a typo, a new link) change no result:
    editing them keeps every record of the paper current; a change to its data does not."""
    from sotazoo.cards import read_card
    from sotazoo.provenance import folder_fingerprint

    text = card_path("senet").read_text(encoding="utf-8").split("\n[[reading]]")[0] + "\n"
    before = folder_fingerprint(_card_folder(tmp_path, text))
    data = tomllib.loads(text)
    first_table = re.search(r"^\[", text, flags=re.M).start()
    prose = (
        text.replace(data["summary_en"], data["summary_en"].replace("the", "teh", 1)).replace(
            data["bibtex"], data["bibtex"] + " "
        )
        + _BLOCK  # a reading list at the end ...
    )
    card = read_card(_card_folder(tmp_path, prose) / "card.toml")
    assert card.reading[0].url == "https://example.org/se-block" and card.reading_note.missing
    assert folder_fingerprint(tmp_path / "senet") == before
    # ... or anywhere: TOML tables may come in any order
    moved = text[:first_table] + _BLOCK.lstrip("\n") + "\n" + text[first_table:]
    read_card(_card_folder(tmp_path, moved) / "card.toml")
    assert folder_fingerprint(tmp_path / "senet") == before
    for change in (("year = 2017", "year = 2016"), ("value = ", "value = 1")):
        assert change[0] in text
        changed = text.replace(*change, 1)
        assert folder_fingerprint(_card_folder(tmp_path, changed)) != before, change


def test_info_and_the_paper_page_show_the_reading_list(capsys, tmp_path):
    import dataclasses

    from sotazoo.cards import Reading, ReadingNote
    from sotazoo.site.pages import _reading_section

    card = dataclasses.replace(
        load_card("senet"),
        reading=(Reading(**_READING_EN),),
        reading_note=ReadingNote(missing=("zh",), en="None found.", zh="没有找到。"),
    )
    html = _reading_section(card)
    assert "延伸阅读" in html and "Further reading" in html
    assert 'href="https://example.org/se-block" target="_blank" rel="noopener noreferrer"' in html
    assert "英文" in html and "逐步推导这个模块。" in html and "没有找到。" in html


# -------------------------------------------------------------------------- methods, n/a columns


def _autoaugment_data() -> dict:
    return tomllib.loads(card_path("autoaugment").read_text(encoding="utf-8"))


def test_a_method_paper_validates_with_a_method_demo_and_a_reason():
    data = _autoaugment_data()
    assert [m["name"] for m in data["methods"]] and data["not_applicable"]
    demo = {"kind": "augment", "model": data["methods"][0]["name"]}
    assert validate_card({**data, "demo": demo}, expected_id="autoaugment") == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"not_applicable": [{"column": "oracle", "why": "x", "why_zh": "没有"}]},
         "not_applicable[0].column 'oracle' is not one of ('weights', 'browser')"),
        ({"not_applicable": [{"column": "weights", "why": "none", "why_zh": "none"}]},
         "not_applicable[0] needs why and why_zh"),
        ({"demo": {"kind": "augment", "model": "autoaugment_svhn", "weights": "sotazoo"}},
         "demo.weights 'sotazoo': a method has no weights"),
        ({"demo": {"kind": "classify", "model": "autoaugment_svhn"}},
         "the task's widget is 'augment'"),
        ({"methods": [{"name": "a", "builder": "a", "task": "augmentation", "summary": "x"}] * 2},
         "method names repeat"),
        ({"methods": [{"name": "a", "builder": "a-b", "task": "flying", "summary": ""}]},
         "methods[0].builder 'a-b' is not a Python function name"),
        ({"demo": {"kind": "augment", "model": "autoaugment_svhn"},
          "not_applicable": [{"column": "browser", "why": "x", "why_zh": "没有"}]},
         "the card has a demo and says the browser column does not apply"),
    ],
)  # fmt: skip
def test_a_bad_method_or_not_applicable_entry_is_named(change, needle):
    problems = "\n".join(validate_card({**_autoaugment_data(), **change}, expected_id="autoaugment"))
    assert needle in problems


def test_a_model_demo_still_needs_its_weights_tag():
    data = {**_senet_data(), "demo": {"kind": "classify", "model": "seresnet_mini"}}
    assert "demo.weights is missing" in "\n".join(validate_card(data, expected_id="senet"))
