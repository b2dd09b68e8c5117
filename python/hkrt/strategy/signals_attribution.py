"""Who owns what on an account several signal sources trade: orders, fills, fees and P&L split per source.

Each order a :class:`~hkrt.strategy.aggregator.SignalAggregator` places carries its decision's shares
(source -> share, summing to 1).  Every fill of the account is then split (fractional shares, exact
sums):

- a **buy** fill goes to the order's sources in proportion to their shares: each source's part of the
  shares, the amount and the fees, which become its cost (buy fees included, as the book counts them);
- a **sell** fill comes first out of what the order's sources hold (in proportion to their holdings;
  all of it when they hold less than the fill), then the rest out of the other holders in proportion to
  theirs.  So a source never holds a negative position, and each share's P&L belongs to the source whose
  signal bought it.  Its fees go with the shares.

A source's realised P&L is what its sells brought (after their fees) less the average cost of the
shares sold; its unrealised P&L is its holding at the latest price less its cost.  Average cost makes
the parts add up: the sources' costs sum to the account's, so their realised and unrealised P&L sum to
the account's.

What no source asked for -- the account's own orders (placed by its callbacks), positions it held before,
orders whose attribution was forgotten past the bound -- is the ``(account)`` row, computed as the account's
totals less the sources' sums, so the table always sums to the account.  In a run where only the
aggregator trades it is 0 (tests/test_signal_aggregator.py checks both).

Bounded: the shares of the newest ``max_orders`` orders are kept; a fill of an older one goes to
``(account)``, counted in ``stats["forgotten_orders"]`` and logged (WARNING, hourly).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hkrt.core.logs import log_limited

log = logging.getLogger("hkrt.strategy")

ACCOUNT = "(account)"  # the row of what no source asked for
MAX_ORDERS = 100_000
COLUMNS = ["signals", "orders", "bought", "sold", "filled_shares", "fees", "realized_pnl", "unrealized_pnl", "pnl",
           "market_value"]  # fmt: skip
_DUST = 1e-9  # shares: a holding this small is float noise left by proportional splits


@dataclass
class _Holding:
    shares: float = 0.0
    cost: float = 0.0  # yuan, buy fees included


@dataclass
class _Source:
    signals: int = 0
    orders: float = 0.0  # the sum of its shares of the orders placed: orders sum to the account's count
    bought: float = 0.0
    sold: float = 0.0
    fees: float = 0.0
    realized: float = 0.0
    holdings: dict[str, _Holding] = field(default_factory=dict)


class Attribution:
    """The per-source split of one account's fills (see the module).  ``fill`` is the account's order
    manager's listener; ``frame`` reads the table."""

    def __init__(self, sources: Sequence[str], *, max_orders: int = MAX_ORDERS) -> None:
        if max_orders < 1:
            raise ValueError(f"max_orders must be >= 1, not {max_orders}")
        self.sources = {name: _Source() for name in sources}
        self.max_orders = max_orders
        self._orders: OrderedDict[str, dict[str, float]] = OrderedDict()  # client id -> decision shares
        self.stats = {"fills": 0, "attributed_fills": 0, "forgotten_orders": 0}
        # what the account did while attributed (its totals less the sources' are the (account) row)
        self.bought = 0
        self.sold = 0
        self.fees = 0.0

    def signal(self, source: str) -> None:
        self.sources[source].signals += 1

    def order_placed(self, client_order_id: str, shares: Mapping[str, float]) -> None:
        """An order the aggregator placed, with its decision's shares (source -> share, summing to 1)."""
        kept = {s: w for s, w in shares.items() if s in self.sources and w > 0}
        if not kept:
            return
        self._orders[client_order_id] = kept
        for s, w in kept.items():
            self.sources[s].orders += w
        if len(self._orders) > self.max_orders:
            self._orders.popitem(last=False)

    def shares_of(self, client_order_id: str) -> dict[str, float]:
        """The decision's shares of an order placed by the aggregator ({} for any other order)."""
        return dict(self._orders.get(client_order_id, {}))

    def fill(self, client_order_id: str, symbol: str, side: str, price: float, shares: int, fees: float,
             held_after: int, *, aggregated: bool = False) -> None:  # fmt: skip
        """Split one fill of the account (``held_after``: the account's shares of ``symbol`` after it;
        ``aggregated``: the order is one the aggregator placed, whose shares may have been forgotten)."""
        self.stats["fills"] += 1
        if side == "buy":
            self.bought += shares
        else:
            self.sold += shares
        self.fees += fees
        owners = self._orders.get(client_order_id)
        if owners is None and aggregated:
            self._forgot(client_order_id)
        elif owners is not None:
            self.stats["attributed_fills"] += 1
        if side == "buy":
            for s, w in (owners or {}).items():
                self._buy(self.sources[s], symbol, price, shares * w, fees * w)
            return
        held_before = held_after + shares
        holdings = {s: src.holdings[symbol].shares for s, src in self.sources.items() if symbol in src.holdings}
        holdings[ACCOUNT] = max(0.0, held_before - math.fsum(holdings.values()))
        first = set(owners) if owners is not None else {ACCOUNT}
        for s, sold in _split_sell(float(shares), holdings, first).items():
            if s != ACCOUNT and sold > 0:
                self._sell(self.sources[s], symbol, price, sold, fees * sold / shares)

    def _forgot(self, client_order_id: str) -> None:
        """A fill of an aggregated order whose shares were dropped past the bound: counted, logged."""
        self.stats["forgotten_orders"] += 1
        log_limited(log, logging.WARNING, "attribution_forgotten",
                    f"a fill of {client_order_id} is attributed to {ACCOUNT}: the shares of the newest "
                    f"{self.max_orders} orders are kept", {"forgotten_orders": self.stats["forgotten_orders"]},
                    3600.0)  # fmt: skip

    @staticmethod
    def _buy(src: _Source, symbol: str, price: float, shares: float, fees: float) -> None:
        h = src.holdings.setdefault(symbol, _Holding())
        h.shares += shares
        h.cost += shares * price + fees
        src.bought += shares
        src.fees += fees

    @staticmethod
    def _sell(src: _Source, symbol: str, price: float, shares: float, fees: float) -> None:
        h = src.holdings[symbol]
        sold = min(shares, h.shares)
        cost = h.cost * sold / h.shares if h.shares > 0 else 0.0
        src.realized += sold * price - fees - cost
        src.sold += sold
        src.fees += fees
        h.shares -= sold
        h.cost -= cost
        if h.shares <= _DUST:
            del src.holdings[symbol]

    def rows(self, last_price: Callable[[str], float | None]) -> dict[str, dict[str, float]]:
        """The sources' rows (COLUMNS), holdings valued at ``last_price`` (their cost without one)."""
        out: dict[str, dict[str, float]] = {}
        for name, src in self.sources.items():
            value = cost = 0.0
            for sym, h in src.holdings.items():
                price = last_price(sym)
                value += h.shares * price if price is not None else h.cost
                cost += h.cost
            unrealized = value - cost
            out[name] = {
                "signals": float(src.signals), "orders": src.orders, "bought": src.bought, "sold": src.sold,
                "filled_shares": src.bought + src.sold, "fees": src.fees, "realized_pnl": src.realized,
                "unrealized_pnl": unrealized, "pnl": src.realized + unrealized, "market_value": value,
            }  # fmt: skip
        return out

    def frame(self, last_price: Callable[[str], float | None], account: Mapping[str, float]) -> Any:
        """The table by strategy: the sources' rows, then ``(account)`` = ``account`` (the account's totals,
        COLUMNS) less the sources' sums."""
        import pandas as pd

        rows = self.rows(last_price)
        rest = {c: account.get(c, 0.0) - math.fsum(r[c] for r in rows.values()) for c in COLUMNS}
        rest["signals"] = 0.0
        rows[ACCOUNT] = rest
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
        frame.index.name = "strategy"
        return frame


def _split_sell(shares: float, holdings: Mapping[str, float], first: set[str]) -> dict[str, float]:
    """How many of ``shares`` each holder sells: the ``first`` holders in proportion to their holdings (all of
    them when they hold less), then the others in proportion to theirs.  More than everyone holds (a book
    that moved outside the fills): the excess is the account's."""
    out: dict[str, float] = {}
    left = shares
    for group in (sorted(s for s in holdings if s in first), sorted(s for s in holdings if s not in first)):
        held = math.fsum(holdings[s] for s in group)
        if left <= 0 or held <= 0:
            continue
        take = min(left, held)
        for s in group:
            out[s] = out.get(s, 0.0) + take * holdings[s] / held
        left -= take
    if left > _DUST:
        out[ACCOUNT] = out.get(ACCOUNT, 0.0) + left
    return out
