"""The recorder's tables in PostgreSQL, created and migrated by the recorder (docs/scale-out.md, "Schema").

Everything lives in the schema ``hkrt``::

    hkrt.schema_version(version, applied_at, description)     one row per migration applied
    hkrt.bars(symbol, ktype, datetime, open, high, low, close, volume, amount, filled, written_at)
        PRIMARY KEY (symbol, ktype, datetime), PARTITION BY RANGE (datetime)
    hkrt.bars_YYYYMM                                           one partition per calendar month, made on demand
    hkrt.spots(symbol, datetime, name, yesterday_close, open, high, low, close, volume, amount,
               bid1..bid5, bid_volume1..5, ask1..ask5, ask_volume1..5, publisher_id, sequence, written_at)
        PRIMARY KEY (symbol, datetime), PARTITION BY RANGE (datetime)    (migration 3; written only when asked)
    hkrt.spots_YYYYMM                                          its monthly partitions, made on demand

``datetime`` is the bar's label in China time without a zone, as in the Parquet store; volume is in shares and
amount in yuan.  Migrations run in one transaction under an advisory lock, so two recorders starting together
apply each step once; running them again changes nothing.  A database whose version is newer than this hkrt
knows is refused (an old recorder must not write a schema it does not understand).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

SCHEMA = "hkrt"
BARS = f"{SCHEMA}.bars"
SPOTS = f"{SCHEMA}.spots"
SPOT_PRICE_COLUMNS = ("yesterday_close", "open", "high", "low", "close", "volume", "amount")
BOOK_LEVELS = 5  # hkrt.Spot keeps five levels a side (cpp/kdata/spot.h)
BOOK_COLUMNS = tuple(f"{side}{level}" for side in ("bid", "bid_volume", "ask", "ask_volume") for level in range(1, 6))
VERSION_TABLE = f"{SCHEMA}.schema_version"
_LOCK_KEY = 0x686B7274  # "hkrt": pg_advisory_xact_lock key serialising migrations and partition creation

# (version, description, statements): append only; a released step is never edited
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "bars: one row per (symbol, ktype, datetime), monthly range partitions on datetime",
        (
            f"""CREATE TABLE {BARS} (
                symbol text NOT NULL,
                ktype text NOT NULL,
                datetime timestamp(3) without time zone NOT NULL,
                open double precision NOT NULL,
                high double precision NOT NULL,
                low double precision NOT NULL,
                close double precision NOT NULL,
                volume double precision NOT NULL,
                amount double precision NOT NULL,
                filled boolean NOT NULL DEFAULT false,
                PRIMARY KEY (symbol, ktype, datetime)
            ) PARTITION BY RANGE (datetime)""",
            f"COMMENT ON TABLE {BARS} IS 'hkrt completed bars: volume in shares, amount in yuan, "
            "datetime = bar label in China time; written by the hkrt recorder (latest write wins)'",
        ),
    ),
    (
        2,
        "bars.written_at: when the row was last written (an upsert sets it again)",
        (f"ALTER TABLE {BARS} ADD COLUMN written_at timestamp with time zone NOT NULL DEFAULT now()",),
    ),
    (
        3,
        "spots: one row per (symbol, datetime), monthly range partitions on datetime",
        (
            f"""CREATE TABLE {SPOTS} (
                symbol text NOT NULL,
                datetime timestamp(3) without time zone NOT NULL,
                name text NOT NULL DEFAULT '',
                {", ".join(f"{c} double precision NOT NULL" for c in SPOT_PRICE_COLUMNS)},
                {", ".join(f"{c} double precision NOT NULL DEFAULT 0" for c in BOOK_COLUMNS)},
                publisher_id bigint NOT NULL DEFAULT 0,
                sequence bigint NOT NULL DEFAULT 0,
                written_at timestamp with time zone NOT NULL DEFAULT now(),
                PRIMARY KEY (symbol, datetime)
            ) PARTITION BY RANGE (datetime)""",
            f"COMMENT ON TABLE {SPOTS} IS 'hkrt quote snapshots: prices and amount in yuan, volume and book sizes "
            "in shares (volume and amount cumulative for the day), datetime = quote time in China time; "
            "publisher_id/sequence = the feed message that last wrote the row (latest write wins)'",
        ),
    ),
)
LATEST = MIGRATIONS[-1][0]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer hkrt than this one."""


def current_version(conn: Any) -> int:
    """The schema version of the database (0: no hkrt tables)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,)).fetchone()[0]
    if not exists:
        return 0
    return int(conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}").fetchone()[0])


def migrate(conn: Any, up_to: int | None = None) -> tuple[int, list[int]]:
    """Bring the schema to ``up_to`` (default the latest); returns (version now, versions applied now).
    ``conn`` is an autocommit connection; the whole migration is one transaction."""
    target = LATEST if up_to is None else up_to
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version integer PRIMARY KEY, "
            "applied_at timestamp with time zone NOT NULL DEFAULT now(), description text NOT NULL)"
        )
        version = current_version(conn)
        if version > LATEST:
            raise SchemaTooNew(
                f"the database's hkrt schema is version {version}, this hkrt knows up to {LATEST}: upgrade hkrt"
            )
        for number, description, statements in MIGRATIONS:
            if version < number <= target:
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {VERSION_TABLE} (version, description) VALUES (%s, %s)", (number, description)
                )
                applied.append(number)
                version = number
    return version, applied


def partition_name(year: int, month: int, table: str = BARS) -> str:
    return f"{table}_{year:04d}{month:02d}"


def natively_partitioned(conn: Any, table: str = BARS) -> bool:
    """Whether ``table`` is a partitioned table (as the migrations make it), rather than a plain table, such as a
    TimescaleDB hypertable made by hand before the recorder's first start, whose chunks are not ours to make."""
    row = conn.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()
    return bool(row and row[0] == "p")


def existing_partitions(conn: Any, table: str = BARS) -> set[str]:
    """The qualified names of the tables attached to ``table`` (hkrt.bars or hkrt.spots)."""
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = %s::regclass",
        (table,),
    ).fetchall()
    return {row[0] for row in rows}


def ensure_partitions(conn: Any, months: Iterable[tuple[int, int]], known: set[str], table: str = BARS) -> list[str]:
    """Create the monthly partitions of ``table`` for ``months`` (year, month) not in ``known``; adds them to
    ``known`` and returns the names created.  A month another table already covers (a partition someone
    attached by hand, a yearly one) is left to it."""
    psycopg = _errors()
    wanted = sorted({m for m in months if partition_name(*m, table) not in known})
    created: list[str] = []
    if not wanted:
        return created
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        known |= existing_partitions(conn, table)
        for year, month in wanted:
            name = partition_name(year, month, table)
            if name in known:
                continue
            first = dt.date(year, month, 1)
            after = dt.date(year + month // 12, month % 12 + 1, 1)
            try:
                with conn.transaction():  # a savepoint: an overlap must not abort the others
                    conn.execute(
                        f"CREATE TABLE {name} PARTITION OF {table} "
                        f"FOR VALUES FROM ('{first.isoformat()}') TO ('{after.isoformat()}')"
                    )
                created.append(name)
            except psycopg.errors.InvalidObjectDefinition:  # "would overlap partition": covered already
                pass
            known.add(name)
    return created


def _errors() -> Any:
    from hkrt.pgstore.url import psycopg_module

    return psycopg_module()
