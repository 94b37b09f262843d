"""The content line: staff record prompts by phone. Signed webhooks, end to end through a real worker."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from hotline.db import utcnow
from hotline.models import AuditEvent, ContentTake, PhoneTake, Role, StaffPin
from hotline.services import content, content_line
from hotline.services import staff as staff_service
from tests.conftest import ACCOUNT_SID, new_call_sid, run_worker_burst
from tests.test_audio_pipeline import make, speech_like

LINE = "+85523000777"
STAFF_PHONE = "+85512340001"
PIN = "482915"


@pytest.fixture
def settings(settings):  # conftest's settings, with a content line number
    return settings.with_(content_line_number=LINE)


@pytest.fixture
def recorder(db):
    user = staff_service.create(db, "voice@ngo.example", Role.CONTENT, "a long password 1", name="Sophea",
                                phone=STAFF_PHONE)
    content_line.set_pin(db, user, PIN)
    db.commit()
    return user


class Phone:
    """One staff call to the content line, following the TwiML it is given."""

    def __init__(self, twilio, from_: str = STAFF_PHONE, to: str = LINE):
        self.twilio, self.sid, self.from_, self.to = twilio, new_call_sid(), from_, to
        self.doc: ET.Element | None = None

    def post(self, path: str, **extra: str) -> ET.Element:
        resp = self.twilio.post(path, self.twilio.voice_params(self.sid, from_=self.from_, to=self.to, **extra))
        assert resp.status_code == 200, resp.data
        assert resp.mimetype == "text/xml"
        self.doc = ET.fromstring(resp.data)
        return self.doc

    def say(self) -> str:
        assert self.doc is not None
        return " ".join((el.text or "") for el in self.doc.iter("Say"))

    def action(self, verb: str = "Gather") -> str:
        assert self.doc is not None
        el = self.doc.find(f".//{verb}")
        assert el is not None, ET.tostring(self.doc)
        return el.get("action", "")

    def press(self, digits: str, verb: str = "Gather") -> ET.Element:
        return self.post(self.action(verb), Digits=digits)

    def hung_up(self) -> bool:
        return self.doc is not None and self.doc.find("Hangup") is not None and self.doc.find("Gather") is None


def q(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def recording_url(fake_twilio, sid: str) -> str:
    return f"{fake_twilio.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"


def test_a_prompt_recorded_by_phone_reaches_the_draft(twilio, db, recorder, rest_settings, fake_twilio,
                                                       tmp_path: Path) -> None:
    """PIN, hear the next Khmer prompt, record after the beep, listen, press 1: the take is in the draft."""
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    assert "Enter your PIN" in phone.say()
    phone.press(PIN)
    assert "To record in Khmer, press 1." in phone.say()
    phone.press("1")
    first = content.next_needing_recording(db, "km")
    assert first is not None
    ids = content.prompt_ids(db, content.draft(db))
    db.rollback()  # the test's reads hold no lock while the app writes
    assert f"Prompt {ids.index(first.prompt_id) + 1} of {len(ids)}, in Khmer." in phone.say()
    played = [el.text for el in phone.doc.iter("Play")]
    assert played == [f"{rest_settings.public_base_url}/audio/km/{first.audio_name}.mp3"]  # what plays now
    assert q(phone.action())["p"] == first.prompt_id

    phone.press("1")
    record = phone.doc.find("Record")
    assert record is not None and "Record after the beep" in phone.say()
    assert (record.get("maxLength"), record.get("finishOnKey"), record.get("playBeep")) == ("180", "#", "true")
    assert record.get("recordingStatusCallback") == rest_settings.public_base_url + "/twilio/voice/content/recording"

    rsid = "RE" + secrets.token_hex(16)
    fake_twilio.recordings[rsid] = speech_like(tmp_path / "take.wav", 2.5, 0.2, 0.8, 1.0).read_bytes()
    phone.post(phone.action("Record"), RecordingSid=rsid, RecordingUrl=recording_url(fake_twilio, rsid),
               RecordingDuration="4", Digits="#")
    assert [el.text for el in phone.doc.iter("Play")] == [recording_url(fake_twilio, rsid)]
    assert "To keep it, press 1. To record it again, press 2." in phone.say()
    phone.press("1")
    assert "Kept." in phone.say()
    after = phone.doc.find("Redirect")
    assert after is not None and q(after.text or "")["after"] == first.prompt_id
    ok = twilio.post("/twilio/voice/content/recording", {"AccountSid": ACCOUNT_SID, "CallSid": phone.sid,
                                                          "RecordingSid": rsid, "RecordingStatus": "completed",
                                                          "RecordingUrl": recording_url(fake_twilio, rsid),
                                                          "RecordingDuration": "4"})
    assert ok.status_code == 200

    run_worker_burst(rest_settings)  # fetch from "Twilio", the pipeline, into the draft
    db.expire_all()
    take = db.scalar(sa.select(PhoneTake))
    assert (take.status, take.reason) == ("stored", None) and 2.5 <= take.seconds <= 3.0  # silence trimmed
    cell = content.cell(db, first.prompt_id, "km")
    assert cell.take is not None and cell.take.source == "phone" and cell.take.recorded_by_id == recorder.id
    assert content.store_for(rest_settings).exists(cell.take.sha256)
    assert ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rsid}.wav") in fake_twilio.requests
    actions = list(db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))
    assert "content_line.login" in actions and "content.take_added" in actions

    # The next prompt follows; the one just recorded is no longer "next".
    phone.post(after.text or "")
    assert q(phone.action())["p"] != first.prompt_id
    # What plays for the recorded cell now is the draft's take (a URL of its own).
    phone.post(f"/twilio/voice/content/prompt?c={q(phone.action())['c']}&l=km&at={first.prompt_id}")
    assert [el.text for el in phone.doc.iter("Play")] == [
        f"{rest_settings.public_base_url}/audio/km/{first.audio_name}.{cell.take.sha256}.mp3"]


def test_redo_discards_the_take_and_records_again(twilio, db, recorder, fake_twilio) -> None:
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    phone.press(PIN)
    phone.press("1")
    phone.press("1")
    rsid = "RE" + secrets.token_hex(16)
    phone.post(phone.action("Record"), RecordingSid=rsid, RecordingUrl=recording_url(fake_twilio, rsid),
               RecordingDuration="2", Digits="#")
    phone.press("2")
    assert phone.doc.find("Record") is not None
    take = db.scalar(sa.select(PhoneTake))
    assert take.status == "discarded"
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentTake)) == 0


def test_a_silent_take_is_refused_and_the_reason_is_said_at_the_next_prompt(twilio, db, recorder, rest_settings,
                                                                          fake_twilio, tmp_path: Path) -> None:
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    phone.press(PIN)
    phone.press("1")
    pid = q(phone.action())["p"]
    phone.press("1")
    rsid = "RE" + secrets.token_hex(16)
    fake_twilio.recordings[rsid] = make(tmp_path / "s.wav", "anullsrc=r=8000:cl=mono", "-t", "3").read_bytes()
    phone.post(phone.action("Record"), RecordingSid=rsid, RecordingUrl=recording_url(fake_twilio, rsid),
               RecordingDuration="3", Digits="#")
    phone.press("1")
    nxt = phone.doc.find("Redirect").text or ""
    run_worker_burst(rest_settings)
    db.expire_all()
    take = db.scalar(sa.select(PhoneTake))
    assert take.status == "refused" and take.reason.startswith("silent:")
    assert content.cell(db, pid, "km").take is None  # nothing reached the draft
    phone.post(nxt)
    ids = content.prompt_ids(db, content.draft(db))
    assert f"Prompt {ids.index(pid) + 1} was not kept: silent:" in phone.say()
    phone.post(phone.doc.find(".//Gather").get("action"), Digits="2")  # hear the current one again
    assert "was not kept" not in phone.say()  # said once
    # The prompt's recording page shows the refusal too.
    from tests.test_console import login

    staff_service.create(db, "admin@ngo.example", Role.ADMIN, "a long password 1")
    db.commit()
    login(twilio.client, "admin@ngo.example", "a long password 1")
    html = twilio.client.get(f"/staff/content/{pid}/km/record").get_data(as_text=True)
    assert '<li data-status="refused">' in html and "refused: silent:" in html


def test_a_record_action_without_a_recording_goes_back_to_the_prompt(twilio, db, recorder) -> None:
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    phone.press(PIN)
    phone.press("1")
    pid = q(phone.action())["p"]
    phone.press("1")
    phone.post(phone.action("Record"), RecordingUrl="", RecordingDuration="0", Digits="#")
    assert "Nothing was recorded." in phone.say()
    assert q(phone.doc.find("Redirect").text or "")["at"] == pid
    assert db.scalar(sa.select(sa.func.count()).select_from(PhoneTake)) == 0


def test_three_wrong_pins_end_the_call(twilio, db, recorder) -> None:
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    for expected in ("That PIN is not right. Enter your PIN", "That PIN is not right. Enter your PIN"):
        phone.press("111111")
        assert expected in phone.say()
    phone.press("111111")
    assert phone.hung_up() and "That PIN is not right. Goodbye." in phone.say()
    reasons = [d["reason"] for d in db.scalars(sa.select(AuditEvent.detail).where(
        AuditEvent.action == "content_line.pin_failed"))]
    assert reasons == ["wrong_pin"] * 3
    # The phone number is masked in the audit log, never whole.
    assert all(STAFF_PHONE not in str(d) for d in db.scalars(sa.select(AuditEvent.detail)))


def test_five_wrong_pins_lock_it_even_against_the_right_pin(twilio, db, recorder) -> None:
    for _ in range(2):
        phone = Phone(twilio)
        phone.post("/twilio/voice/content")
        for _ in range(3):
            if phone.hung_up():
                break
            phone.press("999999")
    row = db.get(StaffPin, recorder.id)
    db.refresh(row)
    assert row.failed >= content_line.LOCK_AFTER and row.locked_until is not None
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    phone.press(PIN)
    assert "That PIN is not right" in phone.say()  # locked: answered exactly like a wrong PIN
    assert db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "content_line.pin_failed")
                      .order_by(AuditEvent.id.desc())).first()["reason"] == "locked"
    # Once the lock has run out, the right PIN works again (and clears the count).
    row.locked_until = utcnow() - timedelta(seconds=1)
    db.commit()
    phone.press(PIN)
    assert "To record in Khmer" in phone.say()


def test_an_unknown_number_hears_the_same_as_a_wrong_pin(twilio, db, recorder) -> None:
    stranger = Phone(twilio, from_="+85598765432")
    stranger.post("/twilio/voice/content")
    stranger.press(PIN)
    assert "That PIN is not right. Enter your PIN" in stranger.say()
    detail = db.scalar(sa.select(AuditEvent.detail).where(AuditEvent.action == "content_line.pin_failed"))
    assert detail["reason"] == "unknown_number"


def test_a_caller_of_the_hotline_never_lands_in_the_content_line(twilio, db, recorder) -> None:
    caller = Phone(twilio, from_=STAFF_PHONE, to="+85523000000")  # the hotline's own number
    doc = caller.post("/twilio/voice/content")
    assert doc.find("Redirect") is not None and doc.find("Redirect").text == "/twilio/voice"
    assert doc.find("Gather") is None


def test_a_step_from_another_call_is_not_let_in(twilio, db, recorder) -> None:
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    phone.press(PIN)
    other = Phone(twilio)  # a different CallSid replaying this call's (signed) URL
    other.post(phone.action(), Digits="1")
    assert other.hung_up()


def test_an_unsigned_request_is_refused(client, recorder) -> None:
    resp = client.post("/twilio/voice/content", data={"CallSid": new_call_sid(), "From": STAFF_PHONE, "To": LINE})
    assert resp.status_code == 403


def test_an_operator_account_cannot_use_the_line(twilio, db) -> None:
    user = staff_service.create(db, "op@ngo.example", Role.OPERATOR, "a long password 1", phone=STAFF_PHONE)
    db.add(StaffPin(staff_id=user.id, pin_hash=content_line._hasher.hash(PIN), failed=0))
    db.commit()
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    phone.press(PIN)
    assert "That PIN is not right" in phone.say()


@pytest.mark.parametrize("pin,reason", [("12345", "6 to 8 digits"), ("123456", "too easy"), ("000000", "too easy"),
                                        ("987654", "too easy"), ("340001", "end of your phone number"),
                                        ("12a456", "6 to 8 digits")])
def test_weak_pins_are_refused(pin: str, reason: str) -> None:
    with pytest.raises(content_line.PinError, match=reason):
        content_line.check_new_pin(pin, STAFF_PHONE)


def test_set_pin_command_sets_a_pin_the_line_accepts(twilio, db, settings) -> None:
    from click.testing import CliRunner

    from hotline.cli import cli
    from tests.test_accounts import env_for

    staff_service.create(db, "rec@ngo.example", Role.CONTENT, "a long password 1", phone=STAFF_PHONE)
    staff_service.create(db, "lawyer@ngo.example", Role.LAWYER, "a long password 1", phone="+85512340002")
    db.commit()
    env = env_for(settings)
    weak = CliRunner().invoke(cli, ["staff", "set-pin", "rec@ngo.example", "--pin", "111111"], env=env)
    assert weak.exit_code == 1 and "too easy" in weak.output
    lawyer = CliRunner().invoke(cli, ["staff", "set-pin", "lawyer@ngo.example", "--pin", "482915"], env=env)
    assert lawyer.exit_code == 1 and "only content and admin accounts record" in lawyer.output
    ok = CliRunner().invoke(cli, ["staff", "set-pin", "rec@ngo.example", "--pin", PIN], env=env)
    assert ok.exit_code == 0, ok.output
    phone = Phone(twilio)
    phone.post("/twilio/voice/content")
    phone.press(PIN)
    assert "To record in Khmer" in phone.say()


def test_the_content_line_needs_a_number_of_its_own(tmp_path: Path) -> None:
    from hotline.settings import SettingsError, load_settings

    base = {"HOTLINE_INSTANCE": str(tmp_path), "HOTLINE_NUMBER": "+85523000000"}
    assert load_settings(base).content_line_number is None  # off unless set
    assert load_settings({**base, "CONTENT_LINE_NUMBER": LINE}).content_line_number == LINE
    with pytest.raises(SettingsError, match="CONTENT_LINE_NUMBER must be a number of its own"):
        load_settings({**base, "CONTENT_LINE_NUMBER": "+85523000000"})
    with pytest.raises(SettingsError, match="must be E.164"):
        load_settings({**base, "CONTENT_LINE_NUMBER": "023 000 777"})


def test_with_no_content_number_set_the_route_is_the_hotline(twilio, db, settings, app) -> None:
    app.config["HOTLINE"] = settings.with_(content_line_number=None)
    doc = Phone(twilio).post("/twilio/voice/content")
    assert doc.find("Redirect") is not None and doc.find("Gather") is None
