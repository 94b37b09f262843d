"""Walk the whole voice tree in every language through signed webhooks, and throw arbitrary input at
every voice route: always 200, always valid TwiML, never dead air, every prompt's audio exists."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.menus.loader import load_script
from hotline.models import Call, CallEvent
from tests.conftest import PUBLIC, new_call_sid

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = load_script(ROOT / "ivr_scripts" / "voice")
OPEN = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Phnom Penh: the on-call phone rings
VERBS = {"Play", "Gather", "Redirect", "Record", "Dial", "Hangup", "Reject", "Say", "Pause"}


def parse(body: bytes) -> ET.Element:
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Response')
    root = ET.fromstring(body.split(b"?>", 1)[1])
    assert root.tag == "Response"
    assert {el.tag for el in root} <= VERBS
    return root


def assert_no_dead_air(root: ET.Element) -> None:
    """The last verb hands the call on (or ends it): a caller is never left in silence."""
    verbs = [el.tag for el in root]
    assert verbs, "empty response on a live call"
    assert verbs[-1] in ("Redirect", "Dial", "Hangup", "Reject"), verbs
    if "Gather" in verbs:
        assert verbs[verbs.index("Gather") + 1] == "Redirect"


def plays(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter("Play")]


def audio_file(url: str) -> Path:
    assert url.startswith(PUBLIC + "/audio/"), url
    return ROOT / "audio" / url[len(PUBLIC + "/audio/"):]


def _key(path: str) -> tuple[str, ...]:
    q = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
    return tuple(q.get(k, "") for k in ("n", "l", "s", "r", "k", "w", "e"))


@pytest.mark.parametrize("lang", SCRIPT.languages)
def test_whole_tree_is_reachable_in_each_language_with_valid_twiml_and_existing_audio(app, twilio, db,
                                                                                     lang) -> None:
    app.extensions["hotline.ivr"] = dataclasses.replace(app.extensions["hotline.ivr"], now=lambda: OPEN)
    sid = new_call_sid()
    first = parse(twilio.post("/twilio/voice", twilio.voice_params(sid)).data)
    choose = {"km": "1", "th": "2", "en": "3"}[lang]
    start = first.find("Gather").attrib["action"]
    todo: deque[tuple[str, dict[str, str]]] = deque([(start, {"Digits": choose})])
    seen: set[tuple[str, ...]] = set()
    reached: set[str] = {"language"}
    heard: set[str] = set(plays(first))
    while todo:
        path, extra = todo.popleft()
        r = twilio.post(path, twilio.voice_params(sid, **extra))
        assert r.status_code == 200, (path, extra)
        root = parse(r.data)
        assert_no_dead_air(root)
        heard.update(plays(root))
        for url in (el.attrib.get("action") or el.text or "" for el in root if el.tag in ("Gather", "Redirect",
                                                                                          "Dial", "Record")):
            if not url.startswith("/twilio/voice/step"):
                continue
            q = parse_qs(urlsplit(url).query)
            reached.add(q["n"][0])
            assert q["l"][0] == lang  # the caller never loses their language
            if _key(url) in seen:
                continue
            seen.add(_key(url))
            stage = q.get("s", [""])[0]
            if "e=" in url:
                if q["n"][0] == "language" and lang != SCRIPT.default_language:
                    continue  # silence at the language menu means Khmer (tested in test_ivr_webhooks)
                todo.append((url, {}))
            elif stage == "dial":
                todo.extend((url, {"DialCallStatus": s}) for s in ("completed", "no-answer", "busy"))
            elif stage == "record":
                todo.append((url, {"RecordingUrl": "https://api.twilio.com/RE1", "RecordingDuration": "3",
                                   "Digits": "#"}))
            elif stage == "number":
                todo.extend((url, {"Digits": d}) for d in ("0891234567", "12"))
            elif "k=" in url or "w=" in url:  # counters running: only more of the same matters
                todo.append((url, {"Digits": "#"}))
            elif q["n"][0] == "language":
                # Back at the language menu ("#" at the main menu): choosing another language is the
                # one way a caller's language changes on purpose; the walk stays in `lang`.
                todo.extend((url, {"Digits": d}) for d in "0123456789*#" if d not in "123" or d == choose)
            else:
                todo.extend((url, {"Digits": d}) for d in "0123456789*#")
    app.extensions["hotline.ivr"].events.flush()
    entered = set(db.scalars(sa.select(CallEvent.node).join(Call).where(Call.call_sid == sid,
                                                                          CallEvent.kind == "node")))
    assert reached | entered == set(SCRIPT.nodes) - {"resume"}  # resume is only offered at the start of a later call
    # All in the chosen language, except what is said in every language on purpose ("for another
    # language, press #" and the language menu itself).
    every = {n.every_language for n in SCRIPT.nodes.values() if n.every_language}
    every |= {n.prompt for n in SCRIPT.nodes.values() if n.all_languages and n.prompt}
    own = {u for u in heard - set(plays(first)) if u.rsplit("/", 1)[1].removesuffix(".mp3") not in every}
    assert {u.rsplit("/", 2)[1] for u in own} == {lang}
    for url in heard:
        assert audio_file(url).is_file(), url


def test_every_prompt_the_script_can_play_has_audio_in_every_language() -> None:
    missing = [f"{lang}/{name}.mp3" for lang, names in SCRIPT.audio_names().items() for name in names
               if not (ROOT / "audio" / lang / f"{name}.mp3").is_file()]
    assert missing == []
    assert set(SCRIPT.audio_names()) == set(SCRIPT.languages)


# -- arbitrary input -------------------------------------------------------------------------------

text = st.text(max_size=24)
params = st.fixed_dictionaries({}, optional={
    "Digits": st.one_of(text, st.text(alphabet="0123456789*#", max_size=20)),
    "From": st.one_of(text, st.sampled_from(["+85512345678", "+66812345678", "anonymous", ""])),
    "To": st.one_of(text, st.sampled_from(["+85523000000", "+85523000999"])),
    "DialCallStatus": text, "RecordingSid": text, "RecordingStatus": st.sampled_from(["completed", "failed", ""]),
    "RecordingUrl": text, "RecordingDuration": text, "CallStatus": text, "CallDuration": text,
})
query = st.fixed_dictionaries({}, optional={
    "c": st.one_of(text, st.sampled_from(["1", "999999", "-1"])),
    "n": st.one_of(text, st.sampled_from(sorted(SCRIPT.nodes))),
    "l": st.one_of(text, st.sampled_from(["km", "th", "en"])),
    "s": st.one_of(text, st.sampled_from(["p0", "p1", "p7", "after", "confirm", "number", "when", "dial", "record",
                                                  "consent_contact", "consent_share", "key"])),
    "k": text, "w": text, "r": st.one_of(text, st.sampled_from(["wages:1", "papers:x", "main:0"])),
    "e": st.sampled_from(["t", "d", "x", ""]),
    "recovered": st.sampled_from(["1", ""]),
})
ROUTES = ["/twilio/voice", "/twilio/voice/step", "/twilio/voice/status", "/twilio/voice/recording",
          "/twilio/voice/whisper"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), q=query, form=params)
def test_any_signed_input_to_any_voice_route_gets_200_and_valid_twiml(twilio, route, q, form) -> None:
    base = {"CallSid": new_call_sid(), "AccountSid": "AC" + "1" * 32}
    path = route + ("?" + urlencode(q) if q else "")
    r = twilio.post(path, {**base, **form})
    assert r.status_code == 200, r.data
    assert r.mimetype == "text/xml"
    root = parse(r.data)
    if route in ("/twilio/voice", "/twilio/voice/step"):
        assert_no_dead_air(root)
