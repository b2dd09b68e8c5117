"""Prometheus collectors of an agent, strategies and a spot server, read when scraped (docs/metrics.md).

Nothing here runs on a hot path: each collector reads the ``stats()`` / ``summary()`` / ``status()``
dicts the parts already keep, at the moment Prometheus scrapes, and turns them into metric families.
A scrape reads from another thread than the one that updates those dicts: a read that meets a dict
being changed (``RuntimeError``) is tried again, and one that still fails is counted in
``hkrt_scrape_errors_total{collector}`` and logged (rate-limited); the scrape goes on without it.

Labels are bounded: reasons, checks, statuses and states are the fixed sets the code defines; the
``strategy`` label is one per strategy of the process; ``symbol`` appears only on positions, for at
most :data:`MAX_SYMBOL_LABELS` held symbols of the strategy's own codes (the rest summed under
``symbol="_other"``).  No label ever carries an order id.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from hkrt.bus.trading import ORDER_STATUSES, TRADING_STATES
from hkrt.core.logs import log_limited

if TYPE_CHECKING:
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.feed.server import SpotServer
    from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.ops")

MAX_SYMBOL_LABELS = 200  # positions labelled by symbol per strategy; the rest are summed under OTHER
OTHER = "_other"
MAX_KEY_LABELS = 64  # reasons, checks, statuses: fixed sets far smaller than this (a bound all the same)
READ_ATTEMPTS = 3  # a read that meets a dict changing under it is tried this often
T = TypeVar("T")


class ScrapeErrors(Collector):
    """``hkrt_scrape_errors_total{collector}``: reads that failed (the scrape went on without them)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def read(self, collector: str, func: Callable[[], T]) -> T | None:
        """``func()``, tried again when it meets a dict changing under it; None (counted, logged) on failure."""
        for attempt in range(READ_ATTEMPTS):
            try:
                return func()
            except RuntimeError:  # "dictionary changed size during iteration": the owner thread moved on
                if attempt + 1 < READ_ATTEMPTS:
                    continue
                failure = "changed while read"
            except Exception as err:  # a scrape never fails as a whole for one part
                failure = f"{type(err).__name__}: {err}"
            break
        with self._lock:
            self.counts[collector] += 1
        log_limited(log, logging.WARNING, ("scrape", collector), f"metrics: reading the {collector} failed: {failure}",
                    {"collector": collector, "scrape_errors": self.counts[collector]}, 60.0)  # fmt: skip
        return None

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "hkrt_scrape_errors", "Metric reads that failed during a scrape", labels=["collector"]
        )
        with self._lock:
            counts = dict(self.counts)
        for name in ("agent", "strategy", "server"):
            family.add_metric([name], counts.get(name, 0))
        yield family


# ------------------------------------------------------------------ helpers
def _counter(name: str, doc: str, value: float, labels: Mapping[str, str] | None = None) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), float(value))
    return family


def _gauge(name: str, doc: str, value: float | None, labels: Mapping[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), math.nan if value is None else float(value))
    return family


def _by(
    family: CounterMetricFamily | GaugeMetricFamily,
    values: Mapping[str, float],
    fixed: Sequence[str] = (),
    keys: Iterable[str] = (),
) -> CounterMetricFamily | GaugeMetricFamily:
    """One sample per key of ``keys`` (each shown, 0 when missing) and of ``values``; ``fixed``: label values
    before the key's.  Past MAX_KEY_LABELS keys (a defect elsewhere: the keys are fixed sets) the rest are
    summed under OTHER."""
    other = 0.0
    for i, key in enumerate(dict.fromkeys([*keys, *values])):
        if i < MAX_KEY_LABELS:
            family.add_metric([*fixed, key], float(values.get(key, 0)))
        else:
            other += float(values.get(key, 0))
    if other:
        family.add_metric([*fixed, OTHER], other)
    return family


