"""Recorded prompts, served from audio/<lang>/<name>.mp3 with long cache headers (or from a CDN)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory

AUDIO_DIR = Path(__file__).resolve().parent.parent.parent / "audio"
bp = Blueprint("audio", __name__)


def audio_url(lang: str, name: str) -> str:
    """Absolute URL of a prompt, as Twilio must fetch it."""
    settings = current_app.config["HOTLINE"]
    base = settings.audio_base_url or (settings.public_base_url + "/audio")
    return f"{base}/{lang}/{name}.mp3"


@bp.get("/audio/<lang>/<name>.mp3")
def prompt(lang: str, name: str):  # type: ignore[no-untyped-def]
    if not (lang.isalpha() and len(lang) <= 3) or "/" in name or name.startswith("."):
        abort(404)
    # Prompts change only when staff import a new recording, whose file name stays the same; a day
    # of caching keeps Twilio's fetches cheap while letting a new recording reach callers soon.
    return send_from_directory(AUDIO_DIR / lang, f"{name}.mp3", mimetype="audio/mpeg", max_age=86400,
                               conditional=True)
