"""A database error inside a voice or SMS webhook is logged with its traceback, and no handler (the
app's own, one with the app's formatter, pytest's caplog) sees a whole phone number or the body.

The failure is forced in the database itself: a constraint (PostgreSQL echoes the refused row, values
and all) or a trigger (SQLite), and a dropped table; without hide_parameters SQLAlchemy would add
`[parameters: ('+855…', 'my boss took my passport')]` to the message.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from hotline.logs import MaskingFormatter, scrub
from tests.conftest import new_call_sid

CALLER = "+85512398765"
BODY_NUMBER = "+66898761234"
BODY = f"my boss took my passport call {BODY_NUMBER}"


@contextmanager
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Everything logged meanwhile: the app's real handler, a handler with the app's formatter, caplog."""
    out: list[str] = []
    root = logging.getLogger()
    real = [h for h in root.handlers if getattr(h, "_hotline", False)]
    assert real, "the app's log handler is not installed"
    streams = [io.StringIO() for _ in real]
    old = [h.setStream(s) for h, s in zip(real, streams, strict=True)]  # type: ignore[attr-defined]
    extra_stream = io.StringIO()
    extra = logging.StreamHandler(extra_stream)
    extra.setFormatter(MaskingFormatter())
    root.addHandler(extra)
    caplog.set_level(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(extra)
        for h, o in zip(real, old, strict=True):
            h.setStream(o)  # type: ignore[attr-defined]
        out.extend(s.getvalue() for s in streams)
        out.append(extra_stream.getvalue())
        out.append(caplog.text)
        # Any other handler with a plain formatter (an error tracker, say) sees what this one does.
        out.append("\n".join(logging.Formatter().format(r) for r in caplog.records))


@contextmanager
def broken(db, backend: str, table: str, how: str) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Make every INSERT into `table` fail in the database."""
    conn = db.connection()
    if how == "drop":
        conn.execute(sa.text("PRAGMA foreign_keys=OFF"))
        conn.execute(sa.text(f"DROP TABLE {table}"))
        db.commit()
        yield
        return
    if backend == "postgresql":
        column = "body" if table == "messages" else "phone"
        conn.execute(sa.text(f"ALTER TABLE {table} ADD CONSTRAINT ck_test_boom CHECK ({column} IS NULL) NOT VALID"))
        db.commit()
        try:
            yield
        finally:
            db.rollback()
            db.execute(sa.text(f"ALTER TABLE {table} DROP CONSTRAINT ck_test_boom"))
            db.commit()
        return
    conn.execute(sa.text(f"CREATE TRIGGER boom BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'boom'); END"))
    db.commit()
    yield


def leaks(logs: str, *secrets: str) -> list[str]:
    flat = re.sub(r"[ \-.]", "", logs)
    return [s for s in secrets if (re.sub(r"\D", "", s) if s.startswith("+") else s) in
            (flat if s.startswith("+") else logs)]


CASES = [("constraint", "sqlite"), ("constraint", "postgresql"), ("drop", "sqlite")]


@pytest.mark.parametrize("how", ["constraint", "drop"])
def test_a_database_error_in_the_sms_webhook_logs_no_number_and_no_body(twilio, db, backend, caplog,
                                                                        how: str) -> None:
    if how == "drop" and backend != "sqlite":
        pytest.skip("dropping a table would break the other tests sharing this PostgreSQL database")
    with broken(db, backend, "messages", how), captured(caplog) as out:
        resp = twilio.post("/twilio/sms", twilio.sms_params(BODY, from_=CALLER))
    assert resp.status_code == 200 and b"<Response" in resp.data  # still calm TwiML
    logs = "\n".join(out)
    assert "SMS step failed" in logs and "Traceback" in logs, "the error was not logged with its traceback"
    assert leaks(logs, CALLER, BODY_NUMBER, "boss took", "passport call") == [], logs[-4000:]


@pytest.mark.parametrize("how", ["constraint", "drop"])
def test_a_database_error_in_the_voice_webhook_logs_no_number(twilio, db, backend, caplog, how: str) -> None:
    if how == "drop" and backend != "sqlite":
        pytest.skip("dropping a table would break the other tests sharing this PostgreSQL database")
    with broken(db, backend, "callers", how), captured(caplog) as out:
        resp = twilio.post("/twilio/voice", twilio.voice_params(new_call_sid(), from_=CALLER))
    assert resp.status_code == 200 and b"<Play" in resp.data  # the apology, not a 500
    logs = "\n".join(out)
    assert "voice step failed" in logs and "Traceback" in logs, "the error was not logged with its traceback"
    assert leaks(logs, CALLER) == [], logs[-4000:]


def test_stack_text_and_exception_text_are_masked() -> None:
    fmt = MaskingFormatter()
    try:
        raise ValueError(f"refused {CALLER}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", (CALLER,), None)
        import sys

        record.exc_info = sys.exc_info()
    record.stack_info = f"Stack (most recent call last):\n  caller={CALLER}"
    text = fmt.format(record)
    assert "refused +855" in text and "failed for +855" in text and "caller=+855" in text
    assert leaks(text, CALLER) == [], text
    assert leaks(fmt.formatException(record.exc_info), CALLER) == []  # type: ignore[arg-type]
    assert leaks(fmt.formatStack(f"at {CALLER}"), CALLER) == []


def test_postgres_row_echo_is_cut() -> None:
    text = ('(psycopg.errors.CheckViolation) new row for relation "messages" violates check constraint\n'
            'DETAIL:  Failing row contains (5, SM1, +85512398765, my boss\ntook my passport, 3).\n'
            '[SQL: INSERT INTO messages (sid) VALUES (%(sid)s)]')
    assert "boss" not in scrub(text) and "[SQL: INSERT" in scrub(text)
    assert scrub("DETAIL:  Key (phone)=(+85512398765) already exists.") == \
        "DETAIL:  Key (phone)=(value hidden) already exists."


def test_gunicorn_and_werkzeug_handlers_get_the_masking_formatter() -> None:
    from hotline.logs import adopt_library_loggers

    for name in ("gunicorn.error", "werkzeug"):
        logger = logging.getLogger(name)
        handler = logging.StreamHandler(io.StringIO())
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s", "[%Y]"))
        logger.addHandler(handler)
        try:
            adopt_library_loggers()
            assert isinstance(handler.formatter, MaskingFormatter) and handler.formatter.datefmt == "[%Y]"
            logger.error("worker for %s", CALLER, exc_info=ValueError(CALLER))
            assert leaks(handler.stream.getvalue(), CALLER) == [] and "+855" in handler.stream.getvalue()
        finally:
            logger.removeHandler(handler)
