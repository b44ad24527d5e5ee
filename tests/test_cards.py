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
    """The four papers benchmarked against a model of ours (no installable implementation) and
    their notes, which name the paper they lack."""
    notes = {
        m.name: m.reference_note
        for pid in list_papers()
        for m in load_card(pid).models
        if m.reference.startswith("sotazoo:")
    }
    assert set(notes) == {"ddbpn_x4", "sagan_128", "progan_1024", "rn_sort_of_clevr"}
    for name, paper in [("ddbpn_x4", "DBPN"), ("sagan_128", "SAGAN"), ("progan_1024", "ProGAN"),
                        ("rn_sort_of_clevr", "Relation Network")]:  # fmt: skip
        assert notes[name].startswith(f"no installable {paper}")


def test_zh_length_counts_characters_and_latin_words():
    assert zh_length("挤压和激励 SE block") == 7
