"""Console pages for cases, recordings and callbacks (routes on the `staff` blueprint).

Every view or change of a case writes an AuditEvent in the same transaction as the change.
Phone numbers are masked unless a staff member presses "reveal", which is audited too.
"""

from __future__ import annotations

from typing import Any

from babel.dates import format_datetime
from flask import Response, abort, flash, redirect, render_template, request, url_for

from hotline.db import utcnow
from hotline.models import CallbackRequest, Case, Role, StaffUser
from hotline.services import callbacks as callback_service
from hotline.services import cases
from hotline.services import staff as staff_service
from hotline.web import resources, session
from hotline.web.staff.base import _lang, audit, me, staff_required
from hotline.web.staff.base import bp as staff_bp
from hotline.web.staff.i18n import t

QUEUE_VIEWS = ("open", "mine", "all")


def _case_or_404(case_id: int) -> Case:
    case = cases.get_case(session(), case_id)
    if case is None:
        abort(404)
    return case


def _error(exc: cases.CaseError) -> None:
    if isinstance(exc, cases.CaseForbidden):  # a role rule: audited, and answered 403
        audit("case.refused", "case", request.view_args.get("case_id") if request.view_args else None,
              refused=exc.action)
        session().commit()
        abort(403)
    flash(t(exc.key, _lang(), **{k: str(v) for k, v in exc.detail.items()}), "error")


@staff_bp.get("/")
@staff_required()
def queue():  # type: ignore[no-untyped-def]
    """Open cases, urgent first and longest waiting first; `?view=mine` or `?view=all`."""
    view = request.args.get("view", "open")
    view = view if view in QUEUE_VIEWS else "open"
    rows = cases.queue(session(), utcnow(), include_closed=view == "all",
                       mine=me().id if view == "mine" else None)
    return render_template("staff/queue.html", rows=rows, view=view, views=QUEUE_VIEWS)


def _render_case(case: Case, *, revealed: bool = False) -> str:
    from hotline.services.chat import reply_channel

    s = session()
    return render_template("staff/case.html", case=case, history=cases.history(s, case), revealed=revealed,
                           chat_channel=reply_channel(resources().settings, case.caller, case.source),
                           now=utcnow(), overdue=cases.is_overdue(case, utcnow()),
                           staff=cases.assignable_staff(s) if cases.can_assign(me().role) else [],
                           statuses=cases.allowed_statuses(case, me().id, me().role))


@staff_bp.get("/cases/<int:case_id>")
@staff_required()
def case_page(case_id: int):  # type: ignore[no-untyped-def]
    case = _case_or_404(case_id)
    audit("case.viewed", "case", case.id)
    session().commit()
    return _render_case(case)


@staff_bp.post("/cases/<int:case_id>/reveal")
@staff_required()
def reveal(case_id: int):  # type: ignore[no-untyped-def]
    """Show the case's phone numbers in full, this once (answered directly, not via a GET to replay)."""
    case = _case_or_404(case_id)
    audit("case.phone_revealed", "case", case.id)
    session().commit()
    return _render_case(case, revealed=True)


def _back(case: Case) -> Any:
    return redirect(url_for("staff.case_page", case_id=case.id))


@staff_bp.post("/cases/<int:case_id>/claim")
@staff_required()
def claim(case_id: int):  # type: ignore[no-untyped-def]
    case = _case_or_404(case_id)
    s = session()
    try:
        cases.claim(s, case.id, me().id)
    except cases.CaseError as exc:
        s.rollback()
        _error(exc)
        return _back(case)
    audit("case.claimed", "case", case.id)
    s.commit()
    flash(t("claimed_ok", _lang()), "ok")
    return _back(case)


