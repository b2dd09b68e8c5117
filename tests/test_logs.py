"""Structured logging: facts travel as fields, rendered as key=value or JSON lines."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from hkrt.core.logs import (
    JsonFormatter,
    KeyValueFormatter,
    LogLimiter,
    configure_logging,
    limiter_for,
    log_limited,
    record_fields,
)


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


# ------------------------------------------------------------------ rate-limited lines
class FakeClock:
    """A monotonic clock the test moves by hand (a window is seconds long)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_log_limiter_lets_one_line_per_key_and_window_through_and_counts_the_rest() -> None:
    clock = FakeClock()
    limiter = LogLimiter(60.0, clock=clock)
    assert limiter.allow("gap") == (True, 0)
    assert [limiter.allow("gap") for _ in range(3)] == [(False, 0)] * 3
    assert limiter.allow("restart") == (True, 0)  # keys are independent
    assert limiter.pending("gap") == 3
    clock.now += 59.9
    assert limiter.allow("gap") == (False, 0)
    clock.now += 0.1
    assert limiter.allow("gap") == (True, 4)  # the next line carries what was held back
    assert limiter.allow("gap") == (False, 0) and limiter.pending("gap") == 1


def test_log_limiter_is_thread_safe() -> None:
    clock = FakeClock()
    limiter = LogLimiter(60.0, clock=clock)
    results: list[tuple[bool, int]] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [limiter.allow("hot") for _ in range(5000)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed for allowed, _ in results) == 1
    assert limiter.pending("hot") == 8 * 5000 - 1  # no count lost to a race
    clock.now += 60
    assert limiter.allow("hot") == (True, 8 * 5000 - 1)


def test_log_limiter_bounds_its_keys_and_accounts_for_what_it_forgets() -> None:
    limiter = LogLimiter(60.0, max_keys=3, clock=FakeClock())
    limiter.allow("SH600000")
    limiter.allow("SH600000")
    limiter.allow("SH600000")  # two held back
    for key in ("SZ000001", "SZ000002", "SZ000003"):  # a fourth key evicts the oldest
        limiter.allow(key)
    assert limiter.forgotten == 2
    assert limiter.allow("SH600000") == (True, 0)  # forgotten: its next line goes out at once
    assert len(limiter._keys) == 3


def test_log_limited_adds_suppressed_to_the_next_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limiter = LogLimiter(30.0, clock=clock)
    logger = logging.getLogger("hkrt.test_limited")
    caplog.set_level(logging.INFO, logger="hkrt.test_limited")
    sent = []
    for i in range(5):
        sent.append(log_limited(logger, logging.WARNING, "gap", "messages lost", {"missing": i}, limiter=limiter))
    assert sent == [True, False, False, False, False]
    clock.now += 30
    assert log_limited(logger, logging.WARNING, "gap", "messages lost", {"missing": 9}, limiter=limiter)
    lines = [r for r in caplog.records if r.name == "hkrt.test_limited"]
    assert [record_fields(r) for r in lines] == [{"missing": 0}, {"missing": 9, "suppressed": 4}]
    # the records point at the caller, not at log_limited
    caller = "test_log_limited_adds_suppressed_to_the_next_line"
    assert {(r.levelno, r.funcName) for r in lines} == {(logging.WARNING, caller)}
    # the same key under another logger is another line
    assert log_limited(logging.getLogger("hkrt.other"), logging.WARNING, "gap", "x", limiter=limiter)


def test_log_limited_does_not_spend_the_window_on_a_disabled_level() -> None:
    limiter = LogLimiter(60.0, clock=FakeClock())
    logger = logging.getLogger("hkrt.test_quiet")
    logger.setLevel(logging.WARNING)
    try:
        assert not log_limited(logger, logging.INFO, "k", "not shown", limiter=limiter)
        assert limiter.pending(("hkrt.test_quiet", "k")) == 0
        assert log_limited(logger, logging.WARNING, "k", "shown", limiter=limiter)
    finally:
        logger.setLevel(logging.NOTSET)


def test_log_limited_shares_one_limiter_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("hkrt.test_shared")
    caplog.set_level(logging.INFO, logger="hkrt.test_shared")
    assert limiter_for(3600.0) is limiter_for(3600.0)
    key = ("shared", time.monotonic())  # unique: the shared limiter outlives this test
    assert log_limited(logger, logging.WARNING, key, "first", interval=3600.0)
    assert not log_limited(logger, logging.WARNING, key, "again", interval=3600.0)
    assert [r.getMessage() for r in caplog.records if r.name == "hkrt.test_shared"] == ["first"]
