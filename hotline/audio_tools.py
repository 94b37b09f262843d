"""Prompt audio: placeholders generated offline, staff recordings imported, and the manifest.

Delivery format: mono MP3, 16 kHz, 32 kbps (telephone audio; small files Twilio fetches quickly).
ffmpeg comes from the `imageio-ffmpeg` wheel, so a fresh machine needs no system install. pydub
needs ffprobe for anything but WAV and that is not shipped, so every input is first decoded to WAV
with ffmpeg and only then handled by pydub.

audio/manifest.json records, per language and audio name: status (recorded | placeholder),
duration in seconds, sha256 of the MP3, where it came from, and when.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.menus.schema import Script

if TYPE_CHECKING:
    from pydub import AudioSegment

AUDIO_DIR = Path(__file__).resolve().parent.parent / "audio"
MANIFEST = "manifest.json"
FORMAT = {"codec": "mp3", "channels": 1, "sample_rate": 16000, "bitrate": "32k"}
IMPORTABLE = (".wav", ".mp3", ".m4a", ".ogg")
TARGET_DBFS = -18.0  # average loudness after normalising
PEAK_CEILING_DBFS = -1.0
SILENT_PEAK_DBFS = -45.0  # a file whose loudest moment is quieter than this has no usable speech
CLIPPED_SHARE = 0.001  # more than 0.1% of samples at full scale: the recording is distorted
ESPEAK_VOICES = {"en": "en", "th": "th"}  # espeak-ng has no Khmer voice


class AudioError(Exception):
    """A file that must not be used, with the reason a person can act on."""


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _segment_cls() -> type[AudioSegment]:
    with warnings.catch_warnings():  # pydub warns at import when ffmpeg is not on PATH (set below),
        warnings.simplefilter("ignore", RuntimeWarning)  # and Python 3.12 warns about its use of audioop
        warnings.simplefilter("ignore", DeprecationWarning)
        from pydub import AudioSegment
        from pydub.silence import detect_leading_silence  # noqa: F401  (imported here, under the filter)
    AudioSegment.converter = ffmpeg()
    return AudioSegment


def _run_ffmpeg(*args: str) -> None:
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AudioError(f"ffmpeg could not read or write it: {proc.stderr.strip()[-300:]}")


def decode(src: Path, tmp: Path) -> AudioSegment:
    """Any input ffmpeg reads -> a mono 16-bit pydub segment (via WAV: no ffprobe needed)."""
    wav = tmp / (src.stem + ".decoded.wav")
    _run_ffmpeg("-i", str(src), "-vn", "-ac", "1", "-c:a", "pcm_s16le", str(wav))
    return _segment_cls().from_wav(str(wav))


def encode(seg: AudioSegment, dst: Path, tmp: Path) -> None:
    wav = tmp / (dst.stem + ".out.wav")
    seg.export(str(wav), format="wav")
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_suffix(".part.mp3")
    _run_ffmpeg("-i", str(wav), "-ac", "1", "-ar", str(FORMAT["sample_rate"]), "-c:a", "libmp3lame",
                "-b:a", str(FORMAT["bitrate"]), str(part))
    part.replace(dst)


def check_usable(seg: AudioSegment) -> None:
    """Refuse silent, too short or clipped recordings, saying why."""
    if len(seg) < 300:
        raise AudioError(f"too short ({len(seg)} ms): record the whole prompt")
    if seg.max_dBFS < SILENT_PEAK_DBFS:
        raise AudioError(f"silent: the loudest moment is {seg.max_dBFS:.0f} dBFS; record again, closer to the phone")
    samples = seg.get_array_of_samples()
    full = (1 << (8 * seg.sample_width - 1)) - 1
    clipped = sum(1 for x in samples if abs(x) >= full - 1)
    if clipped / max(len(samples), 1) > CLIPPED_SHARE:
        raise AudioError(f"clipped: {100 * clipped / len(samples):.1f}% of the sound is at full volume, so it "
                         "will sound distorted; record again a little further from the phone")


def trim_and_normalise(seg: AudioSegment) -> AudioSegment:
    """Cut leading and trailing silence (keeping a little air) and bring loudness to the target."""
    from pydub.silence import detect_leading_silence

    threshold = max(seg.max_dBFS - 35, -55)
    lead = detect_leading_silence(seg, silence_threshold=threshold, chunk_size=10)
    trail = detect_leading_silence(seg.reverse(), silence_threshold=threshold, chunk_size=10)
    pad = 150
    seg = seg[max(lead - pad, 0):max(len(seg) - trail + pad, lead + 1)]
    gain = min(TARGET_DBFS - seg.dBFS, PEAK_CEILING_DBFS - seg.max_dBFS)
    return seg.apply_gain(gain)


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


def _entry(path: Path, seg: AudioSegment, status: str, source: str) -> dict[str, Any]:
    return {"status": status, "duration": round(len(seg) / 1000, 2),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "source": source,
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
                seg = trim_and_normalise(decode(wav, tmp))
                encode(seg, dst, tmp)
                entries[name] = _entry(dst, seg, "placeholder", f"espeak-ng ({ESPEAK_VOICES.get(lang, 'en')})")
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
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for path in files:
            if path.stem not in known:
                report.refused.append((path.name, f"'{path.stem}' is not an audio name in the script; "
                                                  "name the file after the prompt, e.g. main_menu.m4a"))
                continue
            try:
                seg = decode(path, tmp)
                check_usable(seg)
                seg = trim_and_normalise(seg)
                dst = audio_dir / lang / f"{path.stem}.mp3"
                encode(seg, dst, tmp)
            except AudioError as exc:
                report.refused.append((path.name, str(exc)))
                continue
            manifest["prompts"].setdefault(lang, {})[path.stem] = _entry(dst, seg, "recorded", path.name)
            report.imported.append((path.stem, round(len(seg) / 1000, 2)))
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
