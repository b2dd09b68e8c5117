"""The K-data store: completed bars on disk as Parquet, readable while the agent writes.

Layout (hive-partitioned, so ``pd.read_parquet(root / "ktype=MIN")`` and duckdb read
it as it is)::

    root/ktype=MIN/date=2026-11-20/data.parquet                       one per day x ktype, compacted
    root/ktype=MIN/date=2026-11-20/part-<ns>-<pid>-<n>.parquet         appended during the day
    root/ktype=MIN/date=2026-11-20/.tmp-<...>                          being written (never read)
    root/ktype=MIN/date=2026-11-20/_quarantine/<name>.unreadable       a file compaction could not read
    root/_spill/spill-<seq>-<pid>-<rows>.npy                           queued bars the store could not take yet

``date`` is the date of the bar's label (a WEEK bar lives under its Friday).  Every file is
written under a temporary name, fsynced and renamed into place, and the directory fsynced:
a reader sees a whole file or none, and a crash leaves at most a ``.tmp-`` file that every
reader ignores (pyarrow skips names starting with ``.`` and ``_``) and the next compaction removes.

The same (symbol, datetime) written twice -- a recovery re-emits bars it already stored --
resolves to the latest write: files are read oldest first (``data.parquet``, then the parts
by name, which is by write time) and the last row wins.  Compaction merges a day's files into
one ``data.parquet``, deduplicated and sorted by symbol and datetime; it deletes only files it
has read, after the merged file was written and read back.

One process writes a store at a time (a lock on ``root/.writer.lock``); any number read it at
the same time, without any lock.  Every path is ``~``-expanded; pyarrow is only ever handed
open files, never path strings (it expands ``~`` on its own, which once made the store write
to ``./~`` and read from ``$HOME``).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import errno
import itertools
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # ships no type information; pandas imports it anyway

from hkrt._hkrt import normalize_symbol
from hkrt.core.china_time import CHINA_TZ
from hkrt.core.ktype import KTYPE_BY_RECORD_CODE, KType
from hkrt.core.logs import LogLimiter, log_limited
from hkrt.feed.journal import fsync_directory

if TYPE_CHECKING:
    from hkrt.pgstore.reader import PgBarStore

log = logging.getLogger("hkrt.store")

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "amount")
# ``filled``: a flat bar no spot landed in (docs/aggregation.md).  Files written before it
# existed read it as null, which loads as False.
SCHEMA = pa.schema(
    [("symbol", pa.string()), ("datetime", pa.timestamp("ms"))]
    + [(c, pa.float64()) for c in BAR_COLUMNS]
    + [("filled", pa.bool_())]
)
DATA_FILE = "data.parquet"
QUARANTINE_DIR = "_quarantine"  # beside the unreadable file; pyarrow's discovery skips "_" names
SPILL_DIR = "_spill"
_ROW_GROUP = 64 * 1024  # rows: one symbol's day of MIN bars sits in one or two row groups
_counter = itertools.count()
_READ_ERRORS = (OSError, pa.ArrowException)  # pyarrow reports a corrupt page as a plain OSError too
_RECORD_FIELDS = ("symbol", "ktype", "datetime", *BAR_COLUMNS)  # of a completed-bar record
_LOG_EVERY = 60.0  # seconds between repeated warnings of one kind

DateLike: TypeAlias = dt.date | dt.datetime | str | pd.Timestamp | np.datetime64


def __getattr__(name: str) -> Any:
    if name == "pq":  # ``hkrt.store.pq``: pyarrow.parquet, imported on first use (tests patch its functions)
        return _parquet()
    raise AttributeError(f"module 'hkrt.store' has no attribute {name!r}")


def user_path(path: str | os.PathLike[str]) -> Path:
    """A path the user gave: ``~`` and ``~user`` expanded, made absolute (so a later chdir
    cannot move the store, and no library sees a ``~`` it might expand differently)."""
    return Path(os.path.expanduser(os.fspath(path))).absolute()


def default_store_root() -> Path:
    """Where the store lives unless told: ``$HKRT_STORE``, else ``$HKRT_HOME/store``, else
    ``$XDG_DATA_HOME/hkrt/store``, else ``~/.local/share/hkrt/store`` (``~`` expanded in each);
    on Windows the last is ``%LOCALAPPDATA%\\hkrt\\store``, where per-user application data lives."""
    if os.environ.get("HKRT_STORE"):
        return user_path(os.environ["HKRT_STORE"])
    if os.environ.get("HKRT_HOME"):
        return user_path(os.environ["HKRT_HOME"]) / "store"
    return user_path(_data_home()) / "hkrt" / "store"


def _data_home() -> str:
    """Where per-user application data lives: ``$XDG_DATA_HOME``, else ``%LOCALAPPDATA%`` on
    Windows, else ``~/.local/share``."""
    if os.environ.get("XDG_DATA_HOME"):
        return os.environ["XDG_DATA_HOME"]
    if os.name == "nt":
        return os.environ.get("LOCALAPPDATA") or "~/AppData/Local"
    return "~/.local/share"


def empty_bars() -> pd.DataFrame:
    """The long frame of no bars, with the store's columns and dtypes."""
    return _to_pandas(SCHEMA.empty_table())


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    # nanosecond datetimes, as agent.kdata() gives them, so frames from both compare equal
    frame["datetime"] = frame["datetime"].astype("datetime64[ns]")
    frame["filled"] = frame["filled"].fillna(False).astype(bool)
    return frame


