"""Record a prompt in the browser, or upload a file: `/staff/content/<prompt>/<lang>/record`.

One full-page form does both: the recorder (static/staff/record.js: MediaRecorder, a level meter,
listen back, keep or redo) puts the kept take into the form's file field and submits it, so a
browser recording, an uploaded file and a browser without JavaScript all take the same path: the
audio pipeline (hotline.audio_tools.process), then the draft (hotline.services.takes.put_take).
A refused take is answered on the same page, its reason next to the file field; nothing is stored.

Also here: the PIN a content or admin account types on the content line (record by phone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.routing import BuildError

from hotline.audio_tools import MAX_SECONDS, AudioError
from hotline.models import Role
from hotline.services import content, content_line
from hotline.services import staff as staff_service
from hotline.services.takes import MAX_UPLOAD_BYTES, put_take
from hotline.web import UPLOAD_LIMITS, session
from hotline.web.staff.base import _lang, audit, client_ip, me, staff_required
from hotline.web.staff.base import bp as staff_bp
from hotline.web.staff.i18n import t

ROLES = (Role.ADMIN, Role.CONTENT)
LANGUAGE_NAMES = {"km": "ខ្មែរ (Khmer)", "th": "ไทย (Thai)", "en": "English"}

# Console strings of this page (the Khmer drafts need the same native-speaker review as i18n.py's).


def _clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def _cell(prompt_id: str, lang: str) -> tuple[content.Cell, int]:
    """The draft's cell and the prompt's number (its place in the matrix); 404 for no such cell."""
    s = session()
    d = content.draft(s, me().id)
    if lang not in content.languages(s, d):
        abort(404)
    try:
        cell = content.cell(s, prompt_id, lang, d)
    except content.ContentError:
        abort(404)
    ids = content.prompt_ids(s, d)
    s.commit()  # the draft, if this request started it
    return cell, ids.index(prompt_id) + 1


def _now_playing(cell: content.Cell) -> tuple[str | None, str]:
    """(URL, description) of what the draft plays for this cell now."""
    lang = _lang()
    if cell.take is not None:
        return (_take_url(cell.take.id),
                t("rec_now_take", lang, seconds=f"{cell.take.duration_ms / 1000:.1f}", review=str(cell.take.review)))
    if (content.repo_root() / "audio" / cell.language / f"{cell.audio_name}.mp3").is_file():
        return url_for("audio.prompt", lang=cell.language, name=cell.audio_name), t("rec_now_placeholder", lang)
    return None, t("rec_now_nothing", lang)


def _take_url(take_id: int) -> str | None:
    """The studio's staff-only player route (hotline.web.staff.content)."""
    try:
        return url_for("staff.content_take", take_id=take_id)
    except BuildError:
        return None


def _page(prompt_id: str, lang: str, *, error: str | None = None, pin_error: str | None = None,
          status: int = 200) -> Any:
    cell, number = _cell(prompt_id, lang)
    now_url, now_text = _now_playing(cell)
    return render_template("staff/record.html", cell=cell, number=number, language=LANGUAGE_NAMES.get(lang, lang),
                           now_url=now_url, now_text=now_text, error=error, pin_error=pin_error,
                           max_clock=_clock(MAX_SECONDS), max_seconds=MAX_SECONDS,
                           has_pin=content_line.has_pin(session(), me().id), back_url=_back_url(lang),
                           phone_takes=content_line.recent_takes(session(), cell.prompt_id, lang)), status


def _back_url(lang: str) -> str:
    try:
        return url_for("staff.content_home", lang=lang)
    except BuildError:  # the studio's matrix (hotline.web.staff.content) not there
        return url_for("staff.queue")


# A recording is bigger than a form: this one route reads up to MAX_UPLOAD_BYTES (and the form's
# few fields); everything else keeps the app's 2 MB.
UPLOAD_LIMITS["staff.content_record_upload"] = MAX_UPLOAD_BYTES + 64 * 1024


