"""The browser phone (`/simulator`): place calls and send texts through the real /twilio/* webhooks.

The browser talks JSON to this blueprint; it drives the same `hotline.simclient` that `hotline call`
uses, which signs each request and follows the TwiML as Twilio would. A call's state between two
key presses is plain JSON kept in Redis, so any web worker can serve the next press.

HOTLINE_SIMULATOR: `open` in the embedded default (no REST credentials); `off` by default wherever
Twilio REST credentials are set or HOTLINE_ENV=production; `staff` for admins only, from the
simulator's own numbers only.
The recordings it serves are the exception: the worker fetches them with HTTP basic auth (account
SID and auth token), exactly like Twilio's recording URLs.
"""

from __future__ import annotations

import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request, send_file

from hotline.models import Role
from hotline.phones import mask
from hotline.services.sent import recent_outbound
from hotline.settings import Settings
from hotline.simclient import CallError, CallState, PhoneClient, Step, WsgiPoster, load_prompts, sms_parts
from hotline.simclient import chat as sim_chat
from hotline.simclient.recordings import RecordingError, RecordingStore
from hotline.web import resources, session

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

# The simulator's own fake callers: shown unmasked in the outbox pane (they are nobody).
SIM_NUMBERS = {
    "KH": ["+85512345678", "+855977654321", "+85516555123"],
    "TH": ["+66812345678", "+66898765432"],
}
OWN = {n for numbers in SIM_NUMBERS.values() for n in numbers}
LANGUAGES = {"km": "ខ្មែរ Khmer", "th": "ไทย Thai", "en": "English"}
CALL_TTL = 2 * 3600  # seconds a simulated call's state is kept in Redis


def _settings() -> Settings:
    return current_app.config["HOTLINE"]  # type: ignore[no-any-return]


@bp.before_request
def _guard() -> Any:
    """HOTLINE_SIMULATOR: `off` answers 404 everywhere; `staff` needs an admin within the console's
    session timeouts; `open` (embedded, no REST credentials) needs nothing. The recordings route
    checks Twilio-style basic auth itself (the worker fetches from it)."""
    mode = _settings().simulator_mode
    if mode == "off":
        abort(404)
    if request.endpoint in ("simulator.recording", "simulator.chat_media") or mode == "open":
        return None
    from hotline.web.staff import console_session, me

    refused = console_session()
    if refused is not None:
        return refused
    if not me().has_role(Role.ADMIN, Role.CONTENT):
        abort(403)
    return None


def _may_draft() -> bool:
    """The draft toggle: content staff and admins (anyone where the simulator is open, i.e. embedded)."""
    if _settings().simulator_mode == "open":
        return True
    from flask_login import current_user

    return bool(current_user.is_authenticated and current_user.has_role(Role.ADMIN, Role.CONTENT))


def _caller_number(data: dict[str, Any]) -> str:
    """The `From` of a simulated call or text. With the simulator open to staff on a real line, only
    the simulator's own numbers (SIM_NUMBERS, which it offers): nobody can pose as a real person."""
    number = str(data.get("from") or SIM_NUMBERS["KH"][0])
    if _settings().simulator_mode != "open" and number not in OWN:
        abort(400, "only the simulator's own numbers may be used here: " + ", ".join(sorted(OWN)))
    return number


def client() -> PhoneClient:
    s = _settings()
    # In-process through the WSGI app rather than HTTP to PUBLIC_BASE_URL: the routes, middleware and
    # signature check are the same, but a single-threaded server cannot deadlock on its own request,
    # and a public URL behind a tunnel or proxy (where Twilio reaches us) need not route back here.
    test_client = current_app.test_client()
    prompts = load_prompts()
    if request.args.get("draft") == "1" and _may_draft():
        from hotline.web.content_live import DRAFT_ENVIRON, live

        # Our own in-process requests only: no HTTP request can carry this environ key.
        test_client.environ_base[DRAFT_ENVIRON] = "1"
        prompts.texts.update(live().draft(session()).script.texts_by_audio())
    else:
        from hotline.web.content_live import snapshot

        prompts.texts.update(snapshot().script.texts_by_audio())
    poster = WsgiPoster(test_client, s.public_base_url, s.twilio_auth_token)
    return PhoneClient(poster, account_sid=s.twilio_account_sid, hotline_number=s.hotline_number,
                       prompts=prompts)


def store() -> RecordingStore:
    s = _settings()
    return RecordingStore(s.instance_path / "simulator" / "recordings", s.public_base_url + "/simulator/recordings")


def _key(call_sid: str) -> str:
    return f"hotline:simulator:call:{call_sid}"


