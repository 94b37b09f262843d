"""The content studio: versions, publish/rollback, validation next to the field, concurrent edits,
the translators' CSV, roles, audit rows, and a publish reaching a second web process."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline.menus.loader import load_script
from hotline.models import AuditEvent, ContentItem, ContentReview, ContentVersion
from hotline.resources import resources_of
from hotline.services import content
from hotline.web.content_live import live
from tests.conftest import new_call_sid
from tests.test_console import login, make_staff

ROOT = Path(__file__).resolve().parent.parent
KM_REPLY = "ផ្ញើ HELP ដើម្បីមើលបញ្ជី។ CALL យើងតេទៅវិញ។"
FAKE_MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64


@pytest.fixture
def store(settings) -> content.ContentStore:
    return content.store_for(settings)


@pytest.fixture
def editor(db, client):
    user = make_staff(db, "content@example.org", role="content", name="Sophea")
    login(client, "content@example.org")
    return user


def _csrf(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def _revision(html: str) -> str:
    m = re.search(r'name="revision" value="(\d+)"', html)
    assert m
    return m.group(1)


def _sms(twilio, body: str) -> str:
    reply = twilio.post("/twilio/sms", twilio.sms_params(body, from_="+85512345600")).get_data(as_text=True)
    return re.sub(r"reply_to=SM[0-9a-f]+", "", reply)


# -- the model ----------------------------------------------------------------------------------------

def test_import_then_render_gives_the_same_script_and_replies(db, store) -> None:
    v = content.import_tree(db, ROOT, store)
    db.commit()
    snap = content.snapshot(db, v)
    assert v.number == 1
    assert snap.script == load_script(ROOT / "ivr_scripts" / "voice")
    from hotline.menus import keywords

    assert snap.keywords.replies == keywords.load(ROOT / "ivr_scripts" / "sms").replies


def test_export_writes_a_folder_that_imports_back_to_the_same_content(db, store, tmp_path) -> None:
    v = content.import_tree(db, ROOT, store)
    content.add_take(db, store, prompt_id="main_menu", language="km", audio=FAKE_MP3, duration_ms=4100,
                     source="upload", staff_id=None)
    v2 = content.publish(db, None)
    db.commit()
    content.write_tree(db, v2, tmp_path / "out", store)
    manifest = json.loads((tmp_path / "out" / "audio" / "manifest.json").read_text())
    assert manifest["prompts"]["km"]["main_menu"]["status"] == "recorded"
    assert (tmp_path / "out" / "audio" / "km" / "main_menu.mp3").read_bytes() == FAKE_MP3
    assert load_script(tmp_path / "out" / "ivr_scripts" / "voice") == load_script(ROOT / "ivr_scripts" / "voice")
    v3 = content.import_tree(db, tmp_path / "out", store)
    assert content.changed_keys(db, v2, v3) == [("audio", "main_menu", "km")]  # a new take row, same file
    assert content.recorded_audio(db, v3)[("km", "main_menu")]["sha256"] == content.recorded_audio(db, v2)[
        ("km", "main_menu")]["sha256"]
    assert v.number == 1


def test_add_take_puts_a_recording_in_the_draft_needing_review(db, store) -> None:
    first = content.next_needing_recording(db, "km")
    assert first is not None and first.text
    take = content.add_take(db, store, prompt_id=first.prompt_id, language="km", audio=FAKE_MP3, duration_ms=2000,
                            source="browser", staff_id=None)
    assert take.review == ContentReview.NEEDS_REVIEW and store.exists(take.sha256)
    assert content.cell(db, first.prompt_id, "km").take.id == take.id
    nxt = content.next_needing_recording(db, "km")
    assert nxt is not None and nxt.prompt_id != first.prompt_id
    assert content.next_needing_recording(db, "km", after=nxt.prompt_id).prompt_id != nxt.prompt_id
    audit = db.scalar(sa.select(AuditEvent).where(AuditEvent.object_type == "content_take"))
    assert audit.action == "content.take_added" and audit.object_id == str(take.id)
    with pytest.raises(content.ContentError, match="unknown_prompt"):
        content.add_take(db, store, prompt_id="nope", language="km", audio=FAKE_MP3, duration_ms=1, source="phone",
                         staff_id=None)
    with pytest.raises(content.ContentError, match="bad_source"):
        content.add_take(db, store, prompt_id=first.prompt_id, language="km", audio=FAKE_MP3, duration_ms=1,
                         source="fax", staff_id=None)


def test_published_versions_never_change_and_rollback_publishes_a_copy(db, store) -> None:
    v1 = content.import_tree(db, ROOT, store)
    help_en = content.item(db, v1, "reply", "help", "en").value
    it = content.item(db, content.draft(db), "reply", "help", "en")
    content.edit(db, kind="reply", key="help", lang="en", value="Text 1-7 for advice.", revision=it.revision,
                 staff_id=None)
    v2 = content.publish(db, None)
    assert content.item(db, v1, "reply", "help", "en").value == help_en  # v1 untouched
    v3 = content.rollback(db, 1, None)
    db.commit()
    assert (v2.number, v3.number) == (2, 3)
    assert content.item(db, v3, "reply", "help", "en").value == help_en
    assert content.latest(db).number == 3
    actions = db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("content.%"))).all()
    assert {"content.edit", "content.publish", "content.rollback"} <= set(actions)


def test_an_invalid_draft_cannot_be_published(db, store) -> None:
    content.import_tree(db, ROOT, store)
    db.commit()
    d = content.draft(db)
    it = content.item(db, d, "reply", "help", "km")
    content.edit(db, kind="reply", key="help", lang="km", value="ជួយ " * 60, revision=it.revision, staff_id=None)
    with pytest.raises(content.ContentInvalid) as exc:
        content.publish(db, None)
    assert [(p.kind, p.key, p.lang) for p in exc.value.problems] == [("reply", "help", "km")]
    assert "SMS parts" in exc.value.problems[0].message
    db.rollback()
    assert content.latest(db).number == 1


def test_a_draft_changed_after_review_is_not_published_unseen(db, store) -> None:
    content.import_tree(db, ROOT, store)
    d = content.draft(db)
    seen = d.revision
    it = content.item(db, d, "text", "main_menu", "en")
    content.edit(db, kind="text", key="main_menu", lang="en", value=it.value + " Thanks.", revision=it.revision,
                 staff_id=None)
    with pytest.raises(content.ContentError, match="content_draft_changed"):
        content.publish(db, None, revision=seen)


def test_second_editor_is_told_and_loses_nothing(db) -> None:
    it = content.item(db, content.draft(db), "text", "main_menu", "en")
    rev = it.revision
    content.edit(db, kind="text", key="main_menu", lang="en", value="First editor's words.", revision=rev,
                 staff_id=None)
    with pytest.raises(content.Conflict) as exc:
        content.edit(db, kind="text", key="main_menu", lang="en", value="Second editor's words.", revision=rev,
                     staff_id=None)
    assert exc.value.current == "First editor's words." and exc.value.mine == "Second editor's words."


def test_translators_csv_round_trips_every_text(db) -> None:
    d = content.draft(db)
    exported = content.export_csv(db, d)
    rows = list(csv.DictReader(io.StringIO(exported.lstrip("\ufeff"))))
    texts = db.scalar(sa.select(sa.func.count(ContentItem.id)).where(ContentItem.version_id == d.id,
                                                                      ContentItem.kind.in_(content.TEXT_KINDS)))
    assert len(rows) == texts > 100
    assert any(r["lang"] == "km" and re.search("[\u1780-\u17ff]", r["text"]) for r in rows)
    report = content.import_csv(db, exported, None)
    assert (report.changed, report.refused, report.conflicts, report.unchanged) == ([], [], [], texts)
    for r in rows:
        if (r["kind"], r["key"], r["lang"]) == ("reply", "unknown", "th"):
            r["text"] = "ส่ง HELP เพื่อดูรายการค่ะ"
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    report = content.import_csv(db, out.getvalue(), None)
    assert report.changed == [("reply", "unknown", "th")]
    assert content.export_csv(db, content.draft(db)).count("ส่ง HELP เพื่อดูรายการค่ะ") == 1
    report = content.import_csv(db, out.getvalue(), None)  # the same file again: its revision is old now
    assert report.changed == [] and report.unchanged == texts


# -- the console --------------------------------------------------------------------------------------

def test_content_role_sees_the_studio_and_nothing_of_cases(client, editor) -> None:
    page = client.get("/staff/content")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "main_menu" in html and 'lang="km"' in html and "/staff/content/main_menu/km/record" in html
    assert client.get("/staff/").status_code in (302, 403)
    assert client.get("/staff/callbacks").status_code == 403
    assert client.get("/staff/audit").status_code == 403
    assert client.get("/staff/reports").status_code == 403


def test_lawyers_do_not_see_the_studio(db, client) -> None:
    make_staff(db, "lawyer@example.org", role="lawyer")
    login(client, "lawyer@example.org")
    assert client.get("/staff/content").status_code == 403
    assert client.get("/staff/content/versions").status_code == 403
    token = _csrf(client, "/staff/password")
    assert client.post("/staff/content/publish", data={"csrf_token": token}).status_code == 403


def test_filter_shows_what_still_needs_khmer(client, editor) -> None:
    html = client.get("/staff/content?lang=km&show=needs_recording&kind=text").get_data(as_text=True)
    assert 'id="text-main_menu"' in html and 'id="reply-help"' not in html


def test_reply_over_two_parts_is_refused_next_to_the_field_and_nothing_is_published(db, client, editor,
                                                                                    twilio) -> None:
    before = _sms(twilio, "HELP")
    path = "/staff/content/edit/reply/help/km"
    page = client.get(path).get_data(as_text=True)
    resp = client.post(path, data={"csrf_token": _csrf(client, path), "revision": _revision(page),
                                   "value": "ជួយ " * 60})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'id="value-problems"' in html and "km.yaml: replies.help: 4 SMS parts" in html
    assert 'aria-invalid="true"' in html and "ជួយ ជួយ" in html
    publish = client.post("/staff/content/publish", data={"csrf_token": _csrf(client, "/staff/content/versions")})
    assert publish.status_code == 302 and "show=problems" in publish.headers["Location"]
    published = sa.select(sa.func.count()).select_from(ContentVersion).where(ContentVersion.number.is_not(None))
    assert db.scalar(published) == 0
    assert _sms(twilio, "HELP") == before


def test_empty_text_is_refused_next_to_the_field(client, editor) -> None:
    path = "/staff/content/edit/text/main_menu/en"
    page = client.get(path).get_data(as_text=True)
    resp = client.post(path, data={"csrf_token": _csrf(client, path), "revision": _revision(page), "value": "  "})
    assert resp.status_code == 400 and "cannot be empty" in resp.get_data(as_text=True)


def test_menu_key_pointing_nowhere_is_shown_by_the_node(client, editor) -> None:
    path = "/staff/content/menu/main"
    page = client.get(path).get_data(as_text=True)
    keys = re.search(r'<textarea id="keys" name="keys"[^>]*>([^<]*)</textarea>', page).group(1)
    form = {"csrf_token": _csrf(client, path), "revision": _revision(page), "keys": keys + "\n6 = nowhere_node",
            "timeout": "7", "no_input_retries": "", "no_input_then": "", "wrong_key_retries": "", "wrong_key_then": ""}
    resp = client.post(path, data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "node &#39;main&#39;, field &#39;keys.6&#39;: unknown target &#39;nowhere_node&#39;" in html


def test_concurrent_edit_in_the_console_shows_both_texts(db, client, editor) -> None:
    path = "/staff/content/edit/text/main_menu/en"
    page = client.get(path).get_data(as_text=True)
    rev = _revision(page)
    token = _csrf(client, path)
    assert client.post(path, data={"csrf_token": token, "revision": rev, "value": "Words of the first editor."}
                       ).status_code == 302
    resp = client.post(path, data={"csrf_token": token, "revision": rev, "value": "Words of the second editor."})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "Words of the second editor." in html and "Words of the first editor." in html
    assert "Sophea changed this" in html


def test_publish_from_the_console_reaches_sms_at_once_and_is_audited(db, client, editor, twilio) -> None:
    path = "/staff/content/edit/reply/unknown/km"
    page = client.get(path).get_data(as_text=True)
    client.post(path, data={"csrf_token": _csrf(client, path), "revision": _revision(page), "value": KM_REPLY})
    assert KM_REPLY not in _sms(twilio, "zzzz qqqq")  # a draft: nobody reads it yet
    token = _csrf(client, "/staff/content/versions")
    resp = client.post("/staff/content/publish", data={"csrf_token": token, "note": "shorter unknown"})
    assert resp.status_code == 302
    assert KM_REPLY in _sms(twilio, "zzzz qqqq")
    row = db.scalar(sa.select(AuditEvent).where(AuditEvent.action == "content.publish"))
    assert row.staff_id == editor.id and row.object_id == "1"
    resp = client.post("/staff/content/rollback/1", data={"csrf_token": token})
    assert resp.status_code == 302
    html = client.get("/staff/content/versions").get_data(as_text=True)
    assert "Version 1 is back, published as version 2" in html
    assert "Callers now get" in client.get("/staff/content").get_data(as_text=True)  # nothing reviewed yet


def test_staff_hear_a_take_and_callers_hear_only_the_published_one(db, client, editor, store, twilio) -> None:
    take = content.add_take(db, store, prompt_id="main_menu", language="km", audio=FAKE_MP3, duration_ms=3000,
                            source="upload", staff_id=editor.id)
    db.commit()
    assert client.get(f"/staff/content/takes/{take.id}.mp3").data == FAKE_MP3
    call = twilio.post("/twilio/voice", twilio.voice_params(new_call_sid())).get_data(as_text=True)
    assert take.sha256 not in call
    v = content.publish(db, editor.id)
    db.commit()
    content.announce_number(resources_of(client.application).redis, v.number)
    snap = live(client.application).refresh()
    assert snap.number == 1 and snap.audio_sha("km", "main_menu") == take.sha256
    # The language menu first; key 1 (Khmer) leads to the main menu.
    twilio.post("/twilio/voice", twilio.voice_params(sid := new_call_sid()))
    step = twilio.post("/twilio/voice/step?n=language&l=&s=&k=0&w=0&e=g",
                       twilio.voice_params(sid, Digits="1")).get_data(as_text=True)
    assert f"/audio/km/main_menu.{take.sha256}.mp3" in step, step
    assert client.get(f"/audio/km/main_menu.{take.sha256}.mp3").data == FAKE_MP3
    assert client.application.test_client().get(f"/staff/content/takes/{take.id}.mp3").status_code == 302


# -- a second web process -------------------------------------------------------------------------------

SERVE = """
import sys
from werkzeug.serving import make_server
from hotline import create_app
from hotline.settings import Settings
from pathlib import Path
s = Settings(env="embedded", instance_path=Path(sys.argv[2]), database_url=sys.argv[3], redis_url=sys.argv[4],
             twilio_account_sid="ACtest", twilio_auth_token=sys.argv[5], public_base_url=sys.argv[1],
             secret_key="second", recording_key=sys.argv[6], hotline_number="+85523000000")
