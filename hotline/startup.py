"""Start-up failures in a few lines that name the problem and the fix, instead of a traceback.

`create_app`, `hotline run` and `hotline worker` turn the ordinary mistakes (bad settings, an
invalid script, an unreachable or un-migrated database, an unusable folder, Redis away) into a
`StartupError`. It is also gunicorn's `AppImportError`, which gunicorn prints as its message alone
before it stops ("App failed to load"); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

try:  # gunicorn is a dependency, but keep this module importable without it (e.g. on Windows)
    from gunicorn.errors import AppImportError as _GunicornAppError
except ImportError:  # pragma: no cover
    class _GunicornAppError(Exception):  # type: ignore[no-redef]
        pass


class StartupError(RuntimeError, _GunicornAppError):
    """The process cannot start; `str()` is what to show, `original` the exception it explains."""

    def __init__(self, message: str, original: BaseException | None = None):
        super().__init__(message)
        self.original = original


def explain(exc: BaseException) -> str | None:
    """A short message for an ordinary start-up mistake, or None for anything else (a bug)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from hotline.db import SchemaNotReady
    from hotline.menus import keywords, loader
    from hotline.settings import SettingsError

    if isinstance(exc, StartupError):
        return str(exc)
    if isinstance(exc, SettingsError | SchemaNotReady):
        return str(exc)
    if isinstance(exc, loader.ScriptError | keywords.ScriptError):
        return f"{exc}\nFix the file named above, then check it with `hotline scripts check`."
    if isinstance(exc, OperationalError | InterfaceError):
        return _database_message(exc)
    if isinstance(exc, OSError) and exc.filename:
        return (f"Cannot use {exc.filename}: {exc.strerror or exc}. Check HOTLINE_INSTANCE and the other "
                "paths in the settings, and that this user may write there.")
    from redis.exceptions import RedisError

    if isinstance(exc, RedisError):
        return (f"Cannot reach Redis ({_first_line(exc)}). Check REDIS_URL, or leave it unset so "
                "`hotline run` starts its own.")
    return None


@contextmanager
def startup_errors() -> Iterator[None]:
    """Re-raise an ordinary start-up mistake as a StartupError (a few lines, no traceback)."""
    try:
        yield
    except StartupError:
        raise
    except Exception as exc:
        message = explain(exc)
        if message is None:
            raise
        raise StartupError(message, exc) from None


def _database_message(exc: BaseException) -> str | None:
    reason = _first_line(getattr(exc, "orig", None) or exc)
    if "sqlite" in type(getattr(exc, "orig", None)).__module__:
        if not any(word in reason for word in ("unable to open", "locked", "readonly", "disk")):
            return None  # e.g. a syntax error: a bug, which keeps its traceback
        return (f"Cannot use the SQLite database: {reason}. Check DATABASE_URL, or HOTLINE_INSTANCE "
                "(the folder that holds it) and that this user may write there.")
    return (f"Cannot reach the database: {reason}.\n"
            "Check DATABASE_URL (postgresql://user:password@host:5432/name) and that PostgreSQL is running "
            "and accepts connections from here.")


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:300].rstrip(".")
