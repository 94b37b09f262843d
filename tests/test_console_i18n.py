"""The console's strings through gettext catalogs (Flask-Babel): the Khmer catalog holds every key,
drafts carry the review flag, `t()` is a shim over gettext, dict-style strings convert with one
command, and dates and waits come out in CLDR's Khmer formats."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from babel.messages.pofile import read_po
from flask_babel import force_locale, gettext

from hotline import catalog
from hotline.web.staff import i18n
from hotline.web.staff.base import _local_time, _waiting


def test_every_key_has_a_khmer_catalog_entry_flagged_for_native_speaker_review() -> None:
    assert catalog.missing(i18n.EN) == []
    with catalog.po_path("km").open("rb") as f:
        entries = [m for m in read_po(f) if m.id]
    assert entries and all(catalog.REVIEW_FLAG in m.flags for m in entries)
    assert all(catalog.REVIEW_COMMENT in m.user_comments for m in entries)
    assert i18n.KM_REVIEWED is False
    assert i18n.KM_PENDING == {}  # drafts waiting for `make i18n` belong in the catalog before merge


def test_t_goes_through_gettext_and_tells_apart_one_english_text_with_two_khmer() -> None:
    assert i18n.t("queue", "km") == i18n.translations("km").gettext("Case queue") == "បញ្ជីករណីរង់ចាំ"
    assert i18n.t("queue", "en") == "Case queue" and i18n.t("no_such_key", "km") == "no_such_key"
    assert (i18n.t("to", "km"), i18n.t("rep_to", "km")) == ("ទៅ", "ដល់")  # msgctxt = the key
    assert i18n.t("account_created", "km", email="a@b.org").count("a@b.org") == 1


def test_flask_babel_compiles_the_catalog_at_startup_and_translates_in_a_request(app) -> None:
    mo = Path(app.instance_path) / "translations" / "km" / "LC_MESSAGES" / "messages.mo"
    assert mo.is_file() and mo.stat().st_size > 10_000
    with app.test_request_context("/staff/login"), force_locale("km"):
        assert gettext("Case queue") == "បញ្ជីករណីរង់ចាំ"
    with app.test_request_context("/staff/login"):
        assert gettext("Case queue") == "Case queue"


def test_dates_and_waits_use_cldr_khmer_formats(app) -> None:
    at = datetime(2026, 12, 2, 1, 19, tzinfo=UTC)  # 08:19 in Phnom Penh
    with app.test_request_context("/staff/"):
        assert _local_time(at, "en") == "Dec 2, 2026 08:19"
        assert _local_time(at, "km") == "2 ធ្នូ 2026 08:19"
        assert _local_time(None, "km") == "-"
    # CLDR joins a number and its unit with a no-break space: "22" never ends a line without "min".
    assert [_waiting(timedelta(minutes=m), "km").replace("\xa0", " ") for m in (22, 30 * 60, 3 * 24 * 60)] == [
        "22 នាទី", "30 ម៉ោង 0 នាទី", "3 ថ្ងៃ"]
    assert [_waiting(timedelta(minutes=m), "en").replace("\xa0", " ") for m in (22, 30 * 60 + 5, 3 * 24 * 60)] == [
        "22 min", "30 hr 5 min", "3 days"]


def test_dict_style_strings_from_another_branch_convert_into_catalog_entries(tmp_path: Path) -> None:
    root = tmp_path / "translations"
    shutil.copytree(catalog.TRANSLATIONS, root)
    other = tmp_path / "i18n.py"
    other.write_text('EN = {"studio": "Content studio"}\n'
                     'KM: dict[str, str] = {\n'
                     '    "studio": "ស្ទូឌីយោខ្លឹមសារ",  # review: native-speaker\n'
                     '    "queue": "ផ្សេង",\n'
                     '}\n', encoding="utf-8")
    drafts, flagged = catalog.dicts_in(other)
    assert drafts == {"studio": "ស្ទូឌីយោខ្លឹមសារ", "queue": "ផ្សេង"} and flagged == {"studio"}
    cat, added = catalog.build({**i18n.EN, "studio": "Content studio"}, drafts, flagged, root=root)
    catalog.write(cat, root=root)
    assert added == ["studio"]  # "queue" is already translated: the catalog's entry is kept
    again = catalog.read_catalog("km", root)
    studio = again.get("Content studio")
    assert studio is not None and studio.string == "ស្ទូឌីយោខ្លឹមសារ"
    assert catalog.REVIEW_FLAG in studio.flags and "The dict marked this line for review." in studio.user_comments
    assert again.get("Case queue").string == "បញ្ជីករណីរង់ចាំ"  # type: ignore[union-attr]
    assert (root / "messages.pot").is_file()
    mo = catalog.compile_to(tmp_path / "built", root) / "km" / "LC_MESSAGES" / "messages.mo"
    assert mo.is_file()


def test_templates_can_use_gettext_directly_in_the_request_language(app) -> None:
    template = app.jinja_env.from_string('{{ _("Case queue") }} · {{ gettext("Log out") }}')
    with app.test_request_context("/staff/"), force_locale("km"):
        assert template.render() == f'{i18n.t("queue", "km")} · {i18n.t("logout", "km")}'


def test_a_dict_style_draft_shows_before_it_is_moved_into_the_catalog(monkeypatch) -> None:
    monkeypatch.setitem(i18n.EN, "studio_title", "Content studio")
    monkeypatch.setitem(i18n.KM_PENDING, "studio_title", "ស្ទូឌីយោខ្លឹមសារ")
    assert i18n.t("studio_title", "km") == "ស្ទូឌីយោខ្លឹមសារ"
    assert i18n.t("studio_title", "en") == "Content studio"
    assert "studio_title" in catalog.missing(i18n.EN)  # and `make i18n` would move it
