"""The agent's spot journal: one file per market day, written without ever stopping the feed.

Every accepted wire message is appended, exactly as received, to ``spots-YYYYMMDD.hkj`` of
its market day (hkrt.journal format).  A write that fails (disk full, I/O error) is logged
loudly -- once per failure streak, then again every minute while it lasts -- counted, and
retried with the next message; aggregation goes on in memory regardless.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from hkrt.journal import JournalWriter

log = logging.getLogger("hkrt.agent")

CHINA_TZ = dt.timezone(dt.timedelta(hours=8))
CHINA_OFFSET_MS = 8 * 3600 * 1000
ERROR_LOG_SECONDS = 60.0  # a failing journal is logged again this often
FSYNC_POLICIES = ("interval", "always", "never")


def china_today() -> dt.date:
    return dt.datetime.now(CHINA_TZ).date()


def market_day(market_time_ms: int) -> dt.date:
    """The China date of a header's market time (UTC epoch ms), or today's when unknown (0)."""
    if not market_time_ms:
        return china_today()
    return np.datetime64(market_time_ms + CHINA_OFFSET_MS, "ms").item().date()


class DayJournal:
    """Appends messages to the journal file of their market day."""

    def __init__(self, directory: str | Path, *, fsync: str = "interval", fsync_interval: float = 1.0) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"journal_fsync must be 'interval', 'always' or 'never', not {fsync!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._fsync_interval = fsync_interval
        self._writer: JournalWriter | None = None
        self._day: dt.date | None = None
        self._error_logged = 0.0  # monotonic time of the last error log of a failure streak
        self.stats: dict[str, Any] = {
            "path": None,
            "appended": 0,
            "write_errors": 0,
            "last_error": None,
            "failing": False,
            "recovered": None,
        }

    def path(self, day: dt.date) -> Path:
        return self.directory / f"spots-{day:%Y%m%d}.hkj"

    def latest(self) -> Path:
        """The newest day's file, or today's (which may not exist)."""
        files = sorted(self.directory.glob("spots-????????.hkj"))
        return files[-1] if files else self.path(china_today())

    def append(self, message: bytes | bytearray | memoryview, market_time_ms: int) -> None:
        """Append an accepted message; a failure is logged and counted, never raised."""
        day = market_day(market_time_ms)
        try:
            if self._writer is None or self._day != day:
                self.close()
                path = self.path(day)
                self.stats["path"] = str(path)
                self._writer = JournalWriter(path, fsync=self._fsync, fsync_interval=self._fsync_interval)
                self._day = day
            self._writer.append(bytes(message))
        except OSError as err:
            self._failed(err)
            return
        self.stats["appended"] += 1
        if self.stats["failing"]:
            self.stats["failing"] = False
            log.warning("journal writes work again", extra={"path": self.stats["path"]})

    def sync_if_due(self) -> None:
        """Let an interval fsync happen while the feed is idle."""
        if self._writer is not None:
            try:
                self._writer.sync_if_due()
            except OSError as err:
                self._failed(err)

    def close(self, path: Path | None = None) -> None:
        """Close the open file (only if it is ``path``, when given); the next append reopens."""
        if self._writer is None or (path is not None and self._writer.path != path):
            return
        try:
            self._writer.close()
        except OSError as err:
            self._failed(err)
        self._writer = None

    def _failed(self, err: OSError) -> None:
        stats = self.stats
        stats["write_errors"] += 1
        stats["last_error"] = f"{type(err).__name__}: {err}"
        now = time.monotonic()
        if not stats["failing"] or now - self._error_logged >= ERROR_LOG_SECONDS:
            self._error_logged = now
            log.error(
                "journal write failed: aggregation goes on in memory, the journal is incomplete",
                extra={"path": stats["path"], "error": stats["last_error"], "write_errors": stats["write_errors"]},
            )
        stats["failing"] = True