def _load(call_sid: str) -> CallState:
    raw = resources().redis().get(_key(call_sid)) if call_sid.startswith("CA") else None
    if raw is None:
        abort(404, "no such call (it ended more than two hours ago, or never began)")
    return CallState.from_dict(json.loads(raw))


def _reply(step: Step) -> Response:
    resources().redis().set(_key(step.state.call_sid), json.dumps(step.state.to_dict()), ex=CALL_TTL)
    public = _settings().public_base_url
    for event in step.events:
        # The browser loads prompts from the origin it is on, which may not be PUBLIC_BASE_URL.
        url = event.get("url", "")
        if event["kind"] == "play" and url.startswith(public + "/"):
            event["src"] = url[len(public):]
        elif event["kind"] == "play":
            event["src"] = url
    return jsonify(call_sid=step.state.call_sid, status=step.state.status, ended=step.ended,
                   waiting=step.waiting, events=step.events)


def _json() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.get("")
def page() -> str:
    s = _settings()
    return render_template("simulator/index.html", numbers=SIM_NUMBERS, languages=LANGUAGES,
                           may_draft=_may_draft(), draft=request.args.get("draft") == "1",
                           hotline_number=s.hotline_number, missed_call_numbers=sorted(s.missed_call_numbers),
                           chat_channels=_chat_channels(), sim_contacts=sim_chat.SIM_CONTACTS,
                           voice_notes=sim_chat.VOICE_NOTES)


@bp.post("/api/calls")
def start_call() -> Response:
    data = _json()
    s = _settings()
    to = str(data.get("to") or s.hotline_number)
    if s.simulator_mode != "open" and to not in {s.hotline_number, *s.missed_call_numbers}:
        abort(400, "the simulator only calls the hotline's own numbers")
    step = client().start_call(_caller_number(data), to)
    return _reply(step)


@bp.post("/api/calls/<call_sid>/keys")
def press(call_sid: str) -> Response:
    digits = _json().get("digits")
    return _act(lambda c, st: c.press(st, str(digits) if digits else None), call_sid)


@bp.post("/api/calls/<call_sid>/record")
def record(call_sid: str) -> Response:
    """The caller's recording: an uploaded file (what the browser recorded) or the bundled sample."""
    upload = request.files.get("audio")
    try:
        if upload is not None:
            name = upload.filename or "recording.webm"
            rec = store().add(upload.read(), "." + name.rsplit(".", 1)[-1][:5] if "." in name else ".webm")
        else:
            rec = store().add_sample()
    except RecordingError as exc:
        return Response(f"{exc}\n", status=400, mimetype="text/plain")
    finish = request.form.get("digits") or "#"
    return _act(lambda c, st: c.record(st, rec, finish), call_sid)


@bp.post("/api/calls/<call_sid>/dial")
def dial(call_sid: str) -> Response:
    # "accept": answer as the lawyer and press 1 on the whisper; "voicemail": a voicemail picks up
    # and presses nothing; anything else: nobody answers. {"answer": true} still means accept.
    body = _json()
    outcome = str(body.get("outcome") or ("accept" if body.get("answer") else "no-answer"))
    outcome = outcome if outcome in ("accept", "voicemail") else "no-answer"
    return _act(lambda c, st: c.dial_result(st, outcome), call_sid)


@bp.post("/api/calls/<call_sid>/hangup")
def hangup(call_sid: str) -> Response:
    return _act(lambda c, st: c.hangup(st), call_sid)


def _act(action: Any, call_sid: str) -> Response:
    state = _load(call_sid)
    try:
        step = action(client(), state)
    except CallError as exc:
        return Response(f"{exc}\n", status=409, mimetype="text/plain")
    return _reply(step)


@bp.post("/api/sms")
def sms() -> Response:
    data = _json()
    body = str(data.get("body") or "")
    if not body.strip():
        return Response("type a message first\n", status=400, mimetype="text/plain")
    result = client().send_sms(_caller_number(data), body[:1600])
    return jsonify(result.to_dict() | {"parts": sms_parts(body)})


def _show(number: str | None) -> str:
    return number if number in OWN else mask(number)


@bp.get("/api/outbox")
def outbox() -> Response:
    """What the hotline sent out through the transport, newest first: SMS and the calls it placed."""
    messages, calls = recent_outbound(session())
    return jsonify(
        messages=[{"id": m.id, "to": _show(m.peer), "body": m.body or "", "status": str(m.status),
                   "provider": m.provider, "purpose": m.purpose, "parts": m.segments or sms_parts(m.body or ""),
                   "at": m.created_at.isoformat() if m.created_at else None} for m in messages],
        calls=[{"id": c.id, "to": _show(c.to_number), "status": c.status, "purpose": c.purpose,
                "provider": c.provider, "answered_by": c.answered_by,
                "at": c.started_at.isoformat() if c.started_at else None} for c in calls])


