"""Prompt audio: one pipeline for every take (browser, phone, `hotline audio import`), placeholders, the manifest.

Delivery format: mono MP3, 16 kHz, 32 kbps (telephone audio; small files Twilio fetches quickly).
ffmpeg comes from the `imageio-ffmpeg` wheel, so a fresh machine needs no system install.

`process(src, dst)` is the pipeline: refuse what must not reach a caller (an empty file, one ffmpeg
cannot read as sound, longer than MAX_SECONDS, too short, silent, clipped), then cut leading and
trailing silence, then normalise loudness with ffmpeg's `loudnorm` (EBU R128) in two passes: the
first measures, the second applies one linear gain from those measurements, so speech keeps its
natural dynamics (single-pass loudnorm compresses dynamically). Loudness is judged as listeners
hear it (LUFS, K-weighted), not as average dBFS, so a whispered and a shouted take end up alike.

audio/manifest.json records, per language and audio name: status (recorded | placeholder),
duration in seconds, sha256 of the MP3, where it came from, and when.
"""

from __future__ import annotations

import array
import hashlib
import json
import math
import re
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotline.menus.schema import Script

AUDIO_DIR = Path(__file__).resolve().parent.parent / "audio"
MANIFEST = "manifest.json"
FORMAT = {"codec": "mp3", "channels": 1, "sample_rate": 16000, "bitrate": "32k"}
IMPORTABLE = (".wav", ".mp3", ".m4a", ".ogg", ".opus", ".webm", ".aac", ".flac", ".amr", ".3gp", ".mp4")
ANALYSIS_RATE = 16000  # telephone band: analysing at the delivery rate keeps a 3-minute take small
MAX_SECONDS = 180  # the longest prompt (a message part) runs ~90 s in Khmer; 3 min leaves room
MIN_MS = 300
LOUDNESS = {"I": -19.0, "TP": -2.0, "LRA": 11.0}  # mono speech (-16 LUFS stereo equivalent), peaks <= -2 dBTP
SILENT_PEAK_DBFS = -45.0  # a file whose loudest moment is quieter than this has no usable speech
CLIPPED_SHARE = 0.001  # more than 0.1% of samples at full scale: the recording is distorted
PAD_MS = 150  # air kept before and after the speech
ESPEAK_VOICES = {"en": "en", "th": "th"}  # espeak-ng has no Khmer voice


class AudioError(Exception):
    """A file that must not be used, with the reason a person can act on; `code` names the check."""

    def __init__(self, message: str, code: str = "unreadable"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Processed:
    """What the pipeline made: the delivery file and what was measured on the way."""

    path: Path
    seconds: float  # after trimming
    input_seconds: float
    input_lufs: float  # integrated loudness before normalising
    output_lufs: float
    peak_dbfs: float  # of the input
    sha256: str


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _run_ffmpeg(*args: str, level: str = "error") -> str:
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-v", level, "-y", *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AudioError(f"not audio: ffmpeg cannot read it as sound ({_last_line(proc.stderr)})", "not_audio")
    return proc.stderr


def _last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "no detail")[-200:]


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def _decode(src: Path, wav: Path, max_seconds: float) -> float:
    """Decode to mono 16-bit WAV at ANALYSIS_RATE, at most `max_seconds` + 1 s of it (a 20-minute
    file is never decoded whole); returns the input's own duration when ffmpeg can tell it."""
    if not src.exists() or src.stat().st_size == 0:
        raise AudioError("empty: the file has no content (0 bytes); choose the recording again", "empty")
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-y", "-i", str(src), "-map", "0:a:0?", "-vn",
                           "-ac", "1", "-ar", str(ANALYSIS_RATE), "-t", str(max_seconds + 1), "-c:a", "pcm_s16le",
                           "-f", "wav", str(wav)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AudioError(f"not audio: ffmpeg cannot read it as sound ({_last_line(proc.stderr)})", "not_audio")
    if not wav.exists() or wav.stat().st_size <= 44:
        raise AudioError("not audio: the file has no sound track", "not_audio")
    m = _DURATION.search(proc.stderr)
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else 0.0


def _samples(wav: Path) -> array.array[int]:
    with wave.open(str(wav), "rb") as w:
        data = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        data.byteswap()
    return data


def _peak_dbfs(samples: array.array[int]) -> float:
    peak = max(max(samples), -min(samples)) if samples else 0
    return 20 * math.log10(peak / 32768) if peak else -math.inf


