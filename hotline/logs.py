"""Logging that never writes a whole phone number or a message body.

Three layers, so no handler (ours, gunicorn's, werkzeug's, pytest's caplog, an error tracker's)
ever sees the raw text:

- every engine is made with `hide_parameters=True` (hotline.db): a database error never prints the
  bound values (`[parameters: ('+855…', 'my boss took my passport')]`);
- a log record is masked when it is made (`_masked_record`): the message with its arguments, the
  traceback text and the stack text, and the database's own echo of a row (PostgreSQL's
  "Failing row contains (…)" and "Key (phone)=(…)") is cut;
- `MaskingFormatter` masks whatever it formats once more (formatException, formatStack included),
  and is set on our handler and on gunicorn's and werkzeug's.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import Any

from hotline.phones import mask_all

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# What a database echoes of the row it refused: values (a number, a body) we never log.
# (SQLAlchemy puts "[SQL: …]" after it; a chained exception follows a blank line.)
_ROW_ECHO = re.compile(r"(Failing row contains ).*?(?=\n\[SQL: |\n\n|\Z)", re.DOTALL)
_KEY_ECHO = re.compile(r"(Key \([^)]*\))=\(.*?\)(?= already exists| is not present| conflicts|\.?$)", re.MULTILINE)
LIBRARY_LOGGERS = ("gunicorn.error", "gunicorn.access", "werkzeug")


def scrub(text: str) -> str:
    """Mask phone numbers and drop the database's echo of row values."""
    if "Failing row contains " in text:  # the cheap test first: this runs on every log line
        text = _ROW_ECHO.sub(r"\1(values hidden)", text)
    if "Key (" in text:
        text = _KEY_ECHO.sub(r"\1=(value hidden)", text)
    return mask_all(text)


class MaskingFormatter(logging.Formatter):
    """The app's one formatter: the whole line, traceback and stack included, is scrubbed."""

    def __init__(self, fmt: str | None = FORMAT, *args: Any, **kwargs: Any):
        super().__init__(fmt, *args, **kwargs)

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return scrub(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return scrub(super().formatStack(stack_info))

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        # A record made after setup_logging was masked whole when it was made (message, traceback,
        # stack): masking the line again would only double the cost of every request's log line.
        return text if getattr(record, "_hotline_masked", False) else scrub(text)


class MaskingFilter(logging.Filter):
    """Masks the message of a record that was made before `setup_logging` installed the factory."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


def _mask_record(record: logging.LogRecord) -> None:
    if getattr(record, "_hotline_masked", False):
        return
    if record.args:
        try:
            record.msg = record.getMessage()
        except (TypeError, ValueError):
            record.msg = str(record.msg)
        record.args = None
    record.msg = scrub(str(record.msg))
    if record.exc_info and not record.exc_text:
        # Formatted now, masked, and cached where every formatter looks first (Formatter.format).
        record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    record._hotline_masked = True


_base_factory = logging.getLogRecordFactory()


def _masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    _mask_record(record)
    return record


def adopt_library_loggers() -> None:
    """Our formatter on the handlers gunicorn and werkzeug configured for themselves."""
    for name in LIBRARY_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler.formatter, MaskingFormatter):
                old = handler.formatter  # keep gunicorn's own line formats
                handler.setFormatter(MaskingFormatter(old._fmt if old else FORMAT, old.datefmt if old else None))


def setup_logging(level: str = "INFO") -> None:
    logging.setLogRecordFactory(_masked_record)
    adopt_library_loggers()
    root = logging.getLogger()
    if getattr(root, "_hotline_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter())
    handler.addFilter(MaskingFilter())
    handler._hotline = True  # type: ignore[attr-defined]  # tests find the app's own handler by this
    root.addHandler(handler)
    root.setLevel(level)
    root._hotline_configured = True  # type: ignore[attr-defined]
    # Twilio's HTTP client logs request bodies (numbers, texts) at INFO; keep it quiet.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
