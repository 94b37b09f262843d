"""The simulator's JSON API, its recordings (served like Twilio's) and who may open it."""

from __future__ import annotations

import io
import re
import subprocess

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from hotline import create_app
from hotline.models import Call, Caller, Direction, Message, MessageStatus
from hotline.resources import resources_of
from hotline.simclient.recordings import SAMPLE_WAV, ffmpeg
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC


def csrf(client: FlaskClient) -> dict[str, str]:
    page = client.get("/simulator")
    assert page.status_code == 200
    token = re.search(r'name="csrf-token" content="([^"]*)"', page.get_data(as_text=True))
    assert token is not None
    return {"X-CSRFToken": token.group(1)}


def test_page_shows_phone_texting_and_outbox_panes(client: FlaskClient) -> None:
    html = client.get("/simulator").get_data(as_text=True)
    for marker in ('class="keypad"', 'id="sms-form"', 'id="outbox"', "+85512345678",
                   "+66812345678", "+85523000999 (missed-call line)", "/static/simulator/simulator.js"):
        assert marker in html


def test_static_files_are_served_locally(client: FlaskClient) -> None:
    for name in ("simulator.js", "simulator.css", "sample.wav"):
        assert client.get(f"/static/simulator/{name}").status_code == 200


def test_a_call_goes_through_the_signed_voice_webhook_and_hangs_up(client: FlaskClient, db) -> None:
    headers = csrf(client)
    started = client.post("/simulator/api/calls", json={"from": "+66812345678"}, headers=headers)
    assert started.status_code == 200, started.get_data(as_text=True)
    data = started.get_json()
    assert data["events"][0]["kind"] == "webhook" and data["events"][0]["status"] == 200
    assert data["events"][0]["url"] == PUBLIC + "/twilio/voice"
    plays = [e for e in data["events"] if e["kind"] == "play"]
    assert plays and all(e["src"].startswith("/audio/") for e in plays)  # the browser's own origin
    sid = data["call_sid"]
    call = db.scalar(sa.select(Call).where(Call.call_sid == sid))
    assert call is not None and db.get(Caller, call.caller_id).phone == "+66812345678"
    if not data["ended"]:
        ended = client.post(f"/simulator/api/calls/{sid}/hangup", headers=headers).get_json()
        assert ended["ended"] and ended["status"] == "completed"
    db.expire_all()
    assert db.scalar(sa.select(Call.status).where(Call.call_sid == sid)) == "completed"


def test_keys_for_a_call_that_waits_for_nothing_are_refused(client: FlaskClient) -> None:
    headers = csrf(client)
    data = client.post("/simulator/api/calls", json={"from": "+85512345678"}, headers=headers).get_json()
    client.post(f"/simulator/api/calls/{data['call_sid']}/hangup", headers=headers)
    again = client.post(f"/simulator/api/calls/{data['call_sid']}/keys", json={"digits": "1"}, headers=headers)
    assert again.status_code == 409 and "ended" in again.get_data(as_text=True)
    assert client.post("/simulator/api/calls/CAnope/keys", json={"digits": "1"}, headers=headers).status_code == 404


def test_api_posts_without_the_csrf_token_are_refused(client: FlaskClient) -> None:
    assert client.post("/simulator/api/calls", json={"from": "+85512345678"}).status_code == 400


def test_a_text_goes_through_the_sms_webhook(client: FlaskClient, db) -> None:
    headers = csrf(client)
    resp = client.post("/simulator/api/sms", json={"from": "+85512345678", "body": "ជំនួយ"}, headers=headers)
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["status"] == 200 and data["parts"] == 1
    msg = db.scalar(sa.select(Message).where(Message.sid == data["sid"]))
    assert msg is not None and msg.direction == Direction.INBOUND and msg.body == "ជំនួយ"
    assert client.post("/simulator/api/sms", json={"from": "+85512345678", "body": "  "},
                       headers=headers).status_code == 400


def test_outbox_lists_what_was_sent_newest_first_masking_real_numbers(client: FlaskClient, db) -> None:
    db.add(Message(direction=Direction.OUTBOUND, peer="+66812345001", body="New case HX-1: call back",
                   status=MessageStatus.DELIVERED, provider="local", purpose="oncall_alert"))
    db.add(Message(direction=Direction.OUTBOUND, peer="+85512345678", body="ក" * 80,
                   status=MessageStatus.SENT, provider="local", purpose="callback_notice"))
    db.add(Message(direction=Direction.OUTBOUND, peer="+85512345678", body="a TwiML reply",
                   status=MessageStatus.QUEUED, purpose="reply"))  # shown in the texting pane instead
    db.add(Call(call_sid="CA" + "0" * 32, direction=Direction.OUTBOUND, to_number="+85512345678",
                purpose="callback", status="queued", provider="local"))
    db.commit()
    data = client.get("/simulator/api/outbox").get_json()
    assert [m["to"] for m in data["messages"]] == ["+85512345678", "+66******001"]  # newest first; lawyer masked
    assert [m["parts"] for m in data["messages"]] == [2, 1]
    assert data["messages"][1]["purpose"] == "oncall_alert"
    assert data["calls"] == [{"id": data["calls"][0]["id"], "to": "+85512345678", "status": "queued",
                              "purpose": "callback", "provider": "local", "answered_by": None,
                              "at": data["calls"][0]["at"]}]


