"""Urgent cases reach the on-call lawyer: a real RQ worker (burst) against real Redis and a fake of
Twilio's REST API. Cases are opened through the shared intake, as the voice and SMS webhooks do."""

from __future__ import annotations

import html
import re
import secrets
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hotline.background.queues import rq_status
from hotline.background.worker import sweep_once
from hotline.db import utcnow
from hotline.models import (
    Case,
    CaseCategory,
    CasePriority,
    CaseStatus,
    Message,
    OnCallEntry,
    OutboxJob,
    OutboxStatus,
)
from hotline.resources import Resources
from hotline.services import callers, intake
from hotline.services.legal_aid import escalate_overdue, oncall_numbers
from tests.conftest import PUBLIC, requeue_scheduled, run_worker_burst

TH_FIRST, TH_SECOND, KH_ONLY = "+66812345001", "+66812345002", "+85512345001"
CALLER = "+66891234567"


def open_case(res: Resources, *, source: str = "sms", country: str = "TH",
              priority: CasePriority = CasePriority.URGENT,
              category: CaseCategory = CaseCategory.UNPAID_WAGES) -> int:
    with res.db.Session() as s:
        caller = callers.get_or_create(s, CALLER)
        case, created = intake.open_case(s, caller=caller, source=source, source_sid="SM" + secrets.token_hex(16),
                                         priority=priority, category=category, country=country)
        s.commit()  # the outbox row reaches Redis after this commit
        assert created
        return case.id


def backdate(res: Resources, model: type, column: str, by: timedelta) -> None:
    """Move a timestamp into the past, as if time had passed (the code under test reads the clock)."""
    with res.db.Session() as s:
        s.execute(sa.update(model).values({column: utcnow() - by}))
        s.commit()


def retry_due_jobs(res: Resources) -> int:
    """What the worker does once time has passed: RQ's scheduler moves retries whose wait is over
    into their queue (a burst worker runs no scheduler), and the sweeper pushes rows that never
    reached Redis. Returns how many jobs were pushed."""
    moved = requeue_scheduled(res.redis())
    backdate(res, OutboxJob, "created_at", timedelta(minutes=2))
    with res.db.Session() as s:
        s.execute(sa.update(OutboxJob).where(OutboxJob.enqueued_at.is_not(None))
                  .values(enqueued_at=utcnow() - timedelta(minutes=2)))
        s.commit()
    return moved + sweep_once(res)


def the_case(db, case_id: int) -> Case:
    db.expire_all()
    case = db.get(Case, case_id)
    assert case is not None
    return case


@pytest.mark.parametrize("source", ["sms", "voice"])
def test_urgent_case_texts_the_oncall_lawyer_exactly_once(res, db, rest_settings, fake_twilio, source) -> None:
    case_id = open_case(res, source=source)
    run_worker_burst(rest_settings)

    [sms] = fake_twilio.messages
    case = the_case(db, case_id)
    assert sms["To"] == TH_FIRST and sms["From"] == "+85523000000"
    assert sms["Body"] == f"Hotline: urgent case {case.ref} (unpaid wages, TH). Please claim it in the console."
    assert sms["StatusCallback"] == f"{PUBLIC}/twilio/sms/status"
    msg = db.scalar(sa.select(Message).where(Message.case_id == case_id))
    assert (msg.sid, msg.status, msg.purpose, msg.peer, msg.segments) == (sms["sid"], "sent", "oncall_alert",
                                                                         TH_FIRST, 1)
    assert msg.idempotency_key == f"case:{case_id}:alert:0:{TH_FIRST}"
    assert case.notified_at is not None and case.last_error is None
    assert db.scalar(sa.select(OutboxJob.status)) == OutboxStatus.DONE


def test_urgent_text_through_the_signed_webhook_reaches_the_lawyer_once(twilio, db, rest_settings,
                                                                        fake_twilio) -> None:
    resp = twilio.post("/twilio/sms", twilio.sms_params("SOS", from_=CALLER))
    assert resp.status_code == 200
    run_worker_burst(rest_settings)
    run_worker_burst(rest_settings)  # a second worker pass sends nothing more
    case = db.scalar(sa.select(Case))
    assert (case.source, case.priority, case.country) == ("sms", "urgent", "TH")
    [sms] = fake_twilio.sms_to(TH_FIRST)
    assert case.ref in sms["Body"] and CALLER not in sms["Body"]


