"""Keys for personal data at rest: recordings, message bodies and case notes.

DATA_KEY (or RECORDING_KEY, its older name) holds one Fernet key or several, comma-separated,
newest first. Everything is encrypted with the first; any of them decrypts. To rotate: put a new key
first, keep the old ones after it, restart, run `hotline keys rotate` (which re-encrypts every stored
body, note and recording with the newest key), then drop the old keys.

Database columns use `EncryptedText`. The key set is per process (`install`, called by Resources,
which every web process, worker and command builds), like the logging configuration; a column type
cannot reach the app's settings otherwise. A value written before encryption existed (plaintext) is
read as it is; `hotline keys rotate` encrypts it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)
# Every Fernet token starts with version byte 0x80 and a 64-bit timestamp: "gAAAAA" in base64.
TOKEN_PREFIX = "gAAAAA"  # noqa: S105 (a format marker, not a secret)
_ring: MultiFernet | None = None
_newest: Fernet | None = None


class DataKeyError(RuntimeError):
    """No data key is configured, or a key is not a Fernet key."""


def parse_keys(raw: str) -> tuple[str, ...]:
    """`newest,older,...` -> the keys, newest first; blank parts are ignored."""
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def key_problem(raw: str) -> str | None:
    """Why `raw` is not a valid key list, or None."""
    keys = parse_keys(raw)
    if not keys:
        return "is empty"
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except ValueError:
            return (f"key {i} of {len(keys)} is not a Fernet key (32 url-safe base64 bytes); make one with "
                    "`hotline keys generate`")
    return None


def keyring(keys: Sequence[str]) -> MultiFernet:
    if not keys:
        raise DataKeyError("no data key: set DATA_KEY (or RECORDING_KEY)")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def install(keys: Sequence[str]) -> None:
    """Use these keys for EncryptedText columns in this process."""
    global _ring, _newest
    _ring = keyring(keys) if keys else None
    _newest = Fernet(keys[0].encode()) if keys else None


def current() -> MultiFernet:
    if _ring is None:
        raise DataKeyError("no data key installed in this process (hotline.crypto.install)")
    return _ring


def is_token(value: str | bytes) -> bool:
    prefix = TOKEN_PREFIX.encode() if isinstance(value, bytes) else TOKEN_PREFIX
    return value.startswith(prefix)  # type: ignore[arg-type]


def encrypt_text(value: str) -> str:
    return current().encrypt(value.encode()).decode()


def decrypt_text(value: str) -> str:
    if not is_token(value):
        return value  # stored before encryption was turned on
    try:
        return current().decrypt(value.encode()).decode()
    except InvalidToken:
        # A lost key, or plaintext that happens to look like a token: show what is there, never fail
        # the page or the webhook that read it. The value itself is not logged.
        log.warning("a stored value could not be decrypted with any DATA_KEY")
        return value


class EncryptedText(sa.types.TypeDecorator[str]):
    """Text encrypted with the process's newest data key (one Fernet token per value)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else encrypt_text(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else decrypt_text(value)


def rotate_file(path: Path) -> bool:
    """Re-encrypt one file with the newest key (atomically); False when it was already current."""
    data = path.read_bytes()
    if _is_newest(data):
        return False
    rotated = current().rotate(data)
    tmp = path.with_name(f".{path.name}.rotate")
    tmp.write_bytes(rotated)
    tmp.chmod(0o600)
    tmp.replace(path)
    return True


def _is_newest(token: bytes) -> bool:
    current()
    assert _newest is not None
    try:
        _newest.decrypt(token)
        return True
    except InvalidToken:
        return False


def needs_rotation(value: str) -> bool:
    """A stored column value that is plaintext, or a token made with an older key."""
    return not is_token(value) or not _is_newest(value.encode())


def key_beside_data(key_file: Path, data_dirs: Sequence[Path]) -> Path | None:
    """The data folder holding `key_file`, if any: a key kept beside what it protects protects nothing
    (a copy of the folder, a backup or a stolen disk carries both)."""
    key = key_file.resolve()
    for folder in data_dirs:
        folder = folder.resolve()
        if key == folder or folder in key.parents:
            return folder
    return None
