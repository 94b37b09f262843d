"""Logging that never writes a whole phone number or a message body."""

from __future__ import annotations

import logging
import sys

from hotline.phones import mask_all


class MaskingFilter(logging.Filter):
    """Masks phone numbers in every record, whatever code logged it (ours or a library's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
            except (TypeError, ValueError):
                record.msg = str(record.msg)
            record.args = None
        record.msg = mask_all(str(record.msg))
        return True


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if getattr(root, "_hotline_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    root._hotline_configured = True  # type: ignore[attr-defined]
    # Twilio's HTTP client logs request bodies (numbers, texts) at INFO; keep it quiet.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
