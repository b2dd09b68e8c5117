"""The K-data store: completed bars on disk as Parquet, readable while the agent writes.

Layout (hive-partitioned, so ``pd.read_parquet(root / "ktype=MIN")`` and duckdb read
it as it is)::

    root/ktype=MIN/date=2026-11-20/data.parquet                       one per day x ktype, compacted
    root/ktype=MIN/date=2026-11-20/part-<ns>-<pid>-<n>.parquet         appended during the day
    root/ktype=MIN/date=2026-11-20/.tmp-<...>                          being written (never read)

``date`` is the date of the bar's label (a WEEK bar lives under its Friday).  Every file is
written under a temporary name, fsynced and renamed into place, and the directory fsynced:
a reader sees a whole file or none, and a crash leaves at most a ``.tmp-`` file that every
reader ignores (pyarrow skips names starting with ``.``) and the next compaction removes.

The same (symbol, datetime) written twice -- a recovery re-emits bars it already stored --
resolves to the latest write: files are read oldest first (``data.parquet``, then the parts
by name, which is by write time) and the last row wins.  Compaction merges a day's files into
one ``data.parquet``, deduplicated and sorted by symbol and datetime.

One process writes a store at a time (an ``fcntl`` lock on ``root/.writer.lock``); any
number read it at the same time, without any lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hkrt._hkrt import normalize_symbol
from hkrt.ktype import KType

log = logging.getLogger("hkrt.store")

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "amount")
SCHEMA = pa.schema(
    [("symbol", pa.string()), ("datetime", pa.timestamp("ms"))] + [(c, pa.float64()) for c in BAR_COLUMNS]
)
DATA_FILE = "data.parquet"
_KTYPES = list(KType)  # the completed-bar records' ktype index
_ROW_GROUP = 64 * 1024  # rows: one symbol's day of MIN bars sits in one or two row groups
_counter = itertools.count()

DateLike = dt.date | dt.datetime | str | pd.Timestamp | np.datetime64


def default_store_root() -> Path:
    """Where the store lives unless told: ``$HKRT_STORE``, else ``$HKRT_HOME/store``, else
    ``$XDG_DATA_HOME/hkrt/store``, else ``~/.local/share/hkrt/store``."""
    if os.environ.get("HKRT_STORE"):
        return Path(os.environ["HKRT_STORE"])
    if os.environ.get("HKRT_HOME"):
        return Path(os.environ["HKRT_HOME"]) / "store"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "hkrt" / "store"


def empty_bars() -> pd.DataFrame:
    """The long frame of no bars, with the store's columns and dtypes."""
    return _to_pandas(SCHEMA.empty_table())


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    # nanosecond datetimes, as agent.kdata() gives them, so frames from both compare equal
    frame["datetime"] = frame["datetime"].astype("datetime64[ns]")
    return frame


