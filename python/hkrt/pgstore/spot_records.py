"""Spots as numpy records for the spots recorder: what a feed message, a push of columns or ``hkrt.Spot`` objects
become before they are queued, spilled and written to ``hkrt.spots``.

``SPOT_RECORD_DTYPE``: one quote snapshot per record -- ``symbol`` (S8, "SH600000"), ``datetime``
(datetime64[ms], China local time, as the agent works in), ``name`` (UTF-8 bytes, at most 32), the day's
``yesterday_close``, ``open``, ``high``, ``low``, last ``close`` (yuan), cumulative ``volume`` (shares) and
``amount`` (yuan), the book as four (5,) arrays ``bid``/``ask`` (yuan) and ``bid_volume``/``ask_volume``
(shares), best level first, 0 where absent, and the feed message that carried it: ``publisher_id`` and
``sequence`` (0 when the spot came from no numbered message).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hkrt.pgstore.schema import BOOK_LEVELS, SPOT_PRICE_COLUMNS

NAME_BYTES = 32
PRICE_FIELDS = SPOT_PRICE_COLUMNS
BOOK_FIELDS = ("bid", "bid_volume", "ask", "ask_volume")
SPOT_RECORD_DTYPE = np.dtype(
    [("symbol", "S8"), ("datetime", "datetime64[ms]"), ("name", f"S{NAME_BYTES}")]
    + [(f, "f8") for f in PRICE_FIELDS]
    + [(f, "f8", (BOOK_LEVELS,)) for f in BOOK_FIELDS]
    + [("publisher_id", "i8"), ("sequence", "i8")]
)
REQUIRED_FIELDS = ("symbol", "datetime", *PRICE_FIELDS, *BOOK_FIELDS)  # what a spill file must hold


def _name_bytes(name: str) -> bytes:
    """A display name as UTF-8 in at most NAME_BYTES, cut at a character boundary (never half a character,
    which the database would refuse with the whole batch)."""
    raw = name.encode("utf-8")
    if len(raw) <= NAME_BYTES:
        return raw
    return raw[:NAME_BYTES].decode("utf-8", "ignore").encode("utf-8")


def _as_signed(value: int) -> int:
    """A header's unsigned 64-bit id as the bigint column holds it (two's complement above 2**63 - 1)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_message(message: bytes, publisher_id: int = 0, sequence: int = 0) -> np.ndarray:
    """Every spot of one wire message, decoded in C++, the book read from the ``hkrt.Spot`` objects.  A row the
    feed sent with a bad market/code keeps an empty symbol: the writer refuses it (no key) and counts it."""
    from hkrt.feed.wire import decode_columns, decode_spots

    columns = decode_columns(message)
    valid = columns["symbol"] != b""
    spots = decode_spots(message)
    out = np.zeros(len(valid), dtype=SPOT_RECORD_DTYPE)
    if len(spots) != int(valid.sum()):  # the decoder promises one Spot per valid row; never pair rows wrongly
        raise ValueError(f"the message decodes to {int(valid.sum())} valid rows but {len(spots)} spots")
    for field in ("symbol", "datetime", "open", "high", "low", "close", "volume", "amount"):
        out[field] = columns[field]
    if valid.all():
        _fill_from_spots(out, spots, skip_prices=True)
    else:
        some = out[valid]
        _fill_from_spots(some, spots, skip_prices=True)
        out[valid] = some
    out["publisher_id"] = _as_signed(publisher_id)
    out["sequence"] = _as_signed(sequence)
    return out


def from_spots(spots: Sequence[Any]) -> np.ndarray:
    """``hkrt.Spot`` objects (spots ingested one by one, with no feed message) as records."""
    out = np.zeros(len(spots), dtype=SPOT_RECORD_DTYPE)
    if not len(out):
        return out
    out["symbol"] = [s.symbol.encode("ascii") for s in spots]
    out["datetime"] = [np.datetime64(s.datetime, "ms") for s in spots]
    _fill_from_spots(out, spots, skip_prices=False)
    return out


def _fill_from_spots(out: np.ndarray, spots: Sequence[Any], *, skip_prices: bool) -> None:
    """Name, yesterday's close (and, unless ``skip_prices``, the day's prices) and the book, from each Spot's
    pickled state: (symbol, name, datetime, (yesterday_close, open, high, low, close, amount, volume), bid,
    bid_volume, ask, ask_volume) -- one call per spot instead of twenty attribute reads."""
    if not len(out):
        return
    states = [s.__getstate__() for s in spots]
    out["name"] = [_name_bytes(state[1]) for state in states]
    prices = np.array([state[3] for state in states], dtype=np.float64)
    out["yesterday_close"] = prices[:, 0]
    if not skip_prices:
        for i, field in enumerate(("open", "high", "low", "close", "amount", "volume"), start=1):
            out[field] = prices[:, i]
    book = np.array([state[4] + state[5] + state[6] + state[7] for state in states], dtype=np.float64)
    for i, field in enumerate(BOOK_FIELDS):
        out[field] = book[:, i * BOOK_LEVELS : (i + 1) * BOOK_LEVELS]


def from_columns(
    symbol: np.ndarray,
    datetime_ms: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    amount: np.ndarray,
    open: np.ndarray | None = None,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
) -> np.ndarray:
    """A push of columns (``SpotAgent.ingest_columns``: local-time ms, no book, no name) as records."""
    out = np.zeros(len(symbol), dtype=SPOT_RECORD_DTYPE)
    symbols = np.asarray(symbol)
    if symbols.dtype.kind in "UO":
        symbols = np.char.encode(symbols.astype(str), "ascii")
    from hkrt._hkrt import normalize_symbol

    for i, raw in enumerate(symbols):  # any spelling (600000.SH, sh600000) as the agent takes it
        try:
            out["symbol"][i] = normalize_symbol(raw.decode("ascii")).encode("ascii")
        except (ValueError, UnicodeDecodeError):
            out["symbol"][i] = b""  # no key: refused by the writer, counted
    out["datetime"] = np.asarray(datetime_ms, dtype=np.int64).astype("datetime64[ms]")
    for field, values in (("close", close), ("volume", volume), ("amount", amount)):
        out[field] = values
    for field, given in (("open", open), ("high", high), ("low", low)):
        if given is not None:
            out[field] = given
    return out
