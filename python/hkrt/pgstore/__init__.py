"""Completed bars in PostgreSQL: the recorder (:class:`PgBarWriter`) and the reader (:class:`PgBarStore`); and,
when asked, every spot of the feed (:class:`PgSpotWriter`, read with :func:`load_spots` / :class:`PgSpotStore`).

Optional: it needs psycopg (``pip install 'hkrt[postgres]'``), imported on the first connection; ``import
hkrt`` never loads this package.  ``SpotAgent(store="postgresql://…")``, ``hkrt.load_kdata(...,
store="postgresql://…")`` and ``hkrt export --store postgresql://…`` reach it (docs/scale-out.md).
"""

from __future__ import annotations

from hkrt.pgstore.reader import DatabaseUnavailable, PgBarStore
from hkrt.pgstore.schema import LATEST as SCHEMA_VERSION
from hkrt.pgstore.schema import migrate
from hkrt.pgstore.spot_reader import PgSpotStore, load_spots
from hkrt.pgstore.spot_writer import PgSpotWriter
from hkrt.pgstore.url import is_postgres_url, redact_url
from hkrt.pgstore.writer import PgBarWriter, PgRecordWriter, default_spill_dir

__all__ = [
    "SCHEMA_VERSION",
    "DatabaseUnavailable",
    "PgBarStore",
    "PgBarWriter",
    "PgRecordWriter",
    "PgSpotStore",
    "PgSpotWriter",
    "default_spill_dir",
    "is_postgres_url",
    "load_spots",
    "migrate",
    "redact_url",
]
