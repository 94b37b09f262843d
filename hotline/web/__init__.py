"""Thin blueprints. Every module in this package that defines `bp` is registered.

Views open no sessions of their own: `session()` gives the request's, closed at teardown.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Request, current_app, g, request
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import IntegerConverter

from hotline.phones import mask
from hotline.resources import Resources, resources_of

if TYPE_CHECKING:  # only the type: web modules reach the database through hotline.services
    from sqlalchemy.orm import Session

log = logging.getLogger("hotline.request")


def resources() -> Resources:
    return resources_of(current_app)


def session() -> Session:
    if "db_session" not in g:
        g.db_session = resources().db.Session()
    return g.db_session  # type: ignore[no-any-return]


# Endpoints that read a larger body than MAX_CONTENT_LENGTH (a recording upload), with their limit;
# set before anything parses the body (the CSRF check does), in `register_blueprints`.
UPLOAD_LIMITS: dict[str, int] = {}

# Every table's id is a 32-bit INTEGER on PostgreSQL: a larger id in a URL is a 404, never a
# database error (`integer out of range`) or a 500.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` on every route: 0 .. MAX_ID, anything else does not match (404)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _body_errors() -> tuple[type[Exception], ...]:
    """What reading a request body raises when the client sent garbage: werkzeug's dechunker and
    gunicorn's readers raise OSError; gunicorn's chunk parser its own ParseException."""
    errors: list[type[Exception]] = [OSError, ValueError, EOFError]
    try:
        from gunicorn.http.errors import ParseException

        errors.append(ParseException)
    except ImportError:  # not under gunicorn (e.g. the simulator's in-process client)
        pass
    return tuple(errors)


BODY_ERRORS = _body_errors()


class HotlineRequest(Request):
    """A body that cannot be read (bad chunked encoding, a client gone mid-body) is a 400, not a
    traceback: werkzeug's and gunicorn's readers raise OSError or their own parse errors."""

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except HTTPException:
            raise
        except BODY_ERRORS as exc:
            raise BadRequest(f"the request body could not be read ({type(exc).__name__})") from None

    def get_data(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_data(*args, **kwargs)
        except HTTPException:
            raise
        except BODY_ERRORS as exc:
            raise BadRequest(f"the request body could not be read ({type(exc).__name__})") from None


def safe_path(target: str | None, default: str) -> str:
    """A redirect target that is a path on this site, else `default`: no scheme or host
    (`https://evil.example`, `//evil.example`, `/\\evil`), no control characters (CR/LF would split
    the Location header: werkzeug refuses it with a 500)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isprintable() and not any(c.isspace() for c in target) and len(target) <= 2048):
        return target
    return default


# The one header policy, for every response (console, simulator, webhooks, errors).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'{media}; "
       "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
CACHEABLE_ENDPOINTS = frozenset({"static", "staff.static", "audio.prompt"})


def _csp(audio_base_url: str | None) -> str:
    media = ""
    if audio_base_url:  # prompts from a CDN
        from urllib.parse import urlsplit

        parts = urlsplit(audio_base_url)
        media = f" {parts.scheme}://{parts.netloc}"
    return CSP.format(media=media)


def _header_policy(app: Flask) -> Any:
    """The after-request hook; the headers are built once, so a webhook pays only for setting them."""
    fixed = {"Content-Security-Policy": _csp(app.config["HOTLINE"].audio_base_url), "X-Frame-Options": "DENY",
             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}

    def _security_headers(response: Any) -> Any:
        response.headers.update(fixed)
        if request.endpoint not in CACHEABLE_ENDPOINTS:
            # Case data must not survive in a shared computer's cache.
            response.headers["Cache-Control"] = "no-store"
        if request.is_secure:  # TLS at the app, or at a proxy TRUSTED_PROXIES vouches for
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    return _security_headers


def register_blueprints(app: Flask) -> None:
    app.request_class = HotlineRequest
    app.url_map.converters["int"] = IdConverter  # before any route is added

    @app.before_request
    def _upload_limit() -> None:  # first of all hooks: the CSRF check parses the body
        limit = UPLOAD_LIMITS.get(request.endpoint or "")
        if limit:
            request.max_content_length = limit
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        bp = getattr(module, "bp", None)
        if isinstance(bp, Blueprint):
            app.register_blueprint(bp)
            init = getattr(module, "init_app", None)
            if callable(init):
                init(app)

    @app.before_request
    def _start_timer() -> None:
        g.t0 = time.perf_counter()

    @app.teardown_request
    def _close_session(_exc: BaseException | None) -> None:
        s = g.pop("db_session", None)
        if s is not None:
            s.close()

    @app.after_request
    def _log_request(response):  # type: ignore[no-untyped-def]
        # One line per request: ids Twilio gave us, never whole numbers or bodies.
        ms = (time.perf_counter() - g.get("t0", time.perf_counter())) * 1000
        # Only a form the view already parsed: parsing here again would raise again on a body that
        # was refused (too large, too many parts, unreadable) and turn its 4xx into a 500.
        form = request.__dict__.get("form")
        ids = " ".join(f"{k}={form[k]}"[:80] for k in ("CallSid", "MessageSid", "RecordingSid")
                       if form is not None and k in form)
        frm = mask(form.get("From")) if form is not None and form.get("From") else ""
        node = g.get("log_node", "")
        log.info("%s %s %s %.1fms %s%s%s", request.method, request.path, response.status_code, ms, ids,
                 f" from={frm}" if frm else "", f" node={node}" if node else "")
        return response

    app.after_request(_header_policy(app))
