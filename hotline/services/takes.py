"""A take (browser recording, uploaded file, phone recording) -> the audio pipeline -> the draft.

One way in for every recording staff make, so every one is checked, trimmed and loudness-normalised
the same way (hotline.audio_tools.process) before the content studio puts it in the draft
(hotline.services.content.add_take, which writes the audit row). A refused take writes nothing.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from hotline.audio_tools import AudioError, Processed, process
from hotline.services import content

MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # 3 minutes of a phone's WAV is ~30 MB at 44.1 kHz stereo; m4a ~3 MB


@dataclass(frozen=True)
class Stored:
    take: Any  # hotline.models.ContentTake
    made: Processed


def put_take(session: Session, settings: Any, *, prompt_id: str, lang: str, src: Path | bytes, source: str,
             staff_id: int | None, ip: str | None = None, suffix: str = "") -> Stored:
    """Run the pipeline on `src` and make the result the draft's recording of (prompt, lang).

    Raises AudioError (the take is unusable, with the reason) or content.ContentError (an unknown
    prompt or language). `suffix` (".m4a") names the format of bytes for ffmpeg. The caller commits.
    """
    # Refuse an unknown cell before spending a pipeline run on it.
    content.cell(session, prompt_id, lang)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        if isinstance(src, bytes):
            if not src:
                raise AudioError("empty: the file has no content (0 bytes); choose the recording again", "empty")
            safe = suffix if suffix[1:].isalnum() and suffix.startswith(".") else ""
            path = tmp / f"take{safe or '.in'}"
            path.write_bytes(src)
        else:
            path = Path(src)
        made = process(path, tmp / "take.mp3")
        take = content.add_take(session, content.store_for(settings), prompt_id=prompt_id, language=lang,
                                audio=made.path, duration_ms=int(made.seconds * 1000), source=source,
                                staff_id=staff_id, ip=ip)
    return Stored(take, made)
