"""Recordings the simulated caller leaves, kept as WAV and served like Twilio's recording URLs.

A browser records webm/ogg; Twilio hands out 8 kHz mono WAV (and MP3 when ".mp3" is appended),
so what arrives is converted with the ffmpeg that ships in the imageio-ffmpeg wheel.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import tempfile
import time
import wave
from pathlib import Path

from hotline.simclient.phone import Recording

SAMPLE_WAV = Path(__file__).resolve().parent.parent / "static" / "simulator" / "sample.wav"
KEEP_SECONDS = 24 * 3600
SID_RE = re.compile(r"^RE[0-9a-f]{32}$")


class RecordingError(Exception):
    pass


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _convert(src: Path, dst: Path, *args: str) -> None:
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), *args, str(dst)],
                          capture_output=True, timeout=60, check=False)
    if proc.returncode != 0 or not dst.exists():
        raise RecordingError(f"ffmpeg could not convert the recording: {proc.stderr.decode(errors='replace')[-300:]}")


def wav_seconds(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        return max(1, round(w.getnframes() / float(w.getframerate())))


class RecordingStore:
    """A folder of RE<sid>.wav files; `url_base` is where the app serves them."""

    def __init__(self, folder: Path, url_base: str):
        self.folder = folder
        self.url_base = url_base.rstrip("/")

    def path(self, sid: str, ext: str = "wav") -> Path | None:
        if not SID_RE.match(sid) or ext not in ("wav", "mp3"):
            return None
        wav = self.folder / f"{sid}.wav"
        if not wav.exists():
            return None
        if ext == "mp3":
            mp3 = self.folder / f"{sid}.mp3"
            if not mp3.exists():
                _convert(wav, mp3, "-codec:a", "libmp3lame", "-b:a", "32k")
            return mp3
        return wav

    def add(self, data: bytes, suffix: str = ".webm") -> Recording:
        """Store any audio ffmpeg can read (webm/ogg from a browser, a WAV file) as 8 kHz mono WAV."""
        if not data:
            raise RecordingError("the recording is empty")
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.prune()
        sid = "RE" + secrets.token_hex(16)
        target = self.folder / f"{sid}.wav"
        with tempfile.NamedTemporaryFile(suffix=suffix, dir=self.folder) as tmp:
            tmp.write(data)
            tmp.flush()
            _convert(Path(tmp.name), target, "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le")
        return Recording(sid, f"{self.url_base}/{sid}", wav_seconds(target))

    def prune(self, max_age_s: float = KEEP_SECONDS) -> None:
        """Simulated recordings are test material: they are not kept beyond a day."""
        cutoff = time.time() - max_age_s
        for path in self.folder.glob("RE*.*"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def add_sample(self) -> Recording:
        return self.add(SAMPLE_WAV.read_bytes(), ".wav")
