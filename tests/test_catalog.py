"""The catalog: a valid card for each of the 27 papers, in both languages, with figures."""

import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sotazoo.cards import SUMMARY_EN_WORDS, SUMMARY_ZH_CHARS, load_card, load_catalog, zh_length
from sotazoo.figures import render_figure
from sotazoo.registry import list_papers

CATALOG = [p.id for p in load_catalog()]
# Papers whose core idea is a structure: their card must carry our drawing of it (issue 3).
STRUCTURAL = {
    "senet": "SE block",
    "dbpn": "back-projection unit",
    "partialconv": "partial convolution",
    "retinanet": "focal-loss curve",
    "progan": "progressive growing",
    "mask_rcnn": "RoIAlign",
    "deeplabv3plus": "atrous separable convolution",
    "relation_networks": "relation module",
    "prnet": "position map",
}
ABSTRACT_8GRAMS = (
    Path(__file__).resolve().parents[2] / "shared" / "hooks" / "seed-abstract-8grams.txt"
)


def test_every_paper_of_the_list_has_a_card():
    assert list_papers() == CATALOG  # the same 27 ids, in the page's order


@pytest.mark.parametrize("entry", load_catalog(), ids=lambda p: p.id)
def test_card_agrees_with_the_list(entry):
    card = load_card(entry.id)
    assert (card.section, card.arxiv, card.remark) == (entry.section, entry.arxiv, entry.remark)


@pytest.mark.parametrize("paper_id", CATALOG)
def test_card_content(paper_id):
    card = load_card(paper_id)
    assert SUMMARY_EN_WORDS[0] <= len(card.summary_en.split()) <= SUMMARY_EN_WORDS[1]
    assert SUMMARY_ZH_CHARS[0] <= zh_length(card.summary_zh) <= SUMMARY_ZH_CHARS[1]
    assert len(re.findall(r"[\u4e00-\u9fff]", card.summary_zh)) > 150  # Chinese, not English
    assert 3 <= len(card.key_ideas) <= 6
    assert len(card.claims) >= 3
    for c in card.claims:
        assert c.dataset.strip() and c.metric.strip() and c.source.strip(), c.id
        assert isinstance(c.value, int | float) and not isinstance(c.value, bool), c.id
    assert card.bibtex.lstrip().startswith("@")
    for b in card.baselines:
        assert b.name and b.dataset and b.metric and b.source


@pytest.mark.skipif(not ABSTRACT_8GRAMS.is_file(), reason="shared/hooks not beside the repo")
@pytest.mark.parametrize("paper_id", CATALOG)
def test_summaries_are_in_our_own_words(paper_id):
    """No run of 8 words of a summary stands in the paper's abstract (the hook's hashes)."""
    known = set(ABSTRACT_8GRAMS.read_text().split())
    card = load_card(paper_id)
    words = re.findall(r"[a-z0-9]+", card.summary_en.lower())
    shared = [
        " ".join(words[i : i + 8])
        for i in range(len(words) - 7)
        if hashlib.sha1(" ".join(words[i : i + 8]).encode()).hexdigest()[:12] in known
    ]
    assert shared == []


def test_structural_papers_have_a_figure():
    missing = [f"{pid} ({what})" for pid, what in STRUCTURAL.items() if not load_card(pid).figure]
    assert missing == []


@pytest.mark.parametrize("paper_id", [p for p in list_papers() if load_card(p).figure])
def test_figure_renders_to_svg(paper_id, tmp_path):
    out = render_figure(paper_id, tmp_path / "fig.svg")
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) >= 5  # something was drawn
    again = render_figure(paper_id, tmp_path / "again.svg")
    assert out.read_bytes() == again.read_bytes()  # deterministic: the site build is reproducible