def check_usable(samples: array.array[int], rate: int, input_seconds: float = 0.0,
                 max_seconds: float = MAX_SECONDS) -> float:
    """Refuse too long, too short, silent or clipped takes, saying why. Returns the input's peak (dBFS)."""
    seconds = len(samples) / rate
    if seconds > max_seconds:
        length = f" ({_clock(input_seconds)} long)" if input_seconds > max_seconds else ""
        raise AudioError(f"too long{length}: one prompt may last at most {_clock(max_seconds)}; "
                         "record or cut just this prompt", "too_long")
    if seconds * 1000 < MIN_MS:
        raise AudioError(f"too short ({seconds * 1000:.0f} ms): record the whole prompt", "too_short")
    peak = _peak_dbfs(samples)
    if peak < SILENT_PEAK_DBFS:
        loudest = "no sound at all" if peak == -math.inf else f"the loudest moment is {peak:.0f} dBFS"
        raise AudioError(f"silent: {loudest}; check the microphone and record again, closer to it", "silent")
    # Only a take that reaches full scale can be clipped; array.count runs in C for the rest.
    top, bottom = max(samples), min(samples)
    clipped = 0 if top < 32766 and bottom > -32767 else sum(samples.count(v) for v in (32767, 32766, -32768, -32767))
    if clipped / len(samples) > CLIPPED_SHARE:
        raise AudioError(f"clipped: {100 * clipped / len(samples):.1f}% of the sound is at full volume, so it "
                         "will sound distorted; record again a little further from the microphone", "clipped")
    return peak