def _lock_exclusive(fd: int) -> str:
    """Lock the open file ``fd`` for this process without waiting, by what the platform has: flock
    (POSIX), msvcrt.locking (Windows); "none" where neither module exists.  Both locks die with the
    process, so a crashed writer never leaves the store locked.  Raises OSError when another
    process holds the lock.  The modules are imported here, not with hkrt.store: each exists on one
    platform only."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # one byte at offset 0: locking past the end of a file is allowed
        return "msvcrt"
    try:
        import fcntl
    except ImportError:
        return "none"
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return "flock"


def lock_writer_file(directory: Path, what: str) -> tuple[int, str]:
    """Create ``directory`` and take its one-writer lock (``.writer.lock``): (open fd, how it is held, as
    :func:`_lock_exclusive` says).  Raises OSError EBUSY, naming ``what``, when another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        how = _lock_exclusive(fd)
    except OSError as err:
        os.close(fd)
        raise OSError(errno.EBUSY, f"another process writes {what}") from err
    return fd, how


class KDataStore:
    """Completed bars of every ktype on disk, one Parquet file per day x ktype once compacted.

    Args:
        root: the store directory (created on the first write; ``~`` expanded).
        fsync: fsync every file and directory change, so a power loss keeps every write that
            returned.  Without it a crash of the process still loses nothing written (the
            files are whole when renamed), but the OS may lose recent files on a power loss.

    ``stats``: ``unreadable`` (files a read skipped, counted each time), ``quarantined`` (files
    compaction moved aside), ``last_unreadable`` (path and error).  ``unreadable`` (attribute):
    the last 1,000 paths skipped.  ``writer_lock``: how the one-writer lock is held once this
    store has written ("flock", "msvcrt", or "none" with a WARNING where the platform has neither).
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = user_path(root)
        self.fsync = fsync
        self._lock_fd = -1
        self.writer_lock = ""  # how the one-writer guard is held once writing: "flock", "msvcrt" or "none"
        self.unreadable: collections.deque[str] = collections.deque(maxlen=1000)
        self.stats: dict[str, Any] = {"unreadable": 0, "quarantined": 0, "last_unreadable": None}
        self._limiter = LogLimiter(_LOG_EVERY)  # its own: one store's warnings never hide another's

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
        disk refuses: the part files written before it stay (each whole), nothing partial is
        visible.
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

        A file that cannot be read is never deleted: it is moved to ``_quarantine/`` in its
        partition (as ``<name>.unreadable``), logged at ERROR and counted in
        ``stats["quarantined"]``; the partition's other files are compacted.  The merged file is
        read back and compared before the files it replaces are removed.  Raises OSError when
        the disk refuses (the partition is left as it was).
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
                done += self._compact_partition(partition, files)
        return done

    def _compact_partition(self, partition: Path, files: list[Path]) -> int:
        tables, read, bad = [], [], []
        for f in files:
            try:
                tables.append(_read_parquet(f, None))
                read.append(f)
            except FileNotFoundError:  # we hold the writer lock: someone removed it by hand
                log.warning("a store file vanished during compaction", extra={"path": str(f)})
            except _READ_ERRORS as err:
                bad.append((f, err))
        for f, problem in bad:
            self._quarantine(f, problem)  # raises OSError when it cannot be moved: nothing deleted then
        if not read:
            self._sync_dir(partition)
            return 0
        table = _dedup(pa.concat_tables(tables)).sort_by([("symbol", "ascending"), ("datetime", "ascending")])
        self._write_atomic(partition, DATA_FILE, table, verify=True)
        for f in read:  # every one of them is in the verified data.parquet now
            if f.name != DATA_FILE:
                f.unlink(missing_ok=True)
        for stale in partition.glob(".tmp-*"):  # a crash mid-write left it; nobody reads it
            stale.unlink(missing_ok=True)
        self._sync_dir(partition)
        return 1

    def _quarantine(self, path: Path, err: BaseException) -> None:
        """Move an unreadable file aside (never delete it): an operator can inspect or restore it."""
        target_dir = path.parent / QUARANTINE_DIR
        target_dir.mkdir(exist_ok=True)
        stem = path.name if path.name != DATA_FILE else f"data-{time.time_ns():020d}.parquet"
        target = target_dir / f"{stem}.unreadable"
        os.replace(path, target)
        self._sync_dir(path.parent)
        self._sync_dir(target_dir)
        self.stats["quarantined"] += 1
        self.stats["last_unreadable"] = f"{path}: {type(err).__name__}: {err}"
        log.error(
            "compaction could not read a store file: moved it to the quarantine, its bars are not in the store",
            extra={"path": str(path), "moved_to": str(target), "error": f"{type(err).__name__}: {err}"},
        )

    def _write_atomic(self, directory: Path, name: str, table: pa.Table, *, verify: bool = False) -> None:
        new_dir = not directory.is_dir()
        directory.mkdir(parents=True, exist_ok=True)
        if new_dir:  # the new directory's entry must survive a power loss too
            self._sync_dir(directory.parent)
            self._sync_dir(directory.parent.parent)
        tmp = directory / f".tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as file:
                _parquet().write_table(table, file, compression="zstd", row_group_size=_ROW_GROUP)
                file.flush()
                if self.fsync:
                    os.fsync(file.fileno())
            if verify:  # what replaces other files must read back whole before they go
                try:
                    back = _read_parquet(tmp, None)
                except _READ_ERRORS as err:
                    raise OSError(errno.EIO, f"the file just written does not read back: {err}") from err
                if back.num_rows != table.num_rows or not back.equals(table):
                    raise OSError(errno.EIO, f"the file just written reads back {back.num_rows} of {table.num_rows}")
            os.replace(tmp, directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._sync_dir(directory)

    def _sync_dir(self, directory: Path) -> None:
        if self.fsync:
            fsync_directory(directory)

    def _acquire_writer(self) -> None:
        if self._lock_fd >= 0:
            return
        fd, how = lock_writer_file(self.root, f"the store {self.root}")
        if how == "none":
            log.warning(
                "no file lock on this platform (neither fcntl nor msvcrt): nothing stops a second process "
                "from writing this store at the same time; run one writer per store",
                extra={"store": str(self.root)},
            )
        self._lock_fd, self.writer_lock = fd, how

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
        A file that cannot be read is skipped with a WARNING and counted (``stats``).
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
            else:
                self._skipped(vanished[0], FileNotFoundError("compacted away five times while reading"))
            if files:
                tables.append(table if len(files) == 1 else _dedup(table))
        if not tables:
            return empty_bars()
        table = pa.concat_tables(tables).sort_by([("symbol", "ascending"), ("datetime", "ascending")])
        return _to_pandas(table)

    def minute_bars(
        self, symbols: Sequence[str] | None, day: dt.date, until: dt.datetime | None = None
    ) -> pd.DataFrame:
        """Today's stored MIN bars up to ``until``: the store as a backfill source (hkrt.agent.history_sources)."""
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
                tables.append(_read_parquet(f, filters or None))
            except FileNotFoundError:  # compacted away after we listed it
                if vanished is not None:
                    vanished.append(f)
            except _READ_ERRORS as err:
                self._skipped(f, err)
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table()

    def _skipped(self, path: Path, err: BaseException) -> None:
        self.stats["unreadable"] += 1
        self.stats["last_unreadable"] = f"{path}: {type(err).__name__}: {err}"
        self.unreadable.append(str(path))
        log_limited(
            log,
            logging.WARNING,
            ("unreadable", str(path)),
            "skipped an unreadable store file: its bars are missing from this read",
            {"path": str(path), "error": f"{type(err).__name__}: {err}", "unreadable": self.stats["unreadable"]},
            limiter=self._limiter,
        )

    def iter_frames(self, ktype: KType | str) -> Iterator[tuple[dt.date, pd.DataFrame]]:
        """Each label date's bars of ``ktype`` (for export of big ranges a day at a time)."""
        for day in self.days(ktype):
            yield day, self.load(None, ktype, day, day)