def _authorised() -> bool:
    auth = request.authorization
    s = _settings()
    return bool(auth and auth.username and auth.password
                and hmac.compare_digest(auth.username, s.twilio_account_sid)
                and hmac.compare_digest(auth.password, s.twilio_auth_token))


@bp.get("/recordings/<name>")
def recording(name: str) -> Response:
    """A recording as Twilio serves one: WAV by default, MP3 with ".mp3"; basic auth required."""
    if not _authorised():
        return Response("Unauthorized\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})
    sid, _, ext = name.partition(".")
    try:
        path = store().path(sid, ext or "wav")
    except RecordingError:
        path = None
    if path is None:
        abort(404)
    return send_file(path, mimetype="audio/mpeg" if path.suffix == ".mp3" else "audio/x-wav", max_age=0)


# -- chat channels ------------------------------------------------------------------------------------
# The chat pane posts each platform's webhook, signed as the platform signs it, to the real
# /channels/<name> route (in process, like the phone), from the simulator's own contacts only; the
# conversation is read back from the stored messages, with each topic's voice reply playable.

def _chat_channels() -> list[str]:
    from hotline import channels

    return [name for name in channels.enabled(_settings()) if name in sim_chat.BUILDERS]


def _chat_contact(channel: str, contact: str) -> str:
    if channel not in _chat_channels():
        abort(404, "that chat channel is off, or the simulator cannot play it")
    if contact not in sim_chat.SIM_CONTACTS.get(channel, ()):
        abort(400, "only the simulator's own chat contacts may be used: "
              + ", ".join(sim_chat.SIM_CONTACTS.get(channel, ())))
    return contact


def _chat_media_dir() -> Any:
    return _settings().instance_path / "simulator" / "chat"


@bp.post("/api/chat/<channel>")
def chat_send(channel: str) -> Response:
    """One message from a simulated contact: text, a tapped button, a voice note (uploaded or the sample), a sticker."""
    data = request.form if request.files or request.form else _json()
    contact = _chat_contact(channel, str(data.get("contact") or ""))
    kind = str(data.get("kind") or "text")
    text, payload = str(data.get("body") or "")[:4000], str(data.get("payload") or "")[:64]
    if kind not in sim_chat.KINDS or (kind == "text" and not text.strip()):
        return Response("type a message first\n", status=400, mimetype="text/plain")
    voice_url = None
    if kind == "voice":
        if channel not in sim_chat.VOICE_NOTES:
            return Response(f"the simulator cannot send {channel} voice notes\n", status=400, mimetype="text/plain")
        upload = request.files.get("audio")
        audio = upload.read() if upload is not None else (Path(current_app.static_folder or "") / "simulator"
                                                          / "sample.wav").read_bytes()
        if not audio or len(audio) > 10 * 1024 * 1024:
            return Response("no audio, or more than 10 MB\n", status=400, mimetype="text/plain")
        name = secrets.token_urlsafe(12) + ".wav"
        folder = _chat_media_dir()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(audio)
        voice_url = _settings().public_base_url + "/simulator/chat-media/" + name
    config = _settings().channel(channel) or {}
    body, headers = sim_chat.BUILDERS[channel](config, contact, kind, text, payload or text, voice_url)
    resp = current_app.test_client().post(f"/channels/{channel}", data=body, headers=headers)
    return jsonify(status=resp.status_code)


@bp.get("/api/chat/<channel>/<contact>")
def chat_thread(channel: str, contact: str) -> Response:
    """The conversation as stored: what the contact sent and what the hotline answered (with its
    status, its voice recording, and the buttons under the last reply)."""
    from hotline import channels
    from hotline.services import chat

    _chat_contact(channel, contact)
    settings = _settings()
    messages, buttons = chat.conversation(session(), settings, channels.address(channel, contact))
    for m in messages:  # the browser loads audio from the origin it is on
        if m["voice"]:
            m["voice"] = m["voice"].removeprefix(settings.public_base_url)
    return jsonify(messages=messages, buttons=[{"label": b.label, "payload": b.payload} for b in buttons])


@bp.get("/chat-media/<name>")
def chat_media(name: str) -> Response:
    """A voice note the simulator "sent": fetched by the channel's adapter as it fetches the platform's."""
    if not name.replace(".", "").replace("-", "").replace("_", "").isalnum() or name.startswith("."):
        abort(404)
    path = _chat_media_dir() / name
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="audio/x-wav", max_age=0)
