"""Staff console over the Flask test client: login, permissions, CSRF, rate limits, cases, audit."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline import create_app
from hotline.db import utcnow
from hotline.models import (
    AuditEvent,
    Call,
    CallbackAttempt,
    CallbackRequest,
    Case,
    CaseNote,
    CasePriority,
    CaseStatusChange,
    Direction,
    Message,
    MessageStatus,
    OnCallEntry,
    Recording,
    StaffUser,
)
from hotline.resources import resources_of
from hotline.services import callers, cases, intake
from hotline.services import staff as staff_service
from hotline.web.staff import IP_LIMIT, LOCK_AFTER, PUBLIC_ENDPOINTS

PASSWORD = "correct horse battery"
CALLER = "+66812345678"


def make_staff(db, email: str = "lawyer@example.org", role: str = "lawyer", name: str = "") -> StaffUser:
    user = staff_service.create(db, email, role, PASSWORD, name=name or email.split("@")[0])
    db.commit()
    return user


def make_case(db, priority: CasePriority = CasePriority.URGENT, phone: str = CALLER, sid: str | None = None,
              age: timedelta = timedelta(0)) -> Case:
    caller = callers.get_or_create(db, phone)
    case, _ = intake.open_case(db, caller=caller, source="voice", source_sid=sid, priority=priority)
    case.created_at = utcnow() - age
    db.commit()
    return case


def token(client, path: str = "/staff/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def login(client, email: str = "lawyer@example.org", password: str = PASSWORD):
    return client.post("/staff/login", data={"email": email, "password": password, "csrf_token": token(client)})


def post(client, path: str, data: dict[str, str] | None = None):
    return client.post(path, data={**(data or {}), "csrf_token": token(client, "/staff/")})


def audit_actions(db, object_type: str | None = None) -> list[str]:
    db.expire_all()
    q = sa.select(AuditEvent.action).order_by(AuditEvent.id)
    if object_type:
        q = q.where(AuditEvent.object_type == object_type)
    return list(db.scalars(q))


# --- login, sessions, permissions --------------------------------------------------------------


def test_every_staff_endpoint_sends_a_logged_out_browser_to_login(app, client) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            resp = client.open(path, method=method)
            assert resp.status_code == 302, (method, path, resp.status_code)
            assert resp.location.startswith("/staff/login"), (method, path)
            checked += 1
    assert checked >= 20
    assert PUBLIC_ENDPOINTS == {"staff.login", "staff.static"}
    assert client.get("/staff/static/staff.css").status_code == 200


def test_right_password_opens_the_queue_and_is_audited(client, db) -> None:
    user = make_staff(db)
    resp = login(client)
    assert resp.status_code == 302 and resp.location == "/staff/"
    page = client.get("/staff/")
    assert page.status_code == 200 and "Case queue" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    db.refresh(user)
    assert user.last_login_at is not None and audit_actions(db) == ["staff.login"]


def test_wrong_password_is_refused_counted_and_audited(client, db) -> None:
    user = make_staff(db)
    resp = login(client, password="wrong password!")
    assert resp.status_code == 401 and "Wrong email or password." in resp.get_data(as_text=True)
    db.refresh(user)
    assert user.failed_logins == 1 and audit_actions(db) == ["staff.login_failed"]
    assert client.get("/staff/").status_code == 302


def test_account_locks_after_five_wrong_passwords_even_for_the_right_one(client, db) -> None:
    user = make_staff(db)
    for _ in range(LOCK_AFTER):
        assert login(client, password="wrong password!").status_code == 401
    db.refresh(user)
    assert user.locked_until is not None and user.locked_until > utcnow() + timedelta(minutes=14)
    # Locked: answered exactly like a wrong password, so a lockout does not reveal that the account exists.
    resp = login(client)
    assert resp.status_code == 401 and "Wrong email or password." in resp.get_data(as_text=True)
    assert audit_actions(db)[-1] == "staff.login_failed"
    assert db.scalars(sa.select(AuditEvent.detail).order_by(AuditEvent.id.desc())).first() == {"reason": "locked"}
    user.locked_until = utcnow() - timedelta(seconds=1)
    db.commit()
    assert login(client).status_code == 302


def test_one_address_is_blocked_after_many_failures_across_accounts(client, db) -> None:
    make_staff(db)
    # IP_LIMIT - 1 earlier failures from this address, then one more through the form.
    db.add_all([AuditEvent(action="staff.login_failed", object_type="staff", ip="127.0.0.1", at=utcnow())
                for _ in range(IP_LIMIT - 1)])
    db.commit()
    assert login(client, email="nobody@example.org").status_code == 401
    assert login(client).status_code == 429
    assert login(client).status_code == 429  # a refused attempt is not counted again, and stays refused
    # Failures older than the window no longer count.
    db.execute(sa.update(AuditEvent).values(at=utcnow() - timedelta(minutes=16)))
    db.commit()
    assert login(client).status_code == 302


def test_login_works_when_redis_is_down(settings, db) -> None:
    make_staff(db)
    app = create_app(settings.with_(redis_url="redis://127.0.0.1:1/0"), TESTING=True)
    try:
        client = app.test_client()
        assert login(client).status_code == 302
        assert client.get("/staff/").status_code == 200
    finally:
        resources_of(app).close()


def test_idle_session_is_ended_after_thirty_minutes(client, db) -> None:
    make_staff(db)
    login(client)
    with client.session_transaction() as sess:
        sess["staff_seen"] = (utcnow() - timedelta(minutes=31)).timestamp()
    resp = client.get("/staff/")
    assert resp.status_code == 302 and resp.location.startswith("/staff/login")
    assert client.get("/staff/").status_code == 302  # logged out for good, not just redirected once


def test_session_ends_after_eight_hours_even_when_active(client, db) -> None:
    make_staff(db)
    login(client)
    with client.session_transaction() as sess:
        sess["staff_login_at"] = (utcnow() - timedelta(hours=8, minutes=1)).timestamp()
    assert client.get("/staff/").status_code == 302


def test_login_never_redirects_outside_the_console(client, db) -> None:
    make_staff(db)
    resp = client.post("/staff/login?next=https://evil.example/staff/",
                       data={"email": "lawyer@example.org", "password": PASSWORD, "csrf_token": token(client)})
    assert resp.location == "/staff/"
    for evil in ("//evil.example/staff/", "/\\evil.example"):
        post(client, "/staff/logout")
        resp = client.post(f"/staff/login?next={evil}",
                           data={"email": "lawyer@example.org", "password": PASSWORD, "csrf_token": token(client)})
        assert resp.location == "/staff/", evil
    post(client, "/staff/logout")
    resp = client.post("/staff/login?next=/staff/callbacks",
                       data={"email": "lawyer@example.org", "password": PASSWORD, "csrf_token": token(client)})
    assert resp.location == "/staff/callbacks"


def test_deactivated_staff_is_logged_out(client, db) -> None:
    user = make_staff(db)
    login(client)
    user.active = False
    db.commit()
    assert client.get("/staff/").status_code == 302


def test_logout_ends_the_session(client, db) -> None:
    make_staff(db)
    login(client)
    assert post(client, "/staff/logout").location == "/staff/login"
    assert client.get("/staff/").status_code == 302
    assert audit_actions(db)[-1] == "staff.logout"


# --- CSRF ------------------------------------------------------------------------------------


def test_console_form_without_csrf_token_is_refused(client, db) -> None:
    make_staff(db)
    assert client.post("/staff/login", data={"email": "lawyer@example.org", "password": PASSWORD}).status_code == 400
    login(client)
    case = make_case(db)
    resp = client.post(f"/staff/cases/{case.id}/notes", data={"body": "forged"})
    assert resp.status_code == 400 and "This form has expired" in resp.get_data(as_text=True)
    assert db.scalar(sa.select(sa.func.count(CaseNote.id))) == 0


def test_signed_twilio_webhook_is_not_subject_to_csrf(app, twilio) -> None:
    assert app.config["WTF_CSRF_ENABLED"] is not False
    assert twilio.post("/twilio/sms", twilio.sms_params("HELP")).status_code == 200
    assert twilio.post("/twilio/voice/status", {"CallSid": "CA404", "CallStatus": "completed"}).status_code == 200


# --- queue and case page -----------------------------------------------------------------------


def test_queue_lists_urgent_first_then_longest_waiting_with_overdue_marks(client, db) -> None:
    make_staff(db)
    normal_old = make_case(db, CasePriority.NORMAL, age=timedelta(hours=5), phone="+66812345671")
    urgent_new = make_case(db, CasePriority.URGENT, age=timedelta(minutes=2), phone="+66812345672")
    urgent_old = make_case(db, CasePriority.URGENT, age=timedelta(minutes=20), phone="+66812345673")
    closed = make_case(db, CasePriority.URGENT, age=timedelta(hours=1), phone="+66812345674")
    closed.status = "closed"
    db.commit()
    login(client)
    html = client.get("/staff/").get_data(as_text=True)
    refs = re.findall(r'data-ref="([^"]+)"', html)
    assert refs == [urgent_old.ref, urgent_new.ref, normal_old.ref]
    overdue_rows = re.findall(r'class="priority-\w+ overdue" data-ref="([^"]+)"', html)
    assert overdue_rows == [urgent_old.ref]
    all_refs = re.findall(r'data-ref="([^"]+)"', client.get("/staff/?view=all").get_data(as_text=True))
    assert closed.ref in all_refs


def test_viewing_a_case_is_audited_and_numbers_are_masked_until_revealed(client, db) -> None:
    user = make_staff(db)
    case = make_case(db)
    login(client)
    html = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert case.ref in html and "+66******678" in html and CALLER not in html
    revealed = post(client, f"/staff/cases/{case.id}/reveal").get_data(as_text=True)
    assert CALLER in revealed
    rows = db.execute(sa.select(AuditEvent.action, AuditEvent.staff_id, AuditEvent.object_id, AuditEvent.ip)
                      .where(AuditEvent.object_type == "case").order_by(AuditEvent.id)).all()
    assert [tuple(r) for r in rows] == [("case.viewed", user.id, str(case.id), "127.0.0.1"),
                                        ("case.phone_revealed", user.id, str(case.id), "127.0.0.1")]
    # A reload after the reveal is masked again: the full number is never one GET away.
    assert CALLER not in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)


def test_case_page_shows_the_callers_history_but_not_alerts_sent_to_staff(client, db) -> None:
    make_staff(db)
    earlier = make_case(db, CasePriority.NORMAL, sid="CAearlier")
    case = make_case(db, sid="CAnow")
    call = Call(call_sid="CAnow", caller_id=case.caller_id, line="main", duration_s=42)
    db.add(call)
    db.flush()
    from hotline.models import CallEvent

    db.add(CallEvent(call_id=call.id, kind="node", node="urgent_menu", detail="pressed 9"))
    db.add_all([
        Message(direction=Direction.INBOUND, caller_id=case.caller_id, peer=CALLER, body="boss took my passport",
                status=MessageStatus.RECEIVED),
        Message(direction=Direction.OUTBOUND, caller_id=None, peer="+66812345001", case_id=case.id,
                body=f"Urgent case {case.ref} from +66812345678", status=MessageStatus.SENT, purpose="oncall_alert"),
    ])
    db.commit()
    login(client)
    html = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "urgent_menu" in html and "pressed 9" in html and "42 s" in html
    assert "boss took my passport" in html
    assert "Urgent case" not in html and "+66812345001" not in html
    assert f'href="/staff/cases/{earlier.id}"' in html


def test_claim_then_note_then_close_records_who_and_when(client, db) -> None:
    user = make_staff(db)
    case = make_case(db)
    login(client)
    assert post(client, f"/staff/cases/{case.id}/claim").status_code == 302
    post(client, f"/staff/cases/{case.id}/notes", {"body": "Called back; safe to talk after 6 pm."})
    post(client, f"/staff/cases/{case.id}/status", {"status": "closed", "reason": "referred to shelter"})
    db.expire_all()
    case = db.get(Case, case.id)
    assert (case.status, case.claimed_by_id) == ("closed", user.id) and case.closed_at is not None
    assert [(n.body, n.staff_id) for n in case.notes] == [("Called back; safe to talk after 6 pm.", user.id)]
    changes = [(h.from_status, h.to_status, h.staff_id, h.reason) for h in case.history]
    assert changes == [(None, "new", None, "opened by voice"), ("new", "claimed", user.id, None),
                       ("claimed", "closed", user.id, "referred to shelter")]
    assert all(h.at is not None for h in case.history)
    assert audit_actions(db, "case") == ["case.claimed", "case.note_added", "case.status"]
    html = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "Called back; safe to talk after 6 pm." in html and "referred to shelter" in html


def test_second_staff_member_claiming_is_told_who_has_the_case(app, client, db) -> None:
    make_staff(db, "first@example.org", name="Sokha")
    make_staff(db, "second@example.org", name="Dara")
    case = make_case(db)
    other = app.test_client()
    login(client, "first@example.org")
    login(other, "second@example.org")
    post(client, f"/staff/cases/{case.id}/claim")
    post(other, f"/staff/cases/{case.id}/claim")
    html = other.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "Someone else claimed this case first: Sokha." in html
    db.expire_all()
    assert db.get(Case, case.id).claimed_by.email == "first@example.org"
    assert db.scalar(sa.select(sa.func.count(CaseStatusChange.id)).where(CaseStatusChange.to_status == "claimed")) == 1


def test_concurrent_claims_have_exactly_one_winner(res, db) -> None:
    ids = [make_staff(db, f"s{i}@example.org").id for i in range(4)]
    case_id = make_case(db).id
    results: list[str] = []
    barrier = threading.Barrier(len(ids))

    def attempt(staff_id: int) -> None:
        with res.db.Session() as s:
            s.get(Case, case_id)  # each session has read the case as "new" before anyone claims
            barrier.wait()
            try:
                cases.claim(s, case_id, staff_id)
                s.commit()
                results.append("won")
            except cases.CaseError as exc:
                s.rollback()
                results.append(exc.key)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["already_claimed"] * 3 + ["won"]


def test_operator_cannot_assign_but_a_lawyer_can(app, client, db) -> None:
    make_staff(db, "op@example.org", role="operator")
    lawyer = make_staff(db, "lawyer@example.org", role="lawyer")
    case = make_case(db)
    login(client, "op@example.org")
    assert post(client, f"/staff/cases/{case.id}/assign", {"staff_id": str(lawyer.id)}).status_code == 403
    assert 'name="staff_id"' not in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    other = app.test_client()
    login(other, "lawyer@example.org")
    assert post(other, f"/staff/cases/{case.id}/assign", {"staff_id": str(lawyer.id)}).status_code == 302
    db.expire_all()
    assert (db.get(Case, case.id).claimed_by_id, db.get(Case, case.id).status) == (lawyer.id, "claimed")
    assert "case.assigned" in audit_actions(db, "case")


def test_empty_note_is_refused_with_a_message(client, db) -> None:
    make_staff(db)
    case = make_case(db)
    login(client)
    post(client, f"/staff/cases/{case.id}/notes", {"body": "   "})
    assert "The note is empty." in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert db.scalar(sa.select(sa.func.count(CaseNote.id))) == 0


def test_unknown_case_is_404(client, db) -> None:
    make_staff(db)
    login(client)
    assert client.get("/staff/cases/999").status_code == 404


# --- recordings ------------------------------------------------------------------------------


def test_recording_plays_to_staff_and_each_play_is_audited(client, db, settings) -> None:
    from hotline.services import recordings

    make_staff(db)
    case = make_case(db)
    audio = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)
    rec = Recording(recording_sid="RE" + "a" * 32, case_id=case.id)
    db.add(rec)
    db.flush()
    recordings.store(settings, rec, audio)
    db.commit()
    assert client.get(f"/staff/recordings/{rec.id}").status_code == 302  # logged out: nothing
    login(client)
    for _ in range(2):
        resp = client.get(f"/staff/recordings/{rec.id}")
        assert resp.status_code == 200 and resp.data == audio and resp.mimetype == "audio/wav"
    assert audit_actions(db, "recording") == ["recording.played", "recording.played"]
    assert f'src="/staff/recordings/{rec.id}"' in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert not Path(settings.recordings_path, rec.storage_path).read_bytes().startswith(b"RIFF")


def test_missing_recording_file_is_404_and_not_audited_as_played(client, db) -> None:
    make_staff(db)
    rec = Recording(recording_sid="RE" + "b" * 32, status="purged")
    db.add(rec)
    db.commit()
    login(client)
    assert client.get(f"/staff/recordings/{rec.id}").status_code == 404
    assert audit_actions(db, "recording") == []


# --- callbacks -------------------------------------------------------------------------------


def make_callback(db, phone: str = CALLER, age: timedelta = timedelta(0)) -> CallbackRequest:
    caller = callers.get_or_create(db, phone)
    req, _ = intake.request_callback(db, caller=caller, phone=phone, source="ivr")
    req.created_at = utcnow() - age
    db.commit()
    return req


def test_callbacks_are_listed_soonest_due_first_with_masked_numbers(client, db) -> None:
    make_staff(db)
    later = make_callback(db, "+66812345671", age=timedelta(minutes=5))
    sooner = make_callback(db, "+66812345672", age=timedelta(minutes=50))
    retry = make_callback(db, "+66812345673", age=timedelta(hours=2))
    retry.next_attempt_at = utcnow() + timedelta(minutes=20)
    db.commit()
    login(client)
    html = client.get("/staff/callbacks").get_data(as_text=True)
    assert re.findall(r'id="callback-(\d+)"', html) == [str(sooner.id), str(later.id), str(retry.id)]
    assert "+66812345671" not in html and "+66******671" in html


@pytest.mark.parametrize(("outcomes", "status", "attempts"), [
    (["reached"], "done", 1),
    (["no_answer", "busy", "unsafe"], "failed", 3),
    (["no_answer", "busy"], "open", 2),
    (["wrong_number"], "failed", 1),
])
def test_outcome_buttons_record_attempts_and_close_requests(client, db, outcomes, status, attempts) -> None:
    user = make_staff(db)
    req = make_callback(db)
    login(client)
    for outcome in outcomes:
        assert post(client, f"/staff/callbacks/{req.id}/outcome", {"outcome": outcome}).status_code == 302
    db.expire_all()
    req = db.get(CallbackRequest, req.id)
    assert (req.status, req.attempts) == (status, attempts)
    assert [(a.outcome, a.staff_id) for a in req.attempt_log] == [(o, user.id) for o in outcomes]
    assert (req.closed_at is not None) == (status != "open")
    if status == "open":
        assert req.next_attempt_at is not None and req.next_attempt_at > utcnow()
    assert audit_actions(db, "callback") == ["callback.outcome"] * len(outcomes)


def test_outcome_fills_the_attempt_call_now_placed_instead_of_counting_twice(client, db, settings) -> None:
    from hotline.services import callbacks

    user = make_staff(db)
    req = make_callback(db)
    placed = CallbackAttempt(request_id=req.id, staff_id=user.id, call_sid="CA" + "c" * 32)
    req.status = "in_progress"
    db.add(placed)
    db.commit()
    login(client)
    post(client, f"/staff/callbacks/{req.id}/outcome", {"outcome": "busy"})
    db.expire_all()
    req = db.get(CallbackRequest, req.id)
    assert [(a.id, a.outcome) for a in req.attempt_log] == [(placed.id, "busy")]
    assert (req.status, req.attempts) == ("open", 1)
    # Twilio's status callback for the same call arrives later: it is not counted again.
    assert callbacks.finish_attempt(db, settings, placed.id, "no_answer") is False


def test_outcome_on_a_closed_request_adds_nothing(client, db) -> None:
    make_staff(db)
    req = make_callback(db)
    login(client)
    post(client, f"/staff/callbacks/{req.id}/outcome", {"outcome": "reached"})
    post(client, f"/staff/callbacks/{req.id}/outcome", {"outcome": "busy"})
    assert db.scalar(sa.select(sa.func.count(CallbackAttempt.id))) == 1


def test_revealing_a_callback_number_is_audited(client, db) -> None:
    make_staff(db)
    req = make_callback(db)
    login(client)
    assert CALLER in post(client, f"/staff/callbacks/{req.id}/reveal").get_data(as_text=True)
    assert audit_actions(db, "callback") == ["callback.phone_revealed"]


# --- admin pages -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/staff/accounts", "/staff/oncall", "/staff/audit"])
def test_admin_pages_are_forbidden_to_lawyers(client, db, path) -> None:
    make_staff(db)
    login(client)
    assert client.get(path).status_code == 403


def test_admin_creates_an_account_that_can_log_in(app, client, db) -> None:
    make_staff(db, "admin@example.org", role="admin")
    login(client, "admin@example.org")
    resp = post(client, "/staff/accounts", {"email": "New.Lawyer@Example.org", "name": "Srey", "role": "lawyer",
                                            "phone": "081 234 567", "password": "short"})
    assert resp.status_code == 400 and "at least 10 characters" in resp.get_data(as_text=True)
    resp = post(client, "/staff/accounts", {"email": "New.Lawyer@Example.org", "name": "Srey", "role": "lawyer",
                                            "phone": "081 234 567", "password": "a long enough password"})
    assert resp.status_code == 302
    user = db.scalar(sa.select(StaffUser).where(StaffUser.email == "new.lawyer@example.org"))
    assert user is not None and (user.role, user.name, user.phone) == ("lawyer", "Srey", "+85581234567")
    assert "staff.created" in audit_actions(db, "staff")
    assert login(app.test_client(), "new.lawyer@example.org", "a long enough password").status_code == 302


def test_admin_edits_the_oncall_roster(client, db) -> None:
    make_staff(db, "admin@example.org", role="admin")
    login(client, "admin@example.org")
    assert post(client, "/staff/oncall", {"country": "th", "phone": "081 234 5001", "name": "Nok",
                                          "position": "1"}).status_code == 302
    entry = db.scalar(sa.select(OnCallEntry))
    assert (entry.country, entry.phone, entry.position, entry.active) == ("TH", "+66812345001", 1, True)
    assert post(client, "/staff/oncall", {"country": "Thailand", "phone": "1"}).status_code == 400
    post(client, f"/staff/oncall/{entry.id}/delete")
    assert db.scalar(sa.select(sa.func.count(OnCallEntry.id))) == 0
    assert audit_actions(db, "oncall") == ["oncall.added", "oncall.removed"]


def test_admin_reads_the_audit_log_of_case_views(app, client, db) -> None:
    make_staff(db, "admin@example.org", role="admin")
    make_staff(db)
    case = make_case(db)
    lawyer = app.test_client()
    login(lawyer)
    lawyer.get(f"/staff/cases/{case.id}")
    login(client, "admin@example.org")
    html = client.get(f"/staff/audit?object_type=case&object_id={case.id}").get_data(as_text=True)
    assert "case.viewed" in html and "lawyer@example.org" in html
    assert "staff.login" not in html  # filtered to the case


# --- language --------------------------------------------------------------------------------


def test_staff_switches_the_console_to_khmer(client, db) -> None:
    user = make_staff(db)
    login(client)
    post(client, "/staff/language", {"language": "km", "back": "/staff/callbacks"})
    db.refresh(user)
    assert user.language == "km"
    html = client.get("/staff/").get_data(as_text=True)
    assert 'lang="km"' in html and "បញ្ជីករណីរង់ចាំ" in html and "Case queue" not in html


def test_every_interface_string_exists_in_both_languages() -> None:
    from hotline.models import CaseCategory, CaseStatus, Direction, Role
    from hotline.web.staff.i18n import EN, KM, KM_REVIEWED

    assert set(EN) == set(KM)
    assert KM_REVIEWED is False  # flip only after a native speaker has read them in the console
    root = Path(__file__).resolve().parent.parent / "hotline"
    used: set[str] = set()
    for path in [*root.glob("templates/staff/*.html"), *root.glob("web/staff/*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+)["']\s*[,)]""", path.read_text()))
    used |= {f"status_{s.value}" for s in CaseStatus} | {f"category_{c.value}" for c in CaseCategory}
    used |= {f"role_{r.value}" for r in Role} | {f"direction_{d.value}" for d in Direction}
    used |= {f"outcome_{o}" for o in cases.CALLBACK_OUTCOMES} | {f"view_{v}" for v in ("open", "mine", "all")}
    used |= {"already_claimed", "not_found", "no_such_staff", "case_closed", "bad_status", "same_status",
             "empty_note", "note_too_long", "bad_outcome", "callback_closed"}
    assert used - set(EN) == set()
