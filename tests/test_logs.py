"""Structured logging: facts travel as fields, rendered as key=value or JSON lines."""

from __future__ import annotations

import json
import logging

from hkrt.logs import JsonFormatter, KeyValueFormatter, configure_logging, record_fields


def make_record() -> logging.LogRecord:
    record = logging.LogRecord("hkrt.agent", logging.WARNING, __file__, 1, "messages lost", (), None)
    record.publisher_id = 7
    record.missing = 3
    return record


def test_key_value_and_json_formatters() -> None:
    record = make_record()
    assert record_fields(record) == {"publisher_id": 7, "missing": 3}
    assert (
        KeyValueFormatter("%(levelname)s %(message)s").format(record)
        == "WARNING messages lost publisher_id=7 missing=3"
    )
    doc = json.loads(JsonFormatter().format(record))
    assert (doc["level"], doc["logger"], doc["message"], doc["missing"]) == (
        "WARNING",
        "hkrt.agent",
        "messages lost",
        3,
    )


def test_configure_logging_writes_fields_to_a_file(tmp_path) -> None:
    path = tmp_path / "hkrt.log"
    configure_logging("INFO", file=str(path), json_lines=True)
    try:
        logging.getLogger("hkrt.agent").warning("rejected a message", extra={"reason": "malformed", "bytes": 12})
        for handler in logging.getLogger("hkrt").handlers:
            handler.flush()
        line = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
        assert (line["message"], line["reason"], line["bytes"]) == ("rejected a message", "malformed", 12)
    finally:
        logger = logging.getLogger("hkrt")
        for handler in logger.handlers:
            handler.close()
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
