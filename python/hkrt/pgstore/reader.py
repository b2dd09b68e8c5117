"""Bars read back from PostgreSQL, in the Parquet store's shape: ``hkrt.load_kdata(..., store="postgresql://…")``.

The frame is the one :meth:`hkrt.store.KDataStore.load` returns: ``symbol``, ``datetime`` (nanoseconds, China
time, no zone), open, high, low, close, volume (shares), amount (yuan), ``filled``; sorted by symbol then
datetime.  Rows travel as CSV through ``COPY … TO STDOUT``: PostgreSQL prints doubles as their shortest exact
decimal and pandas reads them back round-trip, so the values are the ones written, bit for bit.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

from hkrt._hkrt import normalize_symbol
from hkrt.core.ktype import KType
from hkrt.core.logs import LogLimiter, log_limited
from hkrt.pgstore.schema import BARS
from hkrt.pgstore.upsert import read_bars
from hkrt.pgstore.url import connect, describe_error, psycopg_module, redact_url
from hkrt.store import SCHEMA, DateLike, _as_list, _bound, _to_pandas, empty_bars

log = logging.getLogger("hkrt.store")


class DatabaseUnavailable(ConnectionError):
    """The database could not be reached or read (the message names it, without a password)."""


class PgBarStore:
    """Bars in a PostgreSQL database written by :class:`~hkrt.pgstore.writer.PgBarWriter`; read-only.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database`` (libpq's URL; ``?sslmode=`` etc. work).
        unreachable: what :meth:`load` does when the database cannot be reached: ``"raise"``
            (:class:`DatabaseUnavailable`), or ``"empty"`` (an empty frame, an ERROR log, counted in
            ``stats["read_errors"]``) -- what an agent loading its history wants, so that a database outage
            does not stop it from starting.

    A database the recorder never wrote (no ``hkrt.bars``) reads as no bars.
    """

    def __init__(self, url: str, *, unreachable: str = "raise", connect_timeout: float = 5.0) -> None:
        if unreachable not in ("raise", "empty"):
            raise ValueError(f"unreachable must be 'raise' or 'empty', not {unreachable!r}")
        self.url = url
        self.unreachable = unreachable
        self.connect_timeout = connect_timeout
        self._conn: Any = None
        self._lock = threading.Lock()
        self._limiter = LogLimiter(60.0)
        self.stats: dict[str, Any] = {"url": redact_url(url), "reads": 0, "read_errors": 0, "last_error": None}

    def __repr__(self) -> str:
        return f"PgBarStore({redact_url(self.url)!r})"

    @property
    def root(self) -> str:
        """Where the bars are, for messages (the URL without its password)."""
        return redact_url(self.url)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def load(
        self,
        symbols: str | Iterable[str] | None,
        ktype: KType | str,
        start: DateLike | None = None,
        end: DateLike | None = None,
    ) -> pd.DataFrame:
        """Bars as a long frame, exactly as :meth:`hkrt.store.KDataStore.load` gives them."""
        k = KType.parse(ktype)
        wanted = None if symbols is None else sorted({normalize_symbol(s) for s in _as_list(symbols)})
        lo, hi = _bound(start, end_of_day=False), _bound(end, end_of_day=True)
        payload = self._guarded("bars", BARS, lambda conn: read_bars(conn, k.value, wanted, lo, hi))
        return empty_bars() if payload is None else _frame(payload)

    def _guarded(self, what: str, table: str, read: Callable[[Any], bytes]) -> bytes | None:
        """``read(connection)`` of ``table`` (b"" when the recorder never made it); None when the database cannot
        be read and ``unreachable="empty"`` (counted, logged), else :class:`DatabaseUnavailable`."""
        psycopg = psycopg_module()
        try:
            with self._lock:
                payload = self._read(table, read)
        except psycopg.Error as err:
            self.stats["read_errors"] += 1
            self.stats["last_error"] = describe_error(err, self.url)
            if self.unreachable == "raise":
                raise DatabaseUnavailable(
                    f"cannot read {what} from {redact_url(self.url)}: {self.stats['last_error']}"
                ) from None
            log_limited(
                log,
                logging.ERROR,
                "read failed",
                f"cannot read {what} from PostgreSQL: read as none",
                {"url": redact_url(self.url), "error": self.stats["last_error"]},
                limiter=self._limiter,
            )
            return None
        self.stats["reads"] += 1
        return payload

    def _read(self, table: str, read: Callable[[Any], bytes]) -> bytes:
        for attempt in (1, 2):  # a connection the server closed since (a restart) is replaced once
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url, connect_timeout=self.connect_timeout, application_name="hkrt-reader")
            try:
                if self._conn.execute("SELECT to_regclass(%s) IS NULL", (table,)).fetchone()[0]:
                    return b""
                return read(self._conn)
            except psycopg_module().OperationalError:
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def minute_bars(
        self, symbols: Sequence[str] | None, day: dt.date, until: dt.datetime | None = None
    ) -> pd.DataFrame:
        """Today's stored MIN bars up to ``until``: the database as a backfill source, like KDataStore."""
        end = until if until is not None else dt.datetime.combine(day, dt.time(23, 59, 59))
        return self.load(symbols, KType.MIN, dt.datetime.combine(day, dt.time()), end)


def _frame(payload: bytes) -> pd.DataFrame:
    """The CSV of :func:`~hkrt.pgstore.upsert.read_bars` as the store's frame, through the store's own Arrow
    schema and conversion (so dtypes match the Parquet store's exactly); Arrow parses doubles correctly rounded."""
    if not payload:
        return empty_bars()
    from pyarrow import csv  # type: ignore[import-untyped]  # ships no type information

    table = csv.read_csv(
        io.BytesIO(payload),
        read_options=csv.ReadOptions(column_names=list(SCHEMA.names)),
        convert_options=csv.ConvertOptions(
            column_types=SCHEMA,
            true_values=["t"],
            false_values=["f"],
            null_values=[],
            strings_can_be_null=False,
        ),
    )
    return _to_pandas(table)