class KDataStore:
    """Completed bars of every ktype on disk, one Parquet file per day x ktype once compacted.

    Args:
        root: the store directory (created on the first write).
        fsync: fsync every file and directory change, so a power loss keeps every write that
            returned.  Without it a crash of the process still loses nothing written (the
            files are whole when renamed), but the OS may lose recent files on a power loss.
    """

    def __init__(self, root: str | Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._lock_fd = -1
        self.unreadable: list[str] = []  # files skipped on read (torn by a power loss without fsync)

    def __repr__(self) -> str:
        return f"KDataStore({str(self.root)!r})"

    # ---------------------------------------------------------------- paths
    def partition(self, ktype: KType | str, day: dt.date) -> Path:
        return self.root / f"ktype={KType.parse(ktype).value}" / f"date={day:%Y-%m-%d}"

    def days(self, ktype: KType | str) -> list[dt.date]:
        """The label dates that have bars of ``ktype``, oldest first."""
        base = self.root / f"ktype={KType.parse(ktype).value}"
        if not base.is_dir():
            return []
        out = []
        for entry in base.iterdir():
            if entry.name.startswith("date=") and entry.is_dir():
                with contextlib.suppress(ValueError):
                    out.append(dt.date.fromisoformat(entry.name[5:]))
        return sorted(out)

    @staticmethod
    def files(partition: Path) -> list[Path]:
        """A partition's readable files, oldest first: the compacted file, then the parts by name."""
        if not partition.is_dir():
            return []
        parts = sorted(p for p in partition.iterdir() if p.name.startswith("part-") and p.name.endswith(".parquet"))
        data = partition / DATA_FILE
        return ([data] if data.exists() else []) + parts

    # ---------------------------------------------------------------- write
    def write(self, bars: pd.DataFrame | np.ndarray, ktype: KType | str | None = None) -> int:
        """Append bars; returns how many rows were written.

        ``bars`` is a structured array of completed-bar records (``hkrt._hkrt.COMPLETED_DTYPE``:
        symbol, ktype index, datetime, OHLCV -- what ``on_bars`` receives), or a long DataFrame
        with ``symbol``, ``datetime`` and OHLCV columns plus ``ktype`` (or the ``ktype``
        argument).  One part file is written per (ktype, label date).  Raises OSError when the
        disk refuses (nothing partial becomes visible).
        """
        frame = _as_frame(bars, ktype)
        if frame.empty:
            return 0
        self._acquire_writer()
        dates = frame["datetime"].dt.date
        for (kname, day), rows in frame.groupby([frame["ktype"], dates], sort=True):
            table = pa.Table.from_pandas(rows[list(SCHEMA.names)], schema=SCHEMA, preserve_index=False)
            name = f"part-{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}.parquet"
            self._write_atomic(self.partition(kname, day), name, table)
        return len(frame)

    def compact(self, ktype: KType | str | None = None, *, before: dt.date | None = None) -> int:
        """Merge each partition's files into one ``data.parquet`` (deduplicated, sorted).

        Only partitions of ``ktype`` (default all) and with a date before ``before`` (default
        any) that have part files.  Returns how many partitions were compacted.
        """
        ktypes = list(KType) if ktype is None else [KType.parse(ktype)]
        done = 0
        for k in ktypes:
            for day in self.days(k):
                if before is not None and day >= before:
                    continue
                partition = self.partition(k, day)
                files = self.files(partition)
                if not any(f.name.startswith("part-") for f in files):
                    continue
                self._acquire_writer()
                table = _dedup(self._read(files, None, None, None)).sort_by([("symbol", "ascending"),
                                                                             ("datetime", "ascending")])
                self._write_atomic(partition, DATA_FILE, table)
                for f in files:
                    if f.name != DATA_FILE:
                        f.unlink(missing_ok=True)
                for stale in partition.glob(".tmp-*"):  # a crash mid-write left it; nobody reads it
                    stale.unlink(missing_ok=True)
                self._sync_dir(partition)
                done += 1
        return done

    def _write_atomic(self, directory: Path, name: str, table: pa.Table) -> None:
        new_dir = not directory.is_dir()
        directory.mkdir(parents=True, exist_ok=True)
        if new_dir:  # the new directory's entry must survive a power loss too
            self._sync_dir(directory.parent)
            self._sync_dir(directory.parent.parent)
        tmp = directory / f".tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as file:
                pq.write_table(table, file, compression="zstd", row_group_size=_ROW_GROUP)
                file.flush()
                if self.fsync:
                    os.fsync(file.fileno())
            os.replace(tmp, directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._sync_dir(directory)

    def _sync_dir(self, directory: Path) -> None:
        if not self.fsync:
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _acquire_writer(self) -> None:
        if self._lock_fd >= 0:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            raise OSError(errno.EBUSY, f"another process writes the store {self.root}") from err
        self._lock_fd = fd

    def close(self) -> None:
        """Release the writer lock (readers never take it)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # ----------------------------------------------------------------- read
    def load(
        self,
        symbols: str | Iterable[str] | None,
        ktype: KType | str,
        start: DateLike | None = None,
        end: DateLike | None = None,
    ) -> pd.DataFrame:
        """Bars as a long frame (``symbol``, ``datetime``, OHLCV), sorted by symbol and datetime.

        ``symbols``: one, several (any spelling) or None for all.  ``start``/``end`` are
        inclusive; a date (or a date-only string) means the whole day.  No bars: an empty frame.
        """
        k = KType.parse(ktype)
        wanted = None if symbols is None else sorted({normalize_symbol(s) for s in _as_list(symbols)})
        lo, hi = _bound(start, end_of_day=False), _bound(end, end_of_day=True)
        tables = []
        for day in self.days(k):
            if (lo is not None and day < lo.date()) or (hi is not None and day > hi.date()):
                continue
            for _attempt in range(5):
                files = self.files(self.partition(k, day))
                vanished: list[Path] = []
                table = self._read(files, wanted, lo, hi, vanished)
                if not vanished:
                    break
                # compacted while we read: an old data.parquet plus deleted parts would lose rows
            if files:
                tables.append(table if len(files) == 1 else _dedup(table))
        if not tables:
            return empty_bars()
        table = pa.concat_tables(tables).sort_by([("symbol", "ascending"), ("datetime", "ascending")])
        return _to_pandas(table)

    def minute_bars(
        self, symbols: Sequence[str] | None, day: dt.date, until: dt.datetime | None = None
    ) -> pd.DataFrame:
        """Today's stored MIN bars up to ``until``: the store as a backfill source (hkrt.backfill)."""
        end = until if until is not None else dt.datetime.combine(day, dt.time(23, 59, 59))
        return self.load(symbols, KType.MIN, dt.datetime.combine(day, dt.time()), end)

    def _read(
        self,
        files: list[Path],
        symbols: list[str] | None,
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
        vanished: list[Path] | None = None,
    ) -> pa.Table:
        filters: list[Any] = []
        if symbols is not None:
            filters.append(("symbol", "in", symbols))
        if lo is not None:
            filters.append(("datetime", ">=", lo.to_pydatetime()))
        if hi is not None:
            filters.append(("datetime", "<=", hi.to_pydatetime()))
        tables = []
        for f in files:
            try:
                tables.append(pq.read_table(f, schema=SCHEMA, filters=filters or None))
            except (OSError, pa.ArrowInvalid) as err:
                if isinstance(err, FileNotFoundError):  # compacted away after we listed it
                    if vanished is not None:
                        vanished.append(f)
                    continue
                log.warning("skipped an unreadable store file", extra={"path": str(f), "error": str(err)})
                self.unreadable.append(str(f))
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table()

    def iter_frames(self, ktype: KType | str) -> Iterator[tuple[dt.date, pd.DataFrame]]:
        """Each label date's bars of ``ktype`` (for export of big ranges a day at a time)."""
        for day in self.days(ktype):
            yield day, self.load(None, ktype, day, day)


def _dedup(table: pa.Table) -> pa.Table:
    """Keep the last row of each (symbol, datetime): rows come oldest file first."""
    if table.num_rows < 2:
        return table
    frame = table.to_pandas()
    keep = ~frame.duplicated(["symbol", "datetime"], keep="last").to_numpy()
    return table.filter(pa.array(keep)) if not keep.all() else table


def _as_list(symbols: str | Iterable[str]) -> list[str]:
    return [symbols] if isinstance(symbols, str) else list(symbols)


def _bound(value: DateLike | None, *, end_of_day: bool) -> pd.Timestamp | None:
    """An inclusive bound: a date (or a date-only string) is the whole day."""
    if value is None:
        return None
    whole_day = (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
        isinstance(value, str) and len(value.strip()) <= 10
    )
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("Asia/Shanghai").tz_localize(None)
    if whole_day:
        ts = ts.normalize()
        if end_of_day:
            ts = ts + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
    return ts


def _as_frame(bars: pd.DataFrame | np.ndarray, ktype: KType | str | None) -> pd.DataFrame:
    if isinstance(bars, np.ndarray):
        if bars.dtype.names is None or "ktype" not in bars.dtype.names:
            raise TypeError("write() takes completed-bar records (COMPLETED_DTYPE) or a DataFrame")
        kinds = np.array([k.value for k in _KTYPES], dtype=object)
        frame = pd.DataFrame(
            {
                "ktype": kinds[bars["ktype"].astype(np.intp)],
                "symbol": np.char.decode(bars["symbol"], "ascii"),
                "datetime": bars["datetime"].astype("datetime64[ms]"),
                **{c: bars[c].astype(np.float64) for c in BAR_COLUMNS},
            }
        )
        return frame
    frame = bars.reset_index() if "datetime" not in bars.columns else bars
    missing = [c for c in SCHEMA.names if c not in frame.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}")
    if "ktype" not in frame.columns:
        if ktype is None:
            raise ValueError("bars have no ktype column: pass ktype=")
        frame = frame.assign(ktype=KType.parse(ktype).value)
    else:
        frame = frame.assign(ktype=[KType.parse(k).value for k in frame["ktype"]])
    return frame.assign(
        symbol=[normalize_symbol(s) for s in frame["symbol"]],
        datetime=pd.to_datetime(frame["datetime"]).astype("datetime64[ms]"),
    )


def _resolve(store: KDataStore | str | Path | None) -> KDataStore:
    if isinstance(store, KDataStore):
        return store
    root = Path(store) if store is not None else default_store_root()
    if not root.is_dir():
        raise FileNotFoundError(f"no K-data store at {root} (pass store=, or set HKRT_STORE / HKRT_HOME)")
    return KDataStore(root)


def load_kdata(
    symbol: str | Sequence[str] | None = None,
    ktype: KType | str | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    symbols: Sequence[str] | None = None,
    store: KDataStore | str | Path | None = None,
) -> pd.DataFrame:
    """Stored bars, for a notebook: ``hkrt.load_kdata("600000.SH", "MIN", "2026-11-20")``.

    One symbol (any spelling) gives a frame indexed by ``datetime`` with open, high, low,
    close, volume, amount, like ``agent.kdata``.  ``symbols=[...]``, a list as ``symbol``, or
    no symbol at all (every symbol) give a long frame with ``symbol`` and ``datetime`` columns,
    sorted by symbol then datetime.  ``start``/``end`` are inclusive; a date or a date-only
    string means the whole day, a datetime the instant.  No bars in the range: an empty frame
    (not an error).  An unknown ktype or symbol raises ValueError; a store directory that does
    not exist raises FileNotFoundError.  ``store``: a KDataStore or its directory; by default
    :func:`default_store_root`.
    """
    if ktype is None:
        raise TypeError("load_kdata() needs a ktype, such as 'MIN' or 'DAY'")
    k = KType.parse(ktype)
    if symbol is not None and symbols is not None:
        raise TypeError("pass symbol or symbols, not both")
    one = isinstance(symbol, str)
    wanted = symbol if symbols is None else symbols
    frame = _resolve(store).load(wanted, k, start, end)
    if not one:
        return frame
    return frame.drop(columns="symbol").set_index("datetime")


class StoreWriter:
    """The agent's side of the store: completed bars queued, written every few seconds.

    A failed write (disk full, permission, the writer lock held elsewhere) is logged once per
    failure streak, counted, and retried at the next flush with the bars still queued; the
    queue is bounded (``max_pending`` rows, the oldest dropped and counted beyond that) so a
    store that stays broken cannot eat the machine's memory.  The engine keeps every bar in
    memory regardless.
    """

    def __init__(self, store: KDataStore, *, max_pending: int = 1_000_000) -> None:
        self.store = store
        self.max_pending = max_pending
        self._pending: list[np.ndarray] = []
        self._rows = 0
        self._lock = threading.Lock()  # the queue
        self._write_lock = threading.Lock()  # one flush at a time
        self._newest_day: dt.date | None = None  # newest intraday/DAY label date written
        self.stats: dict[str, Any] = {
            "root": str(store.root),
            "written": 0,
            "flushes": 0,
            "pending": 0,
            "write_errors": 0,
            "last_error": None,
            "failing": False,
            "dropped": 0,
            "last_flush_seconds": None,
            "compactions": 0,
            "history": None,
        }

    def add(self, records: np.ndarray) -> None:
        if not len(records):
            return
        with self._lock:
            self._pending.append(records)
            self._rows += len(records)
            while self._rows > self.max_pending and len(self._pending) > 1:
                dropped = self._pending.pop(0)
                self._rows -= len(dropped)
                self.stats["dropped"] += len(dropped)
            self.stats["pending"] = self._rows

    def flush(self, *, compact: bool = False) -> bool:
        """Write what is queued; True when the queue is empty afterwards.  Never raises OSError."""
        with self._write_lock:
            with self._lock:
                batch, self._pending, rows = self._pending, [], self._rows
                self._rows = 0
            started = time.perf_counter()
            try:
                if batch:
                    records = np.concatenate(batch)
                    self.store.write(records)
                    self._after_write(records)
                if compact:
                    self.stats["compactions"] += self.store.compact()
            except OSError as err:
                with self._lock:  # back to the front of the queue, in order
                    self._pending[:0] = batch
                    self._rows += rows
                    self.stats["pending"] = self._rows
                self._failed(err)
                return False
            self.stats["written"] += rows
            self.stats["flushes"] += 1 if batch else 0
            self.stats["last_flush_seconds"] = time.perf_counter() - started
            with self._lock:
                self.stats["pending"] = self._rows
            if self.stats["failing"]:
                self.stats["failing"] = False
                log.warning("store writes work again", extra={"root": str(self.store.root)})
            return True

    def _after_write(self, records: np.ndarray) -> None:
        """A day's files are compacted once bars of a later day arrive (the day is over)."""
        intraday_or_day = records["ktype"] <= _KTYPES.index(KType.DAY)
        if not intraday_or_day.any():
            return
        newest = records["datetime"][intraday_or_day].max().astype("datetime64[D]").item()
        if self._newest_day is not None and newest > self._newest_day:
            for k in _KTYPES[: _KTYPES.index(KType.DAY) + 1]:
                self.stats["compactions"] += self.store.compact(k, before=newest)
        if self._newest_day is None or newest > self._newest_day:
            self._newest_day = newest

    def _failed(self, err: OSError) -> None:
        stats = self.stats
        stats["write_errors"] += 1
        stats["last_error"] = f"{type(err).__name__}: {err}"
        if not stats["failing"]:
            log.error(
                "store write failed: the bars stay queued and in memory, retried at the next flush",
                extra={"root": str(self.store.root), "error": stats["last_error"], "pending": stats["pending"]},
            )
        stats["failing"] = True
