"""The one audio pipeline (browser, phone, `hotline audio import`): inputs generated with ffmpeg's lavfi sources."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from hotline.audio_tools import LOUDNESS, MAX_SECONDS, AudioError, duration_of, ffmpeg, process


def make(path: Path, source: str, *args: str) -> Path:
    """Write `path` from a lavfi source expression (e.g. "sine=f=440:d=2"), extra output args after."""
    subprocess.run([ffmpeg(), "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", source, *args, str(path)],
                   check=True)
    return path


def speech_like(path: Path, seconds: float = 2.0, volume: float = 0.3, lead: float = 0.0, trail: float = 0.0,
                *args: str) -> Path:
    """A 220 Hz tone swelling 4 times a second (a syllable rhythm), with silence before and after."""
    expr = f"{volume}*sin(2*PI*220*t)*(0.55+0.45*sin(2*PI*4*t))"
    pad = f"adelay={int(lead * 1000)},apad=pad_dur={trail}"
    return make(path, f"aevalsrc='{expr}':s=44100:d={seconds}", "-af", pad, *args)


def loudness(path: Path) -> float:
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path), "-af",
                           "loudnorm=print_format=json", "-f", "null", "-"], capture_output=True, text=True)
    return float(json.loads(proc.stderr[proc.stderr.rindex("{"):proc.stderr.rindex("}") + 1])["input_i"])


def refusal(src: Path, tmp_path: Path) -> AudioError:
    dst = tmp_path / "out" / "x.mp3"
    with pytest.raises(AudioError) as info:
        process(src, dst)
    assert not dst.exists() and not list(dst.parent.glob("*")) if dst.parent.exists() else True
    return info.value


def test_a_quiet_take_is_trimmed_to_the_speech_and_brought_to_the_loudness_target(tmp_path: Path) -> None:
    src = speech_like(tmp_path / "quiet.wav", 2.0, 0.02, lead=1.5, trail=2.0)
    made = process(src, tmp_path / "out.mp3")
    assert made.input_seconds == pytest.approx(5.5, abs=0.1)
    assert 2.0 <= made.seconds <= 2.4  # 2 s of "speech" and 150 ms of air each side
    assert made.input_lufs < -40  # what was measured before: a quiet take
    assert abs(loudness(made.path) - LOUDNESS["I"]) < 1.5  # measured again on the delivered MP3
    assert abs(made.output_lufs - LOUDNESS["I"]) < 1.0
    assert duration_of(made.path) == pytest.approx(made.seconds, abs=0.1)


def test_a_loud_and_a_quiet_take_come_out_equally_loud(tmp_path: Path) -> None:
    loud = process(speech_like(tmp_path / "a.wav", 2.0, 0.7), tmp_path / "a.mp3")
    quiet = process(speech_like(tmp_path / "b.wav", 2.0, 0.03), tmp_path / "b.mp3")
    assert loud.input_lufs - quiet.input_lufs > 20
    assert abs(loudness(loud.path) - loudness(quiet.path)) < 1.0


def test_output_is_the_telephone_format_the_voice_path_plays(tmp_path: Path) -> None:
    stereo = make(tmp_path / "stereo.wav", "sine=f=330:d=2:sample_rate=48000", "-ac", "2")
    made = process(stereo, tmp_path / "out.mp3")
    data = made.path.read_bytes()
    assert data[:3] == b"ID3" or data[0] == 0xFF
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(made.path)], capture_output=True, text=True)
    assert "16000 Hz, mono" in proc.stderr and "mp3" in proc.stderr


@pytest.mark.parametrize("fmt", ["webm", "ogg", "m4a", "mp3", "flac"])
def test_what_browsers_and_phones_record_is_read(tmp_path: Path, fmt: str) -> None:
    codec = {"webm": "libopus", "ogg": "libvorbis", "m4a": "aac", "mp3": "libmp3lame", "flac": "flac"}[fmt]
    src = speech_like(tmp_path / f"take.{fmt}", 1.5, 0.3, 0.0, 0.0, "-c:a", codec)
    assert 1.4 <= process(src, tmp_path / "out.mp3").seconds <= 1.9


def test_silence_is_refused(tmp_path: Path) -> None:
    exc = refusal(make(tmp_path / "s.wav", "anullsrc=r=44100:cl=mono", "-t", "3"), tmp_path)
    assert exc.code == "silent" and str(exc).startswith("silent: no sound at all")


def test_a_faint_hiss_is_silent_too(tmp_path: Path) -> None:
    exc = refusal(make(tmp_path / "hiss.wav", "anoisesrc=d=3:c=pink:a=0.002"), tmp_path)
    assert exc.code == "silent" and "dBFS" in str(exc)


def test_a_clipped_square_wave_is_refused(tmp_path: Path) -> None:
    src = make(tmp_path / "sq.wav", "aevalsrc='if(lt(mod(t*220\\,1)\\,0.5)\\,1\\,-1)':s=44100:d=2")
    exc = refusal(src, tmp_path)
    assert exc.code == "clipped" and "% of the sound is at full volume" in str(exc)


def test_audible_noise_is_not_refused_but_normalised(tmp_path: Path) -> None:
    """The pipeline cannot tell speech from noise: a noisy take reaches review, at the target loudness."""
    made = process(make(tmp_path / "n.wav", "anoisesrc=d=2:c=pink:a=0.2"), tmp_path / "n.mp3")
    assert abs(loudness(made.path) - LOUDNESS["I"]) < 1.5


def test_a_text_file_named_wav_is_refused_as_not_audio(tmp_path: Path) -> None:
    src = tmp_path / "prompt.wav"
    src.write_text("Main menu: press 1 for ...\n")
    exc = refusal(src, tmp_path)
    assert exc.code == "not_audio" and str(exc).startswith("not audio: ffmpeg cannot read it as sound")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "empty.m4a"
    src.write_bytes(b"")
    exc = refusal(src, tmp_path)
    assert exc.code == "empty" and "0 bytes" in str(exc)


def test_a_picture_has_no_sound_track(tmp_path: Path) -> None:
    src = make(tmp_path / "pic.png", "color=c=red:s=16x16:d=1", "-frames:v", "1")
    exc = refusal(src, tmp_path)
    assert exc.code == "not_audio"


def test_a_too_short_take_is_refused(tmp_path: Path) -> None:
    exc = refusal(make(tmp_path / "blip.wav", "sine=f=440:d=0.2"), tmp_path)
    assert exc.code == "too_short"


def test_a_twenty_minute_file_is_refused_quickly_without_decoding_it_whole(tmp_path: Path) -> None:
    src = make(tmp_path / "long.mp3", "sine=f=440:d=1200:sample_rate=8000", "-c:a", "libmp3lame", "-b:a", "8k")
    t0 = time.perf_counter()
    exc = refusal(src, tmp_path)
    took = time.perf_counter() - t0
    assert exc.code == "too_long" and str(exc).startswith("too long (20:00 long): one prompt may last at most 3:00")
    assert took < 5, took


def test_a_take_just_under_the_limit_is_kept(tmp_path: Path) -> None:
    made = process(speech_like(tmp_path / "long.wav", MAX_SECONDS - 2, 0.3), tmp_path / "ok.mp3")
    assert made.seconds == pytest.approx(MAX_SECONDS - 2, abs=0.5)
