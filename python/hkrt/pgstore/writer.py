"""The PostgreSQL bar recorder: completed bars queued by the agent, written by a thread of their own.

Its machinery (:class:`PgRecordWriter`) also records spots (:mod:`hkrt.pgstore.spot_writer`), with the same queue,
bounds, spill and counters; what follows says "bars" for either.

``SpotAgent(store="postgresql://…")`` uses it where a directory gives :class:`hkrt.store.StoreWriter`; it has the
same interface (``add``, ``flush``, ``stats``, ``store``) and the same promise: no bar is dropped silently.

The queue, and what happens at each bound (docs/scale-out.md, "When the database is down"):

* :meth:`add` appends to the memory queue and wakes the writer thread, which writes everything queued, oldest
  first, one transaction per batch of up to ``batch_rows`` rows (COPY into a staging table, then
  ``INSERT … ON CONFLICT DO UPDATE``: latest write wins);
* when the database cannot be reached (or fails a write), the thread moves the whole memory queue to a spill
  file, logs an ERROR once per outage, and tries again every ``retry_interval`` seconds; while it is healthy
  but behind, rows beyond ``max_pending`` are spilled too.  Spill files are older than the memory queue and
  are written first when the database is back (a WARNING says the recorder caught up, with the outage's length).
  A recorder started later on the same spill directory writes an earlier run's files first;
* the spill directory holds at most ``max_spill_rows`` rows; past it (or when the disk refuses) rows stay in
  memory, with an ERROR, up to ``hard_limit`` rows;
* past ``hard_limit``, ``when_full="block"`` (the default, as the Parquet writer) makes :meth:`add` wait until
  there is room again (ERROR every ``block_log_every`` seconds); ``when_full="drop"`` refuses the new rows
  instead, counted in ``stats["lost"]`` with an ERROR -- for a recorder that must never slow the agent down;
* a spill file that cannot be read is moved to ``_quarantine/`` (never deleted), its rows counted in
  ``stats["spill_unreadable_rows"]``; one deleted by hand before it landed is counted in ``stats["lost"]``;
* rows the database refuses (a data or constraint error), or labels outside 1990..2200, are saved to
  ``_refused/`` and counted in ``stats["refused"]``, with an ERROR; the rest of the batch is written.

``written`` counts a row once its transaction committed.  The password of the URL is never logged nor shown.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from typing import Any

import numpy as np

from hkrt.core.logs import LogLimiter, log_limited
from hkrt.pgstore import upsert as bar_upsert
from hkrt.pgstore.reader import PgBarStore
from hkrt.pgstore.schema import BARS, SchemaTooNew, existing_partitions, migrate, natively_partitioned
from hkrt.pgstore.spill import SpillDir
from hkrt.pgstore.url import connect, describe_error, psycopg_module, redact_url
from hkrt.store import _RECORD_FIELDS, _data_home, user_path

log = logging.getLogger("hkrt.store")
_LOG_EVERY = 60.0


def default_spill_dir(url: str) -> str:
    """``$HKRT_HOME/pg-spill/<host>_<port>_<database>``, else under the per-user data directory
    (``~/.local/share/hkrt/pg-spill/…``; ``%LOCALAPPDATA%\\hkrt\\pg-spill\\…`` on Windows)."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    key = f"{parts.hostname or 'local'}_{parts.port or 5432}_{parts.path.lstrip('/') or 'postgres'}"
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
    home = os.environ.get("HKRT_HOME")
    base = user_path(home) if home else user_path(_data_home()) / "hkrt"
    return str(base / "pg-spill" / key)


