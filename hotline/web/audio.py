"""Recorded prompts: audio/<lang>/<name>.mp3 (the starter set) or, once the content studio has
published a recording, that recording from the content store (or all of it from a CDN).

A published recording is played as `<name>.<sha256>.mp3`: the URL changes with the recording, so
it is cached for a year. The plain name serves whatever the published version has for it (the
error fallback in hotline.web.errors plays `goodbye` and `system_error` by name).
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, abort, current_app, send_file, send_from_directory

from hotline.resources import resources_of
from hotline.services import content

AUDIO_DIR = Path(__file__).resolve().parent.parent.parent / "audio"
bp = Blueprint("audio", __name__)
HASHED = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)\.(?P<sha>[0-9a-f]{64})$")


def audio_url(lang: str, name: str) -> str:
    """Absolute URL of a prompt, as Twilio must fetch it."""
    settings = current_app.config["HOTLINE"]
    base = settings.audio_base_url or (settings.public_base_url + "/audio")
    return f"{base}/{lang}/{name}.mp3"


def _store() -> content.ContentStore:
    return content.store_for(resources_of(current_app).settings)


def audio_available(lang: str, name: str) -> bool:
    """Whether /audio/<lang>/<name>.mp3 has something to play."""
    m = HASHED.match(name)
    if m:
        return _store().exists(m["sha"])
    return (AUDIO_DIR / lang / f"{name}.mp3").is_file()


@bp.get("/audio/<lang>/<name>.mp3")
def prompt(lang: str, name: str):  # type: ignore[no-untyped-def]
    if not (lang.isalpha() and len(lang) <= 3) or "/" in name or name.startswith("."):
        abort(404)
    m = HASHED.match(name)
    if m:  # immutable: the name carries the recording's hash
        store = _store()
        if not store.exists(m["sha"]):
            abort(404)
        return send_file(store.path(m["sha"]), mimetype="audio/mpeg", max_age=365 * 86400, conditional=True)
    from hotline.web.content_live import snapshot

    sha = snapshot().audio_sha(lang, name)
    if sha and _store().exists(sha):
        return send_file(_store().path(sha), mimetype="audio/mpeg", max_age=300, conditional=True)
    # Starter prompts change only when someone replaces the file in the repo; a day of caching
    # keeps Twilio's fetches cheap.
    return send_from_directory(AUDIO_DIR / lang, f"{name}.mp3", mimetype="audio/mpeg", max_age=86400,
                               conditional=True)
