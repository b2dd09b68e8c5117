"""AlertRouter: bus events in, alerts out through the notifiers (docs/alerts.md).

``AlertRouter(notifiers).attach(bus)`` subscribes to the events worth a person's attention and turns each
into an :class:`~hkrt.notify.alert.Alert`:

==================  ======================================================  ==========
event               alert kind                                              severity
==================  ======================================================  ==========
FeedStatus          ``feed_silent`` (silent, no_publisher) / ``feed_resumed``  error / info
FeedGap             ``feed_gap``: messages lost for good                    warning
RiskEvent refused   ``risk_refused``: an order the risk engine refused      warning
RiskEvent state     ``risk_state``: HALTED / REDUCING / ACTIVE              critical / error / info
  (dead-man's)      ``deadman`` (its reason starts "dead-man switch")       critical
OrderEvent          ``broker_rejected``: rejected by a broker (not risk)    error
DayClosed           ``day_closed``                                          info
==================  ======================================================  ==========

plus what a supervisor (``hkrt node``) calls: :meth:`AlertRouter.process_restarted` (``process_restart``,
error), :meth:`AlertRouter.process_hung` (``process_hung``, error) and :meth:`AlertRouter.process_gave_up`
(``process_gave_up``, critical); and :meth:`AlertRouter.deadman` (a ``DeadManSwitch(on_alert=router.deadman)``
hook).

Handling an event costs the bus's callback thread a dict lookup and a queue append: each notifier sends
from its own bounded :class:`~hkrt.notify.outbox.Outbox` on its own thread.  Rate limits, two of them:

- **per kind** (``per_kind_per_minute``, ``per_kind_burst``): past it the alerts of that kind are counted,
  not sent, and once ``summary_interval`` has passed since the first one held back a summary goes out:
  "N more like this in the last 60 s" with the last one's text.  Never silently dropped.
- **per notifier**: the API's own limit (its outbox; alerts waiting for it are merged into one digest).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hkrt.bus import DayClosed, FeedGap, FeedStatus, OrderEvent, RiskEvent
from hkrt.notify.alert import Alert, severity_rank
from hkrt.notify.base import Notifier
from hkrt.notify.limits import TokenBucket
from hkrt.notify.outbox import Outbox

if TYPE_CHECKING:
    from hkrt.bus import EventBus, Subscription

log = logging.getLogger("hkrt.notify")

STATE_SEVERITY = {"HALTED": "critical", "REDUCING": "error", "ACTIVE": "info"}
DEADMAN_PREFIX = "dead-man switch"


class _Held:
    """Alerts of one kind held back by its rate limit since ``since``."""

    __slots__ = ("count", "last", "severity", "since")

    def __init__(self, since: float, alert: Alert) -> None:
        self.since = since
        self.count = 0
        self.severity = alert.severity
        self.last = alert

    def add(self, alert: Alert) -> None:
        self.count += 1
        self.last = alert
        if severity_rank(alert.severity) > severity_rank(self.severity):
            self.severity = alert.severity


class AlertRouter:
    """Routes alerts to notifiers; see the module docstring.

    Args:
        notifiers: the notifiers (``hkrt.notify.make_notifier`` or a config file's, :func:`router_from_config`).
        min_severity: alerts below it go nowhere (each notifier has its own on top).
        per_kind_per_minute, per_kind_burst: the rate limit of each alert kind.
        summary_interval: seconds after the first alert held back by a kind's limit when its summary goes out.
        queue: alerts waiting per notifier at most (then the oldest is dropped, counted and logged).
        source: names where the alerts come from (a node, a strategy), shown in each.
    """

    def __init__(
        self,
        notifiers: Iterable[Notifier],
        *,
        min_severity: str = "warning",
        per_kind_per_minute: float = 10.0,
        per_kind_burst: float = 5.0,
        summary_interval: float = 60.0,
        queue: int = 1000,
        source: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        severity_rank(min_severity)
        if not summary_interval > 0:
            raise ValueError(f"summary_interval must be > 0 seconds, not {summary_interval!r}")
        self.min_severity = min_severity
        self.per_kind_per_minute = per_kind_per_minute
        self.per_kind_burst = per_kind_burst
        self.summary_interval = summary_interval
        self.source = source
        self._clock = clock
        self.outboxes = [Outbox(n, capacity=queue, clock=clock) for n in notifiers]
        names = [o.name for o in self.outboxes]
        if len(set(names)) != len(names):
            raise ValueError(f"two notifiers share a name: {', '.join(names)}")
        self.stats: collections.Counter[str] = collections.Counter()
        self._buckets: dict[str, TokenBucket] = {}
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._bus: EventBus | None = None
        self._subscriptions: list[Subscription] = []
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self.running = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> AlertRouter:
        """Start the outboxes' threads and the summary ticker (``attach`` does)."""
        if self.running:
            return self
        self.running = True
        self._stopping.clear()
        for outbox in self.outboxes:
            outbox.start()
        self._ticker = threading.Thread(target=self._tick, name="hkrt-alerts-summaries", daemon=True)
        self._ticker.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Detach, send the held summaries and what is queued (within ``timeout`` per notifier), end the threads."""
        self.detach()
        if not self.running:
            return
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(timeout)
        self._flush_summaries(force=True)
        for outbox in self.outboxes:
            outbox.stop(timeout)
        self.running = False

    def __enter__(self) -> AlertRouter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def attach(self, bus: EventBus) -> AlertRouter:
        """Subscribe to ``bus`` (leaving the one attached to) and start sending; returns the router."""
        if bus is self._bus:
            return self
        self.detach()
        self._bus = bus
        self._subscriptions = [
            bus.subscribe(FeedStatus, self._on_feed_status, name="AlertRouter.feed_status"),
            bus.subscribe(FeedGap, self._on_gap, name="AlertRouter.gap"),
            bus.subscribe(RiskEvent, self._on_risk, name="AlertRouter.risk"),
            bus.subscribe(OrderEvent, self._on_order, filter=_rejected, name="AlertRouter.rejected"),
            bus.subscribe(DayClosed, self._on_day_closed, name="AlertRouter.day_closed"),
        ]
        return self.start()

    def detach(self) -> None:
        """Unsubscribe from the bus (the outboxes keep sending what is queued)."""
        if self._bus is not None:
            for sub in self._subscriptions:
                self._bus.unsubscribe(sub)
        self._bus, self._subscriptions = None, []

    def follow(self, bus: EventBus | None) -> None:
        """A strategy's bus listener (``strategy.bus_listeners.append(router.follow)``): attached to the bus
        the strategy runs on, detached when it leaves it."""
        if bus is None:
            self.detach()
        else:
            self.attach(bus)

    # ------------------------------------------------------------------ alerts from outside the bus
    def alert(self, kind: str, severity: str, title: str, text: str = "", *, source: str = "") -> bool:
        """Raise an alert of one's own (any thread); whether it was let through the severity and rate limits."""
        return self.submit(Alert(kind, severity, title, text, source=source or self.source))

    def process_restarted(self, name: str, reason: str) -> bool:
        """A supervised process ``name`` was restarted because of ``reason`` (the node supervisor calls it)."""
        return self.alert("process_restart", "error", f"process {name} restarted", reason, source=name)

    def process_hung(self, name: str, why: str) -> bool:
        """A supervised process ``name`` gave no heartbeat (``why``) and was killed (a restart follows)."""
        return self.alert("process_hung", "error", f"process {name} hung: killed", why, source=name)

    def process_gave_up(self, name: str, reason: str) -> bool:
        """The supervisor gave up on ``name`` (restarted too often): it stays down until the node restarts."""
        return self.alert("process_gave_up", "critical", f"process {name} given up on: left down", reason, source=name)

    def deadman(self, alert: Any) -> bool:
        """``DeadManSwitch(on_alert=router.deadman)``: the switch's alert (heartbeat, seconds, detail,
        cancelled, halted) as a critical ``deadman`` alert."""
        what = f"{getattr(alert, 'heartbeat', '?')} heartbeat stopped for {getattr(alert, 'seconds', 0):.0f} s"
        cancelled, halted = getattr(alert, "cancelled", 0), getattr(alert, "halted", False)
        state = "HALTED" if halted else "not halted"
        text = f"{getattr(alert, 'detail', '')}\ncancelled {cancelled} working orders; {state}"
        return self.alert("deadman", "critical", f"dead-man switch: {what}", text)

    def submit(self, alert: Alert) -> bool:
        """Route ``alert``: through the minimum severity and its kind's rate limit to each notifier that takes
        it.  Never blocks.  False when it was below the minimum or held back (then counted for the summary)."""
        with self._lock:  # any thread may raise an alert: the counters and buckets are shared
            self.stats["alerts"] += 1
            if severity_rank(alert.severity) < severity_rank(self.min_severity):
                self.stats["below_min_severity"] += 1
                return False
            bucket = self._buckets.get(alert.kind)
            if bucket is None:
                bucket = TokenBucket(self.per_kind_per_minute, self.per_kind_burst, clock=self._clock)
                self._buckets[alert.kind] = bucket
            if not bucket.take():
                held = self._held.get(alert.kind)
                if held is None:
                    held = self._held[alert.kind] = _Held(self._clock(), alert)
                held.add(alert)
                self.stats["held_back"] += 1
                return False
        self._fan_out(alert)
        return True

    def _fan_out(self, alert: Alert) -> None:
        sent_to = 0
        for outbox in self.outboxes:
            if outbox.notifier.accepts(alert):
                outbox.put(alert)  # never blocks
                sent_to += 1
        with self._lock:
            self.stats["routed"] += 1
            if not sent_to:
                self.stats["no_notifier"] += 1

    # ------------------------------------------------------------------ summaries of what the limits held back
    def _tick(self) -> None:
        period = min(1.0, self.summary_interval / 4)
        while not self._stopping.wait(period):
            self._flush_summaries()

    def _flush_summaries(self, *, force: bool = False) -> None:
        now = self._clock()
        with self._lock:
            due = [k for k, h in self._held.items() if force or now - h.since >= self.summary_interval]
            ready = [(k, self._held.pop(k)) for k in due]
        for kind, held in ready:
            window = max(now - held.since, 0.0) if force else self.summary_interval
            title = f"{held.count} more like this in the last {_span(window)}"
            text = f"the last: {held.last.headline}" + (f"\n{held.last.text}" if held.last.text else "")
            with self._lock:
                self.stats["summaries"] += 1
            self._fan_out(Alert(kind, held.severity, title, text, source=held.last.source, count=held.count))

    # ------------------------------------------------------------------ bus events (on its callback thread)
    def _on_feed_status(self, event: FeedStatus) -> None:
        info = event.info
        where = f" ({info.address})" if info.address else ""
        if info.kind == "resumed":
            self.alert("feed_resumed", "info", f"feed resumed after {info.seconds:.0f} s{where}")
        elif info.kind == "no_publisher":
            self.alert("feed_silent", "error", f"no publisher connected for {info.seconds:.0f} s{where}")
        else:
            self.alert("feed_silent", "error", f"feed silent for {info.seconds:.0f} s{where}")

    def _on_gap(self, event: FeedGap) -> None:
        g = event.info
        text = f"publisher {g.publisher_id}: from sequence {g.expected_sequence}, {g.recovered} recovered"
        self.alert("feed_gap", "warning", f"{g.missing} feed messages lost for good ({g.kind})", text)

    def _on_risk(self, event: RiskEvent) -> None:
        source = event.strategy or self.source
        when = _market(event.datetime)
        if event.kind == "refused":
            what = f"order refused{' on ' + event.symbol if event.symbol else ''}"
            self.alert("risk_refused", "warning", what, event.reason + when, source=source)
        elif event.reason.startswith(DEADMAN_PREFIX):
            self.alert("deadman", "critical", f"trading {event.state}: {event.reason}", when.strip(), source=source)
        else:
            severity = STATE_SEVERITY.get(event.state, "error")
            self.alert("risk_state", severity, f"trading {event.state}", event.reason + when, source=source)

    def _on_order(self, event: OrderEvent) -> None:
        text = f"{event.side} {event.shares} {event.symbol} ({event.order_type}) id {event.client_order_id}"
        text += _market(event.datetime)
        title = f"order rejected by {event.broker or 'the broker'}: {event.reason or 'no reason given'}"
        self.alert("broker_rejected", "error", title, text, source=event.strategy or self.source)

    def _on_day_closed(self, event: DayClosed) -> None:
        self.alert("day_closed", "info", f"market day {event.day} closed ({event.reason}, {event.bars} bars)")

    # ------------------------------------------------------------------ inspection
    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every outbox has sent what is queued; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        return all(o.wait_idle(max(0.0, deadline - time.monotonic())) for o in self.outboxes)

    def status(self) -> dict[str, Any]:
        """Counters: the router's and each notifier's (queued, sent, digests, dropped, failed, depth, latency)."""
        with self._lock:
            held = {k: h.count for k, h in self._held.items()}
        return {"router": dict(self.stats), "held": held, "notifiers": {o.name: o.status() for o in self.outboxes}}

    def __repr__(self) -> str:
        return f"AlertRouter({', '.join(o.name for o in self.outboxes)}; min_severity={self.min_severity})"


REFUSED_BEFORE_SENDING = "(strategy)"  # the broker of an order the strategy refused itself (OrderManager.refuse)


def _rejected(event: OrderEvent) -> bool:
    """A broker's rejection: not the strategy's own pre-trade refusals, nor the risk engine's ("risk: ...",
    which come as RiskEvent refused)."""
    return event.status == "rejected" and event.broker != REFUSED_BEFORE_SENDING and not event.reason.startswith("risk")


def _market(when: dt.datetime | None) -> str:
    """ "\nmarket time ..." for an event that carries one (a simulated or replayed day's differs from the wall)."""
    return f"\nmarket time {when:%Y-%m-%d %H:%M:%S}" if when is not None else ""


def _span(seconds: float) -> str:
    return "minute" if abs(seconds - 60) < 0.5 else f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
