"""The agent's spot journal: one file per market day, written without ever stopping the feed.

Every accepted wire message is appended, exactly as received, to ``spots-YYYYMMDD.hkj`` of
the market day the agent decided (hkrt.feed.journal format; never the day one message's header
claims).  A write that fails (disk full, I/O error) is logged loudly -- once per failure
streak, then again every minute while it lasts -- counted, and retried with the next message
(a file that failed to open is retried at most every :data:`OPEN_RETRY_SECONDS`, since opening
scans it); aggregation goes on in memory regardless.  A damaged file is salvaged when opened
(hkrt.feed.journal.salvage: intact records kept, the original kept as a ``.corrupt`` copy) and
counted in ``stats["corrupt_files"]``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import deque
from pathlib import Path
from typing import Any

from hkrt.core.china_time import CHINA_TZ as CHINA_TZ  # kept importable from here (agent, backfill)
from hkrt.core.china_time import china_today as china_today
from hkrt.feed.journal import JournalWriter, SalvageReport, salvage

log = logging.getLogger("hkrt.agent")

ERROR_LOG_SECONDS = 60.0  # a failing journal is logged again this often
FSYNC_POLICIES = ("interval", "always", "never")
OPEN_RETRY_SECONDS = 5.0  # a journal file that failed to open is tried again at most this often
MAX_SALVAGE_REPORTS = 10  # the latest salvage reports kept in stats["salvaged"]
_FILE_NAME = re.compile(r"spots-(\d{8})\.hkj")


class DayJournal:
    """Appends messages to the journal file of their market day."""

    def __init__(self, directory: str | Path, *, fsync: str = "interval", fsync_interval: float = 1.0) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"journal_fsync must be 'interval', 'always' or 'never', not {fsync!r}")
        self.directory = Path(directory).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._fsync_interval = fsync_interval
        self._writer: JournalWriter | None = None
        self._day: dt.date | None = None
        self._error_logged = 0.0  # monotonic time of the last error log of a failure streak
        self._open_failed: tuple[dt.date, float] | None = None  # (day, monotonic time) of a failed open
        self._salvaged: deque[dict[str, Any]] = deque(maxlen=MAX_SALVAGE_REPORTS)
        self.stats: dict[str, Any] = {
            "path": None,
            "appended": 0,
            "write_errors": 0,
            "last_error": None,
            "failing": False,
            "recovered": None,
            "corrupt_files": 0,  # damaged journal files found and salvaged
            "salvaged": [],  # their salvage reports (dicts), the latest MAX_SALVAGE_REPORTS
        }

    def path(self, day: dt.date) -> Path:
        return self.directory / f"spots-{day:%Y%m%d}.hkj"

    def latest(self) -> Path:
        """The newest day's file dated today or earlier (China date), or today's (which may not exist).

        A file dated after today is never chosen (a wrong clock or a bad message made it; it
        would hide today's journal): it is logged at WARNING and left alone.  ``.corrupt``
        copies and other names are ignored.
        """
        today = china_today()
        days: list[dt.date] = []
        future: list[dt.date] = []
        for file in self.directory.glob("spots-????????.hkj"):
            day = _file_day(file.name)
            if day is None:
                continue
            (days if day <= today else future).append(day)
        if future:
            log.warning(
                "ignoring journal files dated after today",
                extra={"directory": str(self.directory), "files": [self.path(d).name for d in sorted(future)[:5]]},
            )
        return self.path(max(days)) if days else self.path(today)

    def salvage(self, path: str | Path) -> SalvageReport:
        """hkrt.feed.journal.salvage on ``path`` (closing it first if open), counted in ``stats``."""
        path = Path(path).expanduser()
        self.close(path)
        report = salvage(path)
        self._count_salvage(report)
        return report

    def append(self, message: bytes | bytearray | memoryview, day: dt.date) -> None:
        """Append an accepted message to ``day``'s file; a failure is logged and counted, never raised.

        ``day`` is the market day the agent decided, never one taken from the message.
        """
        if isinstance(day, dt.datetime):
            day = day.date()
        elif not isinstance(day, dt.date):
            raise TypeError(f"day must be a datetime.date (the agent's market day), not {day!r}")
        try:
            if self._writer is None or self._day != day:
                self.close()
                path = self.path(day)
                self.stats["path"] = str(path)
                failed = self._open_failed
                if failed is not None and failed[0] == day and time.monotonic() - failed[1] < OPEN_RETRY_SECONDS:
                    self._failed(None)  # one more message of the streak, not another scan of the file
                    return
                self._open_failed = None
                try:
                    writer = JournalWriter(path, fsync=self._fsync, fsync_interval=self._fsync_interval)
                except OSError:
                    self._open_failed = (day, time.monotonic())
                    raise
                if writer.salvage_report is not None:
                    self._count_salvage(writer.salvage_report)
                self._writer, self._day = writer, day
            self._writer.append(bytes(message))
        except OSError as err:
            self._failed(err)
            return
        self.stats["appended"] += 1
        if self.stats["failing"]:
            self.stats["failing"] = False
            log.warning("journal writes work again", extra={"path": self.stats["path"]})

    def _count_salvage(self, report: SalvageReport) -> None:
        if report.damaged:
            self.stats["corrupt_files"] += 1
            self._salvaged.append(report.as_dict())
            self.stats["salvaged"] = list(self._salvaged)

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

    def _failed(self, err: OSError | None) -> None:
        """Count a message the journal did not get (``err`` None: the streak's last error still holds)."""
        stats = self.stats
        stats["write_errors"] += 1
        if err is not None:
            stats["last_error"] = f"{type(err).__name__}: {err}"
        now = time.monotonic()
        if not stats["failing"] or now - self._error_logged >= ERROR_LOG_SECONDS:
            self._error_logged = now
            log.error(
                "journal write failed: aggregation goes on in memory, the journal is incomplete",
                extra={"path": stats["path"], "error": stats["last_error"], "write_errors": stats["write_errors"]},
            )
        stats["failing"] = True


def newest_day_file(directory: str | Path) -> Path | None:
    """The ``spots-YYYYMMDD.hkj`` of the latest day in ``directory`` (another process's journal, read while it
    is written: a backfill source), or None when it holds none (yet)."""
    dated = [(day, f) for f in Path(directory).glob("spots-????????.hkj") if (day := _file_day(f.name)) is not None]
    return max(dated)[1] if dated else None


def _file_day(name: str) -> dt.date | None:
    """The date in a ``spots-YYYYMMDD.hkj`` name (None for another name or an impossible date)."""
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        return None
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None
