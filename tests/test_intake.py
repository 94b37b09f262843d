"""Intake shared by every channel: one case per CallSid/MessageSid, one open callback per number."""

from __future__ import annotations

import sqlalchemy as sa
from rq import Queue
from rq.serializers import JSONSerializer

from hotline.models import CallbackRequest, Case, CasePriority, CaseStatusChange, OutboxJob
from hotline.services import callers, intake


def test_urgent_case_is_written_then_queued_on_the_urgent_queue(res) -> None:
    with res.db.Session() as s:
        caller = callers.get_or_create(s, "+66812345678")
        case, created = intake.open_case(s, caller=caller, source="sms", source_sid="SM1",
                                         priority=CasePriority.URGENT)
        s.commit()
    assert created and case.ref.startswith("HL-") and case.country == "TH"
    assert Queue("urgent", connection=res.redis(), serializer=JSONSerializer).count == 1
    with res.db.Session() as s:
        job = s.scalar(sa.select(OutboxJob))
        assert (job.kind, job.payload, job.case_id) == ("case.notify", {"case_id": case.id}, case.id)
        assert s.scalar(sa.select(CaseStatusChange.to_status)) == "new"


def test_same_source_sid_opens_one_case(res) -> None:
    with res.db.Session() as s:
        caller = callers.get_or_create(s, "+85512345678")
        a, _ = intake.open_case(s, caller=caller, source="voice", source_sid="CA1", priority=CasePriority.URGENT)
        b, created = intake.open_case(s, caller=caller, source="voice", source_sid="CA1",
                                      priority=CasePriority.URGENT)
        s.commit()
        assert a.id == b.id and not created
        assert s.scalar(sa.select(sa.func.count()).select_from(Case)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxJob)) == 1


def test_one_open_callback_request_per_number(res) -> None:
    with res.db.Session() as s:
        caller = callers.get_or_create(s, "+85512345678")
        a, created_a = intake.request_callback(s, caller=caller, phone=caller.phone, source="ivr")
        b, created_b = intake.request_callback(s, caller=caller, phone=caller.phone, source="sms")
        s.commit()
        assert created_a and not created_b and a.id == b.id
        a.status = "done"
        s.commit()
        c, created_c = intake.request_callback(s, caller=caller, phone=caller.phone, source="sms")
        s.commit()
        assert created_c and c.id != a.id


def test_database_itself_refuses_a_second_open_request(res) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    with res.db.Session() as s:
        s.add_all([CallbackRequest(phone="+85512345678", source="ivr"),
                   CallbackRequest(phone="+85512345678", source="sms")])
        with pytest.raises(IntegrityError):
            s.commit()


def test_caller_is_created_once_and_last_seen_is_kept_to_the_hour(res) -> None:
    from datetime import timedelta

    from hotline.db import utcnow
    from hotline.models import Caller

    with res.db.Session() as s:
        first = callers.get_or_create(s, "+66812345678")
        s.commit()
        seen = first.last_seen_at
        assert (first.country, seen is not None) == ("TH", True)
        again = callers.get_or_create(s, "+66812345678")
        s.commit()
        assert again.id == first.id and again.last_seen_at == seen  # no UPDATE within the hour
        again.last_seen_at = utcnow() - timedelta(hours=2)
        s.commit()
        later = callers.get_or_create(s, "+66812345678")
        s.commit()
        assert later.last_seen_at > utcnow() - timedelta(minutes=1)
        assert s.scalar(sa.select(sa.func.count()).select_from(Caller)) == 1
