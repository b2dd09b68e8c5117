"""Backfill: today's earlier bars for an agent that starts late, from a source with history.

Two kinds of source (docs/store.md, "Backfill"):

* **A journal file** (``hkrt spot-server --record``, another agent's ``journal_dir`` file):
  its wire messages are what the feed sent, so replaying them gives every bar of every
  ktype exactly, and the live feed of the same publisher continues the sequence (messages
  already replayed arrive as duplicates and are skipped).
* **Minute history**: any object with ``minute_bars(symbols, day, until) -> DataFrame``
  (``symbol``, ``datetime`` = the MIN bar's right label, open, high, low, close, volume
  shares, amount yuan, one row per traded minute).  Each minute bar becomes a few spots
  inside its minute whose cumulative totals and prices rebuild it, sent through the agent
  as wire messages of a backfill publisher (:data:`BACKFILL_PUBLISHER_ID`).  The symbol's day
  thereby starts in the first minute (no carry-in), coarser periods and DAY are built from
  those minutes by the engine's own rules, and the first live spot's Δvolume is taken
  against the backfilled cumulative total -- counted once, and not as carry-in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from hkrt import _hkrt
from hkrt.core.calendar import TradingCalendar
from hkrt.core.china_time import china_now, local_ms_to_utc_ms
from hkrt.core.ktype import KType, bar_labels_ms
from hkrt.feed.journal import ScanResult, damage_fields, read_journal
from hkrt.feed.wire import WireError, decode_header, encode_spots

log = logging.getLogger("hkrt.backfill")

# "HKRT-BK": the publisher id of backfilled minute messages, so sequence tracking keeps them
# apart from every real publisher (whose ids are random 63-bit numbers).
BACKFILL_PUBLISHER_ID = 0x484B52542D424B
# Where in its minute each rebuilt spot sits: open, high, low, close (ms after the minute's start).
_SPOT_OFFSETS_MS = (10_000, 20_000, 30_000, 40_000)
_MINUTE_MS = 60_000
MINUTE_BAR_COLUMNS = ("symbol", "datetime", "open", "high", "low", "close", "volume", "amount")
"""What a minute-history source's ``minute_bars`` returns: these columns, one row per traded minute."""


@runtime_checkable
class MinuteHistory(Protocol):
    """A source of today's minute bars."""

    def minute_bars(self, symbols: Sequence[str] | None, day: dt.date, until: dt.datetime) -> pd.DataFrame:
        """MIN bars of ``day`` with labels up to ``until`` (inclusive): columns symbol,
        datetime (right label, naive China time), open, high, low, close, volume (shares),
        amount (yuan).  ``symbols`` None: every symbol the source has."""
        ...


def messages(
    source: Any,
    until: Any = None,
    *,
    symbols: Sequence[str] | None = None,
    calendar: TradingCalendar | None = None,
    scan: ScanResult | None = None,
) -> Iterator[bytes]:
    """The wire messages that bring an agent up to ``until`` from ``source``.

    ``source`` is a journal path (str or Path) or a :class:`MinuteHistory`.  ``until``
    (naive China time; default now) bounds the journal's messages by their market time, and
    the minute bars by label (rounded down to a whole minute: only finished minutes).
    ``scan`` receives what the journal read found (damage skipped: see :func:`journal_messages`).
    """
    if isinstance(source, (str, os.PathLike)):
        yield from journal_messages(source, until, scan=scan)
        return
    if not isinstance(source, MinuteHistory):
        raise TypeError(f"a backfill source is a journal path or has minute_bars(symbols, day, until), not {source!r}")
    end = pd.Timestamp(until if until is not None else china_now()).floor("min").to_pydatetime()
    bars = source.minute_bars(symbols, end.date(), end)
    yield from minute_messages(bars, until=end)