def test_urgent_key_in_a_call_through_the_signed_webhook_reaches_the_lawyer_once(twilio, db, rest_settings,
                                                                                 fake_twilio) -> None:
    sid = "CA" + secrets.token_hex(16)
    menu = twilio.post("/twilio/voice", twilio.voice_params(sid, from_=CALLER)).data.decode()
    action = html.unescape(re.search(r'<Gather action="([^"]+)"', menu).group(1))
    assert twilio.post(action, twilio.voice_params(sid, from_=CALLER, Digits="9")).status_code == 200
    run_worker_burst(rest_settings)
    case = db.scalar(sa.select(Case))
    assert (case.source, case.priority, case.source_sid) == ("voice", "urgent", sid)
    [sms] = fake_twilio.sms_to(TH_FIRST)
    assert case.ref in sms["Body"]
    assert [m["To"] for m in fake_twilio.messages].count(TH_FIRST) == 1


def test_alert_never_carries_the_callers_number_or_alarming_words(res, rest_settings, fake_twilio) -> None:
    open_case(res, category=CaseCategory.TRAFFICKING, country="KH")
    run_worker_burst(rest_settings)
    [sms] = fake_twilio.sms_to(KH_ONLY)
    body = sms["Body"].lower()
    assert "(exploitation, kh)" in body
    for word in ("trafficking", "violence", "escape", CALLER, CALLER[-7:]):
        assert word.lower() not in body


def test_a_job_run_again_after_delivery_sends_nothing(res, db, rest_settings, fake_twilio) -> None:
    open_case(res)
    run_worker_burst(rest_settings)
    # As if the sweeper had re-enqueued it (a lease ran out): the handler runs, the alert is not resent.
    db.execute(sa.update(OutboxJob).values(status=OutboxStatus.PENDING))
    db.commit()
    assert retry_due_jobs(res) == 1
    run_worker_burst(rest_settings)
    assert len(fake_twilio.messages) == 1
    assert db.scalar(sa.select(OutboxJob.attempts)) == 2


def test_normal_case_texts_nobody(res, db, rest_settings, fake_twilio) -> None:
    open_case(res, priority=CasePriority.NORMAL)
    run_worker_burst(rest_settings)
    assert fake_twilio.messages == []
    assert db.scalar(sa.select(OutboxJob.status)) == OutboxStatus.DONE


def test_job_failing_twice_with_500_is_retried_and_delivered_once(res, db, rest_settings, fake_twilio) -> None:
    case_id = open_case(res)
    fake_twilio.fail_next(2, status=500, code=20500)

    run_worker_burst(rest_settings)
    job = db.scalar(sa.select(OutboxJob))
    assert (job.status, job.attempts) == (OutboxStatus.PENDING, 1)
    assert the_case(db, case_id).last_error.startswith("case.notify: retrying: Twilio 500")
    # RQ holds the retry until its backoff is over; the sweeper, finding the row pending, leaves it.
    assert rq_status(res.redis(), job.id) == "scheduled"
    backdate(res, OutboxJob, "created_at", timedelta(minutes=2))
    backdate(res, OutboxJob, "enqueued_at", timedelta(minutes=2))
    assert sweep_once(res) == 0

    for _ in range(2):  # the second failure, then the delivery
        assert retry_due_jobs(res) == 1
        run_worker_burst(rest_settings)

    assert len(fake_twilio.sms_to(TH_FIRST)) == 1
    assert [m for m, p in fake_twilio.requests if p.endswith("/Messages.json")].count("POST") == 3
    db.expire_all()
    job = db.scalar(sa.select(OutboxJob))
    assert (job.status, job.attempts) == (OutboxStatus.DONE, 3)
    assert the_case(db, case_id).last_error is None
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 1


@pytest.mark.parametrize("code,reason", [(21211, "invalid 'To' number"), (21610, "opted out")])
def test_permanent_error_fails_at_once_with_the_reason_on_the_case(res, db, rest_settings, fake_twilio,
                                                                   code, reason) -> None:
    case_id = open_case(res, country="KH")
    fake_twilio.fail_next(1, status=400, code=code)
    run_worker_burst(rest_settings)

    job = db.scalar(sa.select(OutboxJob))
    assert (job.status, job.attempts) == (OutboxStatus.FAILED, 1)
    case = the_case(db, case_id)
    assert str(code) in case.last_error and reason in case.last_error
    msg = db.scalar(sa.select(Message))
    assert (msg.status, msg.error_code, msg.sid) == ("failed", str(code), None)
    # Never retried: the sweeper leaves failed jobs alone.
    assert retry_due_jobs(res) == 0
    run_worker_burst(rest_settings)
    assert fake_twilio.messages == []


