"""The recording page of the console: upload (and the recorder's kept take) through the pipeline into the draft."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline.models import AuditEvent, ContentTake, Role, StaffPin
from hotline.services import content
from hotline.services import staff as staff_service
from tests.test_audio_pipeline import make, speech_like
from tests.test_console import PASSWORD, login, token

PROMPT, LANG = "main_menu", "km"
PAGE = f"/staff/content/{PROMPT}/{LANG}/record"


@pytest.fixture
def recorder(client, db):
    user = staff_service.create(db, "voice@ngo.example", Role.CONTENT, PASSWORD, name="Sophea", phone="+85512340001")
    db.commit()
    login(client, "voice@ngo.example")
    return user


def upload(client, path: Path, source: str = "upload", page: str = PAGE):
    with path.open("rb") as f:
        return client.post(page, data={"csrf_token": token(client, page), "source": source, "audio": (f, path.name)},
                           content_type="multipart/form-data")


def error_text(html: str) -> str:
    m = re.search(r'<p class="error" role="alert" id="take-error">([^<]*)</p>', html)
    assert m, html[-2000:]
    return m.group(1)


def test_the_page_shows_the_prompts_words_in_the_language_being_recorded(client, db, recorder) -> None:
    html = client.get(PAGE).get_data(as_text=True)
    cell = content.cell(db, PROMPT, LANG)
    assert cell.text and re.search(r'<p class="script" lang="km" id="script-text">\s*' + re.escape(cell.text), html)
    assert 'src="/staff/static/record.js"' in html and "https://" not in html.split("<body")[0]  # no CDN
    assert f'src="/audio/km/{cell.audio_name}.mp3"' in html  # the placeholder plays now
    ids = content.prompt_ids(db, content.draft(db))
    assert f"Record prompt {ids.index(PROMPT) + 1}: {PROMPT}" in html


def test_an_uploaded_file_goes_through_the_pipeline_into_the_draft(client, db, recorder, tmp_path: Path) -> None:
    resp = upload(client, speech_like(tmp_path / "take.m4a", 2.0, 0.05, 1.0, 1.0, "-c:a", "aac"))
    assert resp.status_code == 302 and resp.location == PAGE
    db.expire_all()
    take = content.cell(db, PROMPT, LANG).take
    assert take is not None and take.source == "upload" and take.recorded_by_id == recorder.id
    assert 2000 <= take.duration_ms <= 2400  # the silence around it trimmed
    html = client.get(PAGE).get_data(as_text=True)
    assert "Kept: 2." in html and "now in the draft and marked for review" in html


def test_the_recorders_take_is_marked_as_a_browser_recording(client, db, recorder, tmp_path: Path) -> None:
    resp = upload(client, speech_like(tmp_path / "browser-take.webm", 1.5, 0.3, 0, 0, "-c:a", "libopus"), "browser")
    assert resp.status_code == 302
    db.expire_all()
    assert content.cell(db, PROMPT, LANG).take.source == "browser"


@pytest.mark.parametrize("kind,expected", [
    ("silence", "Not kept: silent:"),
    ("clipped", "Not kept: clipped:"),
    ("text", "Not kept: not audio:"),
    ("empty", "Not kept: empty:"),
])
def test_a_bad_take_is_refused_next_to_the_file_field_and_nothing_is_stored(client, db, recorder, tmp_path: Path,
                                                                            kind: str, expected: str) -> None:
    if kind == "silence":
        path = make(tmp_path / "s.wav", "anullsrc=r=44100:cl=mono", "-t", "2")
    elif kind == "clipped":
        path = make(tmp_path / "c.wav", "aevalsrc='if(lt(mod(t*220\\,1)\\,0.5)\\,1\\,-1)':s=44100:d=2")
    elif kind == "text":
        path = tmp_path / "words.wav"
        path.write_text("not a recording")
    else:
        path = tmp_path / "empty.m4a"
        path.write_bytes(b"")
    resp = upload(client, path)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert error_text(html).startswith(expected)
    assert 'aria-invalid="true" aria-describedby="take-error"' in html
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentTake)) == 0
    assert db.scalar(sa.select(AuditEvent.detail).where(AuditEvent.action == "content.take_refused"))["reason"]


def test_a_four_minute_file_is_refused(client, db, recorder, tmp_path: Path) -> None:
    path = make(tmp_path / "long.mp3", "sine=f=300:d=240:sample_rate=8000", "-c:a", "libmp3lame", "-b:a", "8k")
    resp = upload(client, path)
    assert resp.status_code == 400
    assert error_text(resp.get_data(as_text=True)).startswith("Not kept: too long (4:00 long)")


def test_a_file_over_the_upload_limit_is_answered_on_the_page(client, db, recorder, tmp_path: Path) -> None:
    from hotline.services.takes import MAX_UPLOAD_BYTES

    big = tmp_path / "huge.wav"
    big.write_bytes(b"\0" * (MAX_UPLOAD_BYTES + 200_000))
    resp = upload(client, big)
    assert resp.status_code == 413
    assert "larger than 25 MB" in error_text(resp.get_data(as_text=True))


def test_a_larger_upload_is_allowed_only_on_this_route(client, db, recorder, tmp_path: Path) -> None:
    """A 5 MB WAV (30 s at 44.1 kHz stereo) passes here; the rest of the app keeps its 2 MB limit."""
    wav = speech_like(tmp_path / "phone.wav", 30, 0.2, 0, 0, "-ac", "2")
    assert wav.stat().st_size > 2 * 1024 * 1024
    assert upload(client, wav).status_code == 302
    resp = client.post("/staff/login", data={"csrf_token": "x", "pad": "x" * (3 * 1024 * 1024)})
    assert resp.status_code == 413


def test_no_csrf_token_no_take(client, db, recorder, tmp_path: Path) -> None:
    path = speech_like(tmp_path / "take.wav", 1.0)
    with path.open("rb") as f:
        resp = client.post(PAGE, data={"audio": (f, "take.wav")}, content_type="multipart/form-data")
    assert resp.status_code == 400
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentTake)) == 0


def test_only_content_and_admin_accounts_record(client, db) -> None:
    staff_service.create(db, "op@ngo.example", Role.OPERATOR, PASSWORD)
    db.commit()
    login(client, "op@ngo.example")
    assert client.get(PAGE).status_code == 403


def test_an_unknown_prompt_or_language_is_404(client, db, recorder) -> None:
    assert client.get("/staff/content/no_such_prompt/km/record").status_code == 404
    assert client.get(f"/staff/content/{PROMPT}/lo/record").status_code == 404


def test_staff_set_their_phone_pin_with_their_password(client, db, recorder) -> None:
    form = {"prompt": PROMPT, "lang": LANG, "pin": "482915", "pin_again": "482915"}
    bad = client.post("/staff/content/phone-pin", data={**form, "password": "wrong", "csrf_token": token(client, PAGE)})
    assert bad.status_code == 400 and db.get(StaffPin, recorder.id) is None
    weak = client.post("/staff/content/phone-pin", data={**form, "pin": "123456", "pin_again": "123456",
                                                         "password": PASSWORD, "csrf_token": token(client, PAGE)})
    assert weak.status_code == 400 and "too easy" in weak.get_data(as_text=True)
    ok = client.post("/staff/content/phone-pin", data={**form, "password": PASSWORD,
                                                       "csrf_token": token(client, PAGE)})
    assert ok.status_code == 302
    db.expire_all()
    row = db.get(StaffPin, recorder.id)
    assert row is not None and "482915" not in row.pin_hash and row.pin_hash.startswith("$argon2")
    assert "content_line.pin_set" in list(db.scalars(sa.select(AuditEvent.action)))


def test_the_numbered_script_matches_the_numbers_the_content_line_says(client, db, recorder) -> None:
    html = client.get("/staff/content/script/km").get_data(as_text=True)
    ids = content.prompt_ids(db, content.draft(db))
    rows = re.findall(r'<tr data-prompt="([^"]+)"><th scope="row">(\d+)</th>', html)
    assert [(pid, int(n)) for pid, n in rows] == [(pid, i) for i, pid in enumerate(ids, start=1)]
    assert '<td lang="km">' in html
    assert client.get("/staff/content/script/lo").status_code == 404
