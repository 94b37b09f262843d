"""Chat channels (Telegram, Messenger, LINE, an SMS gateway): inbound to the SMS engine, replies out
through the send gate from a job.

`receive` takes one parsed `InboundMessage` and the caller's session, and does not commit:
1. De-duplication: the platform's event id is inserted into `channel_events`, whose (channel,
   event_id) is unique. A redelivery fails the INSERT at once; two deliveries racing on PostgreSQL
   wait on the same unique key, and the second fails when the first commits. Nothing is acted on
   before this point. The message's sid is `<channel>:<event id>` too, so `handle_inbound`'s own
   unique MessageSid backs the claim up.
2. `hotline.services.sms.handle_inbound`, unchanged: the same keyword engine, urgent detection,
   consent questions, cases, callbacks, STOP/START, rate limit and language per contact (the
   contact is a Caller whose `phone` is its address, "telegram:123").
3. What a chat adds: a voice note is stored like a voicemail (a Recording, fetched, encrypted, by
   job `chat.voice_note`) and opens a case for staff review (urgent when its caption is); a phone
   number in the text is the number to call back, and links the contact to that phone's caller;
   a few reply texts differ (ivr_scripts/chat.yaml: there is no number to ring back); a sticker or
   an image gets the neutral "send a number or a voice message".
4. Each reply row `handle_inbound` stored gets one `chat.send` job (after commit), with the
   buttons and, for a topic, the phone menu's recording of it.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
import yaml
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline import channels
from hotline.background.outbox import add_job
from hotline.background.periodic import every
from hotline.background.runner import handler, spec_for
from hotline.channels import BUTTON, KINDS, TEXT, UNSUPPORTED, VOICE, Button, ChatReply, InboundMessage
from hotline.db import utcnow
from hotline.menus.keywords import Intent, KeywordSet
from hotline.menus.schema import Script
from hotline.menus.textnorm import sms_segments
from hotline.models import (
    Caller,
    CaseCategory,
    CasePriority,
    ChannelEvent,
    Direction,
    Language,
    Message,
    MessageStatus,
    OutboxJob,
    Recording,
)
from hotline.phones import country_of, mask, to_e164
from hotline.resources import Resources
from hotline.services import intake, sendgate
from hotline.services import recordings as recording_store
from hotline.services import sms as sms_service
from hotline.telephony.transport import SendError

log = logging.getLogger(__name__)
SEND_JOB = "chat.send"
VOICE_JOB = "chat.voice_note"
TEXTS_FILE = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "chat.yaml"
TEXT_IDS = ("unsupported", "voice_received", "give_number", "callback", "urgent")
MAX_BUTTONS = 13
MAX_LABEL = 20
MAX_TEXT = 4000  # Telegram's limit is 4096; nothing longer is read (the engine reads 2000)
_events = cast(sa.Table, ChannelEvent.__table__)
_messages = cast(sa.Table, Message.__table__)
_callers = cast(sa.Table, Caller.__table__)
# A phone number inside a chat text: "+66 81 234 5678", "081-234-5678", "0812345678"; grouped digits
# must start with + or 0 (as in hotline.phones), so a date or an amount is not read as a number.
_PHONE_RUN = re.compile(r"(?<![\w.+/-])(?:\+\d(?:[ -]?\d){6,14}|0\d{1,2}(?:[ -]?\d){6,8}|\d{8,15})(?!\w|\.\d)")


class ChatScriptError(ValueError):
    """ivr_scripts/chat.yaml is not valid; the message names the field."""


@dataclass(frozen=True, eq=False)
class ChatTexts:
    texts: Mapping[str, Mapping[str, str]]  # text id -> language -> text
    buttons: Mapping[str, tuple[Button, ...]]  # language -> the buttons under every reply

    def text(self, text_id: str, language: str) -> str:
        return self.texts[text_id][language]

    @functools.cached_property
    def _labels(self) -> dict[str, str]:
        return {" ".join(b.label.split()).casefold(): b.payload for bs in self.buttons.values() for b in bs}

    def payload_for(self, text: str) -> str | None:
        """A keyboard button's label sent back as text (Telegram, LINE): the button's payload."""
        return self._labels.get(" ".join(text.split()).casefold()) if len(text) <= 4 * MAX_LABEL else None


@dataclass(frozen=True)
class Received:
    duplicate: bool = False
    case_id: int | None = None
    replies: int = 0  # reply jobs written
    rate_limited: bool = False


@functools.lru_cache(maxsize=4)
def load_texts(path: Path = TEXTS_FILE, languages: tuple[str, ...] = ("km", "th", "en")) -> ChatTexts:
    """Read and check ivr_scripts/chat.yaml: every text and button label in every language."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ChatScriptError(f"{path.name}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ChatScriptError(f"{path.name}: must be a mapping")
    texts: dict[str, dict[str, str]] = {}
    for tid in TEXT_IDS:
        entry = (data.get("texts") or {}).get(tid)
        if not isinstance(entry, dict) or any(not isinstance(entry.get(lang), str) or not entry[lang].strip()
                                              for lang in languages):
            raise ChatScriptError(f"{path.name}: texts.{tid} needs a text in each of {', '.join(languages)}")
        texts[tid] = {lang: " ".join(entry[lang].split()) for lang in languages}
    raw = data.get("buttons")
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_BUTTONS:
        raise ChatScriptError(f"{path.name}: buttons must be a list of 1 to {MAX_BUTTONS}")
    buttons: dict[str, list[Button]] = {lang: [] for lang in languages}
    for i, b in enumerate(raw):
        labels = b.get("label") if isinstance(b, dict) else None
        payload = b.get("payload") if isinstance(b, dict) else None
        if not isinstance(payload, str) or not payload or not isinstance(labels, dict):
            raise ChatScriptError(f"{path.name}: buttons[{i}] needs a payload and a label per language")
        for lang in languages:
            label = labels.get(lang)
            if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL:
                raise ChatScriptError(f"{path.name}: buttons[{i}].label.{lang} must be 1 to {MAX_LABEL} characters")
            buttons[lang].append(Button(label, payload))
    return ChatTexts(texts, {lang: tuple(v) for lang, v in buttons.items()})


