"""One send gate for every text: STOP is honoured by TwiML replies and REST sends alike, START (and its
Khmer and Thai words) lifts it, Twilio's 21610 counts as an opt-out, calls are still allowed, and no
module can send a text round the gate."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline.background import outbox
from hotline.channels import OutboundMessage
from hotline.channels.twilio_sms import TwilioSms
from hotline.db import Database, utcnow
from hotline.models import CallbackRequest, Caller, Case, CasePriority, Direction, Message, MessageStatus
from hotline.resources import Resources
from hotline.services import callers, intake, sendgate
from hotline.settings import Settings
from tests.conftest import run_worker_burst
from tests.test_sms_webhook import KH_PHONE, reply_of, rows, send

ROOT = Path(__file__).resolve().parent.parent / "hotline"
TH_LAWYERS = ("+66812345001", "+66812345002")  # conftest ONCALL, in roster order


def opted_out(db, phone: str = KH_PHONE):  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalar(sa.select(Caller.opted_out_at).where(Caller.phone == phone))


def replies_to(db, phone: str = KH_PHONE) -> list[Message]:
    return list(rows(db, Message, Message.direction == Direction.OUTBOUND, Message.peer == phone))


# -- TwiML replies ---------------------------------------------------------------------------------

def test_after_stop_nothing_is_answered_until_start(twilio, db) -> None:
    resp, _ = send(twilio, "STOP")
    assert reply_of(resp) is not None  # the one confirmation of this STOP
    assert opted_out(db) is not None
    for body in ("HELP", "1", "CALL", "what is this", "LANG 3", "STOP"):
        resp, _ = send(twilio, body)
        assert reply_of(resp) is None, f"{body!r} was answered after STOP"
    assert len(replies_to(db)) == 1  # only the confirmation was stored as sent
    assert len(rows(db, Message, Message.direction == Direction.INBOUND)) == 7  # every text kept
    # CALL asks for a voice callback: still stored (calls are allowed after STOP).
    assert len(rows(db, CallbackRequest)) == 1
    resp, _ = send(twilio, "START")
    assert reply_of(resp) is not None and opted_out(db) is None
    resp, _ = send(twilio, "HELP")
    assert reply_of(resp) is not None


@pytest.mark.parametrize("start", ["START", "unstop", "ចាប់ផ្តើម", "បើកវិញ", "เริ่ม"])
def test_every_start_word_lifts_the_opt_out_and_is_answered(twilio, db, start: str) -> None:
    send(twilio, "ឈប់")
    assert opted_out(db) is not None
    resp, _ = send(twilio, start)
    assert opted_out(db) is None and reply_of(resp) is not None, start


def test_an_opted_out_urgent_text_opens_a_case_without_a_reply_and_staff_see_it(twilio, db, client) -> None:
    from tests.test_console import login, make_staff

    send(twilio, "STOP")
    resp, sid = send(twilio, "SOS they took my passport")
    assert reply_of(resp) is None
    [case] = rows(db, Case)
    assert case.priority == CasePriority.URGENT and case.source_sid == sid
    assert len(rows(db, Message, Message.case_id == case.id, Message.direction == Direction.INBOUND)) == 1
    assert len(replies_to(db)) == 1  # the STOP confirmation only
    make_staff(db)
    assert login(client).status_code in (302, 303)
    page = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert re.search(r'id="opted-out"[^>]*>opted out of SMS', page), "the case page does not say the caller opted out"


def test_stop_over_the_rate_limit_still_counts_and_start_too(twilio, db) -> None:
    for _ in range(10):
        send(twilio, "HELP")
    resp, _ = send(twilio, "STOP")
    assert reply_of(resp) is None and opted_out(db) is not None
    resp, _ = send(twilio, "START")
    assert reply_of(resp) is None and opted_out(db) is None  # lifted, though not answered (limit)


@pytest.mark.parametrize("body", ["ARRET", "STOP"])
def test_twilio_advanced_opt_out_with_its_own_keyword_is_recorded(twilio, db, body: str) -> None:
    # A Messaging Service's custom opt-out word that our keyword lists do not hold.
    resp = twilio.post("/twilio/sms", twilio.sms_params(body, from_=KH_PHONE, OptOutType="STOP"))
    assert resp.status_code == 200 and reply_of(resp) is None  # Twilio answered it already
    assert opted_out(db) is not None
    resp = twilio.post("/twilio/sms", twilio.sms_params("REPRENDRE", from_=KH_PHONE, OptOutType="START"))
    assert reply_of(resp) is None and opted_out(db) is None


def test_a_delivery_callback_with_21610_records_the_opt_out(twilio, db) -> None:
    resp, inbound_sid = send(twilio, "HELP")
    assert reply_of(resp) is not None
    status = twilio.post(f"/twilio/sms/status?reply_to={inbound_sid}",
                         {"MessageSid": "SM" + "7" * 32, "MessageStatus": "failed", "ErrorCode": "21610"})
    assert status.status_code == 200
    assert opted_out(db) is not None
    resp, _ = send(twilio, "HELP")
    assert reply_of(resp) is None


def test_a_reply_not_cleared_by_the_gate_cannot_be_rendered() -> None:
    reply = OutboundMessage(body="x", language="en", segments=1, reply_to=None)
    with pytest.raises(TypeError):
        TwilioSms().answer([reply], status_callback=None)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        sendgate.Cleared("+85512345678", reply, object())
    [cleared] = sendgate.clear_replies("+85512345678", [reply], opted_out_at=None, was_opted_out_at=None)
    assert "<Message>x</Message>" in TwilioSms().answer([cleared], status_callback=None)
    now = utcnow()
    assert sendgate.clear_replies("+85512345678", [reply], opted_out_at=now, was_opted_out_at=now) == ()


# -- REST sends (lawyer alerts) ---------------------------------------------------------------------

def _urgent_case(settings: Settings, country: str = "TH") -> int:
    res = Resources(settings)
    outbox.install(res.db, res.redis)
    try:
        with res.db.session() as s:
            caller = callers.get_or_create(s, "+66898100100")
            case, _ = intake.open_case(s, caller=caller, source="sms", source_sid=None,
                                       priority=CasePriority.URGENT, country=country)
            s.flush()
            return case.id
    finally:
        res.close()


def _opt_out(settings: Settings, phone: str) -> None:
    d = Database(settings.database_url)
    with d.Session() as s:
        sendgate.record_opt_out(s, phone)
        s.commit()
    d.dispose()


def test_an_opted_out_lawyer_is_not_texted_and_the_next_one_is_at_once(rest_settings: Settings, fake_twilio,
                                                                        db) -> None:
    _opt_out(rest_settings, TH_LAWYERS[0])
    case_id = _urgent_case(rest_settings)
    run_worker_burst(rest_settings)
    assert fake_twilio.sms_to(TH_LAWYERS[0]) == []
    assert len(fake_twilio.sms_to(TH_LAWYERS[1])) == 1
    refused = db.scalar(sa.select(Message).where(Message.case_id == case_id, Message.peer == TH_LAWYERS[0]))
    assert refused is not None and (refused.status, refused.error_code) == (MessageStatus.FAILED, sendgate.OPTED_OUT)


def test_twilio_21610_on_a_rest_send_is_recorded_and_the_number_is_not_asked_again(rest_settings: Settings,
                                                                                   fake_twilio, db) -> None:
    fake_twilio.fail_next(1, status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    _urgent_case(rest_settings)
    run_worker_burst(rest_settings)
    assert opted_out(db, TH_LAWYERS[0]) is not None  # a row made for the lawyer's number
    assert len(fake_twilio.sms_to(TH_LAWYERS[1])) == 1  # passed on at once
    posts = sum(1 for method, path in fake_twilio.requests if method == "POST" and path.endswith("/Messages.json"))
    assert posts == 2
    _urgent_case(rest_settings)
    run_worker_burst(rest_settings)
    assert len(fake_twilio.sms_to(TH_LAWYERS[1])) == 2
    # The gate refused the opted-out number itself: Twilio was asked once more, for the second lawyer.
    assert sum(1 for method, path in fake_twilio.requests if method == "POST" and path.endswith("/Messages.json")) == 3


def test_a_channel_address_has_no_way_out_yet(db, res) -> None:
    with pytest.raises(sendgate.SendError, match="no outbound transport for 'tg'"):
        sendgate.send_sms(db, res.transport(), "tg:12345", "x")


def test_a_callback_asked_for_after_stop_is_still_called(res, db, twilio, rest_settings: Settings,
                                                         fake_twilio) -> None:
    from tests.test_callbacks import ALL_DAY, call_now
    from tests.test_outbound import _path

    with res.db.Session() as s:
        caller = callers.get_or_create(s, KH_PHONE)
        sendgate.record_opt_out(s, KH_PHONE)
        req, _ = intake.request_callback(s, caller=caller, phone=KH_PHONE, source="sms")
        s.commit()
        cb_id = req.id
    call_now(res, cb_id, None)
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    # Staff first (the on-call phone for Cambodia); once they press 1 the person is dialled: a voice
    # callback the person asked for is not an SMS, so the opt-out does not stop it.
    [call] = fake_twilio.calls
    assert call["To"] == "+85512345001"
    base = twilio.voice_params(call["sid"], from_=call["From"], to=call["To"], Direction="outbound-api")
    whisper = twilio.post(_path(call["Url"]), base).data.decode()
    accept = whisper.split('action="')[1].split('"')[0]
    dial = twilio.post(_path(accept), {**base, "Digits": "1"}).data.decode()
    assert f">{KH_PHONE}</Number>" in dial
    assert fake_twilio.messages == []


# -- nothing routes round the gate -----------------------------------------------------------------

# Modules allowed to call something named send_sms: the gate, and the simulated phone that texts
# *in* (hotline.simclient's PhoneClient.send_sms posts to our webhook like a handset).
SEND_SMS_CALLERS = {"services/sendgate.py", "simclient/phone.py", "web/simulator.py", "commands/sim.py"}


def _calls(attr: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                through_gate = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.value.id == "sendgate"
                if name == attr and not through_gate:
                    rel = str(path.relative_to(ROOT))
                    found[rel] = found.get(rel, 0) + 1
    return found


def test_only_the_gate_calls_a_transports_send_sms() -> None:
    callers_ = set(_calls("send_sms"))
    assert "services/sendgate.py" in callers_
    assert callers_ <= SEND_SMS_CALLERS, f"send_sms called outside the send gate: {callers_ - SEND_SMS_CALLERS}"


def test_only_the_twilio_adapter_builds_a_twiml_message_and_only_the_transport_creates_one() -> None:
    assert set(_calls("message")) <= {"channels/twilio_sms.py"}
    assert set(_calls("create")) & {"services/legal_aid.py", "services/sms.py", "web/sms.py"} == set()
    creators = {rel for rel in _calls("create")
                if "messages.create" in (ROOT / rel).read_text(encoding="utf-8")}
    assert creators == {"telephony/transport.py"}
