"""Chat channel webhooks, one route for every adapter: `/channels/<channel>` (hotline.channels).

A channel that is off (no settings) answers 404. A POST whose signature does not check out on the
raw body is 403 and nothing is parsed. Once verified, the platform always gets a 200: an event we
cannot act on is logged, a bug rolls its own event back and the others still count; a 5xx would
make the platform retry and, if it goes on, disable the webhook. Each event is committed on its
own, so the reply jobs of the first do not wait for the last.

`/channels/media/<token>`: a converted prompt for a platform that fetches audio by URL (LINE,
Messenger). The token is signed and expires (hotline.channels.media); it names no person.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request, send_file

from hotline import channels
from hotline.channels import media
from hotline.services import chat
from hotline.web import resources, session

log = logging.getLogger(__name__)
bp = Blueprint("channels", __name__, url_prefix="/channels")
_TEXTS = "hotline.chat_texts"
MAX_BODY = 1024 * 1024  # platforms post a few kilobytes; a LINE batch is the largest


def init_app(app: Flask) -> None:
    """Check the chat texts and build each enabled channel's adapter now: a mistake stops start-up.
    (That every button means a keyword is checked by tests: the keywords load after this.)"""
    app.extensions[_TEXTS] = chat.load_texts()
    settings = app.config["HOTLINE"]
    for name in channels.enabled(settings):
        channels.adapter(settings, name)
        log.info("chat channel %s is on: /channels/%s", name, name)


def _ok() -> Response:
    return Response("ok", status=200, mimetype="text/plain")


@bp.get("/media/<token>")
def voice_file(token: str):  # type: ignore[no-untyped-def]
    found = media.resolve(resources().settings, token) if len(token) < 400 else None
    if found is None:
        abort(404)
    path, mime = found
    return send_file(path, mimetype=mime, max_age=86400, conditional=True)


@bp.route("/<name>", methods=["GET", "POST"])
def webhook(name: str):  # type: ignore[no-untyped-def]
    if request.method == "POST" and (request.content_length or 0) > MAX_BODY:
        return Response("too large", status=413, mimetype="text/plain")
    settings = resources().settings
    adapter = channels.adapter(settings, name) if name.isalnum() else None
    if adapter is None:
        abort(404)
    if request.method == "GET":
        answer = adapter.handshake(request.args)
        if answer is None:
            return Response("forbidden", status=403, mimetype="text/plain")
        return Response(answer, status=200, mimetype="text/plain")
    body = request.get_data(cache=True)
    if not adapter.verify(body, {k.lower(): v for k, v in request.headers.items()}):
        log.warning("%s webhook with a wrong or missing signature refused", name)
        return Response("forbidden", status=403, mimetype="text/plain")
    if getattr(adapter, "heartbeat", False):
        _seen(name)
    status_of = getattr(adapter, "status", None)  # a gateway's later reports on what we sent
    if status_of is not None:
        _apply_status(name, status_of(body))
    try:
        messages = adapter.parse(body)
    except ValueError:
        log.warning("%s webhook body is not what the platform sends; ignored", name)
        return Response("bad request", status=400, mimetype="text/plain")
    except Exception:
        log.exception("%s webhook could not be parsed; answered 200", name)
        return _ok()
    from hotline.web.sms import keyword_set
    from hotline.web.voice import runtime

    keywords, texts, script = keyword_set(), current_app.extensions[_TEXTS], runtime().script
    s = session()
    for msg in messages:
        try:
            chat.receive(s, keywords, texts, msg, script=script)
            s.commit()  # the case / callback request is stored before its reply job runs
        except Exception:
            s.rollback()
            log.exception("%s event %s failed; answered 200 (the platform would only retry it)", name,
                          msg.event_id)
    return _ok()


def _apply_status(name: str, reports: list[tuple[str, str, str | None]]) -> None:
    """Delivery reports (SMS gateway's sms:sent / sms:delivered / sms:failed): like Twilio's status
    callbacks, a failure reported minutes later marks the message failed with the phone's reason,
    an unknown id is ignored, and a status never moves backwards."""
    if not reports:
        return
    from hotline.models import MessageStatus
    from hotline.services import legal_aid
    from hotline.services import sms as sms_service

    s = session()
    try:
        for message_id, status, error in reports:
            msg = sms_service.record_status(s, sid=f"{name}:{message_id}"[:64], status=status)
            if msg is not None and status == "failed":
                # A long text is sent in parts, each reported delivered on its own; a failure of any
                # part after another's delivery still means the person did not get the whole text.
                msg.status = MessageStatus.FAILED
                msg.error_code, msg.error_message = f"{name}_failed"[:16], (error or "failed")[:255]
                legal_aid.alert_not_delivered(s, resources().settings, msg)
        s.commit()
    except Exception:
        s.rollback()
        log.exception("%s delivery report could not be applied; answered 200", name)


SEEN_KEY = "hotline:channels:{}:seen"


def _seen(name: str) -> None:
    """A device-backed channel (the SMS gateway's phone) signed a request: it is alive now. Shown by
    /healthz/ready, so an operator sees a phone that went quiet (its system:ping stopped)."""
    try:
        resources().redis().set(SEEN_KEY.format(name), str(int(time.time())), ex=30 * 86400)
    except Exception as exc:  # noqa: BLE001 - Redis down must not cost the platform a 200
        log.warning("%s: last-seen time not stored (%s)", name, type(exc).__name__)


def last_seen(redis: Any, name: str) -> int | None:
    """Seconds since the channel's device last sent a signed request; None if never (or unknown)."""
    raw = redis.get(SEEN_KEY.format(name))
    return max(0, int(time.time()) - int(raw)) if raw else None