def check_texts(keywords: KeywordSet, texts: ChatTexts) -> None:
    """Each button's payload must mean something to the keyword engine (checked at start-up)."""
    for lang, buttons in texts.buttons.items():
        for b in buttons:
            if keywords.match(b.payload).intent in (Intent.UNKNOWN, Intent.EMPTY):
                raise ChatScriptError(f"chat.yaml: button payload {b.payload!r} ({lang}) is no keyword")


def phone_in(text: str, default_region: str | None = None) -> str | None:
    """The first valid phone number written in a chat text, as E.164."""
    for m in _PHONE_RUN.finditer(text[:MAX_TEXT]):
        number = to_e164(m.group(0), default_region)
        if number is not None:
            return number
    return None


def event_sid(channel: str, event_id: str) -> str:
    return f"{channel}:{event_id}"[:64]


def receive(session: Session, keywords: KeywordSet, texts: ChatTexts, msg: InboundMessage, *,
            script: Script | None = None, now: datetime | None = None) -> Received:
    """Act once on one chat message (see the module docstring); the caller commits."""
    now = now or utcnow()
    if msg.kind not in KINDS or not msg.event_id:
        raise ValueError(f"an InboundMessage from a chat adapter needs a kind in {KINDS} and an event id")
    sid = event_sid(msg.channel, msg.event_id)
    try:
        session.execute(sa.insert(_events).values(channel=msg.channel, event_id=msg.event_id[:96], kind=msg.kind,
                                                  received_at=now))
    except IntegrityError:
        session.rollback()
        log.info("%s event %s already received: ignored", msg.channel, sid)
        return Received(duplicate=True)
    body = msg.body.replace("\x00", "")[:MAX_TEXT] if msg.kind in (TEXT, BUTTON, VOICE) else ""
    if msg.kind == TEXT and (payload := texts.payload_for(body)) is not None:
        msg, body = replace(msg, kind=BUTTON), payload
    phone = phone_in(body) if msg.kind in (TEXT, BUTTON) else None  # BUTTON: Messenger's "share my number"
    msg = replace(msg, sid=sid, body=body, callback_phone=phone)
    if msg.language in keywords.languages:
        _first_language(session, msg.sender, msg.language)
    outcome = sms_service.handle_inbound(session, keywords, msg, now=now)
    if outcome.duplicate or outcome.rate_limited:
        return Received(duplicate=outcome.duplicate, rate_limited=outcome.rate_limited, case_id=outcome.case_id)
    match = outcome.match
    intent = match.intent if match is not None else Intent.UNKNOWN
    case_id = outcome.case_id
    text_id: str | None = None
    if msg.kind == VOICE:
        case_id = _voice_note(session, msg, case_id, now)
        text_id = "urgent" if intent == Intent.URGENT else "voice_received"
    elif msg.kind == UNSUPPORTED:
        text_id = "unsupported"
    elif intent == Intent.CALLBACK:
        text_id = "callback" if phone else "give_number"
        if phone:
            _link(session, msg.sender, phone)
    elif intent == Intent.URGENT:
        text_id = "urgent"
    key = sms_service.reply_key(sid)
    if msg.sender.startswith("+"):
        text_id = None  # an SMS gateway's sender is a phone number: the SMS wording fits as it is
    if text_id is not None:
        _reword(session, key, texts, text_id)
    topic = match.topic if match and intent == Intent.TOPIC and msg.kind != VOICE else None
    voice = _topic_voice(script, topic, session, key) if topic is not None else None
    jobs = _queue_replies(session, key, msg, voice, confirms_stop=intent == Intent.STOP, now=now,
                          ask_phone=text_id == "give_number")
    return Received(case_id=case_id, replies=jobs)


