"""The staff console's blueprint and what every page shares: sessions, CSRF, roles, language,
audit. The pages live beside it (auth.py, cases.py, admin.py, reports.py) and import from here,
never from the package, so there is no import cycle.

Every /staff endpoint requires a logged-in, active staff member except PUBLIC_ENDPOINTS (the login
page and the console's static files). That is enforced once, in `_guard`, before any view runs, so
a view that forgets a decorator is still closed; `staff_required(roles=...)` adds role checks and is
what other blueprints (the simulator) use.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from babel.dates import format_date, format_skeleton, format_timedelta
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from flask_babel import Babel
from flask_login import LoginManager, current_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup
from werkzeug.wrappers import Response as WerkzeugResponse

from hotline import catalog
from hotline.db import utcnow
from hotline.models import Role, StaffUser
from hotline.phones import mask, mask_all
from hotline.services import staff as staff_service
from hotline.web import session
from hotline.web.staff.i18n import LANGUAGES, t

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("staff", __name__, url_prefix="/staff", static_folder="../../static/staff",
               static_url_path="/static")

# The only /staff endpoints open to a logged-out browser. The route inventory test reads this.
PUBLIC_ENDPOINTS = frozenset({"staff.login", "staff.static"})
# What someone who must change their password (first login, after a reset) may still reach.
BEFORE_PASSWORD_CHANGE = frozenset({"staff.password", "staff.logout", "staff.logout_everywhere",
                                    "staff.language", "staff.static"})
# The only pages a `reports` account may open: counts, never a case, a callback or a number.
REPORTS_ROLE_ENDPOINTS = frozenset({"staff.reports", "staff.reports_export", *BEFORE_PASSWORD_CHANGE,
                                    *PUBLIC_ENDPOINTS})

IDLE_TIMEOUT = timedelta(minutes=30)
LOCK_AFTER = staff_service.LOCK_AFTER  # failed passwords in a row lock the account for LOCK_FOR
LOCK_FOR = staff_service.LOCK_FOR
TFA_WINDOW = timedelta(minutes=5)  # between a right password and its two-factor code
IP_WINDOW = timedelta(minutes=15)
IP_LIMIT = 20  # failed logins from one address per IP_WINDOW; counted in the database, not Redis

log = logging.getLogger(__name__)
login_manager = LoginManager()
csrf = CSRFProtect()


class StaffLogin:
    """The Flask-Login user: a thin wrapper so templates never touch the password hash.

    Its id (what Flask-Login keeps in the cookie) is the server-side session's token, not the user
    id: deleting the StaffSession row logs that browser out at its next request.
    """

    def __init__(self, user: StaffUser, token: str):
        self.user = user
        self.token = token
        self.id = user.id
        self.role = Role(user.role)
        self.email = user.email
        self.name = user.name or user.email
        self.language = user.language if user.language in LANGUAGES else "en"
        self.is_authenticated = True
        self.is_active = user.active
        self.is_anonymous = False

    def get_id(self) -> str:
        return self.token

    @property
    def must_change_password(self) -> bool:
        return bool(self.user.must_change_password)

    def has_role(self, *roles: Role | str) -> bool:
        return self.role in {Role(r) for r in roles}


def init_app(app: Flask) -> None:
    """Flask-Login and CSRF for the whole app; Twilio webhooks are exempt (they are signed instead)."""
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    # Our own hook below checks CSRF, so the order of blueprint registration does not matter.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "staff.login"
    login_manager.login_message = None  # type: ignore[assignment]
    app.before_request(_guard)
    app.register_error_handler(CSRFError, _csrf_error)
    init_babel(app)


def init_babel(app: Flask) -> None:
    """Flask-Babel for `_()`/`gettext` in the console: the catalogs (hotline/translations/*.po) are
    compiled into the instance folder at start-up when missing or stale: no network, no build step."""
    try:
        target = catalog.compile_to(Path(app.instance_path) / "translations")
    except OSError as exc:  # a read-only instance folder: compile somewhere private instead
        import tempfile

        log.warning("cannot write compiled catalogs to the instance folder (%s): using a temporary one",
                    type(exc).__name__)
        target = catalog.compile_to(Path(tempfile.mkdtemp(prefix="hotline-translations-")))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    Babel(app, locale_selector=_lang_or_default, timezone_selector=lambda: str(current_app.config["HOTLINE"].tz))


def _lang_or_default() -> str:
    return _lang() if has_request_context() else "en"


@login_manager.user_loader
def _load_user(token: str) -> StaffLogin | None:
    """One query: the session row is live and its account active (the same cost as before, by id)."""
    user = staff_service.session_user(session(), token, utcnow())
    return StaffLogin(user, token) if user is not None else None


def _twilio_view() -> bool:
    """Twilio cannot send our CSRF token: /twilio blueprints and signature-checked views are exempt."""
    blueprint = current_app.blueprints.get(request.blueprint or "")
    if blueprint is not None and (blueprint.url_prefix or "").startswith("/twilio"):
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return (bool(getattr(view, "twilio_signed", False)) or request.path.startswith("/twilio/")
            or request.blueprint == "channels")  # chat platforms' webhooks: signed by the platform


def _guard() -> WerkzeugResponse | None:
    """Login (with idle and absolute timeouts) for every /staff endpoint, then CSRF for every form."""
    g.setdefault("t0", time.perf_counter())  # the request log's timer, when we answer before it starts
    if not request.endpoint:
        return None  # a 404 stays a 404
    if request.blueprint == "staff" and request.endpoint not in PUBLIC_ENDPOINTS:
        refused = console_session()
        if refused is not None:
            return refused
        if current_user.role == Role.REPORTS and request.endpoint not in REPORTS_ROLE_ENDPOINTS:
            if request.endpoint == "staff.queue":
                return redirect(url_for("staff.reports"))
            abort(403)
        if current_user.role == Role.CONTENT and not _content_role_may(request.endpoint):
            if request.endpoint == "staff.queue":
                return redirect(url_for("staff.content_home"))
            abort(403)
    if current_app.config.get("WTF_CSRF_ENABLED", True) and not _twilio_view():
        csrf.protect()
    return None


def _content_role_may(endpoint: str) -> bool:
    """A `content` account opens the content studio (every staff.content* page) and nothing of cases."""
    return endpoint.startswith("staff.content") or endpoint in BEFORE_PASSWORD_CHANGE or endpoint in PUBLIC_ENDPOINTS


def console_session() -> WerkzeugResponse | None:
    """A logged-in staff member within the idle and absolute timeouts (the console's and the
    simulator's rule), else the answer that sends the browser to the login page."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # type: ignore[no-any-return]
    if _session_expired():
        staff_service.end_session(session(), me().token)
        session().commit()
        logout_user()
        cookie.clear()
        flash(t("session_expired", _lang()), "info")
        return redirect(url_for("staff.login", next=request.full_path if request.method == "GET" else None))
    cookie["staff_seen"] = utcnow().timestamp()
    if me().must_change_password and request.endpoint not in BEFORE_PASSWORD_CHANGE:
        return redirect(url_for("staff.password"))
    return None


def _session_expired() -> bool:
    now = utcnow().timestamp()
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    seen = float(cookie.get("staff_seen", 0))
    started = float(cookie.get("staff_login_at", 0))
    return now - seen > IDLE_TIMEOUT.total_seconds() or now - started > lifetime


def _csrf_error(exc: CSRFError) -> Any:
    if request.blueprint == "staff":
        return render_template("staff/message.html", title=t("form_expired", _lang()),
                               message=t("form_expired_help", _lang())), 400
    return Response(f"Bad request: {exc.description}\n", status=400, mimetype="text/plain")


def staff_required(roles: Iterable[Role | str] | None = None) -> Callable[[F], F]:
    """Require a logged-in staff member, and one of `roles` if given (403 otherwise)."""
    allowed = {Role(r) for r in roles} if roles else None

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if me().must_change_password and request.endpoint not in BEFORE_PASSWORD_CHANGE:
                return redirect(url_for("staff.password"))
            if allowed is not None and current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def me() -> StaffLogin:
    return current_user  # type: ignore[return-value]


def _lang() -> str:
    return current_user.language if current_user.is_authenticated else _browser_lang()


def _browser_lang() -> str:
    return request.accept_languages.best_match(list(LANGUAGES), default="en") or "en"


def client_ip() -> str | None:
    return (request.remote_addr or "")[:64] or None


def audit(action: str, object_type: str | None = None, object_id: object = None, **detail: Any) -> None:
    """An audit row for the logged-in staff member, in the request's session (committed with the change)."""
    staff_service.audit(session(), me().id, action, object_type, object_id, ip=client_ip(), **detail)


@bp.context_processor
def _inject() -> dict[str, Any]:
    lang = _lang()
    return {"t": functools.partial(_t, lang), "lang": lang, "languages": LANGUAGES,
            "Role": Role, "me": current_user}


def _t(lang: str, key: str, **kw: Any) -> str:
    return t(key, lang, **kw)


@bp.errorhandler(403)
def _forbidden(_exc: Exception) -> Any:
    return render_template("staff/message.html", title=t("forbidden", _lang()),
                           message=t("forbidden_help", _lang())), 403


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> Any:
    return render_template("staff/message.html", title=t("not_found", _lang()), message=""), 404


@bp.app_template_filter("staff_time")
def _local_time(value: datetime | None, lang: str | None = None) -> str:
    """A UTC time in the hotline's time zone (Phnom Penh by default), in CLDR's date format for the
    console language ("Dec 2, 2026 18:19", "2 ធ្នូ 2026 18:19"); 24-hour, as staff read rosters."""
    if value is None:
        return "-"
    local = value.astimezone(current_app.config["HOTLINE"].tz)
    locale = lang or (_lang() if has_request_context() else "en")
    return f"{format_date(local, 'medium', locale=locale)} {format_skeleton('Hm', local, locale=locale)}"


@bp.app_template_filter("staff_wait")
def _waiting(value: timedelta, lang: str = "en") -> str:
    """How long a case has waited, in CLDR's short units: "22 min", "30 hr 0 min", "3 days" (Khmer: នាទី…)."""
    minutes = max(0, int(value.total_seconds() // 60))

    def unit(amount: timedelta, granularity: Literal["day", "hour", "minute"]) -> str:
        return format_timedelta(amount, granularity=granularity, threshold=1000, format="short", locale=lang)

    if minutes < 60:
        return unit(timedelta(minutes=minutes), "minute")
    if minutes < 48 * 60:
        return f"{unit(timedelta(hours=minutes // 60), 'hour')} {unit(timedelta(minutes=minutes % 60), 'minute')}"
    return unit(timedelta(days=minutes // (24 * 60)), "day")


bp.add_app_template_filter(mask, "staff_mask")
bp.add_app_template_filter(mask_all, "staff_mask_all")


def script_language(text: str | None) -> str | None:
    """The language a piece of free text is written in, by its script: Khmer or Thai letters, else
    Latin letters (English); None for text with no letters (numbers, phone numbers, dashes)."""
    if not text:
        return None
    if any("\u1780" <= ch <= "\u17ff" or "\u19e0" <= ch <= "\u19ff" for ch in text):
        return "km"
    if any("\u0e00" <= ch <= "\u0e7f" for ch in text):
        return "th"
    return "en" if any(ch.isascii() and ch.isalpha() for ch in text) else None


@bp.app_template_filter("lang_attr")
def _lang_attr(text: str | None, page_lang: str = "en") -> Markup:
    """` lang="km"` on an element whose free text (a note, a text message, a name) is not in the
    page's language, so a screen reader switches voice; nothing when it is."""
    found = script_language(text)
    # `found` is one of three fixed codes, never the text itself: nothing user-supplied is marked safe.
    return Markup(f' lang="{found}"') if found and found != page_lang else Markup("")  # noqa: S704
