"""Spots read back from PostgreSQL: ``hkrt.load_spots(symbol, start, end, store="postgresql://…")``.

Only the PostgreSQL recorder keeps spots (``SpotAgent(store=URL, store_spots=True)``); a store directory holds
bars only.  The frame, in hkrt's units: ``symbol``, ``datetime`` (nanoseconds, China time, no zone), ``name``,
``yesterday_close``, ``open``, ``high``, ``low``, ``close`` (yuan), ``volume`` (shares, cumulative for the day),
``amount`` (yuan, cumulative), the book ``bid1``..``bid5``, ``bid_volume1``..``bid_volume5``, ``ask1``..``ask5``,
``ask_volume1``..``ask_volume5`` (yuan; shares), ``publisher_id`` and ``sequence`` (the feed message that last
wrote the row); sorted by symbol then datetime, values bit for bit as written.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence

import pandas as pd

from hkrt._hkrt import normalize_symbol
from hkrt.pgstore.reader import PgBarStore
from hkrt.pgstore.schema import SPOTS
from hkrt.pgstore.spot_upsert import VALUE_COLUMNS, read_spots
from hkrt.pgstore.url import redact_url
from hkrt.store import DateLike, _as_list, _bound, _is_database_url


def _arrow_schema() -> object:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]  # ships no type information

    types = {"symbol": pa.string(), "datetime": pa.timestamp("ms"), "name": pa.string()}
    types |= {"publisher_id": pa.int64(), "sequence": pa.int64()}
    return pa.schema([(c, types.get(c, pa.float64())) for c in VALUE_COLUMNS])


def empty_spots() -> pd.DataFrame:
    """The long frame of no spots, with the columns and dtypes :func:`load_spots` gives."""
    return _to_frame(_arrow_schema().empty_table())  # type: ignore[attr-defined]


def _to_frame(table: object) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas()  # type: ignore[attr-defined]
    frame["datetime"] = frame["datetime"].astype("datetime64[ns]")
    frame["name"] = frame["name"].astype(object)
    return frame


class PgSpotStore(PgBarStore):
    """Spots in a PostgreSQL database written by :class:`~hkrt.pgstore.spot_writer.PgSpotWriter`; read-only.
    The connection, ``unreachable`` and ``stats`` behave as :class:`~hkrt.pgstore.reader.PgBarStore`'s; a
    database the recorder never wrote spots to reads as no spots."""

    def __repr__(self) -> str:
        return f"PgSpotStore({redact_url(self.url)!r})"

    def load_spots(
        self, symbols: str | Iterable[str] | None, start: DateLike | None = None, end: DateLike | None = None
    ) -> pd.DataFrame:
        """Spots as a long frame (every column of the module's description), sorted by symbol, datetime.
        ``start``/``end`` are inclusive; a date or date-only string is the whole day."""
        wanted = None if symbols is None else sorted({normalize_symbol(s) for s in _as_list(symbols)})
        lo, hi = _bound(start, end_of_day=False), _bound(end, end_of_day=True)
        payload = self._guarded("spots", SPOTS, lambda conn: read_spots(conn, wanted, lo, hi))
        return _frame(payload) if payload else empty_spots()


def _frame(payload: bytes) -> pd.DataFrame:
    from pyarrow import csv  # type: ignore[import-untyped,unused-ignore]  # ships no type information

    schema = _arrow_schema()
    table = csv.read_csv(
        io.BytesIO(payload),
        read_options=csv.ReadOptions(column_names=list(VALUE_COLUMNS)),
        convert_options=csv.ConvertOptions(
            column_types=schema, null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    return _to_frame(table)


def load_spots(
    symbol: str | Sequence[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    symbols: Sequence[str] | None = None,
    store: PgSpotStore | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Recorded spots, for a notebook: ``hkrt.load_spots("600000.SH", "2026-11-20", store="postgresql://…")``.

    Shaped as :func:`hkrt.load_kdata`: one symbol (any spelling) gives a frame indexed by ``datetime``;
    ``symbols=[...]``, a list, or no symbol (every symbol) a long frame with ``symbol`` and ``datetime``
    columns, sorted by symbol then datetime.  Units: prices and amount in yuan, volume and book sizes in
    shares (docs/units.md).  ``store``: the PostgreSQL recorder's database (a ``postgresql://`` URL or a
    :class:`PgSpotStore`); spots are kept nowhere else.  An unreachable database raises
    :class:`hkrt.pgstore.DatabaseUnavailable`."""
    if symbol is not None and symbols is not None:
        raise TypeError("pass symbol or symbols, not both")
    if isinstance(store, PgSpotStore):
        source, own = store, False
    elif isinstance(store, str) and _is_database_url(store):
        source, own = PgSpotStore(store), True
    else:
        raise ValueError(
            "spots are recorded only in PostgreSQL: pass store='postgresql://…' (the database an agent with "
            f"store_spots=True writes), not {store!r}"
        )
    one = isinstance(symbol, str)
    try:
        frame = source.load_spots(symbol if symbols is None else symbols, start, end)
    finally:
        if own:
            source.close()  # a connection opened for this call only
    if not one:
        return frame
    return frame.drop(columns="symbol").set_index("datetime")