def _first_language(session: Session, address: str, language: str | None) -> None:
    """A new contact starts in the language its app reports (Khmer or Thai); a known one keeps its own."""
    if session.scalar(sa.select(Caller.id).where(Caller.phone == address)) is not None:
        return
    try:
        with session.begin_nested():
            session.execute(sa.insert(_callers).values(phone=address, language=language))
    except IntegrityError:  # the same new contact's other message got there first
        pass


def _voice_note(session: Session, msg: InboundMessage, case_id: int | None, now: datetime) -> int:
    """A Recording for the voice note, on the case its caption opened, else a new review case."""
    caller = session.scalar(sa.select(Caller).where(Caller.phone == msg.sender))
    if case_id is None:
        case, _ = intake.open_case(session, caller=caller, source=msg.channel, source_sid=msg.sid,
                                   priority=CasePriority.NORMAL, category=CaseCategory.OTHER,
                                   language=caller.language if caller else None)
        case_id = case.id
        session.execute(sa.update(_messages).where(_messages.c.sid == msg.sid).values(case_id=case_id))
    rec = Recording(recording_sid=(msg.sid or "").replace(":", "-"), case_id=case_id,
                    duration_s=msg.duration_s, status="pending")
    session.add(rec)
    session.flush()
    add_job(session, VOICE_JOB, {"recording_id": rec.id, "channel": msg.channel, "media": msg.media or ""},
            case_id=case_id)
    log.info("%s voice note %s: recording %s on case %s", msg.channel, msg.sid, rec.id, case_id)
    return case_id


def _link(session: Session, address: str, phone: str) -> None:
    """The chat contact gave this number: tie it to that phone's caller (created if new)."""
    phone_id = session.scalar(sa.select(Caller.id).where(Caller.phone == phone))
    if phone_id is None:
        try:
            with session.begin_nested():
                phone_id = session.execute(sa.insert(_callers).values(phone=phone, country=country_of(phone)).returning(
                    _callers.c.id)).scalar_one()
        except IntegrityError:  # the same number reached us at the same moment
            phone_id = session.scalar(sa.select(Caller.id).where(Caller.phone == phone))
    session.execute(sa.update(_callers).where(_callers.c.phone == address).values(linked_caller_id=phone_id))
    log.info("chat contact %s linked to phone %s", mask(address), mask(phone))