def _read_parquet(path: Path, filters: list[Any] | None) -> pa.Table:
    """One store file; an open file goes to pyarrow, so it reads exactly the file we named."""
    with open(path, "rb") as file:
        return _parquet().read_table(file, schema=SCHEMA, filters=filters)


def _parquet() -> Any:
    """The pyarrow.parquet module, imported on the first read or write rather than with hkrt.store: it
    loads pyarrow's file systems and ssl, which an agent that keeps no store never needs."""
    import pyarrow.parquet  # type: ignore[import-untyped]  # ships no type information (nor does pyarrow)

    return pyarrow.parquet


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
        ts = ts.tz_convert(CHINA_TZ).tz_localize(None)
    if whole_day:
        ts = ts.normalize()
        if end_of_day:
            ts = ts + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
    return ts


def _as_frame(bars: pd.DataFrame | np.ndarray, ktype: KType | str | None) -> pd.DataFrame:
    if isinstance(bars, np.ndarray):
        if bars.dtype.names is None or "ktype" not in bars.dtype.names:
            raise TypeError("write() takes completed-bar records (COMPLETED_DTYPE) or a DataFrame")
        kinds = np.array([k.value for k in KTYPE_BY_RECORD_CODE], dtype=object)  # indexed by the records' code
        frame = pd.DataFrame(
            {
                "ktype": kinds[bars["ktype"].astype(np.intp)],
                "symbol": np.char.decode(bars["symbol"], "ascii"),
                "datetime": bars["datetime"].astype("datetime64[ms]"),
                **{c: bars[c].astype(np.float64) for c in BAR_COLUMNS},
                "filled": bars["filled"].astype(bool) if "filled" in bars.dtype.names else False,
            }
        )
        return frame
    frame = bars.reset_index() if "datetime" not in bars.columns else bars
    missing = [c for c in SCHEMA.names if c not in frame.columns and c != "filled"]
    if missing:
        raise ValueError(f"bars lack columns {missing}")
    if "filled" not in frame.columns:  # history from elsewhere: traded bars
        frame = frame.assign(filled=False)
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


