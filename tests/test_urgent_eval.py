"""The labelled evaluation set (tests/data/urgent_eval.yaml) holds its shape, and the matcher holds its
floor on it: recall >= 0.95 and false pages <= 2 %, per language. bench/urgent_eval.py prints the
figures per split and category, and the texts it gets wrong."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.urgent_eval import band, load_set, score
from hotline.menus import keywords
from hotline.menus.danger import CATEGORIES
from tests.test_sms_webhook import SCRIPTS

ITEMS = load_set()
LANGS = ("km", "km_latn", "th", "en", "mixed")
RECALL_FLOOR, FALSE_PAGE_CEILING = 0.95, 0.02


@pytest.fixture(scope="module")
def ks() -> keywords.KeywordSet:
    return keywords.load(SCRIPTS)


def test_the_set_has_its_shape() -> None:
    assert len(ITEMS) >= 400
    assert len({i["id"] for i in ITEMS}) == len(ITEMS)
    assert len({i["text"] for i in ITEMS}) == len(ITEMS)
    for item in ITEMS:
        assert item["lang"] in LANGS and item["split"] in ("dev", "test"), item
        assert item["label"] in ("urgent", "possible", "not_urgent"), item
        assert (item["label"] == "urgent") == ("category" in item), item
        assert item.get("category", "other") in (*CATEGORIES, "other"), item
    counts = Counter((i["lang"], i["label"]) for i in ITEMS)
    for lang in LANGS:
        assert counts[lang, "urgent"] >= 15 and counts[lang, "not_urgent"] >= 14, lang
    assert {i["split"] for i in ITEMS if i["source"] == "issue"} == {"dev"}
    assert Counter(i["split"] for i in ITEMS)["test"] >= 100


@pytest.mark.parametrize("lang", LANGS)
def test_recall_and_false_pages_hold_their_floor(ks: keywords.KeywordSet, lang: str) -> None:
    counts, wrong = score([i for i in ITEMS if i["lang"] == lang], ks.match)
    c = counts["all"]
    missed = [(i["id"], i["text"]) for i, m in wrong if i["label"] == "urgent" and band(m) != "urgent"]
    paged = [(i["id"], i["text"]) for i, m in wrong if i["label"] != "urgent" and band(m) == "urgent"]
    assert c["paged"] / c["urgent"] >= RECALL_FLOOR, missed
    assert c["false"] / c["other"] <= FALSE_PAGE_CEILING, paged


def test_every_example_of_the_issue_is_classified_exactly(ks: keywords.KeywordSet) -> None:
    issue = [i for i in ITEMS if i["source"] == "issue"]
    assert len(issue) == 23  # the issue's 22 examples and the brief's "ot ban luy khe"
    _, wrong = score(issue, ks.match)
    assert wrong == []


def test_an_urgent_text_pages_with_its_category(ks: keywords.KeywordSet) -> None:
    counts, _ = score(ITEMS, ks.match)
    assert counts["all"]["cat_ok"] / counts["all"]["paged"] >= 0.95
