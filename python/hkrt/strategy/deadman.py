"""The dead-man switch: cancel the working orders and alert when a running strategy's heartbeat stops.

Two heartbeats are watched (docs/kill-switch.md):

- the strategy's: its callback thread makes progress.  A handler (a bar, spot, cycle or timer
  callback, or anything else on the bus) running longer than ``strategy_timeout`` seconds of wall
  time means the thread is stuck; an idle thread (nothing to do) is healthy.  Wall time, so a
  simulated day that merely runs fast never looks stuck, and a callback that sleeps does.
- the feed's: a spot message (not a publisher heartbeat: an idle publisher keeps sending those
  while its source is dead) within ``feed_timeout`` seconds *of continuous trading*.  Live, by the
  China wall clock: silence is counted only inside a session of a trading day (hkrt.core.china_time
  and the strategy's calendar), from the session's start at the earliest, so nights, lunch and
  holidays never fire.  On a simulated or replayed day the feed's own market clock is the clock:
  the session time between two consecutive cycles' market times, so a recorded outage fires in its
  replay as it did live, and a fast run (or a paused replayer) never does.

When one stops: an ERROR line, every working order asked to cancel (``OrderManager.cancel_all``,
forced past the order-rate limit), trading HALTED with the reason (``halt=False``: orders are
cancelled but new ones still go out), a ``RiskEvent("state", ...)`` on the bus, ``on_alert(alert)``,
and counts in ``stats``.  Once per outage: it fires again only after the heartbeat came back
(re-armed, an INFO line).

The watchdog is its own thread, so it acts while the callback thread is stuck: it halts and cancels
with :func:`hkrt.strategy.kill_switch.stop_trading`, which never waits on the bus longer than
``action_wait`` seconds (a callback stuck long enough lets the feed fill the callback queue, and a
publish from outside the callback thread then waits for room) and says what it relies on: the order
manager's lock held only around its own bookkeeping, each broker's ``cancel`` safe from any thread.
``on_alert`` runs on the watchdog's thread: keep it short (hand a slow notification to a thread).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hkrt.bus import RiskEvent
from hkrt.core.china_time import SESSIONS, china_now, in_session

if TYPE_CHECKING:
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.bus import CycleEnded, EventBus, Subscription
    from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.deadman")

STRATEGY, FEED = "strategy", "feed"
MAX_ALERTS = 1_000  # alerts kept in ``alerts`` (the oldest dropped first)


@dataclasses.dataclass(frozen=True)
class DeadManAlert:
    """One firing: which heartbeat stopped, for how long, what was done."""

    heartbeat: str  # "strategy" or "feed"
    seconds: float  # how long it had been silent when it fired (feed on a played day: market seconds)
    detail: str  # the whole reason, as logged and as the halt's reason
    cancelled: int  # working orders asked to cancel (-1: the action had not finished within action_wait)
    halted: bool  # whether trading was HALTED by it
    wall: dt.datetime  # China wall time of the firing
    market: dt.datetime | None  # the strategy's market time then


class DeadManSwitch:
    """Watches a running strategy's two heartbeats; see the module docstring.

    Args:
        strategy_timeout: seconds a callback may run before the callback thread counts as stuck
            (None: not watched).
        feed_timeout: seconds of continuous trading without a spot message before the feed counts
            as silent (None: not watched).
        halt: also HALT trading when it fires (True, the default: a person looks and ``hkrt resume``s).
        on_alert: called with each :class:`DeadManAlert` on the watchdog's thread (never the callback
            thread, which may be the stuck one; a played day's feed alert: the callback thread); its
            exceptions are logged and counted.
        check_interval: seconds between two looks of the watchdog.
        action_wait: seconds the watchdog waits at most for the cancels to go out (the rest finish in
            the background, counted in ``stats["cancels_pending"]``).
        clock: monotonic seconds (tests pass a fake); wall: China wall time (tests pass a fake).
    """

    def __init__(
        self,
        *,
        strategy_timeout: float | None = 30.0,
        feed_timeout: float | None = 60.0,
        halt: bool = True,
        on_alert: Callable[[DeadManAlert], Any] | None = None,
        check_interval: float = 0.25,
        action_wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = china_now,
    ) -> None:
        for name, value in (("strategy_timeout", strategy_timeout), ("feed_timeout", feed_timeout)):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"dead-man switch: {name} must be a number of seconds > 0 or None, not {value!r}")
        if not check_interval > 0 or not action_wait > 0:
            raise ValueError("dead-man switch: check_interval and action_wait must be > 0 seconds")
        self.strategy_timeout = strategy_timeout
        self.feed_timeout = feed_timeout
        self.halt = bool(halt)
        self.on_alert = on_alert
        self.check_interval = check_interval
        self.action_wait = action_wait
        self._clock = clock
        self._wall = wall
        self.stats: collections.Counter[str] = collections.Counter()
        self.alerts: collections.deque[DeadManAlert] = collections.deque(maxlen=MAX_ALERTS)
        self.armed = {STRATEGY: True, FEED: True}
        self.strategy: Strategy | None = None
        self.agent: SpotAgent | None = None
        self.live = False
        self._bus: EventBus | None = None
        self._subscription: Subscription | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._data_count: int | None = None  # spot messages the agent had counted at the last look
        self._data_at = clock()  # when that count last moved (monotonic)
        self._session_since: float | None = None  # when the watchdog first saw the current session
        self._market_prev: dt.datetime | None = None  # the previous cycle's market time (played days)
        self._lock = threading.Lock()  # fire/re-arm decisions (the watchdog and the callback thread)

    @classmethod
    def make(cls, value: Any) -> DeadManSwitch | None:
        """``Strategy(deadman=...)``: a DeadManSwitch, a dict of its keyword arguments, True (the
        defaults) or None/False (none)."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            try:
                return cls(**value)
            except TypeError as err:
                raise ValueError(f"dead-man switch: {err}") from None
        raise TypeError(f"deadman= takes a DeadManSwitch, a dict of its options, True or None, not {value!r}")

    # --------------------------------------------------------------- running
    def start(self, strategy: Strategy, agent: SpotAgent | None, *, live: bool) -> DeadManSwitch:
        """Watch ``strategy`` (attached to its bus) fed by ``agent``; ``live``: the feed is the real market."""
        self.stop()
        self.strategy, self.agent, self.live = strategy, agent, live
        self.armed = {STRATEGY: True, FEED: True}
        self._data_count, self._data_at, self._session_since, self._market_prev = None, self._clock(), None, None
        bus = strategy.bus
        self._bus = bus
        if bus is not None and not live and self.feed_timeout is not None:
            from hkrt.bus import CycleEnded

            self._subscription = bus.subscribe(CycleEnded, self._market_cycle, name="DeadManSwitch.feed_clock")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._watch, name="hkrt-deadman", daemon=True)
        self._thread.start()
        log.info(
            "dead-man switch armed",
            extra={
                "strategy": strategy.name,
                "strategy_timeout": self.strategy_timeout,
                "feed_timeout": self.feed_timeout,
                "live": live,
                "halt": self.halt,
            },
        )
        return self

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.action_wait + 2 * self.check_interval)
        if self._subscription is not None and self._bus is not None:
            self._bus.unsubscribe(self._subscription)
        self._subscription = None

    def _watch(self) -> None:
        while not self._stopping.wait(self.check_interval):
            try:
                self.check()
            except Exception:  # the watchdog must outlive its own bugs
                self.stats["check_errors"] += 1
                log.exception("dead-man switch: a check failed; watching on")

    # -------------------------------------------------------------- checking
    def check(self) -> list[DeadManAlert]:
        """One look at both heartbeats (the watchdog's step; tests call it with fake clocks)."""
        self.stats["checks"] += 1
        fired: list[DeadManAlert] = []
        stuck = self.strategy_silence()
        if self.strategy_timeout is not None:
            seconds = stuck[1] if stuck is not None else 0.0
            alert = self._heartbeat(
                STRATEGY,
                seconds,
                self.strategy_timeout,
                lambda: (
                    f"the callback thread is stuck: {stuck[0] if stuck else '?'} has run "
                    f"{seconds:.1f} s (strategy_timeout {self.strategy_timeout:g} s)"
                ),
            )
            if alert is not None:
                fired.append(alert)
        if self.live and self.feed_timeout is not None:
            silent = self.feed_silence()
            alert = self._heartbeat(
                FEED,
                silent or 0.0,
                self.feed_timeout,
                lambda: (
                    f"the feed is silent: no spot message for {silent or 0:.1f} s of trading "
                    f"(feed_timeout {self.feed_timeout:g} s)"
                ),
            )
            if alert is not None:
                fired.append(alert)
        return fired

    def _heartbeat(self, which: str, seconds: float, timeout: float, detail: Callable[[], str]) -> DeadManAlert | None:
        with self._lock:
            if seconds < timeout:
                if not self.armed[which]:
                    self.armed[which] = True
                    self.stats[f"rearmed_{which}"] += 1
                    log.info(
                        "dead-man switch: the %s heartbeat is back; re-armed",
                        which,
                        extra={"heartbeat": which, "strategy": self._name},
                    )
                return None
            if not self.armed[which]:
                return None  # this outage fired already
            self.armed[which] = False
        return self.fire(which, seconds, detail())

    def strategy_silence(self) -> tuple[str, float] | None:
        """The handler running on the callback thread and its seconds so far (None: the thread is idle)."""
        bus = self._bus
        running = bus.running_handler if bus is not None and bus.running else None
        timer = getattr(self.strategy, "running_timer", None) if running is not None else None
        if running is not None and timer:  # a timer runs inside the market clock's handler: name the user's code
            return f"timer {timer!r} (in {running[0]})", running[1]
        return running

    def feed_silence(self) -> float | None:
        """Live: seconds of continuous trading since the last spot message; None outside trading hours."""
        now = self._clock()
        agent = self.agent
        if agent is not None:
            t = agent.stats().get("transport") or {}
            data = int(t.get("messages", 0) or 0) - int(t.get("heartbeats", 0) or 0)
            if data != self._data_count:
                if self._data_count is not None:
                    self._data_at = now
                self._data_count = data
        wall = self._wall()
        if not (self._trading_day(wall.date()) and in_session(wall.time())):
            self._session_since = None
            return None
        if self._session_since is None:
            self._session_since = now
        return now - max(self._data_at, self._session_since)

    def _trading_day(self, day: dt.date) -> bool:
        strategy = self.strategy
        if strategy is None:
            return True
        try:
            return strategy.calendar.is_trading_day(day)
        except Exception:  # a day past the holiday table: the strategy says so (hourly); not trading here
            return False

    def _market_cycle(self, event: CycleEnded) -> None:
        """Simulated or replayed: the feed's clock is its market time (the callback thread)."""
        when = event.info.market_time
        if when is None or self.feed_timeout is None:
            return
        prev, self._market_prev = self._market_prev, when
        if prev is None or when.date() != prev.date() or when <= prev:
            return
        silent = session_seconds(prev, when)
        if silent >= self.feed_timeout:
            with self._lock:
                self.armed[FEED] = False
            self.fire(
                FEED,
                silent,
                f"the feed was silent for {silent:.0f} s of trading market time "
                f"({prev:%H:%M:%S} to {when:%H:%M:%S}; feed_timeout {self.feed_timeout:g} s)",
            )
            with self._lock:  # the cycle that shows the outage ends it
                self.armed[FEED] = True
                self.stats["rearmed_feed"] += 1

    # ----------------------------------------------------------------- firing
    @property
    def _name(self) -> str:
        return self.strategy.name if self.strategy is not None else ""

    def fire(self, which: str, seconds: float, detail: str) -> DeadManAlert:
        """Cancel every working order, halt (if ``halt``), publish, call ``on_alert``: one outage's action."""
        from hkrt.strategy.kill_switch import stop_trading

        reason = f"dead-man switch: {detail}"
        self.stats["fired"] += 1
        self.stats[f"fired_{which}"] += 1
        strategy = self.strategy
        market = strategy.now if strategy is not None else None
        log.error(
            "%s; cancelling every working order%s",
            reason,
            " and halting" if self.halt else "",
            extra={"strategy": self._name, "heartbeat": which, "seconds": round(seconds, 1)},
        )
        cancelled, halted = 0, False
        if strategy is not None:
            outcome = stop_trading(strategy, reason, halt=self.halt, wait=self.action_wait)
            cancelled, halted = len(outcome.asked), self.halt and outcome.halted
            self.stats["cancelled"] += cancelled
            if outcome.pending:
                self.stats["cancels_pending"] += len(outcome.pending)
            if not self.halt:  # (halting publishes the state change's own RiskEvent)
                self._publish(
                    RiskEvent("state", strategy.trading_state, reason, strategy=strategy.name, datetime=market)
                )
        alert = DeadManAlert(which, seconds, reason, cancelled, halted, self._wall(), market)
        self.alerts.append(alert)
        hook = self.on_alert
        if hook is not None:
            try:
                hook(alert)
            except Exception:
                self.stats["alert_hook_errors"] += 1
                log.exception("dead-man switch: on_alert raised", extra={"strategy": self._name})
        return alert

    def _publish(self, event: RiskEvent) -> None:
        """On the bus, never waiting here: from outside the callback thread a full queue would hold the
        watchdog, so a thread of its own waits for the room."""
        bus = self._bus
        if bus is None or not bus.running:
            return
        if bus.on_callback_thread:
            bus.publish(event)
        else:
            threading.Thread(target=bus.publish, args=(event,), name="hkrt-deadman-event", daemon=True).start()

    def status(self) -> dict[str, Any]:
        """The timeouts, which heartbeats are armed, the counters and the last alert (for ``hkrt status``)."""
        last = self.alerts[-1] if self.alerts else None
        return {
            "strategy_timeout": self.strategy_timeout,
            "feed_timeout": self.feed_timeout,
            "halt": self.halt,
            "armed": dict(self.armed),
            "stats": dict(self.stats),
            "last_alert": None
            if last is None
            else {
                "heartbeat": last.heartbeat,
                "reason": last.detail,
                "cancelled": last.cancelled,
                "wall": last.wall.isoformat(timespec="seconds"),
            },
        }

    def __repr__(self) -> str:
        return (
            f"DeadManSwitch(strategy_timeout={self.strategy_timeout}, feed_timeout={self.feed_timeout}, "
            f"halt={self.halt})"
        )


def session_seconds(start: dt.datetime, end: dt.datetime) -> float:
    """Seconds of continuous trading (the sessions of hkrt.core.china_time) between two times of one day."""
    total = 0.0
    for opens, closes in SESSIONS:
        lo = max(start, dt.datetime.combine(start.date(), opens))
        hi = min(end, dt.datetime.combine(start.date(), closes))
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total
