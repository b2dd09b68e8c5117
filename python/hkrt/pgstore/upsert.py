"""Completed bars into ``hkrt.bars``: COPY into a staging table, then one ``INSERT … ON CONFLICT DO UPDATE``.

Latest write wins, as in the Parquet store: a (symbol, ktype, datetime) already in the table takes the new
row's values; inside one batch the last row of a key wins (``DISTINCT ON`` over the staging rows, newest row
number first), because PostgreSQL refuses to update one row twice in one statement.  The batch is one
transaction: it lands whole or not at all.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from hkrt.pgstore.schema import BARS, ensure_partitions
from hkrt.store import BAR_COLUMNS, _as_frame

STAGE = "hkrt_bars_stage"  # a temporary table, one per connection, emptied at every commit
_VALUE_COLUMNS = ("symbol", "ktype", "datetime", *BAR_COLUMNS, "filled")
# the range a bar label can sensibly have; outside it a row is refused before it reaches the database
EARLIEST = np.datetime64("1990-01-01", "ms")
LATEST = np.datetime64("2200-01-01", "ms")

_UPSERT = (
    f"INSERT INTO {BARS} AS b ({', '.join(_VALUE_COLUMNS)}, written_at) "
    f"SELECT DISTINCT ON (symbol, ktype, datetime) {', '.join(_VALUE_COLUMNS)}, now() FROM {STAGE} "
    "ORDER BY symbol, ktype, datetime, n DESC "
    "ON CONFLICT (symbol, ktype, datetime) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in (*BAR_COLUMNS, "filled", "written_at"))
)


def create_stage(conn: Any) -> None:
    """The connection's staging table (temporary: it dies with the connection)."""
    columns = ", ".join(
        ["n bigint", "symbol text", "ktype text", "datetime timestamp(3)"]
        + [f"{c} double precision" for c in BAR_COLUMNS]
        + ["filled boolean"]
    )
    conn.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ({columns}) ON COMMIT DELETE ROWS")


def split_valid(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows the table can take, rows refused before sending): a label outside 1990..2200 or no symbol."""
    times = records["datetime"].astype("datetime64[ms]")
    ok = (times >= EARLIEST) & (times < LATEST) & (np.char.str_len(records["symbol"]) > 0)
    if ok.all():
        return records, records[:0]
    return records[ok], records[~ok]


def months_of(records: np.ndarray) -> set[tuple[int, int]]:
    months = np.unique(records["datetime"].astype("datetime64[M]").astype(np.int64))
    return {(int(m) // 12 + 1970, int(m) % 12 + 1) for m in months}


def to_csv(records: np.ndarray) -> bytes:
    """The staging rows as CSV: row number, symbol, ktype name, label, OHLCV (shortest exact decimal), filled."""
    frame = _as_frame(records, None)
    frame.insert(0, "n", np.arange(len(frame), dtype=np.int64))
    frame["filled"] = np.where(frame["filled"].to_numpy(bool), "t", "f")
    buffer = io.StringIO()
    frame[["n", *_VALUE_COLUMNS]].to_csv(buffer, index=False, header=False, na_rep="NaN", lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def upsert(conn: Any, records: np.ndarray, partitions: set[str]) -> tuple[int, list[str]]:
    """Write valid completed-bar records (``split_valid``) in one transaction; returns (rows sent, partitions
    created).  Raises psycopg errors: OperationalError when the database went away (nothing committed)."""
    if not len(records):
        return 0, []
    created = ensure_partitions(conn, months_of(records), partitions)
    payload = to_csv(records)
    with conn.transaction(), conn.cursor() as cursor:
        with cursor.copy(f"COPY {STAGE} (n, {', '.join(_VALUE_COLUMNS)}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(payload)
        cursor.execute(_UPSERT)
    return len(records), created


def read_bars(
    conn: Any, ktype: str, symbols: list[str] | None, lo: pd.Timestamp | None, hi: pd.Timestamp | None
) -> bytes:
    """The matching rows of ``hkrt.bars`` as CSV (symbol, datetime, OHLCV, filled), sorted by symbol, datetime."""
    where: list[str] = ["ktype = %s"]
    params: list[Any] = [ktype]
    if symbols is not None:
        where.append("symbol = ANY(%s)")
        params.append(symbols)
    if lo is not None:
        where.append("datetime >= %s")
        params.append(lo.to_pydatetime())
    if hi is not None:
        where.append("datetime <= %s")
        params.append(hi.to_pydatetime())
    query = (
        f"COPY (SELECT symbol, datetime, {', '.join(BAR_COLUMNS)}, filled FROM {BARS} "
        f"WHERE {' AND '.join(where)} ORDER BY symbol, datetime) TO STDOUT (FORMAT csv)"
    )
    out = bytearray()
    with conn.cursor() as cursor, cursor.copy(query, params) as copy:
        for chunk in copy:
            out += chunk
    return bytes(out)
