"""Texts, imitated: post the SMS webhook and read the <Message> replies; count SMS parts."""

from __future__ import annotations

import math
import secrets
import xml.etree.ElementTree as ET  # noqa: S405  # parses our own app's answers
from dataclasses import dataclass, field
from typing import Any

from hotline.phones import country_of
from hotline.simclient.posters import Poster

# GSM 03.38 basic set and its extension table (each extension character costs two septets).
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


def sms_encoding(text: str) -> str:
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text) else "UCS-2"


def sms_parts(text: str) -> int:
    """How many SMS parts `text` is sent (and billed) as: GSM-7 160/153, UCS-2 70/67 (Khmer and Thai)."""
    if not text:
        return 0
    if sms_encoding(text) == "GSM-7":
        units, single, per_part = sum(2 if c in GSM7_EXTENDED else 1 for c in text), 160, 153
    else:
        # UCS-2 counts UTF-16 code units: a character beyond the BMP (an emoji) takes two.
        units, single, per_part = len(text.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / per_part)


@dataclass(frozen=True)
class SmsReply:
    body: str
    to: str | None
    parts: int
    encoding: str


@dataclass
class SmsResult:
    sid: str
    status: int
    twiml: str
    replies: list[SmsReply] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sid": self.sid, "status": self.status, "twiml": self.twiml, "error": self.error,
                "params": self.params,
                "replies": [{"body": r.body, "to": r.to, "parts": r.parts, "encoding": r.encoding}
                            for r in self.replies]}


def message_params(account_sid: str, from_: str, to: str, body: str, sid: str | None = None) -> dict[str, str]:
    sid = sid or "SM" + secrets.token_hex(16)
    return {"AccountSid": account_sid, "ApiVersion": "2010-04-01", "Body": body, "From": from_,
            "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "NumMedia": "0",
            "NumSegments": str(max(1, sms_parts(body))), "SmsStatus": "received", "To": to,
            "FromCountry": country_of(from_) or "", "ToCountry": country_of(to) or ""}


def send_sms(poster: Poster, url: str, *, account_sid: str, from_: str, to: str, body: str) -> SmsResult:
    """One inbound text; the replies are the <Message> verbs of the answer (a <Redirect> is followed)."""
    params = message_params(account_sid, from_, to, body)
    result = SmsResult(params["MessageSid"], 0, "", params=params)
    for _hop in range(10):
        reply = poster.request("POST", url, params)
        result.status, result.twiml = reply.status, reply.text
        if reply.status != 200:
            result.error = f"HTTP {reply.status}"
            return result
        try:
            root = ET.fromstring(reply.text.strip().encode("utf-8"))  # noqa: S314  # our own app's TwiML
        except ET.ParseError as exc:
            result.error = f"not valid TwiML: {exc}"
            return result
        redirect = None
        for verb in root:
            if verb.tag == "Message":
                bodies = [b.text or "" for b in verb if b.tag == "Body"]
                text = "".join(bodies) if bodies else (verb.text or "").strip()
                result.replies.append(SmsReply(text, verb.get("to"), sms_parts(text), sms_encoding(text)))
            elif verb.tag == "Redirect":
                redirect = (verb.text or "").strip()
                break
        if redirect is None:
            return result
        from urllib.parse import urljoin

        url = urljoin(url, redirect)
    result.error = "too many redirects"
    return result
