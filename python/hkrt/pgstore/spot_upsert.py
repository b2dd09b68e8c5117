"""Spots into ``hkrt.spots``: COPY into a staging table, then one ``INSERT … ON CONFLICT DO UPDATE``, as bars go.

The key is (symbol, datetime): a quote snapshot is what a symbol looked like at that instant, whoever sent it.
The feed's publisher and sequence are columns, not part of the key, so a spot sent again -- a retransmission, a
publisher restarted mid-cycle, a Redis consumer replaying its pending list, a second collector on the same
venue -- lands on the row it already has instead of adding one.  Latest write wins: inside a batch the last
row of a key is kept, between batches the later transaction's.

A spot with a price, volume or amount that is not a finite number >= 0, a time outside 1990..2200, or no
symbol is refused before it reaches the database (the writer keeps it aside and counts it); the others are
written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hkrt.pgstore.schema import BOOK_COLUMNS, BOOK_LEVELS, SPOTS, ensure_partitions
from hkrt.pgstore.spot_records import BOOK_FIELDS, PRICE_FIELDS
from hkrt.pgstore.upsert import (
    _COPY_HEADER,
    _COPY_TRAILER,
    _PG_EPOCH_MS,
    EARLIEST,
    LATEST,
    copy_and_upsert,
    months_of,
    read_csv,
)

STAGE = "hkrt_spots_stage"
_DOUBLE_COLUMNS = (*PRICE_FIELDS, *BOOK_COLUMNS)
VALUE_COLUMNS = ("symbol", "datetime", "name", *_DOUBLE_COLUMNS, "publisher_id", "sequence")

_UPSERT = (
    f"INSERT INTO {SPOTS} AS s ({', '.join(VALUE_COLUMNS)}, written_at) "
    f"SELECT {', '.join(VALUE_COLUMNS)}, now() FROM {STAGE} "
    "ON CONFLICT (symbol, datetime) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in (*VALUE_COLUMNS[2:], "written_at"))
)


def create_stage(conn: Any) -> None:
    """The connection's staging table for spots (temporary: it dies with the connection)."""
    columns = ", ".join(
        ["symbol text", "datetime timestamp(3)", "name text"]
        + [f"{c} double precision" for c in _DOUBLE_COLUMNS]
        + ["publisher_id bigint", "sequence bigint"]
    )
    conn.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ({columns}) ON COMMIT DELETE ROWS")


def split_valid(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(spots the table takes, spots refused): no symbol, a time outside 1990..2200, or a price, volume, amount
    or book value that is NaN, infinite or negative."""
    times = records["datetime"].astype("datetime64[ms]")
    ok = (times >= EARLIEST) & (times < LATEST) & (np.char.str_len(records["symbol"]) > 0)
    for field in PRICE_FIELDS:
        values = records[field]
        ok &= np.isfinite(values) & (values >= 0)
    for field in BOOK_FIELDS:
        values = records[field]
        ok &= (np.isfinite(values) & (values >= 0)).all(axis=1)
    if ok.all():
        return records, records[:0]
    return records[ok], records[~ok]


def last_of_each_key(records: np.ndarray) -> np.ndarray:
    """``records`` with only the last row of each (symbol, datetime), in their order."""
    if len(records) < 2:
        return records
    keys = pd.DataFrame(
        {
            "symbol": np.ascontiguousarray(records["symbol"]).view(np.uint64),  # S8: one integer per symbol
            "datetime": records["datetime"].astype("datetime64[ms]").astype(np.int64),
        }
    )
    repeated = keys.duplicated(keep="last").to_numpy()
    return records[~repeated] if repeated.any() else records


def copy_binary(records: np.ndarray) -> bytes:
    """The rows in COPY's binary format, in the staging table's column order.  Symbols are 8 bytes; rows are
    grouped by the byte length of their name, so each group is one fixed-width numpy record array."""
    name_len = np.char.str_len(records["name"]).astype(np.int64)
    parts = [_COPY_HEADER]
    for width in np.unique(name_len):
        rows = records[name_len == width]
        fields: list[tuple[str, str]] = [("n", ">i2"), ("ls", ">i4"), ("s", "S8"), ("lt", ">i4"), ("t", ">i8")]
        fields += [("ln", ">i4")] + ([("name", f"S{int(width)}")] if width else [])  # numpy has no S0
        fields += [(f"l_{c}", ">i4") if i % 2 == 0 else (c, ">f8") for c in _DOUBLE_COLUMNS for i in (0, 1)]
        fields += [("lp", ">i4"), ("p", ">i8"), ("lq", ">i4"), ("q", ">i8")]
        out = np.empty(len(rows), dtype=np.dtype(fields))
        out["n"] = len(VALUE_COLUMNS)
        out["ls"], out["s"] = 8, rows["symbol"]
        out["lt"] = 8
        out["t"] = (rows["datetime"].astype("datetime64[ms]").astype(np.int64) - _PG_EPOCH_MS) * 1000
        out["ln"] = int(width)
        if width:
            out["name"] = rows["name"]
        for column in PRICE_FIELDS:
            out[f"l_{column}"], out[column] = 8, rows[column]
        for side in BOOK_FIELDS:
            for level in range(BOOK_LEVELS):
                column = f"{side}{level + 1}"
                out[f"l_{column}"], out[column] = 8, rows[side][:, level]
        out["lp"], out["p"] = 8, rows["publisher_id"]
        out["lq"], out["q"] = 8, rows["sequence"]
        parts.append(out.tobytes())
    parts.append(_COPY_TRAILER)
    return b"".join(parts)


def upsert(conn: Any, records: np.ndarray, partitions: set[str] | None) -> tuple[int, list[str]]:
    """Write valid spot records (``split_valid``) in one transaction; returns (rows sent, partitions created).
    ``partitions``: the monthly partitions known to exist, or None when hkrt.spots is not natively partitioned.
    Raises psycopg errors: OperationalError when the database went away (nothing committed)."""
    if not len(records):
        return 0, []
    created = [] if partitions is None else ensure_partitions(conn, months_of(records), partitions, SPOTS)
    copy_and_upsert(conn, STAGE, VALUE_COLUMNS, copy_binary(last_of_each_key(records)), _UPSERT)
    return len(records), created


def read_spots(conn: Any, symbols: list[str] | None, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> bytes:
    """The matching rows of ``hkrt.spots`` as CSV (the value columns), sorted by symbol, datetime."""
    return read_csv(conn, SPOTS, list(VALUE_COLUMNS), [], [], symbols, lo, hi)
