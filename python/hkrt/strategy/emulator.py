"""``OrderEmulator``: stop, stop-limit, trailing-stop and bracket orders held by the strategy and
triggered from the spot stream, because A-share brokers take only limit and market orders.

The emulator holds an order until the last price (the ``close`` column of each ``SpotBatch``)
reaches its trigger, then hands it to the order manager's ``release`` as a market or limit order:

=================  ===============================  ==========================================
held order         fires when the last price ...    released as
=================  ===============================  ==========================================
stop, sell         ... falls to ``stop_price``      market
stop, buy          ... rises to ``stop_price``      market
stop_limit         ... as a stop                    limit at ``price``
trailing_stop      ... falls to best − trail        market
                   (sell) / rises to best + trail
                   (buy); best = the highest
                   (sell) / lowest (buy) last
                   price since it was held
bracket take-      ... rises to ``take_profit``     limit sell at ``take_profit``
profit leg
bracket stop-      ... falls to ``stop_loss``       market sell
loss leg
=================  ===============================  ==========================================

A bracket's legs sell what its buy entry bought: they are made (``manager.create_child``) as
the entry fills, for the filled shares, and become active on the next trading day (T+1).  The
two legs of the same shares cancel each other (OCO): a fill of one shrinks the other, and a
leg that fires while its sibling is working at the broker waits until that sibling is
cancelled, so together they never sell more than the entry bought.  Held stop orders are day
orders (they expire at the close); bracket legs live until filled or cancelled.

Every change is appended to a JSON-lines journal so a restarted strategy holds the same orders
with the same trigger state (:meth:`OrderEmulator.restore`).  See docs/emulated-orders.md for
the rules, worked examples, the journal and its fsync policy.

Threads: the bus handlers run on the bus's callback thread; ``hold``, ``attach_bracket`` and
``cancel`` may be called from any thread.  The emulator's state is guarded by one lock, and it
never calls the order manager while holding it (the manager may call back into ``cancel``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import numpy as np

from hkrt._hkrt import normalize_symbol
from hkrt.bus import DayClosed, EventBus, OrderEvent, SpotBatch, Subscription, TradeEvent
from hkrt.core.logs import LogLimiter, log_limited
from hkrt.strategy.order import FINAL_STATUSES, Order

if TYPE_CHECKING:
    from hkrt.core.calendar import TradingCalendar

log = logging.getLogger("hkrt.emulator")

EMULATED_TYPES = ("stop", "stop_limit", "trailing_stop")  # what hold() takes
TAKE_PROFIT = "take_profit"  # a bracket leg's role (and its held kind)
STOP_LOSS = "stop_loss"
LEG_ROLES = (TAKE_PROFIT, STOP_LOSS)
MAX_JOURNAL_BYTES = 4 * 1024 * 1024  # the journal is rewritten to the live state past this size
JOURNAL_VERSION = 1
_PRICE_DIGITS = 6  # trigger prices are rounded to the micro-yuan: float noise must not decide a trigger

# the stats counters; those named in _LOSSES are losses (each one also a WARNING)
_COUNTERS = (
    "held",
    "triggered",
    "released_market",
    "released_limit",
    "ratchets",
    "cancelled",
    "expired",
    "brackets",
    "brackets_without_fills",
    "legs_created",
    "legs_resized",
    "legs_rearmed",
    "oco_cancels",
    "legs_failed",
    "legs_rejected",
    "legs_cancelled_outside",
    "release_failed",
    "cancel_failed",
    "expire_fallbacks",
    "journal_records",
    "journal_compactions",
    "journal_write_errors",
    "journal_corrupt_lines",
    "journal_kept_aside",
    "restored",
    "restored_adopted",
    "restored_unadopted",
    "restored_dropped",
)


class OrderManagerPort(Protocol):
    """What the emulator needs of the order manager (hkrt.strategy.order_manager.OrderManager).

    Optional, used when present: ``adopt(order) -> None`` (a restored order the manager does not
    know is registered with it, so the broker's later reports find it) and ``expire(order,
    reason) -> None`` (an emulated day order the emulator let go at the close: move it to
    ``expired`` and publish its OrderEvent).
    """

    def release(
        self, order: Order, wire_type: str, limit_price: float | None, when: dt.datetime | None = None
    ) -> None: ...

    def create_child(
        self,
        parent: Order,
        *,
        side: str,
        shares: int,
        order_type: str,
        price: float | None = None,
        stop_price: float | None = None,
        trail: float | str | None = None,
    ) -> Order: ...

    def cancel(self, order: Order, reason: str = "") -> bool: ...

    def get(self, client_order_id: str) -> Order | None: ...

    def now(self) -> dt.datetime | None: ...


# ------------------------------------------------------------------ checking what is asked
def parse_trail(trail: object, what: str = "trail") -> tuple[float | None, float | None]:
    """``trail`` as (yuan, None) or (None, percent): a number of yuan > 0 (``0.3``) or a percent
    string (``"3%"``, above 0 and below 100).  Anything else is one ValueError naming it."""
    if isinstance(trail, str):
        text = trail.strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                percent = math.nan
            if not 0.0 < percent < 100.0:
                raise ValueError(f"{what} {trail!r} is not a percent above 0 and below 100, such as '3%'")
            return None, percent
    elif isinstance(trail, (int, float)) and not isinstance(trail, bool):
        yuan = float(trail)
        if not (yuan > 0.0 and math.isfinite(yuan)):
            raise ValueError(f"{what} {trail!r} must be a distance in yuan above 0 (such as 0.3) or a percent ('3%')")
        return yuan, None
    raise ValueError(f"{what} {trail!r} must be a distance in yuan above 0 (such as 0.3) or a percent string ('3%')")


def _positive(value: object, what: str, order: Order) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"order {order.client_order_id}: {what} must be a price above 0, not {value!r}")
    return float(value)


def trailing_trigger(extreme: float, rises: bool, trail: float | None, percent: float | None) -> float:
    """The trigger of a trailing stop whose best price so far is ``extreme``: below it for a sell
    (``rises`` False), above it for a buy."""
    sign = 1.0 if rises else -1.0
    distance = trail if trail is not None else extreme * (percent or 0.0) / 100.0
    return round(extreme + sign * distance, _PRICE_DIGITS)


# ------------------------------------------------------------------ what is held
@dataclass(eq=False)
class _Held:
    """One order the emulator holds and how close it is to firing."""

    order: Order
    kind: str  # "stop" | "stop_limit" | "trailing_stop" | TAKE_PROFIT | STOP_LOSS
    rises: bool  # fires when the last price rises to the trigger (buy stops, take-profit), else when it falls to it
    trigger: float | None  # None: a trailing stop before its first price
    extreme: float | None = None  # trailing: the best last price since held (highest for a sell)
    trail: float | None = None  # trailing: yuan
    trail_pct: float | None = None  # trailing: percent of the best price
    day: dt.date | None = None  # the market day it was placed (a day order expires at its close)
    expires: bool = True  # False for bracket legs: they live until filled or cancelled
    active_from: dt.date | None = None  # bracket legs: the first day their shares can be sold (T+1)
    pair: str = ""  # bracket legs: the pair of legs it belongs to
    waiting: bool = False  # a leg that fired while its sibling works at the broker: released once that ends

    @property
    def id(self) -> str:
        return self.order.client_order_id

    def to_json(self) -> dict[str, Any]:
        return {
            "order": order_to_json(self.order),
            "kind": self.kind,
            "rises": self.rises,
            "trigger": self.trigger,
            "extreme": self.extreme,
            "trail": self.trail,
            "trail_pct": self.trail_pct,
            "day": _iso(self.day),
            "expires": self.expires,
            "active_from": _iso(self.active_from),
            "pair": self.pair,
            "waiting": self.waiting,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], order: Order) -> _Held:
        held = cls(
            order=order,
            kind=str(data["kind"]),
            rises=bool(data["rises"]),
            trigger=_float_or_none(data["trigger"]),
            extreme=_float_or_none(data["extreme"]),
            trail=_float_or_none(data["trail"]),
            trail_pct=_float_or_none(data["trail_pct"]),
            day=_date_or_none(data["day"]),
            expires=bool(data["expires"]),
            active_from=_date_or_none(data["active_from"]),
            pair=str(data["pair"]),
            waiting=bool(data["waiting"]),
        )
        if held.kind not in (*EMULATED_TYPES, *LEG_ROLES):
            raise ValueError(f"unknown held kind {held.kind!r}")
        return held


@dataclass(eq=False)
class _Pair:
    """The legs protecting the shares one bracket entry bought on one day."""

    id: str
    entry_id: str
    shares: int  # the entry's shares these legs sell
    fill_day: dt.date
    active_from: dt.date  # T+1: the legs fire from this day on
    legs: dict[str, Order | None]  # role -> its leg now (None: none, or retired)
    sold_before: int = 0  # shares the retired leg orders of this pair sold
    cancel_requested: set[str] = field(default_factory=set)  # leg ids the emulator asked the manager to cancel
    creating: set[str] = field(default_factory=set)  # roles whose leg is being made (not journalled)

    @property
    def sold(self) -> int:
        return self.sold_before + sum(leg.filled_shares for leg in self.legs.values() if leg is not None)

    @property
    def left(self) -> int:
        """Shares of this pair not sold yet: what each leg may still sell."""
        return self.shares - self.sold

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entry_id": self.entry_id,
            "shares": self.shares,
            "fill_day": _iso(self.fill_day),
            "active_from": _iso(self.active_from),
            "legs": {role: None if leg is None else order_to_json(leg) for role, leg in self.legs.items()},
            "sold_before": self.sold_before,
            "cancel_requested": sorted(self.cancel_requested),
        }


@dataclass(eq=False)
class _Bracket:
    """A buy entry with take-profit and/or stop-loss legs made as it fills."""

    entry: Order
    take_profit: float | None
    stop_loss: float | None
    legged: int = 0  # entry shares given legs so far
    done: bool = False  # the entry is final: no more legs will be made
    pairs: list[_Pair] = field(default_factory=list)
    next_pair: int = 1

    @property
    def id(self) -> str:
        return self.entry.client_order_id

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(r for r, p in ((TAKE_PROFIT, self.take_profit), (STOP_LOSS, self.stop_loss)) if p is not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "entry": order_to_json(self.entry),
            "take_profit": self.take_profit,
            "stop_loss": self.stop_loss,
            "legged": self.legged,
            "done": self.done,
            "pairs": [pair.to_json() for pair in self.pairs],
            "next_pair": self.next_pair,
        }


_EPOCH = dt.date(1970, 1, 1)


def _symbol_keys(symbols: np.ndarray) -> np.ndarray:
    """8-byte symbols as one integer each (what numpy sorts and searches fastest)."""
    keys: np.ndarray = np.ascontiguousarray(symbols, dtype="S8").view(np.uint64)
    return keys


class _QuietBands:
    """For each held symbol, the last prices that change none of its held orders on a day (a stop
    fires at its trigger, a trailing stop also moves past its best price): a whole batch's rows are
    sorted into "nothing to do" and "look" in a few vector operations, so a symbol whose price sits
    between its triggers costs no Python at all."""

    def __init__(self, symbols: Iterable[str]) -> None:
        names = sorted(symbols)
        keys = _symbol_keys(np.array(names, dtype="S8"))
        order = np.argsort(keys)
        self.keys = keys[order]
        self.position = {names[i]: pos for pos, i in enumerate(order.tolist())}
        self.low = np.full(len(names), np.inf)  # low >= high: no band (every price is looked at)
        self.high = np.full(len(names), -np.inf)
        self.day = np.full(len(names), -1, dtype=np.int64)  # days since 1970-01-01

    def set(self, symbol: str, day: dt.date, low: float, high: float) -> None:
        """On ``day``, last prices strictly between ``low`` and ``high`` change nothing."""
        pos = self.position.get(symbol)
        if pos is not None:
            self.low[pos], self.high[pos], self.day[pos] = low, high, (day - _EPOCH).days

    def clear(self, symbol: str) -> None:
        """The symbol's orders changed: look at its next price."""
        pos = self.position.get(symbol)
        if pos is not None:
            self.low[pos], self.high[pos] = np.inf, -np.inf

    def to_visit(
        self, symbols: np.ndarray, closes: np.ndarray, times: np.ndarray, volumes: np.ndarray | None = None
    ) -> np.ndarray:
        """The rows of a batch that may fire or move a held order: held symbols, a trade (a last
        price above 0 and, when ``volumes`` are given, some volume today: none while suspended, and
        none in the opening call auction, whose price is only indicative), outside the symbol's band."""
        if not len(self.keys):
            return np.empty(0, dtype=np.intp)
        # a binary search of the few held symbols for each row: no sort of the whole batch (np.isin sorts it)
        keys = _symbol_keys(symbols)
        found = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        rows = np.flatnonzero(self.keys[found] == keys)
        pos = found[rows]
        close = closes[rows]
        days = times[rows].astype("datetime64[D]").astype(np.int64)
        quiet = (self.low[pos] < close) & (close < self.high[pos]) & (self.day[pos] == days)
        traded = close > 0
        if volumes is not None:
            traded &= volumes[rows] > 0
        visit: np.ndarray = rows[~quiet & traded]
        return visit