def _reword(session: Session, key: str, texts: ChatTexts, text_id: str) -> None:
    """The stored reply says what a chat contact is sent (the SMS wording talks of "this number")."""
    row = session.execute(sa.select(_messages.c.id, _messages.c.language).where(
        _messages.c.idempotency_key == key)).first()
    if row is None:  # opted out: nothing is sent
        return
    text = texts.text(text_id, str(row.language or "km"))
    session.execute(sa.update(_messages).where(_messages.c.id == row.id).values(body=text,
                                                                             segments=sms_segments(text)))


def _topic_voice(script: Script | None, topic: int | None, session: Session, key: str) -> dict[str, Any] | None:
    """The audio parts the phone menu plays for this topic, in the reply's language."""
    if script is None or topic is None:
        return None
    route = script.nodes[script.main].keys.get(str(topic))
    node = script.nodes.get(route.target) if route is not None else None
    if node is None or node.type != "message":
        return None
    row = session.execute(sa.select(_messages.c.language, _callers.c.country).select_from(_messages).outerjoin(
        _callers, _callers.c.id == _messages.c.caller_id).where(_messages.c.idempotency_key == key)).first()
    if row is None:
        return None
    lang = str(row.language or script.default_language)
    if lang not in script.languages:
        return None
    return {"language": lang, "parts": [script.audio(p, lang) for p in node.parts_for(row.country)]}


def _queue_replies(session: Session, key: str, msg: InboundMessage, voice: dict[str, Any] | None, *,
                   confirms_stop: bool, now: datetime, ask_phone: bool = False) -> int:
    ids = session.scalars(sa.select(Message.id).where(
        Message.idempotency_key.in_([key, key + ":consent"]), Message.status == MessageStatus.QUEUED)
        .order_by(Message.id)).all()
    for i, message_id in enumerate(ids):
        add_job(session, SEND_JOB, {"message_id": message_id, "voice": voice if i == 0 else None, "buttons": True,
                                    "confirms_stop": confirms_stop, "reply_token": msg.reply_token if i == 0 else None,
                                    "received_at": now.isoformat(), "ask_phone": ask_phone and i == 0})
    return len(ids)


def queue_message(session: Session, *, caller: Caller, text: str, language: str, purpose: str,
                  case_id: int | None = None, buttons: bool = False, channel: str | None = None) -> Message:
    """Store one outbound chat message for a contact and queue its send (staff replies, alerts).
    `channel` for a contact known by its phone number ("smsgate": a text through the gateway's SIM)."""
    channel_name = channel or channels.PREFIXES.get((caller.phone or "").partition(":")[0], "")
    row = Message(direction=Direction.OUTBOUND, channel=channel_name or "chat", provider=channel_name or "chat",
                  caller_id=caller.id, peer=caller.phone, body=text, language=Language(language),
                  status=MessageStatus.QUEUED, segments=sms_segments(text), purpose=purpose, case_id=case_id)
    session.add(row)
    session.flush()
    add_job(session, SEND_JOB, {"message_id": row.id, "voice": None, "buttons": buttons, "confirms_stop": False,
                                "reply_token": None, "received_at": None}, case_id=case_id)
    return row


MAX_STAFF_REPLY = 1000


class ReplyRefused(Exception):
    """A staff reply that cannot go out; `key` names the console's message."""

    def __init__(self, key: str, channel: str = ""):
        super().__init__(key)
        self.key, self.channel = key, channel


def reply_channel(settings: Any, caller: Caller | None, via: str | None = None) -> str | None:
    """The chat channel a staff member may answer this caller on (on, and the caller's own), or None.
    `via`: the channel the case came in on, for a caller known by a phone number who wrote through a
    gateway channel (SMS Gateway for Android: the person is "+66...", the channel "smsgate")."""
    prefix = (caller.phone or "").partition(":")[0] if caller is not None and caller.phone else ""
    name = channels.PREFIXES.get(prefix) if prefix else None
    if name is None and via in channels.ADAPTERS and caller is not None and (caller.phone or "").startswith("+"):
        name = via
    return name if name is not None and settings.channel(name) is not None else None


