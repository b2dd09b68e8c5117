"""Reconciliation: the strategy's book against what its broker says it holds (docs/brokers.md,
"Reconciliation").

A book moves on the fills the broker reports; the account at the broker moves on everything: fills
the strategy never heard of (a lost report, an order typed by hand, one sent by an earlier run),
dividends, fees charged differently, corporate actions.  :func:`reconcile` compares the two and names
every difference; it never changes either side (which one is right is for a person to judge).  Every
difference is one WARNING line on ``hkrt.strategy.reconcile``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hkrt.broker.asset import AssetInfo
from hkrt.core.logs import log_limited

__all__ = ["PositionDifference", "Reconciliation", "reconcile", "reconcile_broker"]

log = logging.getLogger("hkrt.strategy.reconcile")


@dataclass(frozen=True)
class PositionDifference:
    """One symbol whose share count differs: ``book`` shares in the strategy's book, ``broker`` at the
    broker (0 when one side does not hold it at all)."""

    symbol: str  # "SH600000"
    book: int
    broker: int

    @property
    def difference(self) -> int:
        """broker − book: positive when the broker holds more."""
        return self.broker - self.book


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of one comparison.  ``ok``: no position differs and the cash is within tolerance.
    ``stale``: the broker's snapshot was the last good one, kept after a failed query (its ``as_of``
    says how old), so a difference may be the snapshot's age."""

    positions: list[PositionDifference] = field(default_factory=list)
    book_cash: float = 0.0
    broker_cash: float = 0.0
    cash_tolerance: float = 0.01
    broker_time: dt.datetime | None = None
    stale: bool = False

    @property
    def cash_difference(self) -> float:
        """broker − book cash, yuan."""
        return self.broker_cash - self.book_cash

    @property
    def cash_ok(self) -> bool:
        return abs(self.cash_difference) <= self.cash_tolerance

    @property
    def ok(self) -> bool:
        return not self.positions and self.cash_ok

    def __str__(self) -> str:
        if self.ok:
            return f"book and broker agree ({self.book_cash:.2f} yuan cash)"
        parts = [f"{d.symbol} book {d.book} broker {d.broker}" for d in self.positions]
        if not self.cash_ok:
            parts.append(f"cash book {self.book_cash:.2f} broker {self.broker_cash:.2f}")
        return "book and broker differ: " + "; ".join(parts)


def _broker_shares(asset: AssetInfo) -> dict[str, int]:
    """symbol -> shares at the broker; two rows of one symbol (two shareholder accounts) add up."""
    held: dict[str, int] = {}
    for p in asset.positions:
        symbol = f"{p.market.upper()}{p.code}"
        held[symbol] = held.get(symbol, 0) + round(p.number)
    return held


def reconcile(
    book_positions: Mapping[str, int], book_cash: float, asset: AssetInfo, *, cash_tolerance: float = 0.01
) -> Reconciliation:
    """Compare the book (``book_positions``: symbol such as ``"SH600000"`` -> shares; ``book_cash`` in
    yuan) with the broker's ``asset`` snapshot (``AssetInfo.parse(broker.get_asset_info())``).

    Symbols held with 0 shares on one side count as not held.  Each differing symbol and a cash
    difference above ``cash_tolerance`` yuan are logged at WARNING; the result lists them.
    ValueError for a negative or non-finite tolerance."""
    if not (math.isfinite(cash_tolerance) and cash_tolerance >= 0):
        raise ValueError(f"cash_tolerance must be a finite number >= 0 yuan, not {cash_tolerance!r}")
    broker = _broker_shares(asset)
    book = {s.upper(): int(n) for s, n in book_positions.items()}
    differences = [
        PositionDifference(symbol, book.get(symbol, 0), broker.get(symbol, 0))
        for symbol in sorted(set(book) | set(broker))
        if book.get(symbol, 0) != broker.get(symbol, 0)
    ]
    stale = bool(getattr(asset, "stale", False))
    result = Reconciliation(
        positions=differences,
        book_cash=float(book_cash),
        broker_cash=float(asset.cash),
        cash_tolerance=cash_tolerance,
        broker_time=asset.datetime,
        stale=stale,
    )
    as_of = asset.datetime.isoformat(sep=" ") if asset.datetime else None
    for d in differences:
        log.warning(
            "reconcile: %s book %d shares, broker %d shares (%+d)%s",
            d.symbol,
            d.book,
            d.broker,
            d.difference,
            " (stale broker snapshot)" if stale else "",
            extra={"symbol": d.symbol, "book": d.book, "broker": d.broker, "as_of": as_of, "stale": stale},
        )
    if not result.cash_ok:
        log.warning(
            "reconcile: cash book %.2f yuan, broker %.2f yuan (%+.2f)%s",
            result.book_cash,
            result.broker_cash,
            result.cash_difference,
            " (stale broker snapshot)" if stale else "",
            extra={"book_cash": result.book_cash, "broker_cash": result.broker_cash, "as_of": as_of, "stale": stale},
        )
    return result


def reconcile_broker(
    broker: Any, book_positions: Mapping[str, int], book_cash: float, *, cash_tolerance: float = 0.01
) -> Reconciliation | None:
    """:func:`reconcile` against ``broker.get_asset_info()`` (any ``OrderBrokerBase``).  None when the
    broker answers no usable asset (a failed query with no snapshot yet, or a broker with no account such
    as the mail notifier): logged at WARNING (once a minute per broker) with the broker's ``last_error``."""
    name = str(getattr(broker, "name", type(broker).__name__))
    try:
        asset = AssetInfo.parse(broker.get_asset_info())
    except ValueError as exc:
        why = str(getattr(broker, "last_error", "") or exc)
        log_limited(log, logging.WARNING, ("no-asset", name),
                    f"reconcile: broker {name} answered no asset, nothing compared: {why}",
                    {"broker": name})  # fmt: skip
        return None
    return reconcile(book_positions, book_cash, asset, cash_tolerance=cash_tolerance)
