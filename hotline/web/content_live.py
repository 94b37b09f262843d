"""Which content version a request serves: the published one (cached per process by version
number, see hotline.services.content.ContentLive), or the draft for the simulator's draft toggle.

The starter set (what voice.init_app and sms.init_app load and check from ivr_scripts/) is
version 0: it plays until something is published. One snapshot per request (kept in `g`), so a
publish landing mid-request cannot mix two versions in one answer.
"""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request

from hotline.resources import resources_of
from hotline.services import content

_EXT = "hotline.content"
# Set only by our own in-process clients (the simulator): an environ key that no HTTP request can
# carry (headers arrive as HTTP_*), so a caller cannot ask for the unpublished draft.
DRAFT_ENVIRON = "hotline.content_draft"


def live(app: Flask | None = None) -> content.ContentLive:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    existing = app.extensions.get(_EXT)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    from hotline.web.sms import starter_keywords
    from hotline.web.voice import starter_script

    res = resources_of(app)
    starter = content.Snapshot(0, 0, starter_script(app), starter_keywords(app))
    interval = float(app.config.get("CONTENT_CHECK_SECONDS") or res.settings.content_check_seconds)
    made = content.ContentLive(starter, res.db.Session, res.redis, interval=interval)
    return app.extensions.setdefault(_EXT, made)  # type: ignore[no-any-return]


def snapshot() -> content.Snapshot:
    """The version this request serves (the draft only for the simulator's draft calls)."""
    snap = g.get("content_snapshot")
    if snap is None:
        lv = live()
        if has_request_context() and request.environ.get(DRAFT_ENVIRON):
            from hotline.web import session

            snap = lv.draft(session())
        else:
            snap = lv.published()
        g.content_snapshot = snap
    return snap  # type: ignore[no-any-return]


def announce(number: int) -> None:
    """After a publish or rollback is committed: every process serves it within CONTENT_CHECK_SECONDS."""
    content.announce_number(resources_of(current_app).redis, number)
    live().refresh()