app = create_app(s, TESTING=True, CONTENT_CHECK_SECONDS=0.5)
server = make_server("127.0.0.1", int(sys.argv[1].rsplit(":", 1)[1]), app, threaded=True)
print("ready", flush=True)
server.serve_forever()
"""


def test_a_publish_reaches_a_second_web_process_without_a_restart(db, settings, store, tmp_path) -> None:
    import socket

    import requests
    from twilio.request_validator import RequestValidator

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-c", SERVE, url, str(tmp_path / "second"), settings.database_url,
                             settings.redis_url or "", settings.twilio_auth_token, settings.recording_key],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()

        def unknown_reply() -> str:
            params = {"AccountSid": "ACtest", "Body": "zzzz qqqq", "From": "+85512345611", "To": "+85523000000",
                      "MessageSid": "SM" + os.urandom(16).hex()}
            sig = RequestValidator(settings.twilio_auth_token).compute_signature(url + "/twilio/sms", params)
            return requests.post(url + "/twilio/sms", data=params, headers={"X-Twilio-Signature": sig},
                                 timeout=10).text

        assert KM_REPLY not in unknown_reply()
        it = content.item(db, content.draft(db), "reply", "unknown", "km")
        content.edit(db, kind="reply", key="unknown", lang="km", value=KM_REPLY,
                     revision=it.revision, staff_id=None)
        v = content.publish(db, None)
        db.commit()
        content.announce_number(lambda: __import__("redis").Redis.from_url(settings.redis_url), v.number)
        t0 = time.monotonic()
        # CONTENT_CHECK_SECONDS=0.5 there, plus one load in the background: seconds, not a restart. How
        # fast is bench/content_check.py's to measure; a loaded CI machine only needs more patience.
        while KM_REPLY not in unknown_reply():
            assert time.monotonic() - t0 < 30, "the second process never served the new version"
            time.sleep(0.2)
        content.rollback(db, v.number, None)  # a rollback reaches it the same way
        db.commit()
    finally:
        proc.terminate()
        proc.wait(timeout=10)



# -- the simulator's draft toggle and the command line ---------------------------------------------------

def test_simulator_plays_the_draft_only_when_asked(db, client, store) -> None:
    from tests.test_simulator import csrf

    take = content.add_take(db, store, prompt_id="choose_language", language="km", audio=FAKE_MP3,
                            duration_ms=3000, source="browser", staff_id=None)
    db.commit()
    headers = csrf(client)

    def first_plays(query: str) -> list[str]:
        data = client.post("/simulator/api/calls" + query, json={"from": "+85516555123"}, headers=headers).get_json()
        return [e["src"] for e in data["events"] if e["kind"] == "play"]

    assert not any(take.sha256 in src for src in first_plays(""))
    draft_plays = first_plays("?draft=1")
    assert f"/audio/km/choose_language.{take.sha256}.mp3" in draft_plays
    assert client.get(draft_plays[draft_plays.index(f"/audio/km/choose_language.{take.sha256}.mp3")]).data == FAKE_MP3
    # Nothing was published: a real caller still hears the starter set.
    assert content.latest(db) is None


def test_cli_import_publishes_and_export_writes_the_folder(settings, monkeypatch, db, tmp_path) -> None:
    from click.testing import CliRunner

    from hotline.cli import cli

    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HOTLINE_INSTANCE", str(settings.instance_path))
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    result = CliRunner().invoke(cli, ["content", "import", str(ROOT), "--note", "starter set"])
    assert result.exit_code == 0, result.output
    assert "Published as version 1." in result.output
    result = CliRunner().invoke(cli, ["content", "export", str(tmp_path / "dump")])
    assert result.exit_code == 0, result.output
    assert load_script(tmp_path / "dump" / "ivr_scripts" / "voice") == load_script(ROOT / "ivr_scripts" / "voice")
    assert (tmp_path / "dump" / "audio" / "manifest.json").is_file()
    bad = tmp_path / "bad"
    CliRunner().invoke(cli, ["content", "export", str(bad)])
    menu = bad / "ivr_scripts" / "voice" / "menu.yaml"
    menu.write_text(menu.read_text(encoding="utf-8").replace("start: language", "start: nowhere"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["content", "import", str(bad)])
    assert result.exit_code != 0 and "unknown target 'nowhere'" in result.output
    db.expire_all()
    assert content.latest(db).number == 1



def test_the_version_is_checked_at_most_once_per_interval_and_never_goes_back(db, res, store) -> None:
    from hotline.menus import keywords

    opened = []

    def sessions():  # type: ignore[no-untyped-def]
        opened.append(1)
        return res.db.Session()

    clock = [100.0]
    starter = content.Snapshot(0, 0, load_script(ROOT / "ivr_scripts" / "voice"),
                               keywords.load(ROOT / "ivr_scripts" / "sms"))
    lv = content.ContentLive(starter, sessions, res.redis, interval=2.0, clock=lambda: clock[0])
    assert lv.published().number == 0 and len(opened) == 1  # no key in Redis yet: the database, once
    for _ in range(1000):
        lv.published()
    assert len(opened) == 1  # within the interval: neither Redis nor the database
    v = content.import_tree(db, ROOT, store)
    db.commit()
    content.announce_number(res.redis, v.number)
    clock[0] += 2.5
    assert lv.refresh().number == 1
    opened.clear()
    res.redis().set(content.REDIS_KEY, 0)  # a stale key (written before the publish): ignored
    clock[0] += 2.5
    assert lv.published().number == 1 and opened == []  # Redis answered; nothing loaded


def test_review_states_show_who_reviewed_and_a_change_needs_review_again(db, client, editor, store) -> None:
    take = content.add_take(db, store, prompt_id="main_menu", language="km", audio=FAKE_MP3, duration_ms=3000,
                            source="phone", staff_id=editor.id)
    db.commit()
    token = _csrf(client, "/staff/content")
    for kind in ("text", "audio"):
        resp = client.post("/staff/content/review", data={"csrf_token": token, "kind": kind, "key": "main_menu",
                                                         "lang": "km", "state": "reviewed"})
        assert resp.status_code == 302
    db.expire_all()
    assert db.get(type(take), take.id).review == ContentReview.REVIEWED
    assert db.get(type(take), take.id).reviewed_by_id == editor.id
    html = client.get("/staff/content?lang=km&kind=text").get_data(as_text=True)
    cell = html[html.index('id="text-main_menu"'):]
    cell = cell[:cell.index("</tr>")]
    assert "reviewed by Sophea" in cell and "unreviewed" not in cell
    it = content.item(db, content.draft(db), "text", "main_menu", "km")
    content.edit(db, kind="text", key="main_menu", lang="km", value=it.value + " ។", revision=it.revision,
                 staff_id=editor.id)
    db.commit()
    assert content.item(db, content.draft(db), "text", "main_menu", "km").review == ContentReview.NEEDS_REVIEW
    reviews = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "content.review")).all()
    assert len(reviews) == 2 and all(r.staff_id == editor.id for r in reviews)


def test_two_editors_of_one_menu_node_the_second_keeps_their_form(client, editor) -> None:
    path = "/staff/content/menu/main"
    page = client.get(path).get_data(as_text=True)
    keys = re.search(r'<textarea id="keys" name="keys"[^>]*>([^<]*)</textarea>', page).group(1)
    form = {"csrf_token": _csrf(client, path), "revision": _revision(page), "keys": keys, "timeout": "7",
            "no_input_retries": "", "no_input_then": "", "wrong_key_retries": "", "wrong_key_then": ""}
    assert client.post(path, data=form).status_code == 302
    resp = client.post(path, data={**form, "timeout": "9"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "Sophea changed this" in html
    assert 'id="timeout" name="timeout" inputmode="numeric" value="9"' in html