def test_unreachable_first_number_texts_the_next_person_at_once(res, db, rest_settings, fake_twilio) -> None:
    case_id = open_case(res)
    fake_twilio.fail_next(1, status=400, code=21211)
    run_worker_burst(rest_settings)

    assert [m["To"] for m in fake_twilio.messages] == [TH_SECOND]  # no 15-minute wait
    jobs = db.scalars(sa.select(OutboxJob).order_by(OutboxJob.id)).all()
    assert [(j.status, j.payload.get("level", 0)) for j in jobs] == [(OutboxStatus.FAILED, 0), (OutboxStatus.DONE, 1)]
    case = the_case(db, case_id)
    assert case.escalation_level == 1 and "21211" in case.last_error  # the bad number stays visible
    assert case.overdue is False


def test_unclaimed_case_escalates_to_the_next_person_once(res, db, rest_settings, fake_twilio) -> None:
    case_id = open_case(res)
    run_worker_burst(rest_settings)
    assert escalate_overdue(res) == 0  # not yet: 15 minutes have not passed

    backdate(res, Case, "notified_at", timedelta(minutes=16))
    assert escalate_overdue(res) == 1
    assert escalate_overdue(res) == 0  # a second sweeper pass, or a second host, changes nothing
    run_worker_burst(rest_settings)

    assert [m["To"] for m in fake_twilio.messages] == [TH_FIRST, TH_SECOND]
    case = the_case(db, case_id)
    assert (case.overdue, case.escalation_level, case.status) == (True, 1, CaseStatus.NEW)
    assert "still unclaimed after 15 min" in fake_twilio.messages[1]["Body"]

    # Everyone on the list has been texted: the case stays overdue, nobody is texted again.
    backdate(res, Case, "notified_at", timedelta(minutes=16))
    assert escalate_overdue(res) == 0
    run_worker_burst(rest_settings)
    assert len(fake_twilio.messages) == 2


def test_a_single_oncall_number_gets_one_reminder(res, db, rest_settings, fake_twilio) -> None:
    open_case(res, country="KH")
    run_worker_burst(rest_settings)
    backdate(res, Case, "notified_at", timedelta(minutes=16))
    assert escalate_overdue(res) == 1
    run_worker_burst(rest_settings)
    assert [m["To"] for m in fake_twilio.messages] == [KH_ONLY, KH_ONLY]


def test_claimed_case_is_not_escalated(res, db, rest_settings, fake_twilio) -> None:
    case_id = open_case(res)
    run_worker_burst(rest_settings)
    db.execute(sa.update(Case).values(status=CaseStatus.CLAIMED, notified_at=utcnow() - timedelta(hours=1)))
    db.commit()
    assert escalate_overdue(res) == 0
    assert the_case(db, case_id).overdue is False


def test_roster_in_the_console_comes_before_the_settings(res, db, settings, rest_settings, fake_twilio) -> None:
    db.add_all([OnCallEntry(country="TH", phone="+66899999002", position=2),
                OnCallEntry(country="TH", phone="+66899999001", position=1),
                OnCallEntry(country="TH", phone="+66899999000", position=0, active=False),
                OnCallEntry(country="KH", phone="+85599999001", position=0)])
    db.commit()
    assert oncall_numbers(db, settings, "TH") == ["+66899999001", "+66899999002"]
    assert oncall_numbers(db, settings, "MY") == ["+66812345001", "+66812345002", "+85512345001"]
    open_case(res)
    run_worker_burst(rest_settings)
    assert [m["To"] for m in fake_twilio.messages] == ["+66899999001"]


def test_delivery_report_for_an_alert_updates_its_message(res, db, twilio, rest_settings, fake_twilio) -> None:
    open_case(res)
    run_worker_burst(rest_settings)
    [sms] = fake_twilio.messages
    resp = twilio.post(sms["StatusCallback"].removeprefix(PUBLIC), {"MessageSid": sms["sid"], "AccountSid": "AC",
                                                                    "MessageStatus": "delivered", "To": TH_FIRST})
    assert resp.status_code == 200
    db.expire_all()
    assert db.scalar(sa.select(Message.status).where(Message.sid == sms["sid"])) == "delivered"