def _prefixed(stats: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """``{"refused_state": 2}`` -> ``{"state": 2}`` for ``prefix`` "refused_"."""
    return {k[len(prefix) :]: v for k, v in stats.items() if k.startswith(prefix) and isinstance(v, (int, float))}


def _source(obj: Any) -> Callable[[], Any]:
    """An object with ``stats``/``summary``/``status``, or a function returning one (or None)."""
    if obj is None:
        return lambda: None
    if callable(obj) and not hasattr(obj, "stats") and not hasattr(obj, "summary") and not hasattr(obj, "status"):
        return obj  # type: ignore[no-any-return]
    return lambda: obj


# ------------------------------------------------------------------ agent
class AgentCollector(Collector):
    """The agent's ``stats()``: the feed (lag, messages, gaps, rejects by reason), spots, bars and the
    callback queue.  ``agent``: a SpotAgent, or a function returning the current one (``Strategy.agent``
    is made anew by each run); nothing is reported while there is none."""

    def __init__(self, agent: SpotAgent | Callable[[], SpotAgent | None], errors: ScrapeErrors) -> None:
        self._agent = _source(agent)
        self._errors = errors

    def collect(self) -> Iterator[Metric]:
        agent = self._agent()
        if agent is None:
            return
        stats = self._errors.read("agent", agent.stats)
        if stats is None:
            return
        yield _gauge("hkrt_agent_running", "1 while the agent receives (between start and stop)", bool(agent.running))
        yield from feed_metrics(stats["transport"])
        yield from spot_metrics(stats)
        yield from callback_metrics(stats["callbacks"])
        yield from writer_metrics("journal", stats.get("journal"))
        yield from writer_metrics("store", stats.get("store"))


def feed_metrics(t: Mapping[str, Any]) -> Iterator[Metric]:
    """The messages of the spot feed (``stats()["transport"]``)."""
    yield _gauge("hkrt_feed_last_message_age_seconds", "Seconds since the last verified message or heartbeat "
                 "(NaN before the first)", t.get("last_message_age_s"))  # fmt: skip
    yield _gauge("hkrt_feed_silent", "1 while the feed is silent (no message or heartbeat for the silence time)",
                 bool(t.get("silent")))  # fmt: skip
    yield _gauge("hkrt_feed_connected_publishers", "Publishers connected to the agent's socket", t.get("connected", 0))
    yield _counter("hkrt_feed_messages_total", "Numbered messages received", t["messages"])
    yield _counter("hkrt_feed_messages_verified_total", "Messages received and accepted by the wire checks",
                   t["verified"])  # fmt: skip
    yield _by(CounterMetricFamily("hkrt_feed_messages_rejected", "Messages refused by the wire checks, by reason",
                                  labels=["reason"]), t["rejected"])  # fmt: skip
    yield _counter("hkrt_feed_gaps_total", "Gaps in a publisher's sequence numbers", t["gaps"])
    yield _counter("hkrt_feed_missing_messages_total", "Messages found missing (in gaps)", t["missing_messages"])
    yield _counter("hkrt_feed_recovered_messages_total", "Missing messages recovered by retransmission",
                   t["recovered_messages"])  # fmt: skip
    yield _counter("hkrt_feed_lost_messages_total", "Missing messages never recovered", t["lost_messages"])
    yield _counter("hkrt_feed_duplicate_messages_total", "Messages received twice", t["duplicate_messages"])
    yield _counter("hkrt_feed_publisher_restarts_total", "Publisher restarts seen", t["publisher_restarts"])
    yield _counter("hkrt_feed_silences_total", "Times the feed went silent", t.get("silences", 0))
    yield _counter("hkrt_feed_cycles_total", "Publisher cycles completed", t["cycles"])
    yield _counter("hkrt_feed_incomplete_cycles_total", "Cycles with a part missing", t["incomplete_cycles"])
    yield _counter("hkrt_feed_unauthenticated_total", "Messages refused by the feed key", t.get("unauthenticated", 0))
    yield _counter("hkrt_feed_days_closed_total", "Market days closed", t.get("days_closed", 0))
    latency = t.get("latency_ms") or {}
    family = GaugeMetricFamily("hkrt_feed_latency_seconds", "Publish-to-processed latency over the last messages "
                               "(the agent's window), by quantile", labels=["quantile"])  # fmt: skip
    for q, key in (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"), ("1", "max")):
        value = latency.get(key)
        family.add_metric([q], math.nan if value is None else float(value) / 1000)
    yield family


def spot_metrics(stats: Mapping[str, Any]) -> Iterator[Metric]:
    """The engine's spots and bars (the top level of ``SpotAgent.stats()``)."""
    t = stats["transport"]
    yield _counter("hkrt_spots_received_total", "Spots received", stats["received"])
    yield _counter("hkrt_spots_accepted_total", "Spots accepted into the bars", stats["accepted"])
    yield _counter("hkrt_spots_duplicates_total", "Spots received again unchanged", stats["duplicates"])
    yield _by(CounterMetricFamily("hkrt_spots_rejected", "Spots refused, by reason", labels=["reason"]),
              stats["rejected"])  # fmt: skip
    yield _gauge("hkrt_symbols", "Symbols the agent holds bars of", stats["symbols"])
    yield _counter(
        "hkrt_bars_emitted_total", "Completed bars handed to the hooks or the store", t.get("bars_emitted", 0)
    )
    yield _counter("hkrt_bars_filled_total", "Flat bars made for minutes no spot landed in", stats["filled_bars"])
    yield _counter("hkrt_bars_amended_total", "Bars amended after they were completed", stats["amended_bars"])
    yield _counter("hkrt_bars_dropped_total", "Completed bars the engine's bounded queue dropped",
                   t.get("completed_dropped", 0))  # fmt: skip


def callback_metrics(cb: Mapping[str, Any]) -> Iterator[Metric]:
    """The event bus's callback queue (``stats()["callbacks"]``, :meth:`hkrt.bus.EventBus.stats`)."""
    yield _gauge("hkrt_callback_queue_depth", "Events waiting for the callback thread", cb["depth"])
    yield _gauge("hkrt_callback_queue_capacity", "The callback queue's bound (events)", cb["max_events"])
    yield _gauge("hkrt_callback_queue_items", "Items (spots, bars) in the waiting events", cb["items"])
    yield _gauge("hkrt_callback_queue_item_capacity", "The callback queue's bound (items)", cb["max_items"])
    yield _gauge("hkrt_callback_queue_high_water", "The deepest the callback queue has been (events)", cb["high_water"])
    yield _counter("hkrt_callback_events_total", "Events published on the bus", cb["published"])
    yield _counter("hkrt_callback_errors_total", "Callbacks that raised", cb["errors"])
    yield _counter("hkrt_callback_blocked_total", "Times a publisher waited for room in the full queue", cb["blocked"])
    yield _counter("hkrt_callback_blocked_seconds_total", "Seconds publishers waited for room", cb["blocked_seconds"])
    yield _counter("hkrt_callback_refused_total", "Events refused (the bus was not running)", cb["refused"])
    yield _counter("hkrt_callback_abandoned_total", "Events still queued when the bus stopped", cb["abandoned"])
    yield _gauge("hkrt_callback_slowest_handler_seconds", "Seconds taken in all by the slowest handler",
                 cb.get("slowest_hook_seconds", 0.0))  # fmt: skip


def writer_metrics(which: str, stats: Mapping[str, Any] | None) -> Iterator[Metric]:
    """The journal's or the K-data store's writer, when the agent has one."""
    if not stats or (which == "journal" and stats.get("path") is None):
        return
    written = stats.get("appended" if which == "journal" else "written", 0)
    what = "Messages appended to the journal" if which == "journal" else "Bars written to the store"
    yield _counter(f"hkrt_{which}_written_total", what, written)
    yield _counter(f"hkrt_{which}_write_errors_total", f"Failed writes of the {which}", stats.get("write_errors", 0))
    yield _gauge(f"hkrt_{which}_failing", f"1 while the {which}'s writes fail", bool(stats.get("failing")))
    if which == "store":
        yield _gauge("hkrt_store_pending_bars", "Bars queued for the store", stats.get("pending", 0))


# ------------------------------------------------------------------ strategy
class StrategyCollector(Collector):
    """Orders by status, trades, fees, cash, equity and P&L (``summary()``), the risk state and refusals
    (``risk.status()``), ledger disagreements and dead-man alerts of each strategy, labelled ``strategy``."""

    def __init__(self, strategies: Sequence[Strategy], errors: ScrapeErrors) -> None:
        self.strategies = list(strategies)
        self._errors = errors

    def collect(self) -> Iterator[Metric]:
        rows = []
        for strategy in self.strategies:
            read = self._errors.read("strategy", lambda s=strategy: _read_strategy(s))  # type: ignore[misc]
            if read is not None:
                rows.append(read)
        if not rows:
            return
        yield from strategy_metrics(rows)


def _read_strategy(strategy: Strategy) -> dict[str, Any]:
    deadman = strategy.deadman
    return {
        "name": strategy.name,
        "summary": strategy.summary(),
        "risk": strategy.risk.status(),
        "ledger": dict(strategy.book.ledger_stats),
        "deadman": deadman.status() if deadman is not None else None,
        "codes": strategy.codes,
    }


def strategy_metrics(rows: Sequence[Mapping[str, Any]]) -> Iterator[Metric]:
    """The families of the strategies read by :func:`_read_strategy` (one sample per strategy)."""

    def each(name: str, doc: str, value: Callable[[Mapping[str, Any]], float], kind: str = "gauge") -> Metric:
        family: CounterMetricFamily | GaugeMetricFamily
        if kind == "counter":
            family = CounterMetricFamily(name, doc, labels=["strategy"])
        else:
            family = GaugeMetricFamily(name, doc, labels=["strategy"])
        for row in rows:
            family.add_metric([row["name"]], float(value(row)))
        return family

    def summ(key: str) -> Callable[[Mapping[str, Any]], float]:
        return lambda row: float(row["summary"][key])

    yield each("hkrt_strategy_orders_total", "Orders the strategy placed", summ("orders"), "counter")
    statuses = GaugeMetricFamily("hkrt_strategy_orders", "The strategy's orders now in each status",
                                 labels=["strategy", "status"])  # fmt: skip
    for row in rows:
        _by(statuses, row["summary"]["order_statuses"], [row["name"]], ORDER_STATUSES)
    yield statuses
    yield each("hkrt_strategy_trades_total", "Fills booked", summ("trades"), "counter")
    yield each("hkrt_strategy_fees_yuan_total", "Fees paid (yuan)", summ("fees"), "counter")
    yield each("hkrt_strategy_cash_yuan", "Cash of the book (yuan)", summ("cash"))
    yield each("hkrt_strategy_initial_cash_yuan", "Starting cash (yuan)", summ("initial_cash"))
    yield each("hkrt_strategy_market_value_yuan", "Positions at the latest prices (yuan)", summ("market_value"))
    yield each("hkrt_strategy_equity_yuan", "Cash plus positions at the latest prices (yuan)", summ("portfolio_value"))
    yield each("hkrt_strategy_pnl_yuan", "Equity less the starting cash (yuan)", summ("pnl"))
    positions = GaugeMetricFamily("hkrt_strategy_position_shares", f"Shares held, per symbol (at most "
                                  f"{MAX_SYMBOL_LABELS} symbols; the rest summed as {OTHER})",
                                  labels=["strategy", "symbol"])  # fmt: skip
    for row in rows:
        for symbol, shares in bounded_positions(row["summary"]["positions"], row["codes"]).items():
            positions.add_metric([row["name"], symbol], float(shares))
    yield positions
    yield each("hkrt_strategy_positions", "Symbols with shares held", lambda r: len(r["summary"]["positions"]))

    state = GaugeMetricFamily("hkrt_risk_state", "1 for the trading state the strategy is in (ACTIVE, REDUCING, "
                              "HALTED), 0 for the others", labels=["strategy", "state"])  # fmt: skip
    refusals = CounterMetricFamily("hkrt_risk_refusals", "Orders refused by the risk checks, by check",
                                   labels=["strategy", "check"])  # fmt: skip
    changes = CounterMetricFamily("hkrt_risk_state_changes", "Moves into each trading state",
                                  labels=["strategy", "state"])  # fmt: skip
    for row in rows:
        risk, name = row["risk"], row["name"]
        for s in TRADING_STATES:
            state.add_metric([name, s], 1.0 if risk["state"] == s else 0.0)
        _by(refusals, _prefixed(risk["stats"], "refused_"), [name], ("state",))
        moved = {k.upper(): v for k, v in _prefixed(risk["stats"], "state_").items()}
        _by(changes, moved, [name], TRADING_STATES)
    yield state
    yield refusals
    yield changes
    yield each("hkrt_risk_check_failures_total", "Risk checks that raised (trading halted, fail closed)",
               lambda r: r["risk"]["stats"].get("check_failures", 0), "counter")  # fmt: skip

    yield each("hkrt_ledger_disagreements_total", "Fills after which the ledger and the book disagreed",
               lambda r: r["ledger"].get("disagreements", 0), "counter")  # fmt: skip
    yield each("hkrt_ledger_unposted_fills_total", "Fills the ledger could not post",
               lambda r: r["ledger"].get("unposted", 0), "counter")  # fmt: skip

    alerts = CounterMetricFamily("hkrt_deadman_alerts", "Dead-man switch alerts, by heartbeat",
                                 labels=["strategy", "heartbeat"])  # fmt: skip
    armed = GaugeMetricFamily(
        "hkrt_deadman_armed", "1 while the heartbeat is watched", labels=["strategy", "heartbeat"]
    )
    for row in rows:
        deadman = row["deadman"]
        if deadman is None:
            continue
        _by(alerts, _prefixed(deadman["stats"], "fired_"), [row["name"]], deadman["armed"])
        _by(armed, {k: float(bool(v)) for k, v in deadman["armed"].items()}, [row["name"]])
    yield alerts
    yield armed


def bounded_positions(positions: Mapping[str, int], codes: Iterable[str]) -> dict[str, float]:
    """Shares per symbol for the label ``symbol``: the strategy's own codes, at most MAX_SYMBOL_LABELS of
    them (in symbol order); any other held symbol is summed under OTHER."""
    own = set(codes)
    out: dict[str, float] = {}
    other = 0.0
    for symbol in sorted(positions):
        shares = float(positions[symbol])
        if symbol in own and len(out) < MAX_SYMBOL_LABELS:
            out[symbol] = shares
        else:
            other += shares
    if other:
        out[OTHER] = other
    return out


# ------------------------------------------------------------------ spot server
class ServerCollector(Collector):
    """The spot server's status: cycles, spots published, fetch failures by reason."""

    def __init__(self, server: SpotServer | Callable[[], SpotServer | None], errors: ScrapeErrors) -> None:
        self._server = _source(server)
        self._errors = errors

    def collect(self) -> Iterator[Metric]:
        server = self._server()
        if server is None:
            return
        status = self._errors.read("server", lambda: _server_status(server))
        if status is None:
            return
        yield _counter("hkrt_server_cycles_total", "Cycles published", status["cycles"])
        yield _counter("hkrt_server_spots_published_total", "Spots published", status["spots"])
        yield _counter("hkrt_server_failed_batches_total", "Fetch batches that failed", status["failed_batches"])
        yield _by(CounterMetricFamily("hkrt_server_fetch_failures", "Failed fetch batches, by reason",
                                      labels=["reason"]), status["failures"])  # fmt: skip
        yield _counter("hkrt_server_skipped_ticks_total", "Fixed-rate ticks missed because a cycle overran",
                       status["skipped_ticks"])  # fmt: skip
        yield _counter("hkrt_server_codes_retried_total", "Codes asked again in their cycle", status["missing_retried"])
        yield _counter("hkrt_server_codes_dropped_total", "Codes dropped after answering unknown", status["dropped"])
        yield _counter("hkrt_server_days_ended_total", "End-of-day markers sent", status["days_ended"])
        yield _gauge("hkrt_server_last_cycle_seconds", "Seconds the last cycle took", status["last_cycle_ms"] / 1000)
        yield _gauge("hkrt_server_uptime_seconds", "Seconds since the server started", status["uptime"])


def _server_status(server: SpotServer) -> dict[str, Any]:
    import time

    s = server.status
    return {
        "cycles": s.cycles,
        "spots": s.spots,
        "failed_batches": s.failed_batches,
        "failures": dict(s.failures),
        "skipped_ticks": s.skipped_ticks,
        "missing_retried": s.missing_retried,
        "dropped": s.dropped,
        "days_ended": s.days_ended,
        "last_cycle_ms": s.last_cycle_ms,
        "uptime": time.monotonic() - s.started,
    }
