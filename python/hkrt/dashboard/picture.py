"""The bounded stores behind a dashboard's snapshot: bars per series, the forming bars, indicator panes, working
and done orders, trades and equity points (docs/dashboard.md, "Bounds").

Shared by :class:`~hkrt.dashboard.state.DashboardState` (filled from a strategy's bus) and
:class:`~hkrt.dashboard.mirror.StrategyMirror` (filled from a strategy's relay), so both keep the same bounds and
send the same snapshot shape.  Not locked here: each owner calls these under its own lock.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

from hkrt.core.logs import log_limited

log = logging.getLogger("hkrt.dashboard")

DONE_STATUSES = frozenset({"filled", "cancelled", "rejected", "expired"})
Row = dict[str, Any]


class Picture:
    """Bars per (symbol, period) ``max_bars`` (the oldest leave), series ``max_series`` (a bar of a further series
    is dropped: ``stats["bars_dropped_series"]``, WARNING), done orders ``max_done_orders`` (the oldest leave;
    working orders are all kept), trades ``max_trades``, equity points ``max_equity``.  ``stats``: the owner's
    counters, kept when the stores are made again (a mirror's fresh snapshot)."""

    def __init__(
        self,
        *,
        max_bars: int = 1000,
        max_series: int = 256,
        max_done_orders: int = 200,
        max_trades: int = 500,
        max_equity: int = 5000,
        stats: dict[str, int] | None = None,
    ) -> None:
        self.max_bars = max_bars
        self.max_series = max_series
        self.max_done = max_done_orders
        self.stats: dict[str, int] = stats if stats is not None else {"bars_dropped_series": 0}
        self._bars: dict[tuple[str, str], collections.deque[Row]] = {}
        self._forming: dict[tuple[str, str], Row] = {}  # of the watched series: the bar still forming
        self._indicator_panes: dict[str, bool] = {}  # label -> drawn over the prices (else in a pane below)
        self._working: dict[str, Row] = {}
        self._done: collections.OrderedDict[str, Row] = collections.OrderedDict()
        self._trades: collections.deque[Row] = collections.deque(maxlen=max_trades)
        self._equity: collections.deque[Row] = collections.deque(maxlen=max_equity)

    def put_bar(self, key: tuple[str, str], bar: Row) -> bool:
        """A closed bar of series ``key`` (one with the last one's time replaces it: an amended bar); it ends that
        series' forming bar.  False when the series is one too many (dropped, counted)."""
        series = self._bars.get(key)
        if series is None:
            if len(self._bars) >= self.max_series:
                self.stats["bars_dropped_series"] += 1
                log_limited(log, logging.WARNING, "dashboard.series", f"dashboard: more than {self.max_series} "
                            f"series; bars of {key[0]} {key[1]} not shown", extra={"dropped": 1})  # fmt: skip
                return False
            series = self._bars[key] = collections.deque(maxlen=self.max_bars)
        forming = self._forming.get(key)
        if forming is not None and forming["time"] <= bar["time"]:
            del self._forming[key]
        if series and series[-1]["time"] == bar["time"]:
            series[-1] = bar
        else:
            series.append(bar)
        return True

    def put_order(self, row: Row) -> None:
        """An order's row: working until its status is a final one, then among the done."""
        oid = row["id"]
        if row.get("status") in DONE_STATUSES:
            self._working.pop(oid, None)
            self._done[oid] = row
            self._done.move_to_end(oid)
            while len(self._done) > self.max_done:
                self._done.popitem(last=False)
        else:
            self._working[oid] = row

    def picture(self) -> dict[str, Any]:
        """The stores in the snapshot's shape (docs/dashboard.md, "Protocol")."""
        return {
            "bars": [{"symbol": k[0], "ktype": k[1], "bars": list(v)} for k, v in self._bars.items()],
            "forming": [{"symbol": k[0], "ktype": k[1], "bar": b} for k, b in self._forming.items()],
            "indicators": dict(self._indicator_panes),
            "orders": list(self._working.values()) + list(self._done.values()),
            "trades": list(self._trades),
            "equity": list(self._equity),
        }
