"""``SignalAggregator``: several signal strategies and one account on one bus, their signals combined into
the account's orders (docs/signals.md).

The account is an ordinary :class:`~hkrt.strategy.strategy.Strategy`: it holds the brokers, the book and
the orders.  The sources are Strategy objects too -- their bar, spot, cycle and timer callbacks and their
indicators work as usual -- but they trade nothing: they call ``signal(symbol, action, confidence,
reason)``.  Whenever the account attaches to a bus (``account.run``, ``run_sim``, ``hkrt run``, a test's
bus), the aggregator attaches the sources to the same bus, after the account's own subscriptions, so
one agent, one callback thread and one market clock serve them all, in one process.

Why sources place no orders: an order of a source would bypass the aggregation (the point of several
opinions is that none trades alone) and its attribution, and a source's own book is not an account.
So the aggregator takes a source's brokers and emulator away and its ``order`` (and ``order_value``,
``order_target``..., which go through it) returns the order ``rejected`` with a reason that says so,
counted in ``stats["source_orders_refused"]`` and logged like every refusal.

When: the latest signal of each source on each symbol is kept.  At the end of every market cycle in
which a signal arrived (after the sources' bar, spot, cycle and timer callbacks of that cycle), the
aggregator decides each symbol that got one, counting each source's latest signal unless it is older
than ``max_age`` market seconds (None: until the source says otherwise; 0: only signals of the cycle
itself).  A decision acts only when its outcome changed since the last one acted on (so a source
repeating itself every bar trades nothing new, and a refused order is not retried every cycle).  While
the symbol has a working order, or a sell finds no sellable shares (T+1: bought today), the decision
waits and is made again at the next cycle's end with the signals then counted (so an "out" decided the
day of the buy sells at the next day's first cycle, unless the sources changed their minds).

How much: the full position of a symbol is ``target_value`` yuan, or ``fraction`` of the account's
equity (cash plus positions at the latest prices), in shares from :mod:`hkrt.strategy.sizing`
(lot-rounded, fees included).  A vote to be in buys a full position when the account holds none of the
symbol (a holding already there stays as it is: the vote is in or out, not a resize), a vote to be out
sells the holding; the weights method moves the holding to its target either way.  Orders are market orders
placed through ``account.order`` (so every pre-trade check, and the risk engine, applies), each with the
remark ``signals <method> <value>: <source> <share>, ...``.

Attribution: :mod:`hkrt.strategy.signals_attribution`; ``attribution()`` is the table by source.

Bounds: the latest signals are one per source and account symbol; the decisions kept are the newest
``max_decisions`` (older ones leave ``decisions``, counted in ``stats["decisions_dropped"]``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from hkrt._hkrt import normalize_symbol
from hkrt.bus import CycleEnded, EventBus, SignalEvent, Subscription
from hkrt.core.fees import FeeModel
from hkrt.core.logs import LogLimiter, log_limited
from hkrt.strategy.order import Order
from hkrt.strategy.signals import EPSILON, METHODS, Decision, check_weights, live_signals, vote, weighted_target
from hkrt.strategy.signals_attribution import ACCOUNT, Attribution
from hkrt.strategy.sizing import A_SHARE_FEES, affordable, fixed_fraction
from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.strategy")

REMARK_PREFIX = "signals "
MAX_DECISIONS = 100_000
DECISION_COLUMNS = ["datetime", "symbol", "method", "value", "target", "held", "target_shares", "side", "shares",
                    "client_order_id", "status", "reason", "sources"]  # fmt: skip

# every source and account in use, so a strategy serves one aggregator only and load_strategy can tell
# the account of a script from its sources; weak both ways (an account and its aggregator refer to each
# other: a strong value here would keep both alive for good)
_SOURCES: weakref.WeakSet[Strategy] = weakref.WeakSet()
_ACCOUNTS: weakref.WeakKeyDictionary[Strategy, weakref.ref[SignalAggregator]] = weakref.WeakKeyDictionary()


def is_signal_source(strategy: Strategy) -> bool:
    """Whether ``strategy`` is a source of a SignalAggregator (it signals, an account trades)."""
    return strategy in _SOURCES


def aggregator_of(account: Strategy) -> SignalAggregator | None:
    """The SignalAggregator whose account ``account`` is (None: it has none), e.g. for a runner that prints
    ``attribution()`` after the run of a script's account."""
    ref = _ACCOUNTS.get(account)
    return ref() if ref is not None else None


