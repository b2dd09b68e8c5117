"""Structured logging: every hkrt log record carries its facts as fields.

hkrt logs through the standard ``logging`` module under the ``hkrt`` logger, passing
facts in ``extra`` (``reason``, ``publisher_id``, ``missing`` ...).  ``configure_logging``
renders them as ``key=value`` pairs, or one JSON object per line for log shippers.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of a record."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = record_fields(record)
        return base + ("".join(f" {k}={v}" for k, v in fields.items()) if fields else "")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure_logging(level: str | int = "INFO", *, file: str | None = None, json_lines: bool = False) -> None:
    """Send hkrt's logs to stderr (or ``file``) as key=value text or JSON lines."""
    handler: logging.Handler = (
        logging.FileHandler(file, encoding="utf-8") if file else logging.StreamHandler(sys.stderr)
    )
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter(fmt))
    logger = logging.getLogger("hkrt")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
