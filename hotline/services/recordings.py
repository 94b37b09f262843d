"""Voicemails: copied from Twilio into our own storage (job "recording.fetch"), encrypted at rest.

The file on disk is a Fernet token (AES-128-CBC + HMAC-SHA256) made with the newest DATA_KEY; the row keeps
the SHA-256 of the plaintext so `decrypt` can prove it hands back exactly what Twilio recorded.
Playing is the console's job (login, audit); it calls `decrypt`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy.orm import Session

from hotline.background.runner import handler
from hotline.crypto import keyring
from hotline.db import utcnow
from hotline.models import OutboxJob, Recording
from hotline.resources import Resources
from hotline.settings import Settings
from hotline.telephony.transport import SendError, delete_recording, fetch_recording

log = logging.getLogger(__name__)
FETCH_JOB = "recording.fetch"
AUDIO_FORMAT = ".wav"  # Twilio's original; ".mp3" would be smaller but is transcoded by Twilio


class RecordingUnavailable(Exception):
    """The stored copy is missing, unreadable with this key, or not what was stored."""


@handler(FETCH_JOB, queue="slow", timeout=120)
def fetch(res: Resources, s: Session, job: OutboxJob) -> None:
    """Copy one recording into RECORDINGS_DIR, encrypted; optionally delete Twilio's copy."""
    rec = s.get(Recording, job.payload["recording_id"])
    if rec is None or rec.status == "purged":
        return
    settings = res.settings
    if rec.status != "stored":
        store(settings, rec, fetch_recording(settings, audio_url(settings, rec)))
        s.commit()  # stored before the delete below: a failed delete must not lose the copy
        log.info("recording %s stored (%d s)", rec.recording_sid, rec.duration_s or 0)
    if settings.recordings_delete_remote and settings.twilio_rest_enabled and rec.remote_deleted_at is None:
        delete_recording(settings, rec.recording_sid)
        rec.remote_deleted_at = utcnow()
        s.commit()


def audio_url(settings: Settings, rec: Recording) -> str:
    """RecordingUrl + ".wav", only on a host we trust with the account's credentials."""
    return trusted_url(settings, rec.remote_url or "")


def trusted_url(settings: Settings, url: str) -> str:
    """A RecordingUrl (+ ".wav") on a host we trust with the account's credentials, else SendError.

    The URL came in a signed webhook, but basic auth with our Twilio token must still go nowhere
    else: Twilio's API, the configured API base (tests, staging), or our own simulator.
    """
    url = url.strip()
    trusted = {"api.twilio.com", urlsplit(settings.public_base_url).netloc}
    if settings.twilio_api_base_url:
        trusted.add(urlsplit(settings.twilio_api_base_url).netloc)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.netloc not in trusted:
        raise SendError(f"recording URL host {parts.netloc!r} is not Twilio's or ours", transient=False)
    return url if url.endswith((".wav", ".mp3")) else url + AUDIO_FORMAT


def store(settings: Settings, rec: Recording, audio: bytes) -> None:
    """Encrypt and write atomically (temporary file, then rename), readable by our user only."""
    folder = settings.recordings_path
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{rec.recording_sid}.fernet"
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(_fernet(settings).encrypt(audio))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(folder / name)
    rec.storage_path, rec.sha256 = name, hashlib.sha256(audio).hexdigest()
    rec.status, rec.fetched_at = "stored", utcnow()


def decrypt(settings: Settings, recording: Recording) -> bytes:
    """The recording's audio, decrypted and checked against the stored SHA-256."""
    if recording.status != "stored" or not recording.storage_path:
        raise RecordingUnavailable(f"recording {recording.recording_sid} is {recording.status}")
    path = Path(recording.storage_path)
    path = path if path.is_absolute() else settings.recordings_path / path
    try:
        audio = _fernet(settings).decrypt(path.read_bytes())
    except FileNotFoundError:
        raise RecordingUnavailable(f"recording {recording.recording_sid}: file missing") from None
    except InvalidToken:  # a different key, or the file was altered
        raise RecordingUnavailable(f"recording {recording.recording_sid}: cannot decrypt") from None
    if hashlib.sha256(audio).hexdigest() != recording.sha256:
        raise RecordingUnavailable(f"recording {recording.recording_sid}: checksum mismatch")
    return audio


def _fernet(settings: Settings) -> MultiFernet:
    """The newest key encrypts, any key decrypts (hotline.crypto; `hotline keys rotate`)."""
    if not settings.data_keys:
        raise SendError("DATA_KEY / RECORDING_KEY is not set: recordings cannot be stored", transient=False)
    return keyring(settings.data_keys)