def _speech_bounds(samples: array.array[int], rate: int, peak_dbfs: float) -> tuple[int, int]:
    """Sample range from the first to the last 10 ms window louder than 35 dB under the peak (at
    least -55 dBFS), with PAD_MS of air each side: leading and trailing silence cut."""
    threshold = 32768 * 10 ** (max(peak_dbfs - 35, -55) / 20)
    win = rate // 100
    loud = []
    for i in range(len(samples) // win):
        chunk = samples[i * win:(i + 1) * win]
        if max(chunk) > threshold or -min(chunk) > threshold:
            loud.append(i)
    if not loud:
        return 0, len(samples)
    pad = rate * PAD_MS // 1000
    return max(loud[0] * win - pad, 0), min((loud[-1] + 1) * win + pad, len(samples))


def _measure(wav: Path, start: float, end: float) -> dict[str, float]:
    """loudnorm's first pass over the speech: integrated loudness, true peak, range, threshold."""
    target = ":".join(f"{k}={v}" for k, v in LOUDNESS.items())
    stderr = _run_ffmpeg("-ss", f"{start:.3f}", "-to", f"{end:.3f}", "-i", str(wav),
                         "-af", f"loudnorm={target}:print_format=json", "-f", "null", "-", level="info")
    stats = json.loads(stderr[stderr.rindex("{"):stderr.rindex("}") + 1])
    return {k: float(stats[k]) for k in ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")}


def process(src: Path, dst: Path, *, max_seconds: float = MAX_SECONDS, check: bool = True) -> Processed:
    """The pipeline: any file ffmpeg reads -> a checked, trimmed, loudness-normalised telephone MP3 at `dst`.

    Raises AudioError (nothing is written to `dst`) for a take that must not be used.
    `check=False` skips the refusals (placeholders made here by espeak-ng).
    """
    max_seconds = max_seconds if check else 3600
    with tempfile.TemporaryDirectory() as t:
        wav = Path(t) / "decoded.wav"
        input_seconds = _decode(Path(src), wav, max_seconds)
        samples = _samples(wav)
        peak = check_usable(samples, ANALYSIS_RATE, input_seconds, max_seconds) if check else _peak_dbfs(samples)
        first, last = _speech_bounds(samples, ANALYSIS_RATE, peak)
        start, end = first / ANALYSIS_RATE, last / ANALYSIS_RATE
        m = _measure(wav, start, end)
        target = ":".join(f"{k}={v}" for k, v in LOUDNESS.items())
        # Second pass: the measured values make loudnorm apply one linear gain (it falls back to its
        # dynamic mode only when that gain would push the true peak over TP).
        second = (f"loudnorm={target}:measured_I={m['input_i']}:measured_TP={m['input_tp']}:"
                  f"measured_LRA={m['input_lra']}:measured_thresh={m['input_thresh']}:"
                  f"offset={m['target_offset']}:linear=true:print_format=json")
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        part = dst.with_name(f".{dst.stem}.part.mp3")
        stderr = _run_ffmpeg("-ss", f"{start:.3f}", "-to", f"{end:.3f}", "-i", str(wav), "-af", second,
                             "-ac", "1", "-ar", str(FORMAT["sample_rate"]), "-c:a", "libmp3lame",
                             "-b:a", str(FORMAT["bitrate"]), str(part), level="info")
        out = json.loads(stderr[stderr.rindex("{"):stderr.rindex("}") + 1])
        part.replace(dst)
    return Processed(path=dst, seconds=round(end - start, 2), input_seconds=round(input_seconds or len(samples)
                     / ANALYSIS_RATE, 2), input_lufs=m["input_i"], output_lufs=float(out["output_i"]),
                     peak_dbfs=round(peak, 1), sha256=hashlib.sha256(dst.read_bytes()).hexdigest())


def duration_of(path: Path) -> float:
    """Seconds of audio in a file ffmpeg reads (for the matrix and tests)."""
    with tempfile.TemporaryDirectory() as t:
        wav = Path(t) / "d.wav"
        _decode(Path(path), wav, 24 * 3600)
        with wave.open(str(wav), "rb") as w:
            return w.getnframes() / w.getframerate()


# -- manifest -------------------------------------------------------------------------------------

def load_manifest(audio_dir: Path) -> dict[str, Any]:
    path = audio_dir / MANIFEST
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.setdefault("format", FORMAT)
    data.setdefault("prompts", {})
    return data


def save_manifest(audio_dir: Path, data: dict[str, Any]) -> None:
    data["prompts"] = {lang: dict(sorted(v.items())) for lang, v in sorted(data["prompts"].items())}
    tmp = audio_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(audio_dir / MANIFEST)


def _entry(made: Processed, status: str, source: str) -> dict[str, Any]:
    return {"status": status, "duration": made.seconds, "sha256": made.sha256, "source": source,
            "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


# -- placeholders -----------------------------------------------------------------------------------

def _speak(text: str, voice: str, wav: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True, capture_output=True)


def placeholders(script: Script, audio_dir: Path = AUDIO_DIR, *, force: bool = False) -> list[str]:
    """Generate a placeholder for every prompt that has no file yet (never over a real recording).

    en and th are spoken by espeak-ng from the script's text; for km there is no voice, so an English
    voice says the prompt's name and that a Khmer recording is needed. Returns "lang/name" written.
    """
    manifest = load_manifest(audio_dir)
    texts = script.texts_by_audio()
    written = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for lang, names in sorted(script.audio_names().items()):
            entries = manifest["prompts"].setdefault(lang, {})
            for name in sorted(names):
                dst = audio_dir / lang / f"{name}.mp3"
                entry = entries.get(name, {})
                if entry.get("status") == "recorded" or (dst.exists() and entry and not force):
                    continue
                wav = tmp / f"{lang}-{name}.wav"
                if lang in ESPEAK_VOICES:
                    _speak(texts[(lang, name)], ESPEAK_VOICES[lang], wav)
                else:
                    _speak(f"Placeholder: {name.replace('_', ' ')}. {_language_name(lang)} recording needed.",
                           "en", wav)
                made = process(wav, dst, check=False)
                entries[name] = _entry(made, "placeholder", f"espeak-ng ({ESPEAK_VOICES.get(lang, 'en')})")
                written.append(f"{lang}/{name}")
    save_manifest(audio_dir, manifest)
    return written


def _language_name(lang: str) -> str:
    return {"km": "Khmer", "th": "Thai", "en": "English"}.get(lang, lang)


# -- import ---------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    imported: list[tuple[str, float]] = field(default_factory=list)  # (name, seconds)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def import_dir(src: Path, lang: str, script: Script, audio_dir: Path = AUDIO_DIR) -> ImportReport:
    """Import staff recordings named after the prompts' audio names (e.g. main_menu.m4a)."""
    if lang not in script.languages:
        raise AudioError(f"{lang!r} is not a language of the script ({', '.join(script.languages)})")
    known = script.audio_names()[lang]
    manifest = load_manifest(audio_dir)
    report = ImportReport()
    files = sorted(p for p in Path(src).iterdir() if p.is_file() and p.suffix.lower() in IMPORTABLE)
    for path in files:
        if path.stem not in known:
            report.refused.append((path.name, f"'{path.stem}' is not an audio name in the script; "
                                              "name the file after the prompt, e.g. main_menu.m4a"))
            continue
        try:
            made = process(path, audio_dir / lang / f"{path.stem}.mp3")
        except AudioError as exc:
            report.refused.append((path.name, str(exc)))
            continue
        manifest["prompts"].setdefault(lang, {})[path.stem] = _entry(made, "recorded", path.name)
        report.imported.append((path.stem, made.seconds))
    save_manifest(audio_dir, manifest)
    return report


# -- the matrix -------------------------------------------------------------------------------------

def matrix(script: Script, audio_dir: Path = AUDIO_DIR) -> list[tuple[str, dict[str, tuple[str, float | None]]]]:
    """(audio name, {lang: (recorded | placeholder | missing | unlisted, seconds)}) for every prompt."""
    manifest = load_manifest(audio_dir)["prompts"]
    names = sorted(set().union(*script.audio_names().values()))
    rows = []
    for name in names:
        cells: dict[str, tuple[str, float | None]] = {}
        for lang in script.languages:
            entry = manifest.get(lang, {}).get(name)
            if not (audio_dir / lang / f"{name}.mp3").exists():
                cells[lang] = ("missing", None)
            elif entry is None:
                cells[lang] = ("unlisted", None)
            else:
                cells[lang] = (str(entry["status"]), entry.get("duration"))
        rows.append((name, cells))
    return rows


def format_matrix(script: Script, rows: list[tuple[str, dict[str, tuple[str, float | None]]]]) -> str:
    width = max(len(n) for n, _ in rows) if rows else 10
    head = "prompt".ljust(width) + "".join(f"  {lang:<18}" for lang in script.languages)
    lines = [head, "-" * len(head)]
    totals: dict[str, int] = {}
    for name, cells in rows:
        line = name.ljust(width)
        for lang in script.languages:
            status, secs = cells[lang]
            totals[status] = totals.get(status, 0) + 1
            line += f"  {status + (f' {secs:.1f}s' if secs is not None else ''):<18}"
        lines.append(line)
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in sorted(totals.items())))
    return "\n".join(lines)