class SignalAggregator:
    """Combine the signals of ``sources`` into orders of ``account`` (see the module).

    Args:
        account: the Strategy that holds the brokers and the book, and places the orders.
        sources: Strategy objects that call ``signal()``; distinct names, none the account's.  Their
            ktypes must be among the account's (the account's agent makes the bars).
        method: "vote" (confidence-weighted vote) or "weights" (fixed weights): :mod:`hkrt.strategy.signals`.
        weights: source name -> weight >= 0, every source named (0 mutes one); None: 1 each.
        threshold: vote: |score| at which it acts, in (0, 1].
        max_age: market seconds a signal counts for; None: until its source signals again.
        target_value: yuan of a full position per symbol; None: ``fraction`` of the account's equity.
        fraction: the share of equity of a full position per symbol, in (0, 1].
        fees: the fee model sizing counts (a buy's cost with its fees); None: the amount only.
        max_decisions: decisions kept in ``decisions``.
    """

    def __init__(
        self,
        account: Strategy,
        sources: Sequence[Strategy],
        *,
        method: str = "vote",
        weights: Mapping[str, float] | None = None,
        threshold: float = 0.5,
        max_age: float | None = None,
        target_value: float | None = None,
        fraction: float = 0.1,
        fees: FeeModel | None = A_SHARE_FEES,
        max_decisions: int = MAX_DECISIONS,
    ) -> None:
        _check_parts(account, sources)
        names = [s.name for s in sources]
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
        chosen = dict.fromkeys(names, 1.0) if weights is None else dict(weights)
        unknown = [n for n in chosen if n not in names]
        if unknown:
            raise ValueError(f"weights name {unknown[0]!r}, which is not a source (sources: {', '.join(names)})")
        missing = [n for n in names if n not in chosen]
        if missing:
            raise ValueError(f"weights miss source {missing[0]!r}: give every source a weight (0 mutes it)")
        check_weights(chosen)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise ValueError(f"threshold must be within (0, 1], not {threshold!r}")
        if max_age is not None and not (isinstance(max_age, (int, float)) and math.isfinite(max_age) and max_age >= 0):
            raise ValueError(f"max_age must be market seconds >= 0 (or None: no limit), not {max_age!r}")
        if target_value is not None and not (
            isinstance(target_value, (int, float)) and math.isfinite(target_value) and target_value > 0
        ):
            raise ValueError(f"target_value must be yuan > 0 (or None: a fraction of equity), not {target_value!r}")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"fraction must be within (0, 1], not {fraction!r}")
        if max_decisions < 1:
            raise ValueError(f"max_decisions must be >= 1, not {max_decisions}")
        self.account = account
        self.sources = list(sources)
        self.method = method
        self.weights = {n: float(chosen[n]) for n in names}
        self.threshold = float(threshold)
        self.max_age = None if max_age is None else float(max_age)
        self.target_value = None if target_value is None else float(target_value)
        self.fraction = float(fraction)
        self.fees = fees
        self.attribution_book = Attribution(names)
        self.stats: dict[str, int] = dict.fromkeys(
            ("signals", "unknown_source", "outside_codes", "decisions", "unchanged", "deferred", "waiting_sellable",
             "orders", "no_price", "inactive", "source_orders_refused", "decisions_dropped"), 0,
        )  # fmt: skip
        self._limiter = LogLimiter(60.0)
        self._codes = frozenset(account.codes)
        self._latest: dict[str, dict[str, SignalEvent]] = {}  # symbol -> source -> its latest signal
        self._dirty: set[str] = set()  # symbols with a signal since the last decision
        self._pending: set[str] = set()  # symbols whose decision waits for a working order to end
        self._last: dict[str, float] = {}  # symbol -> the target of the last decision acted on
        self._parts: dict[str, dict[str, float]] = {}  # weights: symbol -> the sources' parts then
        self._decisions: deque[tuple[Any, ...]] = deque(maxlen=max_decisions)
        self._bus: EventBus | None = None
        self._subscriptions: list[Subscription] = []
        self._orders_at_start = account.order_manager.stats["orders"]
        self._fees_at_start = account.book.fees
        for source in self.sources:
            self._take_orders_away(source)
            _SOURCES.add(source)
        _ACCOUNTS[account] = weakref.ref(self)
        account.order_manager.listeners.append(self._order_news)
        account.on_start(self._sources_started)
        account.on_stop(self._sources_stopped)
        account.bus_listeners.append(self._follow)
        if account.bus is not None:
            self._follow(account.bus)

    # ------------------------------------------------------------------ the bus
    def _follow(self, bus: EventBus | None) -> None:
        """The account attached to ``bus`` (None: detached): the sources and the aggregator follow it."""
        for sub in self._subscriptions:
            if self._bus is not None:
                self._bus.unsubscribe(sub)
        self._subscriptions, self._bus = [], bus
        if bus is None:
            for source in self.sources:
                source.detach()
            return
        agent = self.account.agent
        for source in self.sources:
            if agent is not None and agent.bus is bus:
                source.agent = agent  # their kdata and indicators read the account's agent
            source.live = self.account.live
            source.attach(bus)
        # after the sources: a cycle's decision comes after every callback of theirs for that cycle
        self._subscriptions = [
            bus.subscribe(SignalEvent, self._on_signal, name="SignalAggregator.collect"),
            bus.subscribe(CycleEnded, self._on_cycle, name="SignalAggregator.cycle"),
        ]

    def _take_orders_away(self, source: Strategy) -> None:
        why = (f"{source.name!r} is a signal source of {self.account.name!r}: it places no orders, it calls "
               "signal() (the aggregator orders for the account)")  # fmt: skip
        source.brokers = []
        source.order_manager.brokers = source.brokers
        source.order_manager.emulator = None

        def refuse(symbol: str, shares: float | None = None, price: float | None = None, *,
                   num: float | None = None, **kwargs: Any) -> Order:  # fmt: skip
            quantity = shares if shares is not None else num
            side = "sell" if isinstance(quantity, (int, float)) and quantity < 0 else "buy"
            self.stats["source_orders_refused"] += 1
            return source._refused(normalize_symbol(symbol), side, why, kwargs)

        source.order = refuse  # type: ignore[method-assign]

    def _sources_started(self) -> None:
        for source in self.sources:
            source._started()

    def _sources_stopped(self) -> None:
        for source in self.sources:
            source._stopped()

    def _warn(self, key: str, message: str, fields: dict[str, Any]) -> None:
        log_limited(log, logging.WARNING, key, message, fields, limiter=self._limiter)

    def _on_signal(self, event: SignalEvent) -> None:
        if event.strategy not in self.weights:
            self.stats["unknown_source"] += 1
            self._warn("unknown_source", f"signal of {event.strategy!r} ignored: not a source of this aggregator",
                       {"strategy": event.strategy, "unknown_source": self.stats["unknown_source"]})  # fmt: skip
            return
        if event.symbol not in self._codes:
            self.stats["outside_codes"] += 1
            self._warn("outside_codes", f"signal on {event.symbol} ignored: the account does not trade it",
                       {"symbol": event.symbol, "strategy": event.strategy,
                        "outside_codes": self.stats["outside_codes"]})  # fmt: skip
            return
        if event.datetime is None and self.account.now is not None:
            event = dataclasses.replace(event, datetime=self.account.now)
        self._latest.setdefault(event.symbol, {})[event.strategy] = event
        self._dirty.add(event.symbol)
        self.stats["signals"] += 1
        self.attribution_book.signal(event.strategy)

    def _on_cycle(self, event: CycleEnded) -> None:
        # posted: it runs after what this cycle's handlers publish (a source's timer signalling on it)
        bus = self._bus
        if bus is None or not bus.post(self.decide):
            self.decide()

    # ---------------------------------------------------------------- deciding
    def decide(self) -> None:
        """Decide every symbol with a new signal (or a decision waiting) and place the orders (what each
        cycle's end does; a host without cycles calls it)."""
        if not (self._dirty or self._pending):
            return
        symbols = sorted(self._dirty | self._pending)
        self._dirty, self._pending = set(), set()
        if not self.account._delivering:  # the account's run ended (stop, until): nothing more is placed
            self.stats["inactive"] += len(symbols)
            return
        now = self.account.now
        for symbol in symbols:
            self._decide(symbol, now)

    def _decide(self, symbol: str, now: dt.datetime | None) -> None:
        self.stats["decisions"] += 1
        counted = live_signals(self._latest.get(symbol, {}), now, self.max_age)
        if self.method == "vote":
            decision = vote(counted, self.weights, self.threshold)
        else:
            decision = weighted_target(counted, self.weights, self._parts.get(symbol, {}))
        last = self._last.get(symbol)
        if decision.target is None or (last is not None and abs(decision.target - last) <= EPSILON):
            self.stats["unchanged"] += 1
            return
        if self.account.open_orders(symbol):
            self.stats["deferred"] += 1
            self._pending.add(symbol)
            return
        held = self.account.position(symbol)
        wanted = 0
        if decision.target > EPSILON:  # sizing a position needs a price; selling out does not
            price = self.account.last_price(symbol)
            if price is None or not price > 0:
                self.stats["no_price"] += 1
                self._warn("no_price", f"decision on {symbol} not acted on: no price yet",
                           {"symbol": symbol, "no_price": self.stats["no_price"]})  # fmt: skip
                return
            wanted = self._size(symbol, price, decision.target)
        delta = wanted - held
        if self.method == "vote":  # in: a full position when there is none; out: sell it all
            delta = (wanted if held == 0 else 0) if decision.target > 0 else -held
        if delta < 0 and self.account.book.sellable(symbol) == 0:  # T+1: the sell waits for sellable shares
            self.stats["waiting_sellable"] += 1
            self._pending.add(symbol)
            return
        self._last[symbol] = decision.target
        self._parts[symbol] = decision.parts
        order = None
        if delta:
            order = self.account.order(symbol, delta, remark=_remark(decision))
            self.attribution_book.order_placed(order.client_order_id, decision.shares)
            self.stats["orders"] += 1
        if len(self._decisions) == self._decisions.maxlen:
            self.stats["decisions_dropped"] += 1
        sources = ", ".join(f"{s} {w:.2f}" for s, w in decision.shares.items())
        self._decisions.append((
            now, symbol, decision.method, decision.value, decision.target, held, wanted,
            order.side if order is not None else "", order.shares if order is not None else 0,
            order.client_order_id if order is not None else "", order.status if order is not None else "",
            order.reason if order is not None else "", sources,
        ))  # fmt: skip

    def _size(self, symbol: str, price: float, target: float) -> int:
        """Shares of ``target`` (a share of the full position), lot-rounded, fees included."""
        if target <= EPSILON:
            return 0
        if self.target_value is not None:
            return affordable(symbol, price, self.target_value * target, fees=self.fees)
        equity = self.account.portfolio_value()
        return fixed_fraction(symbol, max(equity, 0.0), price, self.fraction * target, fees=self.fees)

    # ------------------------------------------------------------- attribution
    def _order_news(self, kind: str, order: Order, event: Any) -> None:
        """The account's order manager's listener: every fill is split among the sources."""
        if kind != "trade":
            return
        self.attribution_book.fill(
            event.client_order_id, event.symbol, event.side, float(event.price), int(event.shares),
            float(event.fees), self.account.book.held(event.symbol), aggregated=order.remark.startswith(REMARK_PREFIX),
        )  # fmt: skip

    def account_totals(self) -> dict[str, float]:
        """The account's own totals in the attribution's columns: its orders, fills and fees since the
        aggregator was made, its P&L since its book began (cash + positions at the latest prices - initial
        cash), split into unrealised (positions at the latest prices less their cost) and realised (the rest)."""
        account, book = self.account, self.account.book
        value = account.portfolio_value()
        unrealized = 0.0
        for symbol, p in book.positions.items():
            price = account.last_price(symbol)
            unrealized += p.shares * ((price if price is not None else p.cost_price) - p.cost_price)
        pnl = value - book.initial_cash
        att = self.attribution_book
        return {
            "signals": float(self.stats["signals"]),
            "orders": float(account.order_manager.stats["orders"] - self._orders_at_start),
            "bought": float(att.bought), "sold": float(att.sold), "filled_shares": float(att.bought + att.sold),
            "fees": book.fees - self._fees_at_start, "realized_pnl": pnl - unrealized, "unrealized_pnl": unrealized,
            "pnl": pnl, "market_value": value - book.cash,
        }  # fmt: skip

    def attribution(self) -> Any:
        """A DataFrame by strategy -- each source, then ``(account)`` for what no source asked for --
        with signals, orders (each order counted by the sources' shares of its decision), bought, sold,
        filled_shares, fees, realized_pnl, unrealized_pnl, pnl and market_value (yuan, at the latest
        prices); its columns sum to :meth:`account_totals`.  See docs/signals.md."""
        return self.attribution_book.frame(self.account.last_price, self.account_totals())

    @property
    def decisions(self) -> Any:
        """One row per decision acted on: when, symbol, method, value (score or target), target, held and
        target shares, the order's side, shares, client id, status and reason at placing, and the
        sources' shares ("macd 0.60, rsi 0.40")."""
        import pandas as pd

        return pd.DataFrame(list(self._decisions), columns=DECISION_COLUMNS)

    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self.sources)
        return f"SignalAggregator({self.account.name!r}, sources=[{names}], method={self.method!r})"


