"""A Twilio-like client for the hotline's own webhooks: the browser simulator, `hotline call`,
`hotline sms`, the IVR tests and the benchmark all drive the app through it.

It signs each request as Twilio does and follows the TwiML it gets back; it never calls the engine.
"""

from hotline.simclient.phone import CallError, CallState, PhoneClient, Recording, Step, parse_twiml
from hotline.simclient.posters import HttpPoster, Poster, Reply, WsgiPoster
from hotline.simclient.prompts import PromptCatalogue, load_prompts
from hotline.simclient.sms import SmsReply, SmsResult, send_sms, sms_encoding, sms_parts
from hotline.simclient.walker import WalkStep, fresh_callers, replay, walk

__all__ = [
    "CallError", "CallState", "HttpPoster", "PhoneClient", "Poster", "PromptCatalogue", "Recording", "Reply",
    "SmsReply", "SmsResult", "Step", "WalkStep", "WsgiPoster", "fresh_callers", "load_prompts", "parse_twiml", "replay",
    "send_sms", "sms_encoding", "sms_parts", "walk",
]