def _resolve(store: KDataStore | PgBarStore | str | os.PathLike[str] | None) -> KDataStore | PgBarStore:
    if isinstance(store, KDataStore):
        return store
    if (store is not None and not isinstance(store, (str, os.PathLike))) or _is_database_url(store):
        from hkrt.pgstore.reader import PgBarStore  # a database: its module loads only then

        if isinstance(store, PgBarStore):
            return store
        if isinstance(store, str):
            return PgBarStore(store)
        raise TypeError(f"store must be a directory, a postgresql:// URL or a store object, not {store!r}")
    root = user_path(store) if store is not None else default_store_root()
    if not root.is_dir():
        raise FileNotFoundError(f"no K-data store at {root} (pass store=, or set HKRT_STORE / HKRT_HOME)")
    return KDataStore(root)


def _is_database_url(store: object) -> bool:
    """A ``postgresql://`` store (hkrt.pgstore), not a directory."""
    return isinstance(store, str) and store.strip().lower().startswith(("postgresql://", "postgres://"))


def load_kdata(
    symbol: str | Sequence[str] | None = None,
    ktype: KType | str | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    symbols: Sequence[str] | None = None,
    store: KDataStore | PgBarStore | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Stored bars, for a notebook: ``hkrt.load_kdata("600000.SH", "MIN", "2026-11-20")``.

    One symbol (any spelling) gives a frame indexed by ``datetime`` with open, high, low,
    close, volume, amount, like ``agent.kdata``.  ``symbols=[...]``, a list as ``symbol``, or
    no symbol at all (every symbol) give a long frame with ``symbol`` and ``datetime`` columns,
    sorted by symbol then datetime.  ``start``/``end`` are inclusive; a date or a date-only
    string means the whole day, a datetime the instant.  No bars in the range: an empty frame
    (not an error).  An unknown ktype or symbol raises ValueError; a store directory that does
    not exist raises FileNotFoundError.  ``store``: a KDataStore or its directory (``~``
    expanded); by default :func:`default_store_root`.  A ``postgresql://`` URL (or a
    :class:`hkrt.pgstore.PgBarStore`) reads the bars the PostgreSQL recorder wrote, in the same shape
    (docs/scale-out.md); an unreachable database raises ``hkrt.pgstore.DatabaseUnavailable``.
    """
    if ktype is None:
        raise TypeError("load_kdata() needs a ktype, such as 'MIN' or 'DAY'")
    k = KType.parse(ktype)
    if symbol is not None and symbols is not None:
        raise TypeError("pass symbol or symbols, not both")
    one = isinstance(symbol, str)
    wanted = symbol if symbols is None else symbols
    source = _resolve(store)
    try:
        frame = source.load(wanted, k, start, end)
    finally:
        if source is not store and _is_database_url(store):
            source.close()  # a connection opened for this call only
    if not one:
        return frame
    return frame.drop(columns="symbol").set_index("datetime")


# ------------------------------------------------------------------------------ the agent's writer
def _split_by_part(records: np.ndarray) -> list[np.ndarray]:
    """Completed-bar records cut into what becomes one part file each: (ktype, label date),
    in the order KDataStore.write writes them, each keeping its rows' order (the last of two
    rows of one bar wins)."""
    day = records["datetime"].astype("datetime64[D]").astype(np.int64)
    key = records["ktype"].astype(np.int64) * (1 << 32) + (day - day.min())
    order = np.argsort(key, kind="stable")
    keys = key[order]
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.split(records[order], cuts)


def save_records(path: Path, records: np.ndarray, *, fsync: bool) -> None:
    """Records as a ``.npy`` file, whole or not at all: written under a temporary name (removed on failure),
    fsynced when asked, renamed into place.  The caller fsyncs the directory."""
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as file:
            np.save(file, records, allow_pickle=False)
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _spill_rows(path: Path) -> int:
    """Rows of a spill file, from its name ``spill-<seq>-<pid>-<rows>.npy``."""
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def _spill_seq(path: Path) -> int:
    try:
        return int(path.stem.split("-")[1])
    except (IndexError, ValueError):
        return 0


class StoreWriter:
    """The agent's side of the store: completed bars queued, written every few seconds.

    A failed write (disk full, permission, the writer lock held elsewhere) is logged once per
    failure streak, counted, and retried at the next flush with the bars still queued.  No bar
    is ever dropped; the queue is bounded like this:

    * up to ``max_pending`` rows wait in memory;
    * beyond it the oldest queued batches are spilled to files in ``spill_dir`` (default
      ``<store>/_spill``; another disk if you like), up to ``max_spill_rows`` rows on disk, with
      a WARNING when spilling starts (then at most once a minute).  Spilled bars are the oldest:
      every flush writes them first, in order, then the memory queue.  A new StoreWriter on the
      same store (after a restart) finds them and writes them first too;
    * when spilling fails too (or its limit is reached), rows stay in memory up to
      ``hard_limit`` (default 4 x ``max_pending``), with an ERROR;
    * beyond ``hard_limit``, :meth:`add` keeps the batch but blocks the producer until the store
      or the spill takes rows again, logging at ERROR every ``block_log_every`` seconds while
      blocked and trying a flush itself every ``block_poll`` seconds.

    ``written`` counts a row once its part file was written, fsynced and renamed into place.
    """

    def __init__(
        self,
        store: KDataStore,
        *,
        max_pending: int = 1_000_000,
        spill_dir: str | os.PathLike[str] | None = None,
        hard_limit: int | None = None,
        max_spill_rows: int | None = None,
        block_poll: float = 0.5,
        block_log_every: float = 5.0,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self.store = store
        self.max_pending = max_pending
        self.hard_limit = 4 * max_pending if hard_limit is None else hard_limit
        if self.hard_limit < max_pending:
            raise ValueError(f"hard_limit ({self.hard_limit}) must be at least max_pending ({max_pending})")
        self.max_spill_rows = 64 * max_pending if max_spill_rows is None else max_spill_rows
        self.spill_dir = user_path(spill_dir) if spill_dir is not None else store.root / SPILL_DIR
        self.block_poll = block_poll
        self.block_log_every = block_log_every
        self._memory: list[np.ndarray] = []  # oldest first; every spill file is older than all of it
        self._memory_rows = 0
        self._lock = threading.Lock()  # the memory queue
        self._room = threading.Condition(self._lock)  # a blocked add() waits here for room
        self._write_lock = threading.Lock()  # one flush or spill at a time: keeps the order
        self._spill_partial: dict[str, int] = {}  # spill file -> its part groups already written
        self._spill_next = 0  # next spill sequence number
        self._spill_retry_at = 0.0  # after a failed spill, not before this (monotonic)
        self._limiter = LogLimiter(_LOG_EVERY)
        self._newest_day: dt.date | None = None  # newest intraday/DAY label date written
        self._compact_before: dt.date | None = None  # compaction of days before it is due
        self.stats: dict[str, Any] = {
            "root": str(store.root),
            "written": 0,
            "flushes": 0,
            "pending": 0,
            "pending_memory": 0,
            "pending_spilled": 0,
            "max_pending": self.max_pending,
            "hard_limit": self.hard_limit,
            "write_errors": 0,
            "last_error": None,
            "failing": False,
            "last_flush_seconds": None,
            "compactions": 0,
            "compaction_errors": 0,
            "spill_dir": str(self.spill_dir),
            "spilling": False,
            "spilled_rows": 0,
            "spill_files": 0,
            "spill_errors": 0,
            "spill_unreadable": 0,
            "last_spill_error": None,
            "over_limit": 0,
            "blocked": False,
            "blocks": 0,
            "blocked_seconds": 0.0,
            "unreadable_files": 0,
            "quarantined": 0,
            "history": None,
        }
        spilled = self._spill_files()
        if spilled:
            self._spill_next = max(_spill_seq(p) for p in spilled) + 1
            rows = sum(_spill_rows(p) for p in spilled)
            log.warning(
                "found bars spilled by an earlier run: they are written first, at the next flush",
                extra={"spill_dir": str(self.spill_dir), "files": len(spilled), "rows": rows},
            )
            self.stats["spilling"] = True
        self._gauges(spilled)

    # ------------------------------------------------------------ producer side
    def add(self, records: np.ndarray) -> None:
        """Queue completed-bar records.  Never drops them; may spill older ones to disk, and
        blocks (rather than drop) while more than ``hard_limit`` rows are held in memory."""
        if not len(records):
            return
        with self._lock:
            self._memory.append(records)
            self._memory_rows += len(records)
            over = self._memory_rows > self.max_pending
            self._gauges()
        if over:
            self._relieve()
        with self._lock:
            if self._memory_rows <= self.hard_limit:
                return
        self._block()

    def _relieve(self) -> None:
        """Spill the oldest queued rows beyond max_pending, unless a flush or spill is under way
        (it frees memory itself) or the last spill failed less than a second ago."""
        if time.monotonic() < self._spill_retry_at or not self._write_lock.acquire(blocking=False):
            return
        try:
            self._spill_excess()
        finally:
            self._write_lock.release()

    def _block(self) -> None:
        started = time.monotonic()
        next_log = started
        self.stats["blocked"] = True
        self.stats["blocks"] += 1
        try:
            while True:
                now = time.monotonic()
                if now >= next_log:
                    log.error(
                        "store queue full: the bar producer waits until the store or the spill takes bars again",
                        extra={
                            "root": str(self.store.root),
                            "blocked_seconds": round(now - started, 1),
                            "pending_memory": self._memory_rows,
                            "hard_limit": self.hard_limit,
                            "last_error": self.stats["last_error"],
                            "last_spill_error": self.stats["last_spill_error"],
                        },
                    )
                    next_log = now + self.block_log_every
                # make room ourselves: an agent used in-process has no writer thread to do it
                if self._write_lock.acquire(blocking=False):
                    try:
                        self._flush_locked(compact=False)
                    except Exception:  # a bug must not break the producer out of its wait
                        log_limited(
                            log,
                            logging.ERROR,
                            "flush bug",
                            "store flush failed while the producer waits",
                            limiter=self._limiter,
                            exc_info=True,
                        )
                    finally:
                        self._write_lock.release()
                with self._lock:
                    if self._memory_rows <= self.hard_limit:
                        return
                    self._room.wait(self.block_poll)
                    if self._memory_rows <= self.hard_limit:
                        return
        finally:
            self.stats["blocked_seconds"] += time.monotonic() - started
            self.stats["blocked"] = False

    # ------------------------------------------------------------ writer side
    def flush(self, *, compact: bool = False) -> bool:
        """Write what is queued (spilled bars first, then memory); True when nothing is pending
        afterwards.  Never raises OSError: failures are logged and counted in ``stats``."""
        with self._write_lock:
            ok = self._flush_locked(compact=compact)
        with self._room:
            self._room.notify_all()
        return ok

    def _flush_locked(self, *, compact: bool) -> bool:
        started = time.perf_counter()
        wrote_before = self.stats["written"]
        try:
            self.store._acquire_writer()  # only the store's writer takes spill files
            self._write_spilled()
            self._write_memory()
        except OSError as err:
            self._failed(err)
            if time.monotonic() >= self._spill_retry_at:
                self._spill_excess()
            self._gauges(self._spill_files())
            return False
        if self.stats["written"] > wrote_before:
            self.stats["flushes"] += 1
            self.stats["last_flush_seconds"] = time.perf_counter() - started
        self._compact(everything=compact)
        if self.stats["failing"]:
            self.stats["failing"] = False
            log.warning("store writes work again", extra={"root": str(self.store.root)})
        self._gauges(self._spill_files())
        return bool(self.stats["pending"] == 0)

    def _write_groups(self, records: np.ndarray, done: int) -> tuple[int, OSError | None]:
        """Write the part groups of ``records`` after the first ``done``; returns how many are
        done and the error that stopped it.  A row counts as written once its file is in place."""
        groups = _split_by_part(records)
        for i in range(done, len(groups)):
            try:
                self.store.write(groups[i])
            except OSError as err:
                return i, err
            self.stats["written"] += len(groups[i])
            self._note_days(groups[i])
        return len(groups), None

    def _write_memory(self) -> None:
        with self._lock:
            batches = list(self._memory)
        if not batches:
            return
        records = np.concatenate(batches) if len(batches) > 1 else batches[0]
        done, err = self._write_groups(records, 0)
        with self._lock:  # only the holder of _write_lock takes from the front
            if err is None:
                del self._memory[: len(batches)]
                self._memory_rows -= len(records)
            elif done:
                rest = np.concatenate(_split_by_part(records)[done:])
                self._memory[: len(batches)] = [rest]
                self._memory_rows -= len(records) - len(rest)
        if err is not None:
            raise err

    def _write_spilled(self) -> None:
        for path in self._spill_files():
            try:
                records = np.load(path, allow_pickle=False)
                if records.ndim != 1 or not set(_RECORD_FIELDS) <= set(records.dtype.names or ()):
                    raise ValueError(f"not completed-bar records: {records.dtype}")
            except FileNotFoundError:
                continue
            except (OSError, ValueError, EOFError) as err:
                self._quarantine_spill(path, err)
                continue
            done, failure = self._write_groups(records, self._spill_partial.get(path.name, 0))
            self._spill_partial[path.name] = done
            if failure is not None:
                raise failure
            path.unlink(missing_ok=True)
            self._spill_partial.pop(path.name, None)
            self.store._sync_dir(path.parent)
            self.stats["pending_spilled"] = max(0, self.stats["pending_spilled"] - _spill_rows(path))
            self.stats["spill_files"] = max(0, self.stats["spill_files"] - 1)

    def _spill_excess(self) -> None:
        """Move the oldest memory batches to a spill file until at most max_pending rows remain
        in memory.  Caller holds _write_lock, so no flush reorders them meanwhile."""
        with self._lock:
            take, rows = 0, 0
            while take < len(self._memory) and self._memory_rows - rows > self.max_pending:
                rows += len(self._memory[take])
                take += 1
            batches = self._memory[:take]
        if not batches:
            return
        on_disk = self.stats["pending_spilled"]
        try:
            if on_disk + rows > self.max_spill_rows:
                raise OSError(errno.ENOSPC, f"the spill holds {on_disk:,} rows, its limit is {self.max_spill_rows:,}")
            self._write_spill_file(np.concatenate(batches) if len(batches) > 1 else batches[0])
        except OSError as err:
            self.stats["spill_errors"] += 1
            self.stats["last_spill_error"] = f"{type(err).__name__}: {err}"
            self._spill_retry_at = time.monotonic() + 1.0
            log_limited(
                log,
                logging.ERROR,
                "spill failed",
                "could not spill the store queue to disk: the bars stay in memory up to hard_limit, "
                "then the producer blocks",
                {
                    "spill_dir": str(self.spill_dir),
                    "error": self.stats["last_spill_error"],
                    "pending_memory": self._memory_rows,
                    "hard_limit": self.hard_limit,
                    "spill_errors": self.stats["spill_errors"],
                },
                limiter=self._limiter,
            )
            self._gauges()
            return
        with self._lock:
            del self._memory[:take]
            self._memory_rows -= rows
        self.stats["spilled_rows"] += rows
        self.stats["pending_spilled"] += rows
        self.stats["spill_files"] += 1
        self.stats["spilling"] = True
        log_limited(
            log,
            logging.WARNING,
            "spilling",
            "store queue over max_pending: spilling the oldest bars to disk, written first when the store works",
            {
                "spill_dir": str(self.spill_dir),
                "rows": rows,
                "spilled_rows": self.stats["spilled_rows"],
                "last_error": self.stats["last_error"],
            },
            limiter=self._limiter,
        )
        self._gauges()

    def _write_spill_file(self, records: np.ndarray) -> None:
        directory = self.spill_dir
        directory.mkdir(parents=True, exist_ok=True)
        name = f"spill-{self._spill_next:012d}-{os.getpid()}-{len(records)}.npy"
        save_records(directory / name, records, fsync=self.store.fsync)
        self._spill_next += 1
        self.store._sync_dir(directory)

    def _spill_files(self) -> list[Path]:
        """Spill files on disk, oldest first (by sequence number, then name)."""
        try:
            names = [p for p in self.spill_dir.iterdir() if p.name.startswith("spill-") and p.name.endswith(".npy")]
        except FileNotFoundError:
            return []
        except OSError as err:
            log_limited(
                log,
                logging.ERROR,
                "spill dir",
                "cannot list the spill directory: its bars wait",
                {"spill_dir": str(self.spill_dir), "error": str(err)},
                limiter=self._limiter,
            )
            return []
        return sorted(names, key=lambda p: (_spill_seq(p), p.name))

    def _quarantine_spill(self, path: Path, err: BaseException) -> None:
        rows = _spill_rows(path)
        self.stats["spill_unreadable"] += 1
        target = self.spill_dir / QUARANTINE_DIR / f"{path.name}.unreadable"
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(path, target)
        except OSError as move_err:
            target = path  # left in place: retried (and reported) at the next flush
            log.error("cannot move an unreadable spill file aside", extra={"path": str(path), "error": str(move_err)})
        log.error(
            "a spill file cannot be read: its bars are not in the store (file kept)",
            extra={"path": str(path), "kept_at": str(target), "rows": rows, "error": f"{type(err).__name__}: {err}"},
        )

    def _note_days(self, records: np.ndarray) -> None:
        """A day's files are compacted once bars of a later day arrive (the day is over)."""
        intraday_or_day = records["ktype"] <= KType.DAY.record_code
        if not intraday_or_day.any():
            return
        newest = records["datetime"][intraday_or_day].max().astype("datetime64[D]").item()
        if self._newest_day is not None and newest > self._newest_day:
            self._compact_before = max(self._compact_before or newest, newest)
        if self._newest_day is None or newest > self._newest_day:
            self._newest_day = newest

    def _compact(self, *, everything: bool) -> None:
        """Due compactions, after every queued row landed (so no older row lands after them)."""
        try:
            if self._compact_before is not None:
                for k in KTYPE_BY_RECORD_CODE[: KType.DAY.record_code + 1]:
                    self.stats["compactions"] += self.store.compact(k, before=self._compact_before)
                self._compact_before = None
            if everything:
                self.stats["compactions"] += self.store.compact()
        except OSError as err:  # the parts stay and are read as they are; retried at the next chance
            self.stats["compaction_errors"] += 1
            self.stats["last_error"] = f"{type(err).__name__}: {err}"
            log_limited(
                log,
                logging.ERROR,
                "compaction",
                "store compaction failed: the day's part files stay (all readable), retried later",
                {"root": str(self.store.root), "error": self.stats["last_error"]},
                limiter=self._limiter,
            )

    def _gauges(self, spilled: list[Path] | None = None) -> None:
        stats = self.stats
        if spilled is not None:  # else the running count, which every flush recounts from the directory
            stats["pending_spilled"] = sum(_spill_rows(p) for p in spilled)
            stats["spill_files"] = len(spilled)
        stats["pending_memory"] = self._memory_rows
        stats["pending"] = self._memory_rows + stats["pending_spilled"]
        stats["over_limit"] = max(0, self._memory_rows - self.max_pending)
        if stats["spilling"] and not stats["pending_spilled"]:
            stats["spilling"] = False
            log.warning("spilled store bars all written", extra={"root": str(self.store.root)})
        stats["unreadable_files"] = self.store.stats["unreadable"]
        stats["quarantined"] = self.store.stats["quarantined"]

    def _failed(self, err: OSError) -> None:
        stats = self.stats
        stats["write_errors"] += 1
        stats["last_error"] = f"{type(err).__name__}: {err}"
        if not stats["failing"]:
            log.error(
                "store write failed: the bars stay queued (memory, then spill files) and are retried",
                extra={"root": str(self.store.root), "error": stats["last_error"], "pending": stats["pending"]},
            )
        stats["failing"] = True