@staff_bp.post("/cases/<int:case_id>/assign")
@staff_required(roles=(Role.ADMIN, Role.LAWYER))
def assign(case_id: int):  # type: ignore[no-untyped-def]
    case = _case_or_404(case_id)
    to = request.form.get("staff_id", "")
    try:
        if not to.isdigit():
            raise cases.CaseError("no_such_staff")
        cases.assign(session(), case, int(to), me().id, role=me().role)
    except cases.CaseError as exc:
        session().rollback()
        _error(exc)
        return _back(case)
    audit("case.assigned", "case", case.id, to_staff_id=int(to))
    session().commit()
    flash(t("assigned_ok", _lang()), "ok")
    return _back(case)


@staff_bp.post("/cases/<int:case_id>/status")
@staff_required()
def status(case_id: int):  # type: ignore[no-untyped-def]
    case = _case_or_404(case_id)
    before = case.status
    try:
        cases.set_status(session(), case, request.form.get("status", ""), me().id, request.form.get("reason"),
                         role=me().role)
    except cases.CaseError as exc:
        session().rollback()
        _error(exc)
        return _back(case)
    audit("case.status", "case", case.id, before=str(before), after=str(case.status))
    session().commit()
    flash(t("status_ok", _lang()), "ok")
    return _back(case)


@staff_bp.post("/cases/<int:case_id>/notes")
@staff_required()
def add_note(case_id: int):  # type: ignore[no-untyped-def]
    case = _case_or_404(case_id)
    try:
        note = cases.add_note(session(), case, me().id, request.form.get("body", ""))
    except cases.CaseError as exc:
        session().rollback()
        _error(exc)
        return _back(case)
    audit("case.note_added", "case", case.id, note_id=note.id)
    session().commit()
    flash(t("note_ok", _lang()), "ok")
    return _back(case)


@staff_bp.post("/cases/<int:case_id>/reply")
@staff_required((Role.ADMIN, Role.LAWYER, Role.OPERATOR))
def channel_reply(case_id: int):  # type: ignore[no-untyped-def]
    """A staff reply to the case's caller on the chat channel they wrote on; audited (not its words)."""
    from hotline.services import chat

    case = _case_or_404(case_id)
    try:
        msg = chat.staff_reply(session(), resources().settings, case_id=case.id, caller=case.caller,
                               text=request.form.get("body", ""), via=case.source)
    except chat.ReplyRefused as exc:
        session().rollback()
        flash(t(exc.key, _lang(), channel=t("source_" + exc.channel, _lang()) if exc.channel else ""), "error")
        return _back(case)
    audit("case.channel_reply", "case", case.id, message_id=msg.id, channel=msg.channel)
    session().commit()
    flash(t("reply_queued", _lang()), "ok")
    return _back(case)


@staff_bp.get("/recordings/<int:recording_id>")
@staff_required()
def recording(recording_id: int):  # type: ignore[no-untyped-def]
    """Decrypt and stream a voicemail to a logged-in staff member; every play is audited."""
    from hotline.services.recordings import RecordingUnavailable, decrypt  # the worker pipeline's module

    rec = cases.get_recording(session(), recording_id)
    if rec is None:
        abort(404)
    try:
        audio = decrypt(resources().settings, rec)
    except RecordingUnavailable:  # purged, never fetched, file missing or altered: nothing to play
        abort(404)
    audit("recording.played", "recording", rec.id, case_id=rec.case_id, call_id=rec.call_id)
    session().commit()
    return Response(audio, mimetype=_audio_type(audio),
                    headers={"Content-Disposition": "inline", "Cache-Control": "no-store"})


def _audio_type(data: bytes) -> str:
    if data[:4] == b"RIFF":
        return "audio/wav"
    if data[:4] == b"OggS":  # a Telegram voice note (Opus); Messenger and LINE send M4A/MP4
        return "audio/ogg"
    if data[4:8] == b"ftyp":
        return "audio/mp4"
    return "audio/mpeg"  # Twilio's other format; ID3 tags or a bare MPEG frame


# --- callbacks -------------------------------------------------------------------------------


@staff_bp.get("/callbacks")
@staff_required()
def callbacks():  # type: ignore[no-untyped-def]
    return _render_callbacks()


