"""What the dashboard shows, kept bounded and versioned: the snapshot a client starts from and the deltas after it.

:class:`DashboardState` follows one strategy onto every bus it attaches to (``strategy.bus_listeners``) and
subscribes there to closed bars, order, trade and risk events and the feed's news.  Handlers run on the bus's
callback thread, which is also where the strategy's book, equity and risk state change, so reading them there
needs no lock on the strategy's side; a throttled sampler (on ``CycleEnded``, at most every
``sample_seconds`` of wall time) reads positions, the equity curve, the risk state, the health rules and the
bar still forming of each series a client shows (:meth:`DashboardState.watch`).

Every change gets the next sequence number under one lock and is handed to ``listener`` (the server's
fan-out) in that order; :meth:`snapshot` returns the whole state with the sequence number it was taken at.
A client applies the snapshot, then each delta with a larger number (docs/dashboard.md, "Protocol").

Bounds (all documented, each drop counted in :attr:`stats`): bars per (symbol, period) ``max_bars`` (the oldest
leave the snapshot; a client keeps what it drew), series ``max_series`` (a bar of a further series is dropped),
done orders ``max_done_orders`` (the oldest leave), trades ``max_trades``, equity points ``max_equity``.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hkrt.bus import BarClosed, CycleEnded, FeedGap, FeedStatus, MarketFilter, OrderEvent, RiskEvent, TradeEvent
from hkrt.core.ktype import KType
from hkrt.core.logs import log_limited
from hkrt.dashboard.picture import Picture

if TYPE_CHECKING:
    from hkrt.bus import CycleInfo, EventBus, Subscription
    from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.dashboard")

# the periods charted unless told: the minute, a few intraday ones and the day (names from the C++ registry)
DEFAULT_KTYPES = tuple(k.value for k in (KType.MIN, KType.MIN5, KType.MIN15, KType.MIN60, KType.DAY))

Message = dict[str, Any]


def _epoch(when: dt.datetime | None) -> int | None:
    """Market time (China local, naive) as the chart's seconds: the clock face read as UTC, so the axis shows
    market time whatever the browser's zone."""
    if when is None:
        return None
    return int(when.replace(tzinfo=dt.timezone.utc).timestamp())


def pd_timestamp(when: Any) -> dt.datetime:
    """A bar label (a datetime, a pandas or numpy timestamp) as a naive datetime, to compare labels."""
    if isinstance(when, dt.datetime):
        return when.replace(tzinfo=None)
    import pandas as pd

    stamp: dt.datetime = pd.Timestamp(when).to_pydatetime()
    return stamp.replace(tzinfo=None)


@functools.cache
def _overlap_studies() -> frozenset[str]:
    """TA-Lib's "Overlap Studies" (SMA, EMA, BBANDS...): indicators drawn over the prices."""
    try:
        from hkrt.indicators.spec import talib_module

        return frozenset(talib_module().get_function_groups().get("Overlap Studies", ()))
    except Exception:  # no TA-Lib groups: every indicator in the lower pane
        return frozenset()


def _overlay(name: str) -> bool:
    return name.upper() in _overlap_studies()


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.isoformat(sep=" ", timespec="seconds")


def bar_row(bar: Any) -> dict[str, Any]:
    """A closed bar as the page's chart takes it (time in epoch seconds of its China wall-clock label)."""
    return {"time": _epoch(bar.datetime), "open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close,
            "volume": bar.volume}  # fmt: skip


class NumberedChanges:
    """A source of the dashboard protocol's numbered changes: ``seq`` counts them, ``listener`` (a hub, a relay)
    gets each as a ``delta`` message.  The owner calls :meth:`_emit` under its own lock, so numbers and order
    agree."""

    seq: int
    stats: dict[str, int]
    listener: Callable[[Message], None] | None

    def _emit(self, kind: str, data: Any) -> None:
        """Under the lock: number the change and hand it on."""
        self.seq += 1
        self.stats["events"] += 1
        if self.listener is not None:
            self.listener({"type": "delta", "seq": self.seq, "kind": kind, "data": data})


