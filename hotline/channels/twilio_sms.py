"""Twilio SMS: the webhook's form in, TwiML `<Message>` out (the reply rides on the webhook answer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hotline.channels import InboundMessage, OutboundMessage
from hotline.telephony import twiml


def _clean(value: str) -> str:
    return value.replace("\x00", "")  # PostgreSQL text cannot hold NUL; Twilio never sends one


class TwilioSms:
    channel = "sms"
    provider = "twilio"

    def parse(self, form: Mapping[str, str]) -> InboundMessage:
        return InboundMessage(
            channel=self.channel, provider=self.provider,
            sid=_clean(form.get("MessageSid") or form.get("SmsMessageSid") or "")[:64] or None,
            sender=_clean(form.get("From") or "").strip()[:20], body=form.get("Body") or "",
            # Present only with Advanced Opt-Out on a Messaging Service: Twilio already answered.
            answered_by_provider=bool(form.get("OptOutType")))

    def answer(self, replies: Sequence[OutboundMessage], *, status_callback: str | None) -> str:
        """TwiML with one `<Message>` per reply; an empty `<Response/>` sends nothing."""
        resp = twiml.MessagingResponse()
        for reply in replies:
            resp.message(reply.body, status_callback=status_callback)
        return str(resp.to_xml())