def _render_callbacks(revealed: int | None = None) -> str:
    return render_template("staff/callbacks.html", requests=cases.open_callbacks(session()),
                           outcomes=cases.CALLBACK_OUTCOMES, revealed=revealed, now=utcnow())


def _callback_or_404(callback_id: int) -> CallbackRequest:
    req = cases.get_callback(session(), callback_id)
    if req is None:
        abort(404)
    return req


@staff_bp.post("/callbacks/<int:callback_id>/reveal")
@staff_required()
def reveal_callback(callback_id: int):  # type: ignore[no-untyped-def]
    req = _callback_or_404(callback_id)
    audit("callback.phone_revealed", "callback", req.id, case_id=req.case_id)
    session().commit()
    return _render_callbacks(revealed=req.id)


@staff_bp.post("/callbacks/<int:callback_id>/outcome")
@staff_required()
def callback_outcome(callback_id: int):  # type: ignore[no-untyped-def]
    req = _callback_or_404(callback_id)
    outcome = request.form.get("outcome", "")
    try:
        cases.record_outcome(session(), resources().settings, req, outcome, me().id)
    except cases.CaseError as exc:
        session().rollback()
        _error(exc)
        return redirect(url_for("staff.callbacks"))
    audit("callback.outcome", "callback", req.id, outcome=outcome, status=str(req.status), case_id=req.case_id)
    session().commit()
    flash(t("outcome_ok", _lang()), "ok")
    return redirect(url_for("staff.callbacks"))


@staff_bp.post("/callbacks/<int:callback_id>/call")
@staff_required()
def call_now(callback_id: int):  # type: ignore[no-untyped-def]
    """Bring a callback forward: the worker rings this staff member, then the person (who is asked
    first whether it is a good time to talk). Never outside calling hours nor within the spacing."""
    req = _callback_or_404(callback_id)
    reason = request.form.get("reason", "").strip()[:160]
    if not reason:
        flash(t("reason_required", _lang()), "error")
        return redirect(url_for("staff.callbacks"))
    decision = callback_service.bring_forward(session(), resources().settings, req, _me_row(), reason)
    _say_decision(decision, req)
    if decision.placed:
        audit("callback.call_now", "callback", req.id, case_id=req.case_id, reason=reason)
        session().commit()
    return redirect(url_for("staff.callbacks"))


def _say_decision(decision: callback_service.Decision, req: CallbackRequest | None) -> None:
    """Tell the staff member honestly what will happen and when."""
    values: dict[str, str] = {k: str(v) for k, v in decision.detail.items()}
    values["when"] = _local(decision.when)
    if decision.key == "no_staff_phone" and req is not None:
        values["when"] = _local(req.next_attempt_at)
    if decision.key == "too_soon":
        values["minutes"] = str(resources().settings.callback_retry_minutes)
    flash(t(decision.key, _lang(), **values), "ok" if decision.placed else "error")


def _me_row() -> StaffUser:
    user = staff_service.get(session(), me().id)
    assert user is not None
    return user


def _local(value: Any) -> str:
    """A time in a flash message: ISO-like, unambiguous in both languages (as the callback messages
    have always said it), formatted by Babel in the hotline's time zone."""
    if not value:
        return "-"
    return format_datetime(value, "yyyy-MM-dd HH:mm", tzinfo=resources().settings.tz, locale=_lang())


@staff_bp.post("/cases/<int:case_id>/callback")
@staff_required()
def case_callback(case_id: int):  # type: ignore[no-untyped-def]
    """Call an urgent case's person back through the hotline: the staff phone first, then the
    person from the hotline's number with the good-time-to-talk question. Audited."""
    case = _case_or_404(case_id)
    reason = request.form.get("reason", "").strip()[:160] or "call back from the case page"
    req, decision = callback_service.request_for_case(session(), resources().settings, case, _me_row(), reason)
    _say_decision(decision, req)
    audit("case.callback", "case", case.id, placed=decision.placed, result=decision.key, reason=reason,
          callback_id=req.id if req else None)
    session().commit()
    return redirect(url_for("staff.case_page", case_id=case.id))
