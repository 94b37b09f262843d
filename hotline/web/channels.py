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