# ------------------------------------------------------------------ the emulator
class OrderEmulator:
    """Holds emulated orders and bracket legs, fires them from the spot stream, journals them.

    Args:
        manager: the order manager (``release``, ``create_child``, ``cancel``, ``get``, ``now``;
            optionally ``adopt`` and ``expire``: :class:`OrderManagerPort`).
        journal: a JSON-lines file that keeps the held orders across a restart (None: not kept).
        calendar: the trading calendar that says when a bracket's shares can be sold (T+1: the
            next trading day after the fill); without one, the first spot of a later day.
        max_journal_bytes: the journal is rewritten to the live state when it grows past this
            (or past twice the live state, when that is larger).
        warn_interval: seconds between two WARNINGs of one kind.

    ``stats``: counters of what happened (losses among them are also logged at WARNING).
    """

    def __init__(
        self,
        manager: OrderManagerPort,
        journal: str | os.PathLike[str] | None = None,
        calendar: TradingCalendar | None = None,
        *,
        max_journal_bytes: int = MAX_JOURNAL_BYTES,
        warn_interval: float = 60.0,
    ) -> None:
        if max_journal_bytes <= 0:
            raise ValueError(f"max_journal_bytes must be above 0, not {max_journal_bytes}")
        self._manager = manager
        self._calendar = calendar
        self.journal_path = None if journal is None else Path(journal).expanduser()
        self.max_journal_bytes = max_journal_bytes
        self._compact_at = max_journal_bytes
        self._file: IO[str] | None = None
        self._lock = threading.RLock()
        self._held: dict[str, _Held] = {}
        self._by_symbol: dict[str, dict[str, _Held]] = {}
        self._index: _QuietBands | None = None  # the held symbols' quiet bands, remade when the symbols change
        self._brackets: dict[str, _Bracket] = {}
        self._legs: dict[str, _Pair] = {}  # leg client id -> its pair
        self._pair_bracket: dict[str, _Bracket] = {}  # pair id -> its bracket
        self._actions: list[Callable[[], None]] = []  # manager calls to make once the lock is released
        self._subscriptions: list[Subscription] = []
        self._bus: EventBus | None = None
        self._written: dict[str, str] = {}  # bracket id -> its last journalled record (unchanged: not rewritten)
        self._today: dt.date | None = None  # the latest market day a spot came from
        self._limiter = LogLimiter(warn_interval)
        self.stats: dict[str, int] = dict.fromkeys(_COUNTERS, 0)

    # ------------------------------------------------------------- reading
    @property
    def held(self) -> list[Order]:
        """The orders held now (not yet released to the broker), bracket legs included."""
        with self._lock:
            return [h.order for h in self._held.values()]

    def trigger_price(self, order: Order | str) -> float | None:
        """The price that fires a held order now (a trailing stop's moves with the market; None
        before its first price, or when the order is not held)."""
        with self._lock:
            held = self._held.get(order if isinstance(order, str) else order.client_order_id)
            return None if held is None else held.trigger

    def legs(self, entry: Order | str) -> list[Order]:
        """The open legs of a bracket entry (held or working at the broker)."""
        entry_id = entry if isinstance(entry, str) else entry.client_order_id
        with self._lock:
            bracket = self._brackets.get(entry_id)
            if bracket is None:
                return []
            return [leg for pair in bracket.pairs for leg in pair.legs.values() if leg is not None]

    # ------------------------------------------------------------- the Emulator protocol
    def hold(self, order: Order) -> None:
        """Hold a stop, stop_limit or trailing_stop order until its trigger.  A bad order (another
        type, a missing or non-positive stop price or limit, a bad trail) is one ValueError."""
        cid = order.client_order_id
        if order.order_type not in EMULATED_TYPES:
            raise ValueError(
                f"order {cid}: the emulator holds {', '.join(EMULATED_TYPES)} orders, not {order.order_type!r} "
                "(limit and market orders go to the broker)"
            )
        if order.is_final:
            raise ValueError(f"order {cid} is {order.status}: there is nothing to hold")
        trigger: float | None = None
        trail: float | None = None
        percent: float | None = None
        if order.order_type == "trailing_stop":
            trail, percent = parse_trail(order.trail, f"order {cid}: trail")
        else:
            trigger = _positive(order.stop_price, "stop_price", order)
        if order.order_type == "stop_limit":
            _positive(order.price, "price (the limit a triggered stop_limit is sent at)", order)
        with self._lock:
            if cid in self._held:
                raise ValueError(f"order {cid} is held already")
            held = _Held(
                order,
                order.order_type,
                rises=order.side == "buy",
                trigger=trigger,
                trail=trail,
                trail_pct=percent,
                day=self._market_day(order),
            )
            self._add(held)
            self.stats["held"] += 1
            self._journal("hold", held=held)
        log.info(
            "holding %s %s %s %s until its trigger",
            order.order_type,
            order.side,
            order.shares,
            order.symbol,
            extra={"client_order_id": cid, "stop_price": trigger, "trail": order.trail},
        )
        self._run_actions()

    def attach_bracket(self, entry: Order) -> None:
        """Make ``entry.take_profit`` / ``entry.stop_loss`` legs as the buy entry fills.  A sell
        entry, no leg price, a non-positive one, or take_profit not above the entry's price (its
        limit, else its stop price; a market entry has none to compare) above stop_loss is one
        ValueError."""
        cid = entry.client_order_id
        take_profit, stop_loss = entry.take_profit, entry.stop_loss
        if take_profit is None and stop_loss is None:
            raise ValueError(f"order {cid}: a bracket needs a take_profit or a stop_loss price")
        if entry.side != "buy":
            raise ValueError(
                f"order {cid}: a bracket needs a buy entry: its legs sell what the entry bought "
                "(a cash account cannot sell short)"
            )
        if take_profit is not None:
            take_profit = _positive(take_profit, "take_profit", entry)
        if stop_loss is not None:
            stop_loss = _positive(stop_loss, "stop_loss", entry)
        if take_profit is not None and stop_loss is not None and not take_profit > stop_loss:
            raise ValueError(f"order {cid}: take_profit {take_profit:g} must be above stop_loss {stop_loss:g}")
        reference = entry.price if entry.price is not None else entry.stop_price
        if reference is not None:
            if take_profit is not None and not take_profit > reference:
                raise ValueError(
                    f"order {cid}: take_profit {take_profit:g} must be above the entry price {reference:g}"
                )
            if stop_loss is not None and not stop_loss < reference:
                raise ValueError(f"order {cid}: stop_loss {stop_loss:g} must be below the entry price {reference:g}")
        with self._lock:
            if cid in self._brackets:
                raise ValueError(f"order {cid} has a bracket already")
            bracket = _Bracket(entry, take_profit, stop_loss)
            self._brackets[cid] = bracket
            self.stats["brackets"] += 1
            self._journal("bracket", bracket=bracket)
            if entry.filled_shares or entry.is_final:  # attached late: what filled already gets its legs now
                self._entry_progress(bracket, entry.filled_shares, entry.updated, final=entry.is_final)
        self._run_actions()

    def cancel(self, order: Order) -> bool:
        """Stop holding ``order``; False when it is not held (never held, released, or ended).
        The caller (the order manager) moves it to ``cancelled``."""
        with self._lock:
            held = self._held.get(order.client_order_id)
            if held is None:
                return False
            self.stats["cancelled"] += 1
            self._let_go(held)
        self._run_actions()
        return True

    def _let_go(self, held: _Held) -> None:
        """A held order was cancelled: forget it, and take a leg out of its pair (lock held)."""
        self._remove(held)
        self._journal("cancel", id=held.id)
        pair = self._legs.get(held.id)
        if pair is not None:
            role = _role_of(pair, held.id)
            if role is not None:
                self._retire(pair, role)
            self._settle(pair)

    def attach(self, bus: EventBus) -> None:
        """Follow the bus: spots fire held orders, order and trade events move brackets, the day's
        close expires held day orders.  Call :meth:`restore` first after a restart."""
        self.detach()
        self._subscriptions = [
            bus.subscribe(SpotBatch, self.on_spots, name="OrderEmulator.spots"),
            bus.subscribe(OrderEvent, self.on_order_event, name="OrderEmulator.orders"),
            bus.subscribe(TradeEvent, self.on_trade, name="OrderEmulator.trades"),
            bus.subscribe(DayClosed, self.on_day_closed, name="OrderEmulator.close"),
        ]
        self._bus = bus

    def detach(self) -> None:
        """Stop following the bus (the held orders stay held)."""
        if self._bus is not None:
            for sub in self._subscriptions:
                self._bus.unsubscribe(sub)
        self._subscriptions = []
        self._bus = None

    def close(self) -> None:
        """Close the journal file (the next change reopens it)."""
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None

    # ------------------------------------------------------------- bus handlers
    def on_spots(self, batch: SpotBatch) -> None:
        """Fire what the batch's last prices reach (only the rows of held symbols are read)."""
        if not self._by_symbol:
            return
        columns = batch.columns
        with self._lock:
            index = self._index
            if index is None:
                index = self._index = _QuietBands(self._by_symbol)
            rows = index.to_visit(columns["symbol"], columns["close"], columns["datetime"], columns.get("volume"))
            closes = columns["close"][rows].tolist()
            symbols = columns["symbol"][rows].tolist()
            times = columns["datetime"][rows].astype("datetime64[ms]").tolist()
            for symbol, last, when in zip(symbols, closes, times, strict=True):
                if when is None:
                    continue
                day = when.date()
                if self._today is None or day > self._today:
                    self._today = day
                name = symbol.decode()
                for held in list(self._by_symbol.get(name, {}).values()):
                    self._on_price(held, float(last), when)
                self._set_band(name, day)
        self._run_actions()

    def on_order_event(self, event: OrderEvent) -> None:
        """A bracket entry filled or ended; a leg moved; a held order ended elsewhere."""
        final = event.status in FINAL_STATUSES
        self._order_news(event.client_order_id, event.filled_shares, event.datetime, final=final)

    def on_trade(self, event: TradeEvent) -> None:
        """A fill of a bracket entry (its legs grow) or of a leg (its sibling shrinks)."""
        self._order_news(event.client_order_id, 0, event.datetime, final=False)

    def _order_news(self, cid: str, filled: int, when: dt.datetime | None, *, final: bool) -> None:
        """An order moved (the manager updated it before publishing): follow it.  ``filled``: the
        event's cumulative fill, when it says."""
        with self._lock:
            bracket = self._brackets.get(cid)
            if bracket is not None:
                self._entry_progress(bracket, max(filled, bracket.entry.filled_shares), when, final=final)
            pair = self._legs.get(cid)
            if pair is not None:
                self._settle(pair)
            held = self._held.get(cid)
            if held is not None and final and pair is None:
                self._remove(held)  # ended by someone else (the manager, a reconciliation): nothing left to fire
                self._journal("drop", id=cid)
                log.info("held order %s ended elsewhere: no longer held", cid, extra={"id": cid})
        self._run_actions()

    def on_day_closed(self, event: DayClosed) -> None:
        """Held day orders of that day (or earlier) expire; bracket legs stay."""
        with self._lock:
            for held in list(self._held.values()):
                if held.expires and (held.day is None or held.day <= event.day):
                    self._expire(held, f"a day order held by the emulator expired at the close of {event.day}")
        self._run_actions()

    # ------------------------------------------------------------- restart
    def restore(self) -> list[Order]:
        """Hold again what the journal holds (after a restart) and return those orders.

        Each order is the manager's own when it knows it (one it reports ended is dropped), else
        the journal's copy, registered with the manager through its ``adopt(order)``.  Brackets
        come back with their legs, and an entry that filled while the emulator was down gets
        its legs now.  A line that cannot be read is counted (``journal_corrupt_lines``) and
        logged; the file is then kept aside (renamed ``<name>.corrupt``, never deleted) and the
        journal rewritten from the lines that could be read.  Replaces the emulator's state with
        the journal's (call it before holding new orders)."""
        path = self.journal_path
        if path is None:
            return []
        with self._lock:
            self.close()
            held_records, bracket_records, bad = self._read_journal(path)
            self._held.clear()
            self._by_symbol.clear()
            self._index = None
            self._brackets.clear()
            self._legs.clear()
            self._pair_bracket.clear()
            self._rebuild(held_records, bracket_records)
            if bad:
                self._keep_aside(path, bad)
            self._compact()
            restored = [h.order for h in self._held.values()]
            self.stats["restored"] += len(restored)
            now = self._now()
            for bracket in list(self._brackets.values()):  # fills (or the end) while the emulator was down
                entry = bracket.entry
                self._entry_progress(bracket, entry.filled_shares, entry.updated or now, final=entry.is_final)
                for pair in list(bracket.pairs):
                    self._settle(pair)
        if restored or self._brackets:
            log.info(
                "restored %d held orders and %d brackets from %s",
                len(restored),
                len(self._brackets),
                path,
                extra={"held": len(restored), "brackets": len(self._brackets), "path": str(path)},
            )
        self._run_actions()
        return restored

    # ------------------------------------------------------------- firing (lock held)
    def _on_price(self, held: _Held, last: float, when: dt.datetime) -> None:
        if held.id not in self._held:  # fired or ended earlier in this batch
            return
        day = when.date()
        if held.day is None:
            held.day = day
        if held.expires and day > held.day:  # the close of its day was missed (a restart across days)
            self._expire(held, f"a day order of {held.day} held past its day: it expired")
            return
        if held.waiting or (held.active_from is not None and day < held.active_from):
            return
        if held.kind == "trailing_stop":
            self._ratchet(held, last)
        trigger = held.trigger
        if trigger is not None and (last >= trigger if held.rises else last <= trigger):
            self._fire(held, last, when)

    def _set_band(self, symbol: str, day: dt.date) -> None:
        """The prices that leave every held order of ``symbol`` as it is on ``day`` (none when an
        order has no trigger yet or no day: each spot goes through them all)."""
        index = self._index
        if index is None:
            return
        low, high = -math.inf, math.inf
        for held in self._by_symbol.get(symbol, {}).values():
            if held.day is None or (held.expires and day > held.day):
                index.clear(symbol)
                return
            if held.waiting or (held.active_from is not None and day < held.active_from):
                continue  # fires on no price today
            trigger = held.trigger
            if trigger is None:
                index.clear(symbol)
                return
            extreme = held.extreme if held.kind == "trailing_stop" else None
            # a stop fires at its trigger; a trailing stop moves past its best price, not at it
            if held.rises:
                high = min(high, trigger)
                if extreme is not None:
                    low = max(low, math.nextafter(extreme, -math.inf))
            else:
                low = max(low, trigger)
                if extreme is not None:
                    high = min(high, math.nextafter(extreme, math.inf))
        index.set(symbol, day, low, high)

    def _ratchet(self, held: _Held, last: float) -> None:
        best = held.extreme
        if best is None or (last < best if held.rises else last > best):
            held.extreme = last
            held.trigger = trailing_trigger(last, held.rises, held.trail, held.trail_pct)
            self.stats["ratchets"] += 1
            self._journal("ratchet", held=held, sync=False)

    def _fire(self, held: _Held, last: float, when: dt.datetime) -> None:
        pair = self._legs.get(held.id)
        if pair is not None:
            role = _role_of(pair, held.id)
            sibling = pair.legs.get(_other(role)) if role is not None else None
            if sibling is not None and not sibling.is_final and sibling.client_order_id not in self._held:
                # the sibling works at the broker: both out at once could sell the shares twice
                held.waiting = True
                self._journal("wait", held=held)
                pair.cancel_requested.add(sibling.client_order_id)
                self.stats["oco_cancels"] += 1
                log.info(
                    "bracket leg %s fired at %g: cancelling its sibling %s at the broker first",
                    held.id,
                    last,
                    sibling.client_order_id,
                    extra={"id": held.id, "sibling": sibling.client_order_id, "last": last},
                )
                self._later(self._cancel_at_manager, sibling, f"one cancels the other: its sibling leg {held.id} fired")
                self._journal("bracket", bracket=self._pair_bracket[pair.id])
                return
        self._release(held, last, when)

    def _release(self, held: _Held, last: float | None, when: dt.datetime | None = None) -> None:
        """Send ``held`` out, dated ``when`` (the spot that fired it: the strategy's clock moves only at the
        cycle's end, a whole cycle behind the price that fired), else the strategy's clock."""
        order = held.order
        self._remove(held)
        held.waiting = False
        self.stats["triggered"] += 1
        self._journal("trigger", id=held.id, price=last)
        if held.kind in ("stop_limit", TAKE_PROFIT):
            wire, limit = "limit", order.price
            self.stats["released_limit"] += 1
        else:
            wire, limit = "market", None
            self.stats["released_market"] += 1
        log.info(
            "%s %s fired at %s: released as %s%s",
            held.kind,
            held.id,
            "?" if last is None else f"{last:g}",
            wire,
            "" if limit is None else f" at {limit:g}",
            extra={"id": held.id, "last": last, "trigger": held.trigger, "wire_type": wire, "limit_price": limit},
        )

        def release() -> None:
            try:
                self._manager.release(order, wire, limit, when)
            except Exception as err:  # the order left the emulator and did not reach the broker
                self._loss(
                    "release_failed",
                    f"emulated order {order.client_order_id} fired but the order manager could not release it: {err}",
                    id=order.client_order_id,
                )

        self._later(release)

    def _expire(self, held: _Held, reason: str) -> None:
        self._remove(held)
        self.stats["expired"] += 1
        self._journal("expire", id=held.id)
        log.info("%s %s expired: %s", held.kind, held.id, reason, extra={"id": held.id, "reason": reason})
        self._later(self._expire_at_manager, held.order, reason)

    # ------------------------------------------------------------- brackets (lock held)
    def _entry_progress(self, bracket: _Bracket, filled: int, when: dt.datetime | None, *, final: bool) -> None:
        if bracket.entry.shares > 0:
            filled = min(filled, bracket.entry.shares)
        new = filled - bracket.legged
        if new > 0 and not bracket.done:
            day = self._day_of(when)
            pair = next((p for p in bracket.pairs if p.fill_day == day and self._growable(p)), None)
            if pair is None:
                pair = _Pair(
                    id=f"{bracket.id}#{bracket.next_pair}",
                    entry_id=bracket.id,
                    shares=new,
                    fill_day=day,
                    active_from=self._sellable_from(day),
                    legs=dict.fromkeys(bracket.roles),
                )
                bracket.next_pair += 1
                bracket.pairs.append(pair)
                self._pair_bracket[pair.id] = bracket
                for role in bracket.roles:
                    pair.creating.add(role)
                    self._later(self._make_leg, pair, role)
            else:
                pair.shares += new
            bracket.legged = filled
            self._settle(pair)
        if final and not bracket.done:
            bracket.done = True
            if bracket.legged == 0:
                self.stats["brackets_without_fills"] += 1
                log.info("bracket entry %s ended with no fill: no legs", bracket.id, extra={"id": bracket.id})
        self._journal("bracket", bracket=bracket)
        self._end_if_done(bracket)

    def _growable(self, pair: _Pair) -> bool:
        """A pair the same day's further fills can join: nothing of it fired, sold or left yet."""
        legs = [leg for leg in pair.legs.values() if leg is not None]
        return pair.sold_before == 0 and all(
            leg.client_order_id in self._held and not self._held[leg.client_order_id].waiting for leg in legs
        )

    def _make_leg(self, pair: _Pair, role: str) -> None:
        """(An action: the lock is not held.)  Ask the manager for a leg and hold it."""
        with self._lock:
            bracket = self._pair_bracket.get(pair.id)
            shares = pair.left
            if bracket is None or shares <= 0:
                pair.creating.discard(role)
                return
            price = bracket.take_profit if role == TAKE_PROFIT else bracket.stop_loss
            entry = bracket.entry
        assert price is not None
        try:
            if role == TAKE_PROFIT:
                leg = self._manager.create_child(entry, side="sell", shares=shares, order_type="limit", price=price)
            else:
                leg = self._manager.create_child(entry, side="sell", shares=shares, order_type="stop", stop_price=price)
        except Exception as err:
            with self._lock:
                pair.creating.discard(role)
                self._loss(
                    "legs_failed",
                    f"bracket {entry.client_order_id}: the order manager could not make its {role} leg "
                    f"({shares} shares are not protected by it): {err}",
                    id=entry.client_order_id,
                    role=role,
                )
                self._settle(pair)
            return
        with self._lock:
            pair.creating.discard(role)
            held = _Held(
                leg,
                role,
                rises=role == TAKE_PROFIT,
                trigger=price,
                day=self._market_day(leg),
                expires=False,
                active_from=pair.active_from,
                pair=pair.id,
            )
            self._add(held)
            pair.legs[role] = leg
            self._legs[leg.client_order_id] = pair
            self.stats["legs_created"] += 1
            self._journal("leg", held=held)
            log.info(
                "bracket %s: %s leg %s sells %d at %g, active from %s",
                entry.client_order_id,
                role,
                leg.client_order_id,
                leg.shares,
                price,
                pair.active_from,
                extra={"id": leg.client_order_id, "entry": entry.client_order_id, "role": role},
            )
            self._settle(pair)

    def _retire(self, pair: _Pair, role: str) -> None:
        """A leg order is over: count what it sold and let it go."""
        leg = pair.legs.get(role)
        if leg is None:
            return
        pair.sold_before += leg.filled_shares
        pair.legs[role] = None
        self._legs.pop(leg.client_order_id, None)
        held = self._held.get(leg.client_order_id)
        if held is not None:
            self._remove(held)

    def _settle(self, pair: _Pair) -> None:
        """Bring a pair in line with its legs' orders: retire ended legs, shrink the held ones to
        what is left, cancel them when nothing is left, release a leg that waited for its
        sibling, make a new leg for one the broker expired."""
        bracket = self._pair_bracket.get(pair.id)
        if bracket is None:
            return
        rearm: list[str] = []
        for role, leg in list(pair.legs.items()):
            if leg is None or not leg.is_final:
                continue
            cid = leg.client_order_id
            self._retire(pair, role)
            if leg.status == "expired":  # a released leg's day ended at the broker: the shares still need it
                rearm.append(role)
            elif leg.status == "rejected":
                self._loss(
                    "legs_rejected",
                    f"bracket {bracket.id}: its {role} leg {cid} was rejected ({leg.reason or 'no reason given'}): "
                    "those shares are no longer protected by it",
                    id=cid,
                    entry=bracket.id,
                )
            elif leg.status == "cancelled" and cid not in pair.cancel_requested:
                self.stats["legs_cancelled_outside"] += 1
                log.info("bracket %s: its %s leg %s was cancelled (not re-armed)", bracket.id, role, cid)
            pair.cancel_requested.discard(cid)
        left = pair.left
        for role, leg in pair.legs.items():
            held = None if leg is None else self._held.get(leg.client_order_id)
            if leg is None or held is None:
                continue
            if left <= 0:
                if leg.client_order_id not in pair.cancel_requested:
                    pair.cancel_requested.add(leg.client_order_id)
                    self._later(self._cancel_at_manager, leg, "one cancels the other: its sibling leg sold the shares")
            elif leg.shares - leg.filled_shares != left:
                leg.shares = leg.filled_shares + left
                self.stats["legs_resized"] += 1
                self._journal("resize", held=held)
            if held.waiting and left > 0:
                sibling = pair.legs.get(_other(role))
                if sibling is None or sibling.is_final:
                    self._release(held, None)
        if left > 0:
            for role in rearm:
                if pair.legs.get(role) is None and role not in pair.creating:
                    self.stats["legs_rearmed"] += 1
                    pair.creating.add(role)
                    log.info("bracket %s: its %s leg expired at the broker: a new one holds %d", bracket.id, role, left)
                    self._later(self._make_leg, pair, role)
        open_legs = any(leg is not None for leg in pair.legs.values())
        if not open_legs and (left <= 0 or not pair.creating):
            bracket.pairs.remove(pair)
            self._pair_bracket.pop(pair.id, None)
        self._journal("bracket", bracket=bracket)
        self._end_if_done(bracket)

    def _end_if_done(self, bracket: _Bracket) -> None:
        if bracket.done and not bracket.pairs and bracket.id in self._brackets:
            del self._brackets[bracket.id]
            self._written.pop(bracket.id, None)
            self._journal("bracket_end", id=bracket.id)

    # ------------------------------------------------------------- manager calls (actions: no lock)
    def _cancel_at_manager(self, order: Order, why: str = "") -> None:
        try:
            ok = self._manager.cancel(order, why)
        except Exception as err:
            ok, reason = False, str(err)
        else:
            reason = "the manager refused"
        if not ok and not order.is_final:
            self._loss(
                "cancel_failed",
                f"emulator could not cancel {order.client_order_id} ({reason}): its sibling leg waits until it ends",
                id=order.client_order_id,
            )
        with self._lock:  # a manager that did not call back into cancel(): let the held order go here
            held = self._held.get(order.client_order_id)
            if held is not None and ok:
                self._let_go(held)

    def _expire_at_manager(self, order: Order, reason: str) -> None:
        expire = getattr(self._manager, "expire", None)
        if expire is not None:
            expire(order, reason)
            return
        self.stats["expire_fallbacks"] += 1
        if not order.is_final:  # no OrderEvent without the manager: the order at least says so
            order.move_to("expired", self._now(), reason)

    def _later(self, func: Callable[..., None], *args: Any) -> None:
        self._actions.append(lambda: func(*args))

    def _run_actions(self) -> None:
        """Make the manager calls decided under the lock (actions may add more)."""
        while True:
            with self._lock:
                if not self._actions:
                    return
                action = self._actions.pop(0)
            action()

    # ------------------------------------------------------------- bookkeeping (lock held)
    def _add(self, held: _Held) -> None:
        self._held[held.id] = held
        symbol = normalize_symbol(held.order.symbol)
        if symbol not in self._by_symbol:
            self._index = None
        elif self._index is not None:
            self._index.clear(symbol)
        self._by_symbol.setdefault(symbol, {})[held.id] = held

    def _remove(self, held: _Held) -> None:
        self._held.pop(held.id, None)
        symbol = normalize_symbol(held.order.symbol)
        items = self._by_symbol.get(symbol)
        if self._index is not None:
            self._index.clear(symbol)
        if items is not None:
            items.pop(held.id, None)
            if not items:
                del self._by_symbol[symbol]
                self._index = None

    def _now(self) -> dt.datetime | None:
        return self._manager.now()

    def _market_day(self, order: Order) -> dt.date | None:
        now = self._now() or order.created
        return now.date() if now is not None else self._today

    def _day_of(self, when: dt.datetime | None) -> dt.date:
        when = when or self._now()
        if when is not None:
            return when.date()
        return self._today or dt.date.today()

    def _sellable_from(self, day: dt.date) -> dt.date:
        """T+1: shares bought on ``day`` can be sold from the next trading day."""
        if self._calendar is not None:
            try:
                return self._calendar.next_trading_day(day)
            except ValueError as err:  # outside the calendar's coverage: the first later day a spot comes
                log_limited(log, logging.WARNING, "calendar", f"bracket legs: {err}", limiter=self._limiter)
        return day + dt.timedelta(days=1)

    def _loss(self, counter: str, message: str, **extra: Any) -> None:
        self.stats[counter] += 1
        log_limited(log, logging.WARNING, counter, message, {"counter": counter, **extra}, limiter=self._limiter)

    # ------------------------------------------------------------- the journal (lock held)
    def _journal(
        self,
        op: str,
        *,
        held: _Held | None = None,
        bracket: _Bracket | None = None,
        id: str | None = None,
        price: float | None = None,
        sync: bool = True,
    ) -> None:
        if self.journal_path is None:
            return
        record: dict[str, Any] = {"op": op}
        if held is not None:
            record["held"] = held.to_json()
        if bracket is not None:
            record["bracket"] = item = bracket.to_json()
            text = json.dumps(item, sort_keys=True)
            if self._written.get(bracket.id) == text:
                return
            self._written[bracket.id] = text
        if id is not None:
            record["id"] = id
        if price is not None:
            record["price"] = price
        self._append([record], sync=sync)

    def _append(self, records: Iterable[dict[str, Any]], *, sync: bool) -> None:
        path = self.journal_path
        assert path is not None
        try:
            if self._file is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115 (kept open)
            lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
            self._file.write(lines)
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())
            self.stats["journal_records"] += 1
            size = self._file.tell()
        except OSError as err:
            self._loss(
                "journal_write_errors",
                f"emulator journal {path} could not be written ({err}): a restart would not see this change",
                path=str(path),
            )
            self.close()
            return
        if size > self._compact_at:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the journal as the live state alone (temporary file, fsync, rename)."""
        path = self.journal_path
        if path is None:
            return
        self.close()
        records: list[dict[str, Any]] = [{"op": "version", "version": JOURNAL_VERSION}]
        records += [{"op": "hold", "held": h.to_json()} for h in self._held.values()]
        records += [{"op": "bracket", "bracket": b.to_json()} for b in self._brackets.values()]
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with open(fd, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            tmp = None
            from hkrt.feed.journal import fsync_directory

            fsync_directory(path.parent)
        except OSError as err:
            self._loss(
                "journal_write_errors",
                f"emulator journal {path} could not be rewritten ({err}): it keeps growing",
                path=str(path),
            )
            return
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.stats["journal_compactions"] += 1
        self._compact_at = max(self.max_journal_bytes, 2 * len(text.encode()))

    def _read_journal(self, path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], int]:
        """The journal's last word on each held order and bracket, and how many lines were bad."""
        held: dict[str, dict[str, Any]] = {}
        brackets: dict[str, dict[str, Any]] = {}
        bad = 0
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return held, brackets, 0
        except OSError as err:
            self._loss("journal_corrupt_lines", f"emulator journal {path} cannot be read: {err}", path=str(path))
            return held, brackets, 1
        for number, raw in enumerate(data.split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                op = record["op"]
                if op in ("hold", "ratchet", "leg", "resize", "wait"):
                    item = record["held"]
                    _check_record(item, _HELD_KEYS, "held order")
                    _check_order_record(item["order"])
                    held[item["order"]["client_order_id"]] = item
                elif op in ("trigger", "cancel", "expire", "drop"):
                    held.pop(str(record["id"]), None)
                elif op == "bracket":
                    item = record["bracket"]
                    _check_record(item, _BRACKET_KEYS, "bracket")
                    _check_order_record(item["entry"])
                    brackets[item["entry"]["client_order_id"]] = item
                elif op == "bracket_end":
                    brackets.pop(str(record["id"]), None)
                elif op != "version":
                    raise ValueError(f"unknown op {op!r}")
            except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
                bad += 1
                self._loss(
                    "journal_corrupt_lines",
                    f"emulator journal {path} line {number} cannot be read ({type(err).__name__}: {err}): skipped",
                    path=str(path),
                    line=number,
                )
        return held, brackets, bad

    def _keep_aside(self, path: Path, bad: int) -> None:
        """Rename the damaged journal to its first free ``.corrupt`` name (never overwritten)."""
        from hkrt.feed.journal import corrupt_copy_names

        for target in corrupt_copy_names(path):
            if target.exists():
                continue
            try:
                os.rename(path, target)
            except FileNotFoundError:
                return
            except OSError as err:
                self._loss("journal_write_errors", f"emulator journal {path} could not be kept aside: {err}")
                return
            self.stats["journal_kept_aside"] += 1
            log.warning(
                "emulator journal %s had %d unreadable lines: kept aside as %s, rewritten from the readable ones",
                path,
                bad,
                target,
                extra={"path": str(path), "kept_as": str(target), "bad_lines": bad},
            )
            return

    def _rebuild(self, held_records: dict[str, dict[str, Any]], bracket_records: dict[str, dict[str, Any]]) -> None:
        """Objects again from the journal's records (lock held)."""
        for cid, item in held_records.items():
            order = self._resolve(item["order"])
            if order is None:
                continue
            try:
                held = _Held.from_json(item, order)
            except (ValueError, KeyError, TypeError) as err:
                self._loss("journal_corrupt_lines", f"emulator journal: held order {cid} cannot be rebuilt: {err}")
                continue
            self._add(held)
        for cid, item in bracket_records.items():
            try:
                self._rebuild_bracket(item)
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                self._loss("journal_corrupt_lines", f"emulator journal: bracket {cid} cannot be rebuilt: {err}")

    def _rebuild_bracket(self, item: dict[str, Any]) -> None:
        entry = self._resolve(item["entry"], keep_final=True)
        assert entry is not None
        bracket = _Bracket(
            entry,
            _float_or_none(item["take_profit"]),
            _float_or_none(item["stop_loss"]),
            legged=int(item["legged"]),
            done=bool(item["done"]),
            next_pair=int(item["next_pair"]),
        )
        for data in item["pairs"]:
            fill_day, active_from = _date_or_none(data["fill_day"]), _date_or_none(data["active_from"])
            assert fill_day is not None and active_from is not None
            pair = _Pair(
                id=str(data["id"]),
                entry_id=bracket.id,
                shares=int(data["shares"]),
                fill_day=fill_day,
                active_from=active_from,
                legs={},
                sold_before=int(data["sold_before"]),
                cancel_requested={str(c) for c in data["cancel_requested"]},
            )
            for role, leg_data in data["legs"].items():
                if role not in LEG_ROLES:
                    raise ValueError(f"unknown leg role {role!r}")
                held = None if leg_data is None else self._held.get(leg_data["client_order_id"])
                leg = held.order if held is not None else None
                if leg is None and leg_data is not None:
                    leg = self._resolve(leg_data, keep_final=True)
                pair.legs[role] = leg
                if leg is not None:
                    self._legs[leg.client_order_id] = pair
            bracket.pairs.append(pair)
            self._pair_bracket[pair.id] = bracket
        self._brackets[bracket.id] = bracket

    def _resolve(self, data: dict[str, Any], *, keep_final: bool = False) -> Order | None:
        """The manager's order of that id, else the journal's copy adopted by the manager."""
        cid = str(data["client_order_id"])
        known = self._manager.get(cid)
        if known is not None:
            if not keep_final and (known.is_final or known.triggered):
                self.stats["restored_dropped"] += 1
                log.info("journalled order %s is %s at the manager: not held again", cid, known.status)
                return None
            return known
        order = order_from_json(data)
        if order.is_final:
            return order  # nothing more will happen to it: a record for the bracket's counts
        adopt = getattr(self._manager, "adopt", None)
        if adopt is None:
            self._loss(
                "restored_unadopted",
                f"restored order {cid} is unknown to the order manager, which has no adopt(): "
                "its broker's reports will not find it",
                id=cid,
            )
        else:
            adopt(order)
            self.stats["restored_adopted"] += 1
        return order


# ------------------------------------------------------------------ helpers
def _role_of(pair: _Pair, cid: str) -> str | None:
    for role, leg in pair.legs.items():
        if leg is not None and leg.client_order_id == cid:
            return role
    return None


def _other(role: str | None) -> str:
    return STOP_LOSS if role == TAKE_PROFIT else TAKE_PROFIT


# what a restored order needs: not its history, nor its brokers' answers to the send (OrderResult objects of
# that moment, which the reports after a restart supersede)
_ORDER_FIELDS = tuple(f.name for f in fields(Order) if f.name not in ("history", "results"))
_ORDER_TIMES = ("created", "updated")


def order_to_json(order: Order) -> dict[str, Any]:
    """An order's fields as JSON values (its history is not kept)."""
    out: dict[str, Any] = {}
    for name in _ORDER_FIELDS:
        value = getattr(order, name)
        out[name] = value.isoformat() if isinstance(value, dt.datetime) else value
    return out


_HELD_KEYS = frozenset(
    (
        "order",
        "kind",
        "rises",
        "trigger",
        "extreme",
        "trail",
        "trail_pct",
        "day",
        "expires",
        "active_from",
        "pair",
        "waiting",
    )
)
_BRACKET_KEYS = frozenset(("entry", "take_profit", "stop_loss", "legged", "done", "pairs", "next_pair"))


def _check_record(data: object, keys: frozenset[str], what: str) -> None:
    """Raise ValueError unless ``data`` is a dict with every one of ``keys``."""
    if not isinstance(data, dict):
        raise ValueError(f"not a {what} record")
    missing = keys - data.keys()
    if missing:
        raise ValueError(f"a {what} record without {', '.join(sorted(missing))}")


def _check_order_record(data: object) -> None:
    """Raise (ValueError/KeyError/TypeError) unless ``data`` is an order the journal wrote."""
    if not isinstance(data, dict) or not isinstance(data["client_order_id"], str) or not data["client_order_id"]:
        raise ValueError("not an order record")


def order_from_json(data: dict[str, Any]) -> Order:
    """An ``Order`` from :func:`order_to_json`'s dict (unknown keys, from a newer version, ignored)."""
    kwargs = {name: data[name] for name in _ORDER_FIELDS if name in data}
    for name in _ORDER_TIMES:
        if kwargs.get(name) is not None:
            kwargs[name] = dt.datetime.fromisoformat(kwargs[name])
    return Order(**kwargs)


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _date_or_none(value: object) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value))


def _float_or_none(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


__all__ = [
    "EMULATED_TYPES",
    "LEG_ROLES",
    "MAX_JOURNAL_BYTES",
    "STOP_LOSS",
    "TAKE_PROFIT",
    "OrderEmulator",
    "OrderManagerPort",
    "parse_trail",
    "trailing_trigger",
]
