"""Thin blueprints. Every module in this package that defines `bp` is registered.

Views open no sessions of their own: `session()` gives the request's, closed at teardown.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time

from flask import Blueprint, Flask, current_app, g, request
from sqlalchemy.orm import Session

from hotline.phones import mask
from hotline.resources import Resources, resources_of

log = logging.getLogger("hotline.request")


def resources() -> Resources:
    return resources_of(current_app)


def session() -> Session:
    if "db_session" not in g:
        g.db_session = resources().db.Session()
    return g.db_session  # type: ignore[no-any-return]


def register_blueprints(app: Flask) -> None:
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
        ids = " ".join(f"{k}={request.form[k]}" for k in ("CallSid", "MessageSid", "RecordingSid")
                       if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded"
                       and k in request.form)
        frm = mask(request.form.get("From")) if request.method == "POST" and request.form.get("From") else ""
        node = g.get("log_node", "")
        log.info("%s %s %s %.1fms %s%s%s", request.method, request.path, response.status_code, ms, ids,
                 f" from={frm}" if frm else "", f" node={node}" if node else "")
        return response
