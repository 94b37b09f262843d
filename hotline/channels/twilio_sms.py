"""Twilio SMS: the webhook's form in, TwiML `<Message>` out (the reply rides on the webhook answer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from hotline.channels import InboundMessage
from hotline.telephony import twiml

if TYPE_CHECKING:
    from hotline.services.sendgate import Cleared


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
            answered_by_provider=bool(form.get("OptOutType")),
            # Twilio's own keyword lists may hold words ours do not (a custom opt-out word).
            provider_opt=(form.get("OptOutType") or "").lower() or None)

    def answer(self, replies: Sequence[Cleared], *, status_callback: str | None) -> str:
        """TwiML with one `<Message>` per reply the send gate cleared; an empty `<Response/>` sends nothing."""
        from hotline.services.sendgate import Cleared

        resp = twiml.MessagingResponse()
        for reply in replies:
            if not isinstance(reply, Cleared):  # a reply that did not pass the opt-out check
                raise TypeError("TwilioSms.answer sends only messages cleared by hotline.services.sendgate")
            resp.message(reply.body, status_callback=status_callback)
        return str(resp.to_xml())
