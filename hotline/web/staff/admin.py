"""Admin pages of the console: staff accounts, the on-call roster and the audit log."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from hotline.models import Role
from hotline.phones import known_country, to_e164
from hotline.services import oncall as oncall_service
from hotline.services import staff as staff_service
from hotline.web import resources, session
from hotline.web.staff.base import _lang, audit, staff_required
from hotline.web.staff.base import bp as staff_bp
from hotline.web.staff.i18n import t

AUDIT_PAGE = 200


@staff_bp.get("/accounts")
@staff_required(roles=(Role.ADMIN,))
def accounts():  # type: ignore[no-untyped-def]
    users = staff_service.all_staff(session())
    return render_template("staff/accounts.html", users=users, roles=list(Role), form={})


@staff_bp.post("/accounts")
@staff_required(roles=(Role.ADMIN,))
def create_account():  # type: ignore[no-untyped-def]
    """The same rules as `hotline staff add`: a valid email, a known role, a password of 10+ characters."""
    s = session()
    form = {k: request.form.get(k, "").strip() for k in ("email", "name", "role", "phone")}
    phone = None
    if form["phone"]:
        phone = to_e164(form["phone"])
        if phone is None:
            return _account_error(form, t("bad_phone", _lang()))
    try:
        # The admin chose this password: its owner must replace it at first login.
        user = staff_service.create(s, form["email"], form["role"], request.form.get("password", ""),
                                    name=form["name"], phone=phone, must_change=True)
    except staff_service.StaffError as exc:
        s.rollback()
        return _account_error(form, str(exc))
    audit("staff.created", "staff", user.id, role=str(user.role), via="console")
    s.commit()
    flash(t("account_created", _lang(), email=user.email), "ok")
    return redirect(url_for("staff.accounts"))


def _account_error(form: dict[str, str], message: str):  # type: ignore[no-untyped-def]
    users = staff_service.all_staff(session())
    return render_template("staff/accounts.html", users=users, roles=list(Role), form=form,
                           error=message), 400


@staff_bp.post("/accounts/<int:user_id>/active")
@staff_required(roles=(Role.ADMIN,))
def set_active(user_id: int):  # type: ignore[no-untyped-def]
    user = staff_service.get(session(), user_id)
    if user is None:
        return redirect(url_for("staff.accounts"))
    ended = staff_service.set_active(session(), user, request.form.get("active") == "1")  # logged out at once
    audit("staff.activated" if user.active else "staff.deactivated", "staff", user.id,
          **({"sessions_ended": ended} if not user.active else {}))
    session().commit()
    return redirect(url_for("staff.accounts"))


@staff_bp.post("/accounts/<int:user_id>/reset")
@staff_required(roles=(Role.ADMIN,))
def reset_password(user_id: int):  # type: ignore[no-untyped-def]
    """A temporary password, shown once on this page (not a redirect to replay); changed at next login."""
    user = staff_service.get(session(), user_id)
    if user is None:
        return redirect(url_for("staff.accounts"))
    temporary = staff_service.reset_password(session(), user)
    audit("staff.password_reset", "staff", user.id)
    session().commit()
    return render_template("staff/message.html", title=t("password_reset_title", _lang()),
                           message=t("password_reset_done", _lang(), email=user.email, password=temporary))


@staff_bp.get("/oncall")
@staff_required(roles=(Role.ADMIN,))
def oncall():  # type: ignore[no-untyped-def]
    return _render_oncall({})


def _render_oncall(form: dict[str, str], error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    entries = oncall_service.entries(session())
    settings = resources().settings
    return render_template("staff/oncall.html", entries=entries, form=form, error=error,
                           env_oncall=settings.oncall), status


def _roster_address(raw: str, country: str) -> str | None:
    """A phone number (E.164), or a chat address for alerts on a channel that is on and can reach a
    person at any time ("telegram:<chat id>": the lawyer's chat with the bot)."""
    from hotline.services.sendgate import channel_transport

    chat, _, ident = raw.strip().partition(":")
    pattern = ALERT_CHANNELS.get(chat.lower())
    if pattern is not None and re.fullmatch(pattern, ident):
        address = f"{chat.lower()}:{ident}"
        return address if channel_transport(resources().settings, address) is not None else None
    return to_e164(raw, country)


# Channel -> what its ids look like. Messenger's 24-hour window forbids alerts; a LINE alert is a push
# to the lawyer's user id (they add the account as a friend; the id shows on their contact's texts).
ALERT_CHANNELS = {"telegram": r"\d{3,20}", "line": r"U[0-9a-f]{32}"}


@staff_bp.post("/oncall")
@staff_required(roles=(Role.ADMIN,))
def add_oncall():  # type: ignore[no-untyped-def]
    """Add a number to a country's roster; alerts for that country ring in position order. Urgent
    cases that no one was told about (nobody was on call for them) are alerted at once."""
    form = {k: request.form.get(k, "").strip() for k in ("country", "phone", "name", "position")}
    country = form["country"].upper()
    if not known_country(country):
        return _render_oncall(form, t("bad_country", _lang()), 400)
    phone = _roster_address(form["phone"], country)
    if phone is None:
        return _render_oncall(form, t("bad_phone", _lang()), 400)
    position = int(form["position"]) if form["position"].isdigit() else 0
    entry = oncall_service.add_entry(session(), country=country, phone=phone, name=form["name"],
                                     position=position)
    audit("oncall.added", "oncall", entry.id, country=country)
    queued = oncall_service.alert_waiting_cases(session(), resources().settings)
    session().commit()
    oncall_warning_cache().clear()
    if queued:
        flash(t("oncall_alerted", _lang(), count=len(queued)), "ok")
    return redirect(url_for("staff.oncall"))


@staff_bp.post("/oncall/<int:entry_id>/delete")
@staff_required(roles=(Role.ADMIN,))
def delete_oncall(entry_id: int):  # type: ignore[no-untyped-def]
    entry = oncall_service.get_entry(session(), entry_id)
    if entry is not None:
        audit("oncall.removed", "oncall", entry.id, country=entry.country)
        oncall_service.remove_entry(session(), entry)
        session().commit()
        oncall_warning_cache().clear()
    return redirect(url_for("staff.oncall"))


def oncall_warning_cache() -> oncall_service.WarningCache:
    return current_app.extensions.setdefault("hotline.oncall_warning", oncall_service.WarningCache())  # type: ignore[no-any-return]


@staff_bp.context_processor
def _oncall_warning() -> dict[str, Any]:
    """The console header's "nobody is on call" line, for every logged-in page; cached per process
    (hotline.services.oncall.WarningCache), so a page costs at most two small queries every 30 s."""
    if not current_user.is_authenticated:
        return {"oncall_warning": None}
    missing = oncall_warning_cache().get(session(), resources().settings)
    return {"oncall_warning": missing}


@staff_bp.get("/audit")
@staff_required(roles=(Role.ADMIN,))
def audit_log():  # type: ignore[no-untyped-def]
    """The newest audit events, filtered by object (`?object_type=case&object_id=3`) or staff id."""
    filters = {k: request.args.get(k, "").strip() for k in ("object_type", "object_id", "staff_id")}
    events = staff_service.audit_events(
        session(), object_type=filters["object_type"], object_id=filters["object_id"],
        staff_id=int(filters["staff_id"]) if filters["staff_id"].isdigit() else None, limit=AUDIT_PAGE)
    names = staff_service.emails_by_id(session())
    audit("audit.viewed", "audit", None)
    session().commit()
    return render_template("staff/audit.html", events=events, names=names, filters=filters)