def staff_reply(session: Session, settings: Any, *, case_id: int, caller: Caller | None, text: str,
                now: datetime | None = None, via: str | None = None) -> Message:
    """Queue a staff member's reply to a case's caller on the channel they wrote on, inside its rules
    (Messenger: up to 7 days after their last message, with the HUMAN_AGENT tag). The caller audits."""
    now = now or utcnow()
    text = text.strip()
    if not text:
        raise ReplyRefused("reply_empty")
    if len(text) > MAX_STAFF_REPLY:
        raise ReplyRefused("reply_too_long")
    name = reply_channel(settings, caller, via)
    if name is None or caller is None:
        raise ReplyRefused("reply_no_channel")
    if caller.opted_out_at is not None:
        raise ReplyRefused("reply_opted_out", name)
    adapter = channels.adapter(settings, name)
    window = getattr(adapter, "staff_window", None)
    if window is not None:
        last = session.scalar(sa.select(sa.func.max(Message.created_at)).where(
            Message.caller_id == caller.id, Message.direction == Direction.INBOUND, Message.channel == name))
        if last is None or now - last >= window:
            raise ReplyRefused("reply_window", name)
    language = str(caller.language or "km")
    return queue_message(session, caller=caller, text=text, language=language, purpose="staff", case_id=case_id,
                         channel=name)


def conversation(session: Session, settings: Any, address: str, limit: int = 40) -> tuple[list[dict[str, Any]],
                                                                                        tuple[Button, ...]]:
    """A chat contact's last messages, oldest first, as the simulator shows them: direction, text,
    status, and for a topic reply the URL of its voice recording; and the buttons under the last
    reply (in its language)."""
    from hotline.channels import media

    rows = session.scalars(sa.select(Message).where(Message.peer == address).order_by(Message.id.desc())
                           .limit(limit)).all()
    ids = {m.id for m in rows if m.direction == Direction.OUTBOUND}
    voices: dict[int, Any] = {}
    for job in session.scalars(sa.select(OutboxJob).where(OutboxJob.kind == SEND_JOB)
                               .order_by(OutboxJob.id.desc()).limit(5 * limit)):
        if job.payload.get("message_id") in ids and job.payload.get("voice"):
            voices[job.payload["message_id"]] = job.payload["voice"]
    transport = sendgate.channel_transport(settings, address)
    fmt = getattr(transport, "voice_format", "mp3")
    out: list[dict[str, Any]] = []
    for m in reversed(rows):
        spec = voices.get(m.id)
        voice = media.prompt_voice(settings, spec["language"], spec["parts"], fmt) if spec else None
        out.append({"id": m.id, "direction": str(m.direction), "body": m.body or "", "status": str(m.status),
                    "keyword": m.keyword, "voice": voice.url if voice else None})
    last = next((m for m in rows if m.direction == Direction.OUTBOUND), None)
    lang = str(last.language) if last is not None and last.language else "km"
    return out, (load_texts().buttons.get(lang, ()) if last is not None else ())


EVENTS_KEPT = timedelta(days=30)  # platforms redeliver for hours, not weeks; Message.sid stays unique after
_last_forget: list[float] = [0.0]


@every
def forget_old_events(res: Resources) -> None:
    """Drop de-duplication ids older than EVENTS_KEPT, at most hourly (the worker ticks every 15 s)."""
    import time

    if time.monotonic() - _last_forget[0] < 3600:
        return
    _last_forget[0] = time.monotonic()
    with res.db.session() as s:
        s.execute(sa.delete(ChannelEvent).where(ChannelEvent.received_at < utcnow() - EVENTS_KEPT))


# -- jobs -----------------------------------------------------------------------------------------