class PgRecordWriter:
    """Records into one PostgreSQL table from a thread of their own, with a bounded queue that spills to disk:
    the machinery :class:`PgBarWriter` (completed bars) and :class:`hkrt.pgstore.spot_writer.PgSpotWriter`
    (spots) share.  A subclass names its kind and table and gives the per-kind steps (``_split_valid``,
    ``_upsert``, ``_create_stage``, ``_make_store``; ``_materialize`` for queue items that are not records yet).

    Args:
        url: ``postgresql://user[:password]@host[:port]/database``.  The schema is created or migrated on the
            first connection.
        max_pending: rows the memory queue holds while the database keeps up; more are spilled.
        spill_dir: where queued rows go while the database is away (default :func:`default_spill_dir`).
        max_spill_rows: rows the spill directory may hold (default 64 x ``max_pending``).
        hard_limit: rows held in memory when the spill is full or failing (default 4 x ``max_pending``).
        when_full: past ``hard_limit``: ``"block"`` the producer, or ``"drop"`` (and count) the new rows.
        batch_rows: rows per transaction.
        retry_interval: seconds between attempts while the database is away.
        fsync: fsync spill files (a power loss then keeps them).
    """

    KIND = "records"  # what the log lines call the rows: "bars", "spots"
    TABLE = BARS
    THREAD_NAME = "hkrt-pg-recorder"
    APPLICATION_NAME = "hkrt-recorder"
    SPILL_FIELDS: tuple[str, ...] = ()  # fields a spill file's records must have
    INVALID = "invalid rows"  # why ``_split_valid`` refuses rows, for the log line

    def _make_store(self, url: str, connect_timeout: float) -> Any:
        raise NotImplementedError

    def _create_stage(self, conn: Any) -> None:
        raise NotImplementedError

    def _split_valid(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _upsert(self, conn: Any, records: np.ndarray, partitions: set[str] | None) -> tuple[int, list[str]]:
        raise NotImplementedError

    def _materialize(self, item: Any) -> np.ndarray:
        """A queue item as records, on the writer thread (records already: as it is)."""
        return item  # type: ignore[no-any-return]

    def __init__(
        self,
        url: str,
        *,
        max_pending: int = 1_000_000,
        spill_dir: str | os.PathLike[str] | None = None,
        max_spill_rows: int | None = None,
        hard_limit: int | None = None,
        when_full: str = "block",
        batch_rows: int = 200_000,
        retry_interval: float = 1.0,
        connect_timeout: float = 5.0,
        fsync: bool = True,
        flush_timeout: float = 60.0,
        block_log_every: float = 5.0,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        if when_full not in ("block", "drop"):
            raise ValueError(f"when_full must be 'block' or 'drop', not {when_full!r}")
        psycopg_module()  # the install hint now, not in the writer thread
        self.url = url
        self.store = self._make_store(url, connect_timeout)
        self.max_pending = max_pending
        self.hard_limit = 4 * max_pending if hard_limit is None else hard_limit
        if self.hard_limit < max_pending:
            raise ValueError(f"hard_limit ({self.hard_limit}) must be at least max_pending ({max_pending})")
        self.max_spill_rows = 64 * max_pending if max_spill_rows is None else max_spill_rows
        self.when_full = when_full
        self.batch_rows = batch_rows
        self.retry_interval = retry_interval
        self.connect_timeout = connect_timeout
        self.flush_timeout = flush_timeout
        self.block_log_every = block_log_every
        spill_path = spill_dir if spill_dir is not None else self._default_spill_dir(url)
        self.spill = SpillDir(spill_path, fsync=fsync, fields=self.SPILL_FIELDS, kind=self.KIND.rstrip("s"))
        self.spill.lock()
        self._memory: list[Any] = []  # records (or items _materialize makes records), oldest first; every spill
        # file is older than all of it
        self._memory_rows = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # wakes the thread, flush() and a blocked add()
        self._added = 0  # rows queued so far (spill files found at start count as queued first)
        self._done = 0  # rows finished (written, refused or quarantined), in queue order
        self._failed_rounds = 0
        self._flush_wanted = False
        self._closing = False
        self._retry_at = 0.0
        self._outage_started: float | None = None
        self._conn: Any = None
        self._partitions: set[str] | None = set()  # None: the table is not natively partitioned (a hypertable)
        self._thread: threading.Thread | None = None
        self._limiter = LogLimiter(_LOG_EVERY)
        self.stats: dict[str, Any] = {
            "url": redact_url(url),
            "written": 0,
            "flushes": 0,
            "pending": 0,
            "pending_memory": 0,
            "pending_spilled": 0,
            "max_pending": self.max_pending,
            "hard_limit": self.hard_limit,
            "connected": False,
            "connects": 0,
            "write_errors": 0,
            "last_error": None,
            "failing": False,
            "outages": 0,
            "last_outage_seconds": None,
            "last_flush_seconds": None,
            "schema_version": None,
            "partitions_created": 0,
            "spill_dir": str(self.spill.path),
            "spilling": False,
            "spilled_rows": 0,
            "spill_files": 0,
            "spill_errors": 0,
            "last_spill_error": None,
            "spill_unreadable": 0,
            "spill_unreadable_rows": 0,
            "refused": 0,
            "refused_files": 0,
            "lost": 0,
            "blocked": False,
            "blocks": 0,
            "blocked_seconds": 0.0,
            "history": None,
        }
        found = self.spill.files()
        self._spill_known: dict[str, int] = {p.name: SpillDir.rows(p) for p in found}  # spill files still to land
        if found:
            rows = sum(SpillDir.rows(p) for p in found)
            self._added = rows
            self.stats["spilling"] = True
            log.warning(
                f"found {self.KIND} spilled by an earlier recorder run: they are written to the database first",
                extra={"spill_dir": str(self.spill.path), "files": len(found), "rows": rows},
            )
        self._count_spill(found)
        self._gauges()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.url)!r})"

    @staticmethod
    def _default_spill_dir(url: str) -> str:
        return default_spill_dir(url)

    # ------------------------------------------------------------ producer side
    def add(self, records: Any) -> None:
        """Queue records (or an item ``_materialize`` turns into records; ``len()`` counts its rows) and wake the
        writer."""
        if not len(records):
            return
        if self._closing:
            raise RuntimeError(f"{self!r} is closed: it records nothing more")
        self._ensure_thread()
        with self._cond:
            if self.when_full == "drop" and self._memory_rows + len(records) > self.hard_limit:
                self.stats["lost"] += len(records)
                log_limited(
                    log,
                    logging.ERROR,
                    "lost",
                    f"recorder queue full (database and spill both unavailable): new {self.KIND} dropped, not recorded",
                    {"url": self.stats["url"], "rows": len(records), "lost": self.stats["lost"]},
                    limiter=self._limiter,
                )
                return
            self._memory.append(records)
            self._memory_rows += len(records)
            self._added += len(records)
            self._gauges()
            self._cond.notify_all()
            full = self._memory_rows > self.hard_limit
        if full:
            self._block()

    def _block(self) -> None:
        started = next_log = time.monotonic()
        self.stats["blocked"] = True
        self.stats["blocks"] += 1
        try:
            with self._cond:
                while self._memory_rows > self.hard_limit and not self._closing:
                    now = time.monotonic()
                    if now >= next_log:
                        log.error(
                            f"recorder queue full: the {self.KIND} producer waits until the database or the spill "
                            "takes rows",
                            extra={
                                "url": self.stats["url"],
                                "blocked_seconds": round(now - started, 1),
                                "pending_memory": self._memory_rows,
                                "hard_limit": self.hard_limit,
                                "last_error": self.stats["last_error"],
                                "last_spill_error": self.stats["last_spill_error"],
                            },
                        )
                        next_log = now + self.block_log_every
                    self._cond.wait(min(0.5, self.block_log_every))
        finally:
            self.stats["blocked_seconds"] += time.monotonic() - started
            self.stats["blocked"] = False

    def flush(self, *, compact: bool = False, timeout: float | None = None) -> bool:
        """True once everything queued before the call is written.

        Without ``timeout`` (the agent's periodic flush): False as soon as a write fails, or at once while the
        database is known to be away -- the rows wait, spilled, for the thread's next try.  With ``timeout``:
        waits up to that many seconds, through failures, for the database to come back and take them.
        ``compact`` is accepted for the Parquet writer's interface; PostgreSQL needs no compaction."""
        del compact
        self._ensure_thread()
        patient = timeout is not None
        deadline = time.monotonic() + (timeout if timeout is not None else self.flush_timeout)
        with self._cond:
            target, failures = self._added, self._failed_rounds
            self._flush_wanted = True
            self._cond.notify_all()
            if not patient and self.stats["failing"] and time.monotonic() < self._retry_at:
                return self._done >= target  # the database is away: the rows wait (spilled) for the next try
            while self._done < target and self._thread is not None:
                if not patient and self._failed_rounds != failures:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._done >= target

    def close(self, timeout: float = 30.0) -> bool:
        """Write what is queued (or spill it when the database is away), stop the thread, close the connection.
        True when nothing is left in memory."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        self._drop_connection()
        self.store.close()
        self.spill.unlock()
        if self._memory_rows:
            self.stats["lost"] += self._memory_rows
            log.error(
                f"recorder closed with {self.KIND} neither written nor spilled: they are lost",
                extra={"url": self.stats["url"], "rows": self._memory_rows, "last_error": self.stats["last_error"]},
            )
        return self._memory_rows == 0

    # ------------------------------------------------------------ the thread
    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closing:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing:
                    now = time.monotonic()
                    if now < self._retry_at:
                        self._cond.wait(self._retry_at - now)
                        continue
                    if self._memory_rows or self.stats["pending_spilled"] or self._flush_wanted:
                        break
                    self._cond.wait(1.0)
                closing = self._closing
                self._flush_wanted = False
            try:
                self._round()
            except Exception:  # a bug must not kill the recorder: log it and go on
                log.exception("recorder round failed")
                with self._cond:
                    self._failed_rounds += 1
                    self._retry_at = time.monotonic() + self.retry_interval
                    self._cond.notify_all()
            if closing:
                return

    def _round(self) -> None:
        psycopg = psycopg_module()
        started = time.perf_counter()
        written_before = self.stats["written"]
        reused = self._conn is not None
        try:
            self._spill_memory(beyond=self.max_pending)
            for attempt in (1, 2):
                try:
                    conn = self._connection()
                    self._write_spilled(conn)
                    self._write_memory(conn)
                    break
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    self._drop_connection()
                    if attempt == 2 or not reused:  # a fresh connection failed: the database is away
                        raise
                    # the server closed an idle connection (a restart): try once more with a new one
        except (psycopg.Error, SchemaTooNew, OSError) as err:
            self._failed(err)
            self._spill_memory(beyond=0)
            with self._cond:
                self._failed_rounds += 1
                self._retry_at = time.monotonic() + self.retry_interval
                self._gauges()
                self._cond.notify_all()
            return
        if self.stats["written"] > written_before:
            self.stats["flushes"] += 1
            self.stats["last_flush_seconds"] = time.perf_counter() - started
        self._recovered()
        with self._cond:
            self._gauges()
            self._cond.notify_all()

    def _connection(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = connect(self.url, connect_timeout=self.connect_timeout, application_name=self.APPLICATION_NAME)
        try:
            version, applied = migrate(conn)
            self._create_stage(conn)
            self._partitions = existing_partitions(conn, self.TABLE) if natively_partitioned(conn, self.TABLE) else None
        except BaseException:
            conn.close()
            raise
        if applied:
            log.info("created or migrated the recorder's schema", extra={"url": self.stats["url"], "applied": applied})
        self._conn = conn
        self.stats["schema_version"] = version
        self.stats["connects"] += 1
        self.stats["connected"] = True
        return conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        self.stats["connected"] = False

    def _write_batch(self, conn: Any, records: np.ndarray) -> int:
        """One transaction; rows the database refuses are kept aside and counted.  Returns the rows finished, for
        the caller's :meth:`_finish` once it has let go of them.  Raises when the database went away (nothing
        committed: the caller keeps the rows)."""
        errors = psycopg_module().errors
        good, bad = self._split_valid(records)
        if len(bad):
            self._refuse(bad, self.INVALID)
        try:
            written, created = self._upsert(conn, good, self._partitions)
        except (errors.DataError, errors.IntegrityError) as err:  # the rows themselves, not the connection
            self._refuse(good, describe_error(err, self.url))
            written, created = 0, []
        self.stats["written"] += written
        self.stats["partitions_created"] += len(created)
        return len(records)

    def _finish(self, rows: int) -> None:
        """``rows`` are written (or refused) and their queue or spill file let go of: the stats say the outage is
        over first, so that a :meth:`flush` that returns on them sees them already."""
        self._recovered()
        with self._cond:
            self._done += rows
            self._gauges()
            self._cond.notify_all()

    def _materialized(self, take: int) -> list[np.ndarray]:
        """The first ``take`` memory items as records, made so in place (writer thread only: the one that takes
        from the front).  Rows an item could not be made into are already counted lost by ``_materialize``."""
        with self._cond:
            items = self._memory[:take]
        if all(isinstance(item, np.ndarray) for item in items):
            return items
        out = [self._materialize(item) for item in items]
        dropped = sum(len(item) for item in items) - sum(len(records) for records in out)
        with self._cond:
            self._memory[:take] = out
            self._memory_rows -= dropped
            self._done += dropped
            self._gauges()
            self._cond.notify_all()
        return out

    def _write_memory(self, conn: Any) -> None:
        while True:
            with self._cond:
                take, rows = 0, 0
                while take < len(self._memory) and (take == 0 or rows + len(self._memory[take]) <= self.batch_rows):
                    rows += len(self._memory[take])
                    take += 1
            if not take:
                return
            batches = self._materialized(take)
            rows = sum(len(b) for b in batches)
            finished = self._write_batch(conn, np.concatenate(batches) if len(batches) > 1 else batches[0])
            with self._cond:  # only this thread takes from the front
                del self._memory[:take]
                self._memory_rows -= rows
            self._finish(finished)

    def _write_spilled(self, conn: Any) -> None:
        try:
            for path in self.spill.files():
                rows = SpillDir.rows(path)
                try:
                    records = self.spill.read(path)
                except FileNotFoundError:  # reported below, with any other file that went
                    continue
                except (OSError, ValueError, EOFError) as err:
                    self._unreadable_spill(path, rows, err)
                    continue
                finished = self._write_batch(conn, records)
                self.spill.remove(path)
                self._spill_known.pop(path.name, None)
                self.stats["pending_spilled"] = max(0, self.stats["pending_spilled"] - rows)
                self.stats["spill_files"] = max(0, self.stats["spill_files"] - 1)
                self._finish(finished)
        finally:
            on_disk = self.spill.files()
            self._vanished({p.name for p in on_disk})
            self._count_spill(on_disk)

    def _vanished(self, on_disk: set[str]) -> None:
        """Spill files this recorder counted that are gone without being written: someone deleted them."""
        for name in [n for n in self._spill_known if n not in on_disk]:
            rows = self._spill_known.pop(name)
            with self._cond:
                self.stats["lost"] += rows
                self._done += rows
            log.error(
                f"a spill file vanished before its {self.KIND} reached the database: they are lost",
                extra={"path": str(self.spill.path / name), "rows": rows, "lost": self.stats["lost"]},
            )

    def _unreadable_spill(self, path: Any, rows: int, err: BaseException) -> None:
        try:
            kept = self.spill.quarantine(path)
        except OSError as move_err:  # left where it is: tried again after retry_interval, not in a tight loop
            self._retry_at = time.monotonic() + self.retry_interval
            log_limited(
                log,
                logging.ERROR,
                ("cannot quarantine", str(path)),
                f"a spill file cannot be read, nor moved aside: its {self.KIND} wait (file kept)",
                {"path": str(path), "rows": rows, "error": f"{type(err).__name__}: {err}", "move_error": str(move_err)},
                limiter=self._limiter,
            )
            return
        self._spill_known.pop(path.name, None)
        self.stats["spill_unreadable"] += 1
        self.stats["spill_unreadable_rows"] += rows
        with self._cond:
            self._done += rows
        log.error(
            f"a spill file cannot be read: its {self.KIND} are not in the database (file kept)",
            extra={"path": str(path), "kept_at": str(kept), "rows": rows, "error": f"{type(err).__name__}: {err}"},
        )

    def _spill_memory(self, *, beyond: int) -> None:
        """Move the oldest memory batches to one spill file until at most ``beyond`` rows stay in memory."""
        with self._cond:
            take, rows = 0, 0
            while take < len(self._memory) and self._memory_rows - rows > beyond:
                rows += len(self._memory[take])
                take += 1
        if not take:
            return
        batches = self._materialized(take)
        rows = sum(len(b) for b in batches)
        on_disk = self.stats["pending_spilled"]
        try:
            if on_disk + rows > self.max_spill_rows:
                raise OSError(f"the spill holds {on_disk:,} rows, its limit is {self.max_spill_rows:,}")
            written = self.spill.write(np.concatenate(batches) if len(batches) > 1 else batches[0])
        except OSError as err:
            self.stats["spill_errors"] += 1
            self.stats["last_spill_error"] = f"{type(err).__name__}: {err}"
            log_limited(
                log,
                logging.ERROR,
                "spill failed",
                f"could not spill the recorder queue to disk: the {self.KIND} stay in memory up to hard_limit",
                {
                    "spill_dir": str(self.spill.path),
                    "error": self.stats["last_spill_error"],
                    "pending_memory": self._memory_rows,
                    "hard_limit": self.hard_limit,
                },
                limiter=self._limiter,
            )
            return
        self._spill_known[written.name] = rows
        with self._cond:
            del self._memory[:take]
            self._memory_rows -= rows
            self._gauges()
            self._cond.notify_all()
        self.stats["spilled_rows"] += rows
        self.stats["pending_spilled"] += rows
        self.stats["spill_files"] += 1
        if not self.stats["spilling"]:
            self.stats["spilling"] = True
            log.warning(
                f"recorder spilling {self.KIND} to disk: written to the database first when it takes rows again",
                extra={"spill_dir": str(self.spill.path), "rows": rows, "last_error": self.stats["last_error"]},
            )

    def _refuse(self, records: np.ndarray, why: str) -> None:
        try:
            kept: Any = self.spill.refuse(records)
            self.stats["refused_files"] += 1
        except OSError as err:
            kept = None
            with self._cond:
                self.stats["lost"] += len(records)
            why = f"{why}; and they could not be saved: {err}"
        self.stats["refused"] += len(records)
        log.error(
            f"the database refused {self.KIND}: they are not recorded (saved to the refused directory)"
            if kept is not None
            else f"the database refused {self.KIND} and they could not be saved: they are lost",
            extra={"rows": len(records), "why": why, "kept_at": str(kept), "refused": self.stats["refused"]},
        )

    def _failed(self, err: BaseException) -> None:
        stats = self.stats
        stats["write_errors"] += 1
        stats["last_error"] = describe_error(err, self.url)
        if not stats["failing"]:
            stats["failing"] = True
            stats["outages"] += 1
            self._outage_started = time.monotonic()
            log.error(
                f"recorder cannot write to PostgreSQL: {self.KIND} are spilled to disk and retried",
                extra={"url": stats["url"], "error": stats["last_error"], "pending": stats["pending"]},
            )

    def _recovered(self) -> None:
        stats = self.stats
        if stats["failing"]:
            stats["failing"] = False
            lasted = time.monotonic() - (self._outage_started or time.monotonic())
            stats["last_outage_seconds"] = round(lasted, 3)
            log.warning(
                "recorder writes to PostgreSQL again",
                extra={"url": stats["url"], "outage_seconds": round(lasted, 1), "written": stats["written"]},
            )
        if stats["spilling"] and not stats["pending_spilled"]:
            stats["spilling"] = False
            log.warning(
                f"recorder caught up: all spilled {self.KIND} are in the database",
                extra={"url": stats["url"], "spilled_rows": stats["spilled_rows"]},
            )

    def _count_spill(self, files: list[Any]) -> None:
        self.stats["pending_spilled"] = sum(SpillDir.rows(p) for p in files)
        self.stats["spill_files"] = len(files)

    def _gauges(self) -> None:
        stats = self.stats
        stats["pending_memory"] = self._memory_rows
        stats["pending"] = self._memory_rows + stats["pending_spilled"]


class PgBarWriter(PgRecordWriter):
    """Completed bars into ``hkrt.bars`` (what ``SpotAgent(store="postgresql://…")`` records): the machinery of
    :class:`PgRecordWriter`, with completed-bar records (``COMPLETED_DTYPE``) and the bars upsert."""

    KIND = "bars"
    TABLE = BARS
    SPILL_FIELDS = _RECORD_FIELDS
    INVALID = "a bar label outside 1990..2200, or no symbol"

    def _make_store(self, url: str, connect_timeout: float) -> PgBarStore:
        return PgBarStore(url, unreachable="empty", connect_timeout=connect_timeout)

    def _create_stage(self, conn: Any) -> None:
        bar_upsert.create_stage(conn)

    def _split_valid(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return bar_upsert.split_valid(records)

    def _upsert(self, conn: Any, records: np.ndarray, partitions: set[str] | None) -> tuple[int, list[str]]:
        return bar_upsert.upsert(conn, records, partitions)