@staff_bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> Any:
    """Too large a file: said on the recording page, next to the file field."""
    args = request.view_args or {}
    if request.endpoint == "staff.content_record_upload" and current_user.is_authenticated:
        try:
            return _page(args.get("prompt_id", ""), args.get("lang", ""), status=413,
                         error=t("rec_too_large", _lang(), mb=MAX_UPLOAD_BYTES // (1024 * 1024)))
        except NotFound:
            pass
    return exc


@staff_bp.get("/content/<prompt_id>/<lang>/record")
@staff_required(roles=ROLES)
def content_record(prompt_id: str, lang: str) -> Any:
    return _page(prompt_id, lang)


@staff_bp.post("/content/<prompt_id>/<lang>/record")
@staff_required(roles=ROLES)
def content_record_upload(prompt_id: str, lang: str) -> Any:
    """A take from the recorder or a file: through the pipeline into the draft, or refused with the reason."""
    cell, _number = _cell(prompt_id, lang)
    upload = request.files.get("audio")
    source = "browser" if request.form.get("source") == "browser" else "upload"
    data = upload.read() if upload is not None else b""
    if upload is None or (not upload.filename and not data):
        return _page(prompt_id, lang, error=t("rec_choose_file", _lang()), status=400)
    s = session()
    suffix = Path(upload.filename or "").suffix.lower()[:8]
    try:
        stored = put_take(s, current_app.config["HOTLINE"], prompt_id=cell.prompt_id, lang=lang,
                          src=data, source=source, staff_id=me().id, ip=client_ip(), suffix=suffix)
    except AudioError as exc:
        s.rollback()
        audit("content.take_refused", "content_cell", f"{prompt_id}:{lang}"[:64], reason=exc.code, source=source)
        s.commit()
        return _page(prompt_id, lang, error=t("rec_refused", _lang(), reason=str(exc)), status=400)
    s.commit()
    made = stored.made
    flash(t("rec_kept", _lang(), seconds=f"{made.seconds:.1f}", lufs=f"{made.input_lufs:.0f}",
            target=f"{made.output_lufs:.0f}"), "ok")
    return redirect(url_for("staff.content_record", prompt_id=prompt_id, lang=lang))


@staff_bp.get("/content/script/<lang>")
@staff_required(roles=ROLES)
def content_record_script(lang: str) -> Any:
    """The numbered script of one language, to print: the numbers the content line says."""
    s = session()
    d = content.draft(s, me().id)
    if lang not in content.languages(s, d):
        abort(404)
    rows = []
    for n, pid in enumerate(content.prompt_ids(s, d), start=1):
        cell = content.cell(s, pid, lang, d)
        rows.append((n, cell))
    s.commit()  # the draft, if this request started it
    return render_template("staff/record_script.html", rows=rows, lang=lang, language=LANGUAGE_NAMES.get(lang, lang))


@staff_bp.post("/content/phone-pin")
@staff_required(roles=ROLES)
def content_phone_pin() -> Any:
    """Set my content-line PIN; my console password is asked, as for any change of credentials."""
    back_prompt, back_lang = request.form.get("prompt", ""), request.form.get("lang", "")
    lang, user, s = _lang(), me().user, session()
    pin, again = request.form.get("pin", "").strip(), request.form.get("pin_again", "").strip()
    error = None
    if not staff_service.verify_password(user, request.form.get("password", "")):
        error = t("wrong_old_password", lang)
    elif not user.phone:
        error = t("rec_pin_no_phone", lang)
    elif pin != again:
        error = t("rec_pin_differ", lang)
    else:
        try:
            content_line.set_pin(s, user, pin)
        except content_line.PinError as exc:
            error = str(exc)
    if error:
        s.rollback()
        return _page(back_prompt, back_lang, pin_error=error, status=400)
    audit("content_line.pin_set", "staff", user.id, via="console")
    s.commit()
    flash(t("rec_pin_saved", lang), "ok")
    return redirect(url_for("staff.content_record", prompt_id=back_prompt, lang=back_lang) + "#phone")