@handler(SEND_JOB, queue="default", timeout=90)
def send(res: Resources, s: Session, job: OutboxJob) -> None:
    """Send one stored chat message; transient errors are retried (the job raises), a permanent one
    (or the last attempt) marks the message failed with the platform's reason."""
    p = job.payload
    row = s.get(Message, p["message_id"])
    if row is None or row.status != MessageStatus.QUEUED or not row.peer or row.body is None:
        return  # sent already, purged, or refused before
    settings = res.settings
    # A contact whose address is a phone number (the SMS gateway: the same Caller as the phone and
    # Twilio SMS) is routed by the channel the row came through: "+66..." on smsgate -> "sms:+66...".
    to = row.peer if ":" in row.peer else channels.address(row.channel, row.peer)
    transport = sendgate.channel_transport(settings, to)
    language = str(row.language or "km")
    texts = load_texts()
    reply = ChatReply(
        text=row.body, language=language,
        buttons=texts.buttons.get(language, ()) if p.get("buttons") else (),
        voice=_voice(settings, transport, p.get("voice")),
        purpose="reply" if row.purpose == sms_service.REPLY_PURPOSE else (row.purpose or "reply"),
        last_inbound_at=_last_inbound(s, row),
        reply_token=p.get("reply_token"),
        received_at=datetime.fromisoformat(p["received_at"]) if p.get("received_at") else None,
        ask_phone=bool(p.get("ask_phone")),
        key=f"{row.id}.{row.created_at:%Y%m%d%H%M%S%f}" if row.created_at else str(row.id))
    try:
        platform_id = sendgate.send_channel(s, settings, to, reply, confirms_stop=bool(p.get("confirms_stop")))
    except SendError as exc:
        if exc.transient and job.attempts < spec_for(job.kind).attempts:
            raise
        row.status = MessageStatus.FAILED
        row.error_code = (exc.code or "error")[:16]
        row.error_message = str(exc)[:255]
        s.commit()
        raise
    row.status = MessageStatus.SENT
    if platform_id:
        row.sid = f"{row.channel}:{platform_id}"[:64]
    s.commit()
    log.info("chat message %s sent to %s (%s)", row.id, mask(row.peer), row.channel)


def _voice(settings: Any, transport: Any, voice: dict[str, Any] | None) -> channels.Voice | None:
    if not voice or transport is None:
        return None
    from hotline.channels import media

    fmt = getattr(transport, "voice_format", "mp3")
    if not fmt:  # a channel that carries no audio (SMS through the gateway)
        return None
    try:
        return media.prompt_voice(settings, voice["language"], voice["parts"], fmt)
    except media.MediaError as exc:  # the text still goes out
        log.error("voice for a chat reply could not be made: %s", exc)
        return None


def _last_inbound(s: Session, row: Message) -> datetime | None:
    if row.caller_id is None:
        return None
    return s.scalar(sa.select(sa.func.max(Message.created_at)).where(
        Message.caller_id == row.caller_id, Message.direction == Direction.INBOUND, Message.channel == row.channel))


@handler(VOICE_JOB, queue="slow", timeout=120)
def fetch_voice_note(res: Resources, s: Session, job: OutboxJob) -> None:
    """Download a voice note from its platform and store it encrypted, like a voicemail."""
    rec = s.get(Recording, job.payload["recording_id"])
    if rec is None or rec.status in ("stored", "purged"):
        return
    adapter = channels.adapter(res.settings, job.payload["channel"])
    if adapter is None:
        raise SendError(f"channel {job.payload['channel']!r} is off: the voice note cannot be fetched",
                        transient=False, code="no_channel")
    audio = adapter.download(job.payload["media"])
    if not audio:
        raise SendError("the platform sent an empty voice note", transient=True, code="empty")
    recording_store.store(res.settings, rec, audio)
    s.commit()
    log.info("voice note %s stored (%d bytes)", rec.recording_sid, len(audio))


def reply_window_open(last_inbound_at: datetime | None, now: datetime, hours: int = 24) -> bool:
    """Inside a platform's window after the person's last message (Messenger: 24 hours)."""
    return last_inbound_at is not None and now - last_inbound_at < timedelta(hours=hours)
