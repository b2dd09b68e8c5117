"""Completed bars into ``hkrt.bars``: COPY into a staging table, then one ``INSERT … ON CONFLICT DO UPDATE``.

Latest write wins, as in the Parquet store: a (symbol, ktype, datetime) already in the table takes the new
row's values; inside one batch the last row of a key wins -- the batch is deduplicated here, keeping each key's
last row, because PostgreSQL refuses to update one row twice in one statement.  The batch is one transaction:
it lands whole or not at all.

The rows travel in COPY's binary format, built with numpy a group of equal-length rows at a time (same symbol
and ktype-name lengths): no per-row Python, no decimal formatting, and the doubles arrive bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hkrt.core.ktype import KTYPE_BY_RECORD_CODE
from hkrt.pgstore.schema import BARS, ensure_partitions
from hkrt.store import BAR_COLUMNS

STAGE = "hkrt_bars_stage"  # a temporary table, one per connection, emptied at every commit
_VALUE_COLUMNS = ("symbol", "ktype", "datetime", *BAR_COLUMNS, "filled")
# the range a bar label can sensibly have; outside it a row is refused before it reaches the database
EARLIEST = np.datetime64("1990-01-01", "ms")
LATEST = np.datetime64("2200-01-01", "ms")
_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01 in Unix milliseconds: binary timestamps count microseconds from it
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # signature, flags, no header extension
_COPY_TRAILER = b"\xff\xff"

_UPSERT = (
    f"INSERT INTO {BARS} AS b ({', '.join(_VALUE_COLUMNS)}, written_at) "
    f"SELECT {', '.join(_VALUE_COLUMNS)}, now() FROM {STAGE} "
    "ON CONFLICT (symbol, ktype, datetime) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in (*BAR_COLUMNS, "filled", "written_at"))
)


def create_stage(conn: Any) -> None:
    """The connection's staging table (temporary: it dies with the connection)."""
    columns = ", ".join(
        ["symbol text", "ktype text", "datetime timestamp(3)"]
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


def last_of_each_key(records: np.ndarray) -> np.ndarray:
    """``records`` with only the last row of each (symbol, ktype, datetime), in their order."""
    if len(records) < 2:
        return records
    symbols = np.ascontiguousarray(records["symbol"])
    keys = pd.DataFrame(
        {
            "symbol": symbols.view(np.uint64) if symbols.dtype.itemsize == 8 else symbols.astype(object),
            "ktype": records["ktype"],
            "datetime": records["datetime"].astype("datetime64[ms]").astype(np.int64),
        }
    )
    repeated = keys.duplicated(keep="last").to_numpy()
    return records[~repeated] if repeated.any() else records


def copy_binary(records: np.ndarray) -> bytes:
    """The rows in COPY's binary format, in the staging table's column order (symbol, ktype, datetime, OHLCV,
    filled).  Rows are grouped by the byte lengths of their symbol and ktype name, so each group is one
    fixed-width numpy record array (big-endian, as the format wants)."""
    names = np.array([k.value.encode("ascii") for k in KTYPE_BY_RECORD_CODE], dtype=object)
    sym_len = np.char.str_len(records["symbol"]).astype(np.int64)
    kind = records["ktype"].astype(np.int64)
    stride = int(sym_len.max()) + 1
    group = kind * stride + sym_len
    parts = [_COPY_HEADER]
    for key in np.unique(group):
        rows = records[group == key]
        code, width = divmod(int(key), stride)
        kname = names[code]
        fields: list[tuple[str, str]] = [("n", ">i2"), ("ls", ">i4"), ("s", f"S{width}"), ("lk", ">i4")]
        fields += [("k", f"S{len(kname)}"), ("lt", ">i4"), ("t", ">i8")]
        for column in BAR_COLUMNS:
            fields += [(f"l_{column}", ">i4"), (column, ">f8")]
        fields += [("lf", ">i4"), ("f", "u1")]
        out = np.empty(len(rows), dtype=np.dtype(fields))
        out["n"] = len(_VALUE_COLUMNS)
        out["ls"], out["s"] = width, rows["symbol"]
        out["lk"], out["k"] = len(kname), kname
        out["lt"] = 8
        out["t"] = (rows["datetime"].astype("datetime64[ms]").astype(np.int64) - _PG_EPOCH_MS) * 1000
        for column in BAR_COLUMNS:
            out[f"l_{column}"], out[column] = 8, rows[column]
        out["lf"] = 1
        out["f"] = rows["filled"] if "filled" in (rows.dtype.names or ()) else 0
        parts.append(out.tobytes())
    parts.append(_COPY_TRAILER)
    return b"".join(parts)


def upsert(conn: Any, records: np.ndarray, partitions: set[str] | None) -> tuple[int, list[str]]:
    """Write valid completed-bar records (``split_valid``) in one transaction; returns (rows sent, partitions
    created).  ``partitions``: the monthly partitions known to exist (more are made as needed), or None when the
    table is not natively partitioned (a hypertable).  Raises psycopg errors: OperationalError when the
    database went away (nothing committed)."""
    if not len(records):
        return 0, []
    created = [] if partitions is None else ensure_partitions(conn, months_of(records), partitions)
    copy_and_upsert(conn, STAGE, _VALUE_COLUMNS, copy_binary(last_of_each_key(records)), _UPSERT)
    return len(records), created


def copy_and_upsert(conn: Any, stage: str, columns: tuple[str, ...], payload: bytes, upsert_sql: str) -> None:
    """One transaction: the binary COPY ``payload`` into the staging table, then the upsert statement that moves
    the staged rows into the table (the stage empties itself at the commit)."""
    with conn.transaction(), conn.cursor() as cursor:
        with cursor.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(payload)
        cursor.execute(upsert_sql)


def read_bars(
    conn: Any, ktype: str, symbols: list[str] | None, lo: pd.Timestamp | None, hi: pd.Timestamp | None
) -> bytes:
    """The matching rows of ``hkrt.bars`` as CSV (symbol, datetime, OHLCV, filled), sorted by symbol, datetime."""
    columns = ["symbol", "datetime", *BAR_COLUMNS, "filled"]
    return read_csv(conn, BARS, columns, ["ktype = %s"], [ktype], symbols, lo, hi)


def read_csv(
    conn: Any,
    table: str,
    columns: list[str],
    where: list[str],
    params: list[Any],
    symbols: list[str] | None,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
) -> bytes:
    """``columns`` of the rows of ``table`` that match ``where`` (with ``params``), the symbols and the inclusive
    datetime range, as CSV through ``COPY … TO STDOUT``, sorted by symbol, datetime."""
    where, params = list(where), list(params)
    if symbols is not None:
        where.append("symbol = ANY(%s)")
        params.append(symbols)
    if lo is not None:
        where.append("datetime >= %s")
        params.append(lo.to_pydatetime())
    if hi is not None:
        where.append("datetime <= %s")
        params.append(hi.to_pydatetime())
    condition = f"WHERE {' AND '.join(where)} " if where else ""
    query = f"COPY (SELECT {', '.join(columns)} FROM {table} {condition}ORDER BY symbol, datetime) TO STDOUT"
    query += " (FORMAT csv)"
    out = bytearray()
    with conn.cursor() as cursor, cursor.copy(query, params) as copy:
        for chunk in copy:
            out += chunk
    return bytes(out)
