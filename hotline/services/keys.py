"""`hotline keys rotate`: re-encrypt every stored body, note and recording with the newest data key.

Rows are read raw (the stored token), and only those that are plaintext or made with an older key
are written again, in batches, each committed: a rotation interrupted half-way is finished by
running it again, and rows written meanwhile by the app already use the newest key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline import crypto
from hotline.models import CaseNote, Message, Recording
from hotline.settings import Settings

BATCH = 500


@dataclass(frozen=True)
class RotateReport:
    message_bodies: int
    case_notes: int
    recordings: int
    recordings_missing: int

    def lines(self) -> list[str]:
        return [f"message bodies re-encrypted: {self.message_bodies}",
                f"case notes re-encrypted: {self.case_notes}",
                f"recordings re-encrypted: {self.recordings}"
                + (f" (files missing: {self.recordings_missing})" if self.recordings_missing else "")]


def _rotate_column(session: Session, model: Any, column: Any) -> int:
    """Re-encrypt one EncryptedText column, BATCH rows at a time, committing each batch."""
    raw = sa.type_coerce(column, sa.Text)  # the stored token, not the decrypted text
    done, last_id = 0, 0
    while True:
        rows = session.execute(sa.select(model.id, raw).where(model.id > last_id, column.is_not(None))
                               .order_by(model.id).limit(BATCH)).all()
        if not rows:
            return done
        for row_id, stored in rows:
            if crypto.needs_rotation(stored):
                # Bound through EncryptedText: encrypted again, with the newest key.
                session.execute(sa.update(model).where(model.id == row_id)
                                .values({column.key: crypto.decrypt_text(stored)})
                                .execution_options(synchronize_session=False))
                done += 1
        last_id = rows[-1][0]
        session.commit()


def rotate(session: Session, settings: Settings) -> RotateReport:
    """Commits as it goes (see the module docstring)."""
    bodies = _rotate_column(session, Message, Message.body)
    notes = _rotate_column(session, CaseNote, CaseNote.body)
    files = missing = 0
    for storage_path in session.scalars(sa.select(Recording.storage_path).where(
            Recording.status == "stored", Recording.storage_path.is_not(None)).order_by(Recording.id)):
        path = Path(storage_path or "")
        path = path if path.is_absolute() else settings.recordings_path / path
        try:
            files += crypto.rotate_file(path)
        except FileNotFoundError:
            missing += 1
    return RotateReport(bodies, notes, files, missing)