def journal_messages(
    path: str | os.PathLike[str], until: Any = None, *, scan: ScanResult | None = None
) -> Iterator[bytes]:
    """The messages of a journal file whose market time is at or before ``until`` (all by default).

    Every intact record is used: the reader resynchronises past a damaged one (format 2), and
    what it skipped is in ``scan`` (records, corrupt_regions, corrupt_bytes, regions,
    torn_bytes, bad_magic, ...) and logged at WARNING.  The file is only read, never
    repaired (it may be another process's).  A file with nothing recognisable as a journal
    raises ValueError.
    """
    scan = scan if scan is not None else ScanResult()
    source = Path(path).expanduser()
    limit = None if until is None else _epoch_ms(pd.Timestamp(until))
    records = read_journal(source, scan, log_damage=False)
    assert isinstance(records, Generator)  # it is one; closing it on break releases the journal file
    with contextlib.closing(records):
        for record in records:
            if limit is not None:
                try:
                    market = decode_header(record.payload).market_time_ms
                except WireError:
                    market = 0  # the agent rejects and counts it; it says nothing about the order
                if market and market > limit:
                    break  # a journal is in feed order: the rest is later still
            yield record.payload
    if not scan.recognised:
        raise ValueError(f"{source} is not an hkrt journal (no magic and no intact record in {scan.size} bytes)")
    if scan.damaged:
        log.warning(
            "backfill journal is damaged: used its intact records, skipped the rest",
            extra={"path": str(source), **damage_fields(scan)},
        )


