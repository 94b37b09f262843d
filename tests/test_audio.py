"""Prompt audio: the shipped set and manifest, and importing staff recordings (files made here)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import struct
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.audio_tools import FORMAT, LOUDNESS, AudioError, import_dir, load_manifest
from hotline.cli import cli
from hotline.menus.loader import load_script
from tests.test_audio_pipeline import loudness

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = load_script(ROOT / "ivr_scripts" / "voice")


def write_wav(path: Path, samples: list[float], rate: int = 44100) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", max(-32768, min(32767, int(s * 32767)))) for s in samples))
    return path


def tone(seconds: float, amp: float, rate: int = 44100, lead: float = 0.0, trail: float = 0.0) -> list[float]:
    wave_ = [amp * math.sin(2 * math.pi * 440 * i / rate) for i in range(int(seconds * rate))]
    return [0.0] * int(lead * rate) + wave_ + [0.0] * int(trail * rate)


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    target = tmp_path / "audio"
    target.mkdir()
    shutil.copy(ROOT / "audio" / "manifest.json", target / "manifest.json")
    return target


def test_shipped_manifest_lists_every_file_as_placeholder_with_matching_checksum() -> None:
    manifest = load_manifest(ROOT / "audio")
    assert manifest["format"] == FORMAT
    for lang, names in SCRIPT.audio_names().items():
        for name in names:
            entry = manifest["prompts"][lang][name]
            data = (ROOT / "audio" / lang / f"{name}.mp3").read_bytes()
            assert entry["status"] in ("placeholder", "recorded")
            assert entry["sha256"] == hashlib.sha256(data).hexdigest(), f"{lang}/{name}"
            assert data[:3] == b"ID3" or data[0] == 0xFF  # an MP3, not a WAV named .mp3
    assert sum(p.stat().st_size for p in (ROOT / "audio").rglob("*.mp3")) < 6_000_000


def test_import_trims_normalises_and_records_duration_and_checksum(tmp_path: Path, audio_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_wav(src / "goodbye.wav", tone(1.0, 0.05, lead=1.0, trail=1.5))
    report = import_dir(src, "km", SCRIPT, audio_dir)
    assert report.refused == []
    (name, secs), = report.imported
    assert name == "goodbye" and 1.0 <= secs <= 1.4  # 1 s of tone, silence trimmed to a little air
    out = audio_dir / "km" / "goodbye.mp3"
    entry = json.loads((audio_dir / "manifest.json").read_text())["prompts"]["km"]["goodbye"]
    assert (entry["status"], entry["duration"], entry["source"]) == ("recorded", secs, "goodbye.wav")
    assert entry["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    import subprocess

    from hotline.audio_tools import ffmpeg

    info = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    assert "16000 Hz, mono" in info
    assert abs(loudness(out) - LOUDNESS["I"]) < 1.5  # EBU R128 loudness, from a quiet -29 dBFS tone


OUTBOUND = ("outbound_greeting", "outbound_safe_check", "outbound_connecting", "outbound_goodbye", "outbound_sorry",
            "staff_whisper")


@pytest.mark.parametrize("lang", ["km", "th", "en"])
def test_the_prompts_of_calls_we_place_are_in_the_matrix_and_importable(tmp_path: Path, audio_dir: Path,
                                                                       lang: str) -> None:
    assert set(OUTBOUND) <= SCRIPT.audio_names()[lang]
    src = tmp_path / "in"
    src.mkdir()
    for name in OUTBOUND:
        write_wav(src / f"{name}.wav", tone(0.8, 0.2))
    report = import_dir(src, lang, SCRIPT, audio_dir)
    assert report.refused == [] and sorted(n for n, _ in report.imported) == sorted(OUTBOUND)


def test_import_refuses_silent_clipped_and_unknown_files_with_reasons(tmp_path: Path, audio_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_wav(src / "main_menu.wav", [0.0] * 44100)
    write_wav(src / "key_not_used.wav", [1.0 if (i // 50) % 2 else -1.0 for i in range(44100)])
    write_wav(src / "hello_there.wav", tone(1.0, 0.3))
    report = import_dir(src, "km", SCRIPT, audio_dir)
    reasons = dict(report.refused)
    assert report.imported == []
    assert reasons["main_menu.wav"].startswith("silent:")
    assert reasons["key_not_used.wav"].startswith("clipped:")
    assert reasons["hello_there.wav"].startswith("'hello_there' is not an audio name in the script")
    assert not (audio_dir / "km").exists()


def test_import_reads_phone_formats_via_ffmpeg(tmp_path: Path, audio_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    from hotline.audio_tools import _run_ffmpeg

    wav = write_wav(tmp_path / "t.wav", tone(0.8, 0.3))
    _run_ffmpeg("-i", str(wav), "-c:a", "aac", str(src / "goodbye.m4a"))
    _run_ffmpeg("-i", str(wav), "-c:a", "libmp3lame", str(src / "system_error.mp3"))
    report = import_dir(src, "th", SCRIPT, audio_dir)
    assert sorted(n for n, _ in report.imported) == ["goodbye", "system_error"], report.refused


def test_import_of_an_unknown_language_is_refused(tmp_path: Path, audio_dir: Path) -> None:
    with pytest.raises(AudioError, match="'lo' is not a language of the script"):
        import_dir(tmp_path, "lo", SCRIPT, audio_dir)


def test_unreadable_file_is_refused_not_crashing(tmp_path: Path, audio_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "goodbye.ogg").write_bytes(b"not audio at all")
    report = import_dir(src, "km", SCRIPT, audio_dir)
    assert report.refused[0][0] == "goodbye.ogg" and report.refused[0][1].startswith("not audio: ffmpeg cannot read")


def test_audio_import_command_reports_and_fails_on_refusals(tmp_path: Path, audio_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_wav(src / "goodbye.wav", tone(0.6, 0.3))
    write_wav(src / "main_menu.wav", [0.0] * 22050)
    result = CliRunner().invoke(cli, ["audio", "import", str(src), "--lang", "km",
                                                      "--audio-dir", str(audio_dir)])
    assert result.exit_code == 1
    assert "imported km/goodbye.mp3" in result.stdout and "1 imported, 1 refused" in result.stdout
    assert "refused main_menu.wav: silent:" in result.stderr


def test_audio_check_prints_the_matrix(tmp_path: Path, audio_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_wav(src / "goodbye.wav", tone(0.6, 0.3))
    import_dir(src, "km", SCRIPT, audio_dir)
    result = CliRunner().invoke(cli, ["audio", "check", "--audio-dir", str(audio_dir)])
    assert result.exit_code == 1  # everything else is missing in this folder
    line = next(ln for ln in result.output.splitlines() if ln.startswith("goodbye "))
    assert line.split()[:3] == ["goodbye", "recorded", line.split()[2]] and "missing" in line
    shipped = CliRunner().invoke(cli, ["audio", "check"])
    assert shipped.exit_code == 0, shipped.output
    assert shipped.output.rstrip().endswith("129 placeholder")


def test_audio_import_into_the_draft_uses_the_pipeline_and_review(tmp_path: Path, settings, db) -> None:
    from hotline.services import content
    from tests.test_accounts import env_for

    src = tmp_path / "in"
    src.mkdir()
    write_wav(src / "goodbye.wav", tone(1.0, 0.05, lead=1.0, trail=1.0))
    write_wav(src / "main_menu.wav", [0.0] * 22050)
    write_wav(src / "no_such_prompt.wav", tone(0.6, 0.3))
    result = CliRunner().invoke(cli, ["audio", "import", str(src), "--lang", "km", "--draft"], env=env_for(settings))
    assert result.exit_code == 1
    assert "imported km/goodbye.mp3" in result.stdout and "into the draft" in result.stdout
    assert "refused main_menu.wav: silent:" in result.stderr
    assert "refused no_such_prompt.wav: 'no_such_prompt' is not a prompt" in result.stderr
    db.expire_all()
    take = content.cell(db, "goodbye", "km").take
    assert take is not None and take.source == "import" and str(take.review) == "needs_review"
    assert content.cell(db, "main_menu", "km").take is None
    assert content.store_for(settings).exists(take.sha256)
    starter = hashlib.sha256((ROOT / "audio" / "km" / "goodbye.mp3").read_bytes()).hexdigest()
    assert starter == load_manifest(ROOT / "audio")["prompts"]["km"]["goodbye"]["sha256"] != take.sha256