class DashboardState(Picture, NumberedChanges):
    """The dashboard's bounded, versioned picture of one strategy (see the module docstring)."""

    def __init__(
        self,
        strategy: Strategy,
        *,
        ktypes: Iterable[str] = DEFAULT_KTYPES,
        max_bars: int = 1000,
        max_series: int = 256,
        max_done_orders: int = 200,
        max_trades: int = 500,
        max_equity: int = 5000,
        sample_seconds: float = 0.5,
    ) -> None:
        super().__init__(max_bars=max_bars, max_series=max_series, max_done_orders=max_done_orders,
                         max_trades=max_trades, max_equity=max_equity)  # fmt: skip
        self.strategy = strategy
        self.ktypes = tuple(KType.parse(k).value for k in ktypes)
        self.sample_seconds = sample_seconds
        self.listener: Callable[[Message], None] | None = None  # the server's fan-out, called under the lock
        self._lock = threading.Lock()
        self.seq = 0
        self._positions: list[dict[str, Any]] = []
        self._account: dict[str, Any] = {}
        self._risk: dict[str, Any] = {"state": strategy.trading_state, "reason": ""}
        self._health: dict[str, Any] = {"status": "ok", "reasons": []}
        self._feed: dict[str, Any] = {"market_time": None, "cycles": 0, "gaps": 0, "last_event": ""}
        self._last_sample = 0.0
        self._cycle: CycleInfo | None = None  # the latest cycle (its market time), read by the sampler
        self._last_equity_time: dt.datetime | None = None
        self._watched: collections.Counter[tuple[str, str]] = collections.Counter()  # series clients show
        # the strategy's live indicators (strategy.indicator(...)) drawn with the bars: label -> drawn over the
        # prices (TA-Lib's "Overlap Studies": SMA, BBANDS...) or in a pane below (RSI, MACD...)
        self._indicators_by_pair: dict[tuple[str, str], list[Any]] = {}
        self._indicators_seen = -1  # len(strategy.live_indicators) when _indicators_by_pair was made
        self._subs: list[Subscription] = []
        self._bus: EventBus | None = None
        self.stats.update(events=0, samples=0, sample_errors=0)
        strategy.bus_listeners.append(self._follow)
        if strategy.bus is not None:
            self._follow(strategy.bus)

    # ---------------------------------------------------------------- the bus
    def _follow(self, bus: EventBus | None) -> None:
        """The strategy attached to ``bus`` (None: detached): move the subscriptions there."""
        self.close_subscriptions()
        if bus is None:  # the run ended (its bus stopped, so reading here is safe): the last word on it
            self._last_sample = 0.0
            self.sample()
            return
        self._bus = bus
        symbols = MarketFilter(symbols=list(self.strategy.codes), ktypes=list(self.ktypes))
        self._subs = [
            bus.subscribe(BarClosed, self._on_bar, filter=symbols, name="dashboard.bar"),
            bus.subscribe(OrderEvent, self._on_order, name="dashboard.order"),
            bus.subscribe(TradeEvent, self._on_trade, name="dashboard.trade"),
            bus.subscribe(RiskEvent, self._on_risk, name="dashboard.risk"),
            bus.subscribe(CycleEnded, self._on_cycle, name="dashboard.cycle"),
            bus.subscribe(FeedGap, self._on_gap, name="dashboard.gap"),
            bus.subscribe(FeedStatus, self._on_feed, name="dashboard.feed"),
        ]

    def close_subscriptions(self) -> None:
        if self._bus is not None:
            for sub in self._subs:
                self._bus.unsubscribe(sub)
        self._subs, self._bus = [], None

    def close(self) -> None:
        """Stop following the strategy."""
        self.close_subscriptions()
        if self._follow in self.strategy.bus_listeners:
            self.strategy.bus_listeners.remove(self._follow)

    def watch(self, old: tuple[str, str] | None, new: tuple[str, str] | None) -> tuple[str, str] | None:
        """A client now shows series ``new`` instead of ``old``: the sampler reads the forming bar of the series
        clients show (at most one per client: the cost stays bounded).  Returns what is watched now (``new``,
        or ``old`` when ``new`` is not a series of this dashboard)."""
        if new is not None and (new[0] not in self.strategy.codes or new[1] not in self.ktypes):
            return old
        with self._lock:
            if old is not None:
                self._watched[old] -= 1
                if self._watched[old] <= 0:
                    del self._watched[old]
                    self._forming.pop(old, None)
            if new is not None:
                self._watched[new] += 1
        return new

    # ------------------------------------------------------------- handlers
    def _on_bar(self, event: BarClosed) -> None:
        key = (event.symbol, event.ktype.value)
        b = event.bar
        bar = bar_row(b)
        values, new_labels = self._indicator_values(key, b.datetime)
        if values:
            bar["ind"] = values
        with self._lock:
            if new_labels:
                self._indicator_panes.update(new_labels)
                self._emit("indicators", new_labels)
            if not self.put_bar(key, bar):
                return
            self._emit("bar", {"symbol": key[0], "ktype": key[1], "bar": bar})

    def _indicator_values(self, key: tuple[str, str], when: dt.datetime) -> tuple[dict[str, float], dict[str, bool]]:
        """The values, on this bar, of the strategy's live indicators of ``key`` (read right after they counted
        it: the strategy's indicators subscribe first), and the labels never sent before with their pane."""
        live = self.strategy.live_indicators
        if live is None or not len(live):
            return {}, {}
        if len(live) != self._indicators_seen:
            self._indicators_seen = len(live)
            self._indicators_by_pair = {}
            for indicator in live:
                if indicator.ktype is not None:
                    self._indicators_by_pair.setdefault((indicator.symbol, indicator.ktype.value), []).append(indicator)
        values: dict[str, float] = {}
        new: dict[str, bool] = {}
        for indicator in self._indicators_by_pair.get(key, ()):
            if indicator.last_label is None or pd_timestamp(indicator.last_label) != pd_timestamp(when):
                continue  # not (yet) on this bar
            label = indicator.spec.describe()
            value = indicator.value
            pairs = [(label, value)] if isinstance(value, float) else [(f"{label}.{k}", v) for k, v in value.items()]
            for name, v in pairs:
                if v == v and abs(v) != float("inf"):  # NaN while warming up: no point
                    values[name] = v
                    if name not in self._indicator_panes and name not in new:
                        new[name] = _overlay(indicator.spec.name)
        return values, new

    def _on_order(self, event: OrderEvent) -> None:
        if event.strategy and event.strategy != self.strategy.name:
            return
        row = {"id": event.client_order_id, "time": _iso(event.datetime), "symbol": event.symbol,
               "side": event.side, "type": event.order_type, "price": event.price, "shares": event.shares,
               "filled": event.filled_shares, "avg_price": event.average_price, "status": event.status,
               "reason": event.reason}  # fmt: skip
        with self._lock:
            self.put_order(row)
            self._emit("order", row)

    def _on_trade(self, event: TradeEvent) -> None:
        if event.strategy and event.strategy != self.strategy.name:
            return
        row = {"id": event.trade_id, "order": event.client_order_id, "time": _epoch(event.datetime),
               "when": _iso(event.datetime), "symbol": event.symbol, "side": event.side, "shares": event.shares,
               "price": event.price, "fees": event.fees}  # fmt: skip
        with self._lock:
            self._trades.append(row)
            self._emit("trade", row)

    def _on_risk(self, event: RiskEvent) -> None:
        if event.strategy and event.strategy != self.strategy.name:
            return
        self.refresh_risk(event.reason)

    def refresh_risk(self, reason: str | None = None) -> None:
        """Read the strategy's trading state now (after a RiskEvent, or after the halt button)."""
        status = self.strategy.risk.status()
        risk = {"state": status.get("state", self.strategy.trading_state), "reason": reason or status.get("reason", "")}
        with self._lock:
            if risk != self._risk:
                self._risk = risk
                self._emit("risk", risk)

    def refresh_health(self) -> None:
        """Read the health rules now, from any thread (as ``/health`` of hkrt.ops does): after the halt button."""
        try:
            health = self._read_health()
        except Exception:
            self.stats["sample_errors"] += 1
            log_limited(log, logging.WARNING, "dashboard.sample", "dashboard: reading the health failed",
                        exc_info=True)  # fmt: skip
            return
        with self._lock:
            if health != self._health:
                self._health = health
                self._emit("health", health)

    def _on_gap(self, event: FeedGap) -> None:
        with self._lock:
            self._feed = {**self._feed, "gaps": self._feed["gaps"] + event.info.missing,
                          "last_event": f"gap: {event.info.missing} messages ({event.info.kind})"}  # fmt: skip
            self._emit("feed", self._feed)

    def _on_feed(self, event: FeedStatus) -> None:
        with self._lock:
            self._feed = {**self._feed, "last_event": f"{event.info.kind} after {event.info.seconds:.0f} s"}
            self._emit("feed", self._feed)

    def _on_cycle(self, event: CycleEnded) -> None:
        self._cycle = event.info
        if time.monotonic() - self._last_sample >= self.sample_seconds:
            self.sample()

    # -------------------------------------------------------------- sampler
    def sample(self) -> None:
        """Read positions, account, equity, risk and health from the strategy (on its callback thread)."""
        try:
            positions, account, point, health = self._read()
            forming = self._read_forming()
        except Exception:  # a read must never break the strategy's callbacks
            self.stats["sample_errors"] += 1
            log_limited(log, logging.WARNING, "dashboard.sample", "dashboard: reading the strategy failed",
                        exc_info=True)  # fmt: skip
            return
        self.stats["samples"] += 1
        self._last_sample = time.monotonic()
        cycle = self._cycle
        with self._lock:
            if cycle is not None and self._feed["cycles"] != cycle.cycle_id:
                self._feed = {**self._feed, "market_time": _iso(cycle.market_time), "cycles": cycle.cycle_id}
                self._emit("feed", self._feed)
            if positions != self._positions:
                self._positions = positions
                self._emit("positions", positions)
            if account != self._account:
                self._account = account
                self._emit("account", account)
            if point is not None:
                self._equity.append(point)
                self._emit("equity", point)
            if health != self._health:
                self._health = health
                self._emit("health", health)
            for key, bar in forming.items():
                closed = self._bars.get(key)
                if key not in self._watched or (closed and closed[-1]["time"] >= bar["time"]):
                    continue  # no longer shown, or closed already (its BarClosed came first)
                if self._forming.get(key) != bar:
                    self._forming[key] = bar
                    self._emit("forming", {"symbol": key[0], "ktype": key[1], "bar": bar})
        self.refresh_risk()

    def _read(self) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
        s = self.strategy
        positions = []
        for symbol, p in sorted(s.positions.items()):
            last = s.last_price(symbol)
            pnl = None if last is None else round((last - p.cost_price) * p.shares, 2)
            positions.append({"symbol": symbol, "shares": p.shares, "sellable": p.sellable,
                              "cost": round(p.cost_price, 4), "last": last, "pnl": pnl})  # fmt: skip
        value = s.portfolio_value()
        cash = s.cash
        account = {"cash": round(cash, 2), "value": round(value, 2), "pnl": round(value - s.book.initial_cash, 2),
                   "orders": len(s.order_manager.orders), "trades": s.book.trade_count}  # fmt: skip
        point = None
        now = s.now
        if now is not None and (self._last_equity_time is None or now > self._last_equity_time):
            self._last_equity_time = now
            point = {"time": _epoch(now), "value": round(value, 2)}
        return positions, account, point, self._read_health()

    def _read_forming(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The newest bar (maybe still forming) of each watched series, from the agent's engine."""
        agent = self.strategy.agent
        if agent is None:
            return {}
        with self._lock:
            keys = list(self._watched)
        out = {}
        for symbol, ktype in keys:
            view = agent.kdata_view(symbol, ktype)
            if len(view):
                r = view[-1]
                seconds = int(r["datetime"].astype("datetime64[s]").astype("int64"))
                out[(symbol, ktype)] = {"time": seconds, "open": float(r["open"]), "high": float(r["high"]),
                                        "low": float(r["low"]), "close": float(r["close"]),
                                        "volume": float(r["volume"])}  # fmt: skip
        return out

    def _read_health(self) -> dict[str, Any]:
        from hkrt.ops.health import assess

        s = self.strategy
        deadman = s.deadman
        row = {"name": s.name, "risk": s.risk.status(), "ledger": dict(s.book.ledger_stats),
               "deadman": deadman.status() if deadman is not None else None}  # fmt: skip
        agent = s.agent
        stats = agent.stats() if agent is not None else None
        report = assess(stats, agent_running=bool(agent is not None and agent.running), strategies=[row],
                        is_trading_day=s.calendar.is_trading_day,
                        clock=lambda: s.now or dt.datetime.now())  # fmt: skip
        return report.to_dict()

    # ------------------------------------------------------------- snapshot
    def snapshot(self) -> Message:
        """The whole state and the sequence number it was taken at (under the lock)."""
        with self._lock:
            return {
                "type": "snapshot",
                "seq": self.seq,
                "data": {
                    "strategy": self.strategy.name,
                    "symbols": list(self.strategy.codes),
                    "ktypes": list(self.ktypes),
                    **self.picture(),
                    "positions": self._positions,
                    "account": self._account,
                    "risk": self._risk,
                    "health": self._health,
                    "feed": self._feed,
                },
            }
