"""Structured logging: every hkrt log record carries its facts as fields.

hkrt logs through the standard ``logging`` module under the ``hkrt`` logger, passing
facts in ``extra`` (``reason``, ``publisher_id``, ``missing`` ...).  ``configure_logging``
renders them as ``key=value`` pairs, or one JSON object per line for log shippers.

A loss or fault that can repeat at feed rate is logged through ``log_limited`` (one line per
key and interval, the next line carrying ``suppressed=N``), next to an exact counter in a
``stats()`` dict.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
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


class LogLimiter:
    """Lets one line per key through every ``interval`` seconds and counts the rest.

    ``allow(key)`` answers ``(True, suppressed)`` when a line for ``key`` may be logged now,
    ``suppressed`` being how many were held back for that key since its last line, and
    ``(False, 0)`` otherwise.  Thread-safe.  A loss that repeats a thousand times a second is
    then one WARNING a minute whose ``suppressed=`` field still accounts for every case.

    Bound: at most ``max_keys`` keys are remembered (a hostile feed can vary a key such as a
    symbol without end).  Past that the key let through longest ago is forgotten: its next
    line goes out at once, and the lines it had held back are added to ``forgotten`` instead of
    a ``suppressed`` count, so they are still accounted for.
    """

    def __init__(
        self, interval: float = 60.0, *, max_keys: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0 seconds, not {interval}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, not {max_keys}")
        self.interval = interval
        self.max_keys = max_keys
        self.forgotten = 0  # lines held back for keys evicted by the max_keys bound
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [time its last line was let through, lines held back since]; oldest first
        self._keys: OrderedDict[Hashable, list[float]] = OrderedDict()

    def allow(self, key: Hashable) -> tuple[bool, int]:
        with self._lock:
            now = self._clock()
            entry = self._keys.get(key)
            if entry is not None and now - entry[0] < self.interval:
                entry[1] += 1
                return False, 0
            suppressed = int(entry[1]) if entry is not None else 0
            self._keys[key] = [now, 0]
            self._keys.move_to_end(key)
            while len(self._keys) > self.max_keys:
                _, (_, held) = self._keys.popitem(last=False)
                self.forgotten += int(held)
            return True, suppressed

    def pending(self, key: Hashable) -> int:
        """Lines held back for ``key`` and not yet reported."""
        with self._lock:
            entry = self._keys.get(key)
            return int(entry[1]) if entry is not None else 0


_limiters: dict[float, LogLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(interval: float) -> LogLimiter:
    """The process-wide limiter of one interval, shared by every ``log_limited`` call using it."""
    with _limiters_lock:
        limiter = _limiters.get(interval)
        if limiter is None:
            limiter = _limiters[interval] = LogLimiter(interval)
        return limiter


def log_limited(
    logger: logging.Logger,
    level: int,
    key: Hashable,
    msg: str,
    extra: Mapping[str, Any] | None = None,
    interval: float = 60.0,
    *,
    limiter: LogLimiter | None = None,
    exc_info: Any = None,
) -> bool:
    """Log ``msg`` unless a line of the same logger and ``key`` went out less than ``interval``
    seconds ago; the next line let through carries ``suppressed=N``, the lines held back.

    Returns whether the line was logged.  Count the event in a stats counter as well: the
    counter is the exact figure, the log line the loud one.  ``limiter`` replaces the shared
    one of ``interval`` (a component's own, or a test's).
    """
    if not logger.isEnabledFor(level):  # a line nobody would see must not use up the window
        return False
    allowed, suppressed = (limiter or limiter_for(interval)).allow((logger.name, key))
    if not allowed:
        return False
    fields = dict(extra or {})
    if suppressed:
        fields["suppressed"] = suppressed
    logger.log(level, msg, extra=fields, exc_info=exc_info, stacklevel=2)
    return True
