"""The PostgreSQL spots recorder: every spot of the feed into ``hkrt.spots``, from a thread of its own.

``SpotAgent(store="postgresql://…", store_spots=True)`` (``hkrt agent --store URL --store-spots``) makes one beside
the bar recorder.  It is :class:`~hkrt.pgstore.writer.PgRecordWriter`'s machinery with spot records
(:mod:`hkrt.pgstore.spot_records`) and the spots upsert (:mod:`hkrt.pgstore.spot_upsert`): the same bounded
queue, spill files while the database is away and catch-up when it is back, quarantine of unreadable spill
files, refused rows kept in ``_refused/`` and every loss counted in ``stats`` with an ERROR
(docs/scale-out.md, "Spots").

The receiver thread only queues each accepted feed message's bytes (:meth:`PgSpotWriter.add_message`); the
writer thread decodes them into records (about 4 µs a spot with its book), so recording spots adds no decoding
to the path from a message to its bars.  ``max_pending`` and the other bounds count spots.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hkrt.pgstore import spot_upsert
from hkrt.pgstore.schema import SPOTS
from hkrt.pgstore.spot_reader import PgSpotStore
from hkrt.pgstore.spot_records import REQUIRED_FIELDS, SPOT_RECORD_DTYPE, from_columns, from_message, from_spots
from hkrt.pgstore.writer import PgRecordWriter, default_spill_dir

log = logging.getLogger("hkrt.store")


class _Message:
    """An accepted feed message waiting in the queue as its bytes; ``len()`` is its spots."""

    __slots__ = ("message", "publisher_id", "sequence", "spots")

    def __init__(self, message: bytes, spots: int, publisher_id: int, sequence: int) -> None:
        self.message = message
        self.spots = spots
        self.publisher_id = publisher_id
        self.sequence = sequence

    def __len__(self) -> int:
        return self.spots


class PgSpotWriter(PgRecordWriter):
    """Spots into ``hkrt.spots`` (key (symbol, datetime), latest write wins), with :class:`PgRecordWriter`'s
    arguments; ``spill_dir`` defaults to the bar recorder's default directory's ``spots/`` subdirectory."""

    KIND = "spots"
    TABLE = SPOTS
    THREAD_NAME = "hkrt-pg-spots"
    APPLICATION_NAME = "hkrt-spot-recorder"
    SPILL_FIELDS = REQUIRED_FIELDS
    INVALID = "a price, volume, amount or book value that is NaN, infinite or negative, a time outside 1990..2200, "
    INVALID += "or no symbol"

    def _make_store(self, url: str, connect_timeout: float) -> PgSpotStore:
        return PgSpotStore(url, unreachable="empty", connect_timeout=connect_timeout)

    @staticmethod
    def _default_spill_dir(url: str) -> str:
        return str(Path(default_spill_dir(url)) / "spots")

    def _create_stage(self, conn: Any) -> None:
        spot_upsert.create_stage(conn)

    def _split_valid(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return spot_upsert.split_valid(records)

    def _upsert(self, conn: Any, records: np.ndarray, partitions: set[str] | None) -> tuple[int, list[str]]:
        return spot_upsert.upsert(conn, records, partitions)

    # ------------------------------------------------------------ what the agent hands over
    def add_message(
        self, message: bytes | bytearray | memoryview, spots: int, publisher_id: int = 0, sequence: int = 0
    ) -> None:
        """Queue the ``spots`` spots of one accepted wire message (decoded later, on the writer thread)."""
        if spots:
            data = message if isinstance(message, bytes) else bytes(message)  # the caller may reuse its buffer
            self.add(_Message(data, spots, publisher_id, sequence))

    def add_columns(self, symbol: np.ndarray, datetime_ms: np.ndarray, close: Any, volume: Any, amount: Any,
                    open: Any = None, high: Any = None, low: Any = None) -> None:  # fmt: skip
        """Queue a push of columns (``SpotAgent.ingest_columns``: no book, no name, no feed message)."""
        self.add(from_columns(symbol, datetime_ms, close, volume, amount, open, high, low))

    def add_spots(self, spots: Sequence[Any]) -> None:
        """Queue ``hkrt.Spot`` objects (``SpotAgent.ingest`` of spots, with no feed message)."""
        self.add(from_spots(spots))

    def _materialize(self, item: Any) -> np.ndarray:
        if not isinstance(item, _Message):
            return item  # type: ignore[no-any-return]
        try:
            return from_message(item.message, item.publisher_id, item.sequence)
        except Exception as err:  # a verified message should always decode: never loop on one that does not
            with self._cond:
                self.stats["lost"] += len(item)
            log.error(
                "a feed message's spots could not be decoded for the recorder: they are lost",
                extra={"rows": len(item), "publisher_id": item.publisher_id, "sequence": item.sequence,
                       "error": f"{type(err).__name__}: {err}", "lost": self.stats["lost"]},
            )  # fmt: skip
            return np.zeros(0, dtype=SPOT_RECORD_DTYPE)
