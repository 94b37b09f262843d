"""An alert Twilio accepted but the carrier could not deliver (reported minutes later by the status
callback) goes to the next on-call person at once: once, whatever the redeliveries or their order.
A real RQ worker, the fake Twilio REST API, and status callbacks signed as Twilio signs them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hotline.models import Case, CaseStatus, Message, OutboxJob
from tests.conftest import PUBLIC, run_worker_burst
from tests.test_legal_aid import TH_FIRST, TH_SECOND, open_case, the_case


def report(twilio, sms: dict[str, str], status: str, code: str | None = None):  # type: ignore[no-untyped-def]
    params = {"MessageSid": sms["sid"], "AccountSid": "AC", "MessageStatus": status, "To": sms["To"]}
    if code:
        params["ErrorCode"] = code
    r = twilio.post(sms["StatusCallback"].removeprefix(PUBLIC), params)
    assert r.status_code == 200
    return r


@pytest.mark.parametrize("status", ["undelivered", "failed"])
@pytest.mark.parametrize("code", ["30003", "30005", "30008"])
def test_late_carrier_failure_texts_the_next_person_once(res, db, twilio, rest_settings, fake_twilio,
                                                         status: str, code: str) -> None:
    case_id = open_case(res)
    run_worker_burst(rest_settings)
    [first] = fake_twilio.messages
    assert first["To"] == TH_FIRST
    report(twilio, first, "sent")
    report(twilio, first, status, code)
    report(twilio, first, status, code)  # Twilio redelivers
    run_worker_burst(rest_settings)
    report(twilio, first, status, code)  # ...even after the next person was texted
    report(twilio, first, "sent")  # and out of order
    run_worker_burst(rest_settings)
    assert [m["To"] for m in fake_twilio.messages] == [TH_FIRST, TH_SECOND]  # no 15-minute wait, once
    case = the_case(db, case_id)
    assert case.escalation_level == 1
    assert case.last_error.startswith(f"alert to +66******001 {status} ({code}")  # shown on the case
    jobs = db.scalars(sa.select(OutboxJob).order_by(OutboxJob.id)).all()
    assert [j.payload.get("level", 0) for j in jobs] == [0, 1]


def test_delivered_alert_then_a_stray_undelivered_changes_nothing(res, db, twilio, rest_settings,
                                                                  fake_twilio) -> None:
    case_id = open_case(res)
    run_worker_burst(rest_settings)
    [first] = fake_twilio.messages
    report(twilio, first, "delivered")
    report(twilio, first, "undelivered", "30003")  # out of order: delivered is final
    run_worker_burst(rest_settings)
    assert len(fake_twilio.messages) == 1
    assert the_case(db, case_id).escalation_level == 0


def test_failure_of_an_alert_for_a_claimed_case_texts_nobody_else(res, db, twilio, rest_settings,
                                                                  fake_twilio) -> None:
    case_id = open_case(res)
    run_worker_burst(rest_settings)
    [first] = fake_twilio.messages
    db.execute(sa.update(Case).where(Case.id == case_id).values(status=CaseStatus.CLAIMED))
    db.commit()
    report(twilio, first, "undelivered", "30003")
    run_worker_burst(rest_settings)
    assert len(fake_twilio.messages) == 1
    assert "undelivered" in the_case(db, case_id).last_error


def test_failure_of_a_reply_to_a_texter_is_only_recorded(res, db, twilio) -> None:
    r = twilio.post("/twilio/sms", twilio.sms_params("help", sid="SM" + "a" * 32))
    assert r.status_code == 200
    reply = db.scalar(sa.select(Message).where(Message.purpose == "reply"))
    r = twilio.post("/twilio/sms/status?reply_to=SM" + "a" * 32,
                    {"MessageSid": "SM" + "b" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003"})
    assert r.status_code == 200
    db.expire_all()
    assert db.get(Message, reply.id).status == "undelivered"
    assert db.scalar(sa.select(sa.func.count(OutboxJob.id))) == 0
