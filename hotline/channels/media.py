"""Recorded prompts as chat voice: the phone menu's MP3s converted per platform, cached, served signed.

Formats (`FORMATS`): OGG/Opus for Telegram (shown as a voice note with a waveform), M4A (AAC) for
LINE (which wants `duration` in ms beside an HTTPS URL), MP3 for Messenger's audio attachment. A
topic of two parts becomes one file. ffmpeg is the binary the `imageio-ffmpeg` wheel ships (the
one hotline.audio_tools uses), so no system install is needed.

Cache: `<instance>/channel_media/<key>.<ext>`, where the key is the SHA-256 of the format and of
every source file's bytes: a re-recorded prompt gets a new key, an unchanged one is converted once
per process lifetime of the folder. Files are written to a temporary name and renamed, so two
workers converting the same prompt at once both end with a whole file.

Serving: `/channels/media/<token>`; the token names only the cache key and format (no person, no
message), is signed with SECRET_KEY and expires after `URL_MAX_AGE`. Platforms that fetch audio
(LINE, Messenger) get that URL; Telegram gets an upload.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from hotline.channels import Voice
from hotline.settings import Settings

log = logging.getLogger(__name__)
AUDIO_DIR = Path(__file__).resolve().parent.parent.parent / "audio"
URL_MAX_AGE = 7 * 86400  # a LINE or Messenger message may be fetched again days later
_SALT = "hotline.channels.media"
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


@dataclass(frozen=True)
class Format:
    ext: str
    mime: str
    codec_args: tuple[str, ...]


FORMATS: dict[str, Format] = {
    "ogg": Format("ogg", "audio/ogg", ("-c:a", "libopus", "-b:a", "24k", "-ar", "48000", "-application", "voip")),
    "m4a": Format("m4a", "audio/mp4", ("-c:a", "aac", "-b:a", "48k", "-ar", "44100", "-movflags", "+faststart")),
    "mp3": Format("mp3", "audio/mpeg", ("-c:a", "libmp3lame", "-b:a", "48k", "-ar", "44100")),
}


class MediaError(Exception):
    """A prompt that cannot be converted (missing file, ffmpeg failure)."""


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def cache_dir(settings: Settings) -> Path:
    return settings.instance_path / "channel_media"


def prompt_files(language: str, parts: tuple[str, ...] | list[str], audio_dir: Path = AUDIO_DIR) -> list[Path]:
    """The MP3 of each part that exists (a missing one is left out, and logged)."""
    files = []
    for name in parts:
        path = audio_dir / language / f"{name}.mp3"
        if "/" in name or name.startswith(".") or not path.is_file():
            log.warning("prompt audio %s/%s is missing; left out of the chat voice message", language, name)
            continue
        files.append(path)
    return files


def prompt_voice(settings: Settings, language: str, parts: tuple[str, ...] | list[str], fmt: str, *,
                 audio_dir: Path = AUDIO_DIR) -> Voice | None:
    """The prompt parts as one file in `fmt`, converted once and cached; None when none exists."""
    files = prompt_files(language, parts, audio_dir)
    if not files:
        return None
    return convert(settings, files, fmt)


def convert(settings: Settings, sources: list[Path], fmt: str) -> Voice:
    spec = FORMATS[fmt]
    digest = hashlib.sha256(fmt.encode())
    for src in sources:
        digest.update(hashlib.sha256(src.read_bytes()).digest())
    key = digest.hexdigest()[:40]
    folder = cache_dir(settings)
    out = folder / f"{key}.{spec.ext}"
    meta = folder / f"{key}.json"
    if not (out.is_file() and meta.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        duration_ms = _convert(sources, out, spec)
        _write_atomic(meta, json.dumps({"duration_ms": duration_ms, "sources": [s.name for s in sources]}).encode())
    info = json.loads(meta.read_text())
    return Voice(path=out, url=media_url(settings, out.name), mime=spec.mime, duration_ms=int(info["duration_ms"]),
                 sha256=hashlib.sha256(out.read_bytes()).hexdigest())


def _convert(sources: list[Path], out: Path, spec: Format) -> int:
    inputs: list[str] = []
    for src in sources:
        inputs += ["-i", str(src)]
    graph = "".join(f"[{i}:a]" for i in range(len(sources))) + f"concat=n={len(sources)}:v=0:a=1[a]"
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}-", suffix=f".{spec.ext}")
    os.close(fd)
    try:
        proc = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-y", *inputs, "-filter_complex", graph,
                               "-map", "[a]", "-ac", "1", *spec.codec_args, "-f", _muxer(spec), tmp],
                              capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise MediaError(f"ffmpeg could not convert the prompt: {proc.stderr.strip()[-300:]}")
        duration_ms = duration_of(Path(tmp))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return duration_ms


def _muxer(spec: Format) -> str:
    return {"ogg": "ogg", "m4a": "ipod", "mp3": "mp3"}[spec.ext]


def duration_of(path: Path) -> int:
    """Milliseconds, read from ffmpeg's own report of the file (no ffprobe is shipped)."""
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, check=False, timeout=60)
    times = re.findall(r"time=(\d+):(\d\d):(\d\d(?:\.\d+)?)", proc.stderr)
    found = times[-1] if times else None
    if found is None:
        m = _DURATION.search(proc.stderr)
        found = m.groups() if m else None
    if found is None:
        raise MediaError(f"no duration for {path.name}")
    h, m_, s = found
    return int((int(h) * 3600 + int(m_) * 60 + float(s)) * 1000)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# -- signed URLs ------------------------------------------------------------------------------------

def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def media_url(settings: Settings, name: str) -> str:
    token = _signer(settings).dumps(name)
    return f"{settings.public_base_url}/channels/media/{token}"


def resolve(settings: Settings, token: str, *, max_age: int = URL_MAX_AGE) -> tuple[Path, str] | None:
    """The cached file and its MIME type for a signed token; None when forged, expired or gone."""
    try:
        name = _signer(settings).loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        return None
    ext = name.rpartition(".")[2]
    spec = FORMATS.get(ext)
    path = cache_dir(settings) / name
    if spec is None or not path.is_file():
        return None
    return path, spec.mime