def _webm() -> bytes:
    """What a browser's MediaRecorder sends: Opus in WebM."""
    proc = subprocess.run([ffmpeg(), "-loglevel", "error", "-i", str(SAMPLE_WAV), "-c:a", "libopus", "-f", "webm",
                           "-"], capture_output=True, check=True)
    return proc.stdout


def test_a_browser_recording_is_converted_and_served_like_twilio_with_basic_auth(
        app: Flask, client: FlaskClient) -> None:
    from hotline.web.simulator import store

    with app.test_request_context():
        rec = store().add(_webm(), ".webm")
    assert rec.url == f"{PUBLIC}/simulator/recordings/{rec.sid}" and rec.duration == 2
    path = f"/simulator/recordings/{rec.sid}"
    assert client.get(path + ".wav").status_code == 401
    assert client.get(path + ".wav", auth=(ACCOUNT_SID, "wrong")).status_code == 401
    wav = client.get(path + ".wav", auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert wav.status_code == 200 and wav.mimetype == "audio/x-wav" and wav.data[:4] == b"RIFF"
    assert wav.data[22:24] == b"\x01\x00" and int.from_bytes(wav.data[24:28], "little") == 8000  # mono, 8 kHz
    assert client.get(path, auth=(ACCOUNT_SID, AUTH_TOKEN)).data == wav.data  # no extension: WAV
    mp3 = client.get(path + ".mp3", auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert mp3.status_code == 200 and mp3.mimetype == "audio/mpeg" and len(mp3.data) > 1000
    assert client.get("/simulator/recordings/RE" + "f" * 32, auth=(ACCOUNT_SID, AUTH_TOKEN)).status_code == 404
    assert client.get("/simulator/recordings/..%2fsecrets", auth=(ACCOUNT_SID, AUTH_TOKEN)).status_code == 404


def test_an_upload_that_is_not_audio_is_refused(client: FlaskClient) -> None:
    headers = csrf(client)
    data = client.post("/simulator/api/calls", json={"from": "+85512345678"}, headers=headers).get_json()
    resp = client.post(f"/simulator/api/calls/{data['call_sid']}/record", headers=headers,
                       data={"audio": (io.BytesIO(b"not audio at all"), "rec.webm")})
    assert resp.status_code == 400 and "ffmpeg" in resp.get_data(as_text=True)


@pytest.fixture
def staff_only_app(settings) -> Flask:
    app = create_app(settings.with_(simulator="staff"), TESTING=True)
    yield app
    resources_of(app).close()


def test_in_production_mode_the_simulator_needs_a_staff_login(staff_only_app: Flask) -> None:
    client = staff_only_app.test_client()
    for path in ("/simulator", "/simulator/api/outbox"):
        resp = client.get(path)
        assert resp.status_code in (302, 401), path
        if resp.status_code == 302:
            assert "/staff" in resp.headers["Location"]
    assert client.post("/simulator/api/calls", json={}).status_code in (302, 400, 401)


def _login(app: Flask, role: str) -> FlaskClient:
    from hotline.services import staff as staff_service

    res = resources_of(app)
    with res.db.Session() as s:
        staff_service.create(s, f"{role}@example.org", role, "a-long-password-123")
        s.commit()
    client = app.test_client()
    login = client.get("/staff/login")
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login.get_data(as_text=True))
    assert token is not None, login.get_data(as_text=True)[:500]
    client.post("/staff/login", data={"email": f"{role}@example.org", "password": "a-long-password-123",
                                      "csrf_token": token.group(1)})
    return client


def test_with_simulator_staff_an_admin_may_use_it_and_no_other_role(staff_only_app: Flask) -> None:
    # Replaces "a logged-in staff member may use it": any operator could then pose as a caller.
    for role in ("operator", "lawyer"):
        client = _login(staff_only_app, role)
        assert client.get("/simulator").status_code == 403, role
        assert client.get("/simulator/api/outbox").status_code == 403, role
    client = _login(staff_only_app, "admin")
    assert client.get("/simulator").status_code == 200
    assert client.get("/simulator/api/outbox").status_code == 200


def test_with_simulator_staff_a_reports_account_is_refused_everywhere(staff_only_app: Flask, db) -> None:
    # A `reports` account sees aggregate counts only: it must not pose as a caller, read the outbox
    # of texts sent to the simulated phones, or place a call through the webhooks.
    client = _login(staff_only_app, "reports")
    page = client.get("/staff/reports")
    assert page.status_code == 200  # its login works: the refusal is the simulator's
    assert client.get("/simulator").status_code == 403
    assert client.get("/simulator/api/outbox").status_code == 403
    token = re.search(r'name="csrf[-_]token" (?:type="hidden" )?(?:value|content)="([^"]+)"',
                      page.get_data(as_text=True))
    assert token is not None
    headers = {"X-CSRFToken": token.group(1)}
    assert client.post("/simulator/api/calls", json={"from": "+85512345678"}, headers=headers).status_code == 403
    assert client.post("/simulator/api/sms", json={"from": "+66812345678", "body": "HELP"},
                       headers=headers).status_code == 403
    assert db.scalar(sa.select(sa.func.count()).select_from(Caller)) == 0  # nothing reached the webhooks


def test_with_simulator_staff_only_the_simulators_own_numbers_may_call_or_text(staff_only_app: Flask, db) -> None:


    client = _login(staff_only_app, "admin")
    headers = csrf(client)
    real = "+85599123456"  # could be anybody's
    assert client.post("/simulator/api/sms", json={"from": real, "body": "SOS"}, headers=headers).status_code == 400
    assert client.post("/simulator/api/calls", json={"from": real}, headers=headers).status_code == 400
    assert client.post("/simulator/api/calls", json={"to": "+85512000111"}, headers=headers).status_code == 400
    assert db.scalar(sa.select(sa.func.count()).select_from(Caller)) == 0  # nothing reached the webhooks
    ok = client.post("/simulator/api/sms", json={"from": "+66812345678", "body": "HELP"}, headers=headers)
    assert ok.status_code == 200 and ok.get_json()["replies"]
    assert client.post("/simulator/api/calls", json={"from": "+85512345678"}, headers=headers).status_code == 200


def test_with_simulator_staff_the_consoles_idle_timeout_applies(staff_only_app: Flask) -> None:
    from hotline.db import utcnow

    client = _login(staff_only_app, "admin")
    assert client.get("/simulator").status_code == 200
    with client.session_transaction() as cookie:
        cookie["staff_seen"] = utcnow().timestamp() - 31 * 60
    resp = client.get("/simulator")
    assert resp.status_code == 302 and "/staff/login" in resp.headers["Location"]


def test_with_simulator_off_nothing_answers(settings) -> None:
    app = create_app(settings.with_(simulator="off"), TESTING=True)
    try:
        client = app.test_client()
        for path in ("/simulator", "/simulator/api/outbox", "/simulator/recordings/RE" + "f" * 32):
            assert client.get(path).status_code == 404, path
        assert client.post("/simulator/api/sms", json={"body": "SOS"}).status_code in (400, 404)
    finally:
        resources_of(app).close()


def test_open_never_stands_with_rest_credentials_or_in_production(settings, tmp_path) -> None:
    from hotline.settings import SettingsError, load_settings

    base = {"HOTLINE_INSTANCE": str(tmp_path)}
    creds = {"TWILIO_ACCOUNT_SID": "AC" + "2" * 32, "TWILIO_AUTH_TOKEN": "t" * 32}
    assert load_settings(base).simulator_mode == "open"
    assert load_settings({**base, **creds}).simulator_mode == "off"
    assert load_settings({**base, **creds, "HOTLINE_SIMULATOR": "staff"}).simulator_mode == "staff"
    with pytest.raises(SettingsError, match="HOTLINE_SIMULATOR=open is only allowed"):
        load_settings({**base, **creds, "HOTLINE_SIMULATOR": "open"})
    with pytest.raises(SettingsError, match="'off', 'staff' or 'open'"):
        load_settings({**base, "HOTLINE_SIMULATOR": "public"})
    # Settings made in code cannot open it either where real sends go out.
    assert settings.with_(twilio_rest_enabled=True).simulator_mode == "staff"
    assert settings.with_(env="production").simulator_mode == "staff"


def test_recordings_stay_reachable_by_the_worker_in_production_mode(staff_only_app: Flask) -> None:
    client = staff_only_app.test_client()
    assert client.get("/simulator/recordings/RE" + "f" * 32, auth=(ACCOUNT_SID, AUTH_TOKEN)).status_code == 404
    assert client.get("/simulator/recordings/RE" + "f" * 32).status_code == 401