def minute_messages(
    bars: pd.DataFrame, *, until: dt.datetime | None = None, publisher_id: int = BACKFILL_PUBLISHER_ID
) -> Iterator[bytes]:
    """Wire messages whose spots rebuild the given MIN bars, one message per minute.

    Per bar: spots at +10 s (price = open, the bar's volume and amount added to the
    cumulative totals), +20 s (high), +30 s (low) and +40 s (close) into its minute, and
    before a symbol's first bar one spot with no volume at the minute's start, so the day
    begins without carry-in even when its first bar is not the 09:31 one.  The spots carry
    the day open (the first bar's open) and the running day high and low.  Volumes are
    whole shares, so they add up exactly; an amount may differ from the source's by a unit
    in the last place (the engine takes differences of the cumulative sums).
    """
    missing = [c for c in MINUTE_BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"minute bars lack columns {missing}")
    frame = bars[list(MINUTE_BAR_COLUMNS)].copy()
    frame["symbol"] = [_hkrt.normalize_symbol(str(s)) for s in frame["symbol"]]
    frame["datetime"] = pd.to_datetime(frame["datetime"]).astype("datetime64[ms]")
    if until is not None:
        frame = frame[frame["datetime"] <= pd.Timestamp(until)]
    if frame.empty:
        return
    frame = frame.sort_values(["symbol", "datetime"], kind="stable").reset_index(drop=True)
    n = len(frame)
    sym = frame["symbol"].to_numpy()
    first = np.r_[True, sym[1:] != sym[:-1]]
    group = np.cumsum(first) - 1
    label = frame["datetime"].to_numpy().astype("datetime64[ms]").astype(np.int64)
    prices = frame[["open", "high", "low", "close"]].to_numpy(np.float64)  # (n, 4), in spot order
    volume = frame["volume"].to_numpy(np.float64)
    amount = frame["amount"].to_numpy(np.float64)
    cum_volume = pd.Series(volume).groupby(group).cumsum().to_numpy()
    cum_amount = pd.Series(amount).groupby(group).cumsum().to_numpy()
    flat = pd.Series(prices.ravel())
    spot_group = np.repeat(group, 4)
    day_high = flat.groupby(spot_group).cummax().to_numpy().reshape(n, 4)
    day_low = flat.groupby(spot_group).cummin().to_numpy().reshape(n, 4)
    day_open = prices[np.flatnonzero(first)[group], 0]

    # Rows of spots: for every bar the four priced spots, plus the opening zero spot.
    start = label - _MINUTE_MS
    spot_time = start[:, None] + np.array(_SPOT_OFFSETS_MS)[None, :]
    columns: dict[str, np.ndarray] = {
        "symbol": np.repeat(sym, 4),
        "datetime": spot_time.ravel(),
        "open": np.repeat(day_open, 4),
        "high": day_high.ravel(),
        "low": day_low.ravel(),
        "close": prices.ravel(),
        "volume": np.repeat(cum_volume, 4),
        "amount": np.repeat(cum_amount, 4),
        "minute": np.repeat(label, 4),
        "order": np.tile(np.arange(1, 5), n),
    }
    opening = np.flatnonzero(first)
    zero = {
        "symbol": sym[opening],
        "datetime": start[opening],
        "open": np.zeros(len(opening)),
        "high": np.zeros(len(opening)),
        "low": np.zeros(len(opening)),
        "close": prices[opening, 0],
        "volume": np.zeros(len(opening)),
        "amount": np.zeros(len(opening)),
        "minute": label[opening],
        "order": np.zeros(len(opening), dtype=np.int64),
    }
    # A minute the source has no bar for had no trade: one spot with unchanged totals inside
    # it says so, so the next bar's volume is not taken for gap volume (docs/aggregation.md §3.3).
    index = _minute_index(label)
    skipped = np.flatnonzero(~first & (index - np.r_[0, index[:-1]] > 1))
    quiet_rows = np.repeat(skipped, index[skipped] - index[skipped - 1] - 1)
    quiet_index = (
        np.concatenate([np.arange(index[i - 1] + 1, index[i]) for i in skipped]) if len(skipped) else np.zeros(0)
    ).astype(np.intp)
    quiet_label = (label[quiet_rows] // _DAY_MS) * _DAY_MS + _DAY_LABELS_MS[quiet_index]
    previous = quiet_rows - 1
    quiet = {
        "symbol": sym[quiet_rows],
        "datetime": quiet_label - _MINUTE_MS + _SPOT_OFFSETS_MS[0],
        "open": day_open[quiet_rows],
        "high": day_high[previous, 3],
        "low": day_low[previous, 3],
        "close": prices[previous, 3],
        "volume": cum_volume[previous],
        "amount": cum_amount[previous],
        "minute": quiet_label,
        "order": np.ones(len(quiet_rows), dtype=np.int64),
    }
    spots = pd.DataFrame({k: np.concatenate([columns[k], zero[k], quiet[k]]) for k in columns})
    spots = spots.sort_values(["minute", "symbol", "order"], kind="stable")
    for sequence, (minute, part) in enumerate(spots.groupby("minute", sort=True), start=1):
        yield encode_spots(
            {
                "symbol": part["symbol"].to_numpy(),
                "datetime": part["datetime"].to_numpy().astype("datetime64[ms]"),
                **{c: part[c].to_numpy() for c in ("open", "high", "low", "close", "volume", "amount")},
            },
            publisher_id=publisher_id,
            sequence=sequence,
            cycle_id=sequence,
            market_time=local_ms_to_utc_ms(int(minute) - _MINUTE_MS + _SPOT_OFFSETS_MS[-1]),
        )


_DAY_MS = 86_400_000
# The right labels of the day's MIN bars, ms of day (09:31 … 11:30, 13:01 … 15:00): the engine's schedule.
_DAY_LABELS_MS = np.array(bar_labels_ms(KType.MIN), dtype=np.int64)


def _minute_index(label_ms: np.ndarray) -> np.ndarray:
    """Index among the day's MIN bars of each right label (local epoch ms)."""
    return np.searchsorted(_DAY_LABELS_MS, label_ms % _DAY_MS).astype(np.int64)


def _epoch_ms(ts: pd.Timestamp) -> int:
    if ts.tzinfo is not None:
        return int(ts.tz_convert("UTC").value // 1_000_000)
    return local_ms_to_utc_ms(int(ts.value // 1_000_000))


def __getattr__(name: str) -> Any:
    """``SimMinuteHistory`` lived here; it is the simulated venue's minute history now
    (``hkrt.adapters.sim.data``), found from here for existing code."""
    if name == "SimMinuteHistory":
        from hkrt.adapters.sim.data import SimMinuteHistory

        return SimMinuteHistory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