def _remark(decision: Decision) -> str:
    shares = ", ".join(f"{s} {w:.2f}" for s, w in decision.shares.items())
    return f"{REMARK_PREFIX}{decision.method} {decision.value:+.2f}: {shares or ACCOUNT}"


def _check_parts(account: Strategy, sources: Sequence[Strategy]) -> None:
    """One ValueError for an account or sources that cannot work together."""
    if not isinstance(account, Strategy):
        raise ValueError(f"account must be a hkrt.Strategy, not {type(account).__name__}")
    if account in _ACCOUNTS:
        raise ValueError(f"strategy {account.name!r} has a SignalAggregator already: one per account")
    if account in _SOURCES:
        raise ValueError(f"strategy {account.name!r} is a signal source: it cannot be an account as well")
    if isinstance(sources, Strategy) or not sources:
        raise ValueError("sources must be a non-empty list of hkrt.Strategy objects that call signal()")
    seen: set[str] = set()
    for source in sources:
        if not isinstance(source, Strategy):
            raise ValueError(f"a source must be a hkrt.Strategy, not {type(source).__name__}")
        if source is account:
            raise ValueError(f"the account {account.name!r} cannot be its own source")
        if source.name == account.name or source.name in seen:
            raise ValueError(f"source name {source.name!r} is used twice: give each strategy its own name=")
        if source in _SOURCES or source in _ACCOUNTS:
            raise ValueError(f"strategy {source.name!r} serves another SignalAggregator already")
        extra = [k.value for k in source.ktypes if k not in account.ktypes]
        if extra:
            raise ValueError(f"source {source.name!r} wants ktypes {extra} the account does not make "
                             f"({[k.value for k in account.ktypes]}): add them to the account's ktypes")  # fmt: skip
        seen.add(source.name)
