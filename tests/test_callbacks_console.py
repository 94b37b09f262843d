"""The console's side of callbacks: "Call now" says honestly what will happen and when (and is
audited with its reason), the Callbacks page shows when each request is tried next and why, and an
urgent case is called back from its page through the same staff-first flow."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from hotline import create_app
from hotline.db import utcnow
from hotline.models import AuditEvent, CallbackRequest, CasePriority, OutboxJob
from hotline.resources import resources_of
from hotline.services import callers, intake
from hotline.settings import Settings
from tests.conftest import run_worker_burst
from tests.test_callbacks import ALL_DAY, PP, STAFF_PHONE
from tests.test_console import CALLER, audit_actions, login, make_callback, make_staff, post


def app_with(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings, TESTING=True)
    yield app
    resources_of(app).close()


@pytest.fixture
def allday(settings: Settings) -> Iterator[Flask]:
    yield from app_with(settings.with_(calling_hours=ALL_DAY))


@pytest.fixture
def closed(settings: Settings) -> Iterator[Flask]:
    now = utcnow().astimezone(PP)
    yield from app_with(settings.with_(calling_hours="13:00-14:00" if now.hour < 12 else "01:00-02:00"))


def with_phone(db, phone: str | None = STAFF_PHONE):  # type: ignore[no-untyped-def]
    user = make_staff(db)
    user.phone = phone
    db.commit()
    return user


def flashed(resp) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(resp.get_data(as_text=True))


def test_call_now_queues_a_staff_first_call_with_its_reason_audited(allday, db) -> None:
    client = allday.test_client()
    user = with_phone(db)
    req = make_callback(db)
    login(client)
    resp = post(client, f"/staff/callbacks/{req.id}/call", {"reason": "they texted: now is fine"})
    assert resp.status_code == 302
    job = db.scalar(sa.select(OutboxJob).where(OutboxJob.kind == "callback.place"))
    assert (job.payload, job.queue) == ({"callback_id": req.id, "staff_id": user.id,
                                         "reason": "call now: they texted: now is fine"}, "slow")
    assert audit_actions(db, "callback") == ["callback.call_now"]
    event = db.scalar(sa.select(AuditEvent).where(AuditEvent.action == "callback.call_now"))
    assert event.detail["reason"] == "they texted: now is fine"
    assert "press 1 to take the call" in flashed(client.get("/staff/callbacks"))


def test_call_now_needs_a_reason(allday, db) -> None:
    client = allday.test_client()
    with_phone(db)
    req = make_callback(db)
    login(client)
    post(client, f"/staff/callbacks/{req.id}/call", {"reason": "  "})
    assert db.scalar(sa.select(OutboxJob.id).where(OutboxJob.kind == "callback.place")) is None
    assert "Say why you call" in flashed(client.get("/staff/callbacks"))


def test_call_now_without_a_phone_on_the_account_says_so_and_places_nothing(allday, db) -> None:
    client = allday.test_client()
    with_phone(db, None)
    req = make_callback(db)
    login(client)
    post(client, f"/staff/callbacks/{req.id}/call", {"reason": "urgent"})
    assert db.scalar(sa.select(OutboxJob.id).where(OutboxJob.kind == "callback.place")) is None
    assert "Your account has no phone number" in flashed(client.get("/staff/callbacks"))
    assert audit_actions(db, "callback") == []


def test_call_now_outside_calling_hours_says_when_the_earliest_call_is(closed, db) -> None:
    client = closed.test_client()
    with_phone(db)
    req = make_callback(db)
    login(client)
    post(client, f"/staff/callbacks/{req.id}/call", {"reason": "urgent"})
    assert db.scalar(sa.select(OutboxJob.id).where(OutboxJob.kind == "callback.place")) is None
    page = flashed(client.get("/staff/callbacks"))
    assert "Outside calling hours in the person's time zone. The earliest possible call is 20" in page


def test_callbacks_page_shows_when_each_request_is_tried_next_and_why(allday, db) -> None:
    client = allday.test_client()
    with_phone(db)
    req = make_callback(db)
    req.next_attempt_at, req.next_reason = utcnow(), "outside calling hours in the callee's time zone (Asia/Bangkok)"
    db.commit()
    login(client)
    page = flashed(client.get("/staff/callbacks"))
    assert "outside calling hours in the callee's time zone (Asia/Bangkok)" in page
    assert 'name="reason"' in page


def test_an_urgent_case_is_called_back_from_its_page_staff_first_and_audited(allday, db, rest_settings,
                                                                               fake_twilio) -> None:
    client = allday.test_client()
    user = with_phone(db)
    caller = callers.get_or_create(db, CALLER)
    case, _ = intake.open_case(db, caller=caller, source="voice", source_sid=None, priority=CasePriority.URGENT,
                               language="th")
    db.commit()
    login(client)
    assert "Call back safely" in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    post(client, f"/staff/cases/{case.id}/callback", {"reason": "no voicemail yet"})
    req = db.scalar(sa.select(CallbackRequest).where(CallbackRequest.case_id == case.id))
    assert (req.phone, req.source, req.language.value) == (CALLER, "staff", "th")
    event = db.scalar(sa.select(AuditEvent).where(AuditEvent.action == "case.callback"))
    assert (event.object_id, event.detail["placed"], event.detail["reason"]) == (str(case.id), True,
                                                                                  "no voicemail yet")
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    [call] = fake_twilio.calls
    assert (call["To"], call["From"]) == (STAFF_PHONE, "+85523000000")  # staff first, from the hotline
    assert user.id == db.scalar(sa.select(CallbackRequest.assigned_to_id).where(CallbackRequest.id == req.id))


def test_a_case_with_no_number_to_call_says_so(allday, db) -> None:
    client = allday.test_client()
    with_phone(db)
    case, _ = intake.open_case(db, caller=None, source="sms", source_sid=None, priority=CasePriority.URGENT)
    db.commit()
    login(client)
    post(client, f"/staff/cases/{case.id}/callback", {"reason": "x"})
    assert db.scalar(sa.select(CallbackRequest.id)) is None
    assert "no number to call back" in flashed(client.get(f"/staff/cases/{case.id}"))


def test_call_now_without_a_phone_and_nobody_on_call_says_nothing_will_happen(settings, db) -> None:
    for app in app_with(settings.with_(calling_hours=ALL_DAY, oncall=())):
        client = app.test_client()
        with_phone(db, None)
        req = make_callback(db)
        login(client)
        post(client, f"/staff/callbacks/{req.id}/call", {"reason": "urgent"})
        assert "nobody is on call for TH: nothing will be tried" in flashed(client.get("/staff/callbacks"))
