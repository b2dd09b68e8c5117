"""Running a strategy on a simulated or replayed day, and loading a strategy script.

A simulated or replayed day goes through the same parts as a live one: a ``SpotServer``
publishes the day's cycles on a real nng socket (in-process ``inproc://``, in a thread) and the
strategy's agent subscribes to it.  Only the clock differs: nothing follows the wall clock, so
the run is as fast as the parts allow and its orders are those of the live day.  The server
ends the day with the end-of-day marker, on which the agent delivers the day's last bars (the
15:00 bars, DAY, and WEEK..YEAR when the day ends them).
"""

from __future__ import annotations

import datetime as dt
import logging
import runpy
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hkrt.agent.spot_agent import SpotAgent
from hkrt.strategy.strategy import Strategy

if TYPE_CHECKING:
    from hkrt.feed.server import ServerStatus
    from hkrt.fetcher.sim import SimConfig, SimMarket

log = logging.getLogger("hkrt.strategy")

Progress = Callable[[SpotAgent, "ServerStatus"], None]


@dataclass
class FeedReport:
    """What the in-process spot server published and the strategy's agent received."""

    published_messages: int = 0  # numbered (spot) messages; heartbeats and end-of-day markers are not counted
    published_cycles: int = 0
    published_spots: int = 0
    received_messages: int = 0  # of those, received (heartbeats not counted)
    gaps: int = 0
    missing: int = 0
    day_closed: bool = False  # the market day was closed and its last bars reached the strategy
    complete: bool = False  # the feed ended, every message arrived (or was lost as a reported gap)
    seconds: float = 0.0


class _InProcessFeed:
    """A SpotServer in a thread on an ``inproc://`` address, publishing once the agent subscribed."""

    def __init__(self, run: Any) -> None:
        from hkrt.feed.server import SpotServer
        from hkrt.feed.transport import SpotPublisher

        self.address = f"inproc://hkrt-feed-{secrets.token_hex(6)}"
        self.publisher = SpotPublisher(self.address, simulated_time=True)  # sim or replay: times run ahead
        self.server = SpotServer(self.publisher)
        self.report = FeedReport()
        self._run = run
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="hkrt-sim-server", daemon=True)
        self._finished = False  # the source played to its end (not stopped, no error)
        self._idle_since: float | None = None
        self._marker_wait_since: float | None = None
        self._last_seen = -1

    def _main(self) -> None:
        try:
            if not self.publisher.wait_for_subscribers(1, timeout=30):
                raise TimeoutError("the strategy's agent did not subscribe within 30 s")
            self._run(self.server)
            self._finished = not self.server.stopping
        except BaseException as err:  # reported by state(); the strategy must not wait forever
            self._error = err
            log.exception("the in-process spot server failed")

    def start(self) -> None:
        self._thread.start()

    def state(self, agent: SpotAgent) -> str:
        """Where the feed stands.  "running"; "ended": the source played to its end, the agent
        has every message (lost ones reported as gaps) and has closed the day on the end-of-day
        marker -- or, when the marker does not come within MARKER_WAIT seconds (the publisher
        repeats it every heartbeat), every message arrived, so the strategy may close the day
        itself; or "broken": the server failed or was stopped, messages stopped arriving for
        IDLE_LIMIT seconds with some still missing, or some were lost and no marker came."""
        if self._thread.is_alive():
            return "running"
        if not self._finished:
            return "broken"
        t = agent.stats()["transport"]
        received = t["messages"] - t["heartbeats"]
        lost = t["missing_messages"] - t["recovered_messages"]
        now = time.monotonic()
        if received + lost >= self.publisher.sequence:
            self.report.complete = True
            ended = self.publisher.day_ended
            if ended is None or agent.closed_day == ended.date():
                return "ended"
            if self._marker_wait_since is None:
                self._marker_wait_since = now
            if now - self._marker_wait_since <= MARKER_WAIT:
                return "running"
            return "ended" if lost == 0 else "broken"  # no marker: only a whole feed may close the day
        seen = received + lost
        if seen != self._last_seen:
            self._last_seen, self._idle_since = seen, now
        if self._idle_since is not None and now - self._idle_since > IDLE_LIMIT:
            return "broken"
        return "running"

    def close(self, agent: SpotAgent | None) -> FeedReport:
        self.server.stop()
        self._thread.join(10)
        self.publisher.close()
        r = self.report
        r.published_messages = self.publisher.sequence
        r.published_cycles = self.server.status.cycles
        r.published_spots = self.server.status.spots
        if agent is not None:
            t = agent.stats()["transport"]
            r.received_messages, r.gaps, r.missing = t["messages"] - t["heartbeats"], t["gaps"], t["missing_messages"]
            r.day_closed = agent.closed_day is not None
        if self._error is not None:
            raise RuntimeError(f"the in-process spot server failed: {self._error}") from self._error
        return r


def run_sim(
    strategy: Strategy,
    day: dt.date | str | None = None,
    *,
    symbols: int = 200,
    speed: float = 2000.0,
    seed: int = 7,
    interval: float = 3.0,
    handle_signals: bool = True,
    window: tuple[dt.time, dt.time] | None = None,
    outside_speed: float = 2000.0,
    progress: Progress | None = None,
    until: dt.time | str | None = None,
) -> FeedReport:
    """Run ``strategy`` over one simulated market day (``hkrt.fetcher.sim``) and return what the
    feed carried.  The day ends with the end-of-day marker, so the strategy gets the 15:00 bars
    of every period, DAY, and WEEK..YEAR when the day ends their period; stopped early
    (``strategy.stop()``, ``until``, Ctrl-C) it gets nothing after the stop.  The simulated
    universe is ``hkrt.fetcher.sim.universe(symbols)`` (SH600000…, SZ000001…, SZ300001…,
    SH688001…, BJ920001… in fixed shares); the strategy's codes must be in it.

    ``speed`` is market seconds per wall second (2000: a 4-hour day in about 7 s).  Faster than
    the agent keeps up with, nng drops messages; they are reported as gaps, never hidden.

    ``window=(start, end)``: only the snapshots from ``start`` to before ``end`` play at ``speed``,
    the others at ``outside_speed`` (at least ``speed``): a stretch of the day at the real pace
    without waiting hours for it, and still the whole day, so bars and orders are the day's.
    ``progress(agent, server_status)`` is called on the calling thread about every 50 ms.
    ``until``: stop when the market clock reaches this time of day (``Strategy.run``).
    """
    from hkrt.fetcher.sim import SimConfig, SimMarket, universe

    trading_day = _trading_day(strategy, day)
    simulated = set(universe(symbols))
    outside = [c for c in strategy.codes if c not in simulated]
    if outside:
        raise ValueError(
            f"{', '.join(outside)} not in the simulated market of {symbols} symbols"
            " (hkrt.fetcher.sim.universe): trade codes from it or simulate more symbols"
        )
    market = SimMarket(trading_day, SimConfig(symbols=symbols, seed=seed, interval=interval))
    if window is None:
        spans = [(_SimSpan(market, None, None), speed)]
    else:
        fast = max(speed, outside_speed)
        start, end = window
        spans = [(_SimSpan(market, None, start), fast), (_SimSpan(market, start, end), speed),
                 (_SimSpan(market, end, None), fast)]  # fmt: skip

    def play(server: Any) -> None:
        for span, pace in spans:
            if server.stopping:
                return
            server.run_sim(span, speed=pace, end_day=False)  # one day in pieces: ended once, below
        if not server.stopping:
            server.end_day(server.status.last_market_time)

    return _run_feed(strategy, play, handle_signals, progress, until)


@dataclass
class _SimSpan:
    """The snapshots of a SimMarket in [first, end) of the day, for ``SpotServer.run_sim``.

    Spans of one market must be played in order: each snapshot advances the market a step.
    """

    market: SimMarket
    first: dt.time | None
    end: dt.time | None

    @property
    def config(self) -> SimConfig:
        return self.market.config

    def times(self) -> Iterator[dt.datetime]:
        for t in self.market.times():
            if (self.first is None or t.time() >= self.first) and (self.end is None or t.time() < self.end):
                yield t

    def snapshot(self, at: dt.datetime) -> dict[str, Any]:
        return self.market.snapshot(at)


def run_replay(
    strategy: Strategy,
    journal: str | Path,
    *,
    speed: float = 0.0,
    handle_signals: bool = True,
    until: dt.time | str | None = None,
) -> FeedReport:
    """Run ``strategy`` over a recorded day (a journal written by ``hkrt spot-server --record``)
    at ``speed`` times the recorded pace (0: as fast as the agent keeps up).  The end of the
    journal ends its market day (the end-of-day marker), as in :func:`run_sim`."""
    from hkrt.fetcher.replay import ReplayConfig, ReplaySource

    path = Path(journal)
    if not path.is_file():
        raise FileNotFoundError(f"no journal at {path}")
    return _run_feed(strategy, lambda server: server.run_replay(ReplaySource(ReplayConfig(path, speed))),
                     handle_signals, until=until)  # fmt: skip


def _run_feed(
    strategy: Strategy,
    run: Any,
    handle_signals: bool,
    progress: Progress | None = None,
    until: dt.time | str | None = None,
) -> FeedReport:
    feed = _InProcessFeed(run)
    started = time.perf_counter()
    feed.start()

    def done(agent: SpotAgent) -> bool:
        if progress is not None:
            progress(agent, feed.server.status)
        state = feed.state(agent)
        if state == "broken":  # ends the run without closing the day: no bar is invented
            strategy._halt("the feed broke off before its end: its market day is not closed")
        return state == "ended"

    try:
        strategy.run(feed.address, live=False, until=until, feed_done=done, handle_signals=handle_signals)
    finally:
        report = feed.close(strategy.agent)
    report.seconds = time.perf_counter() - started
    report.day_closed = report.day_closed and strategy._delivering  # a stopped strategy got no close
    if report.gaps:
        log.error("the feed lost messages: bars and orders may differ from the day's", extra=vars(report))
    return report


MARKER_WAIT = 3.0  # s to wait for the end-of-day marker after the last message (it is repeated every second)
IDLE_LIMIT = 5.0  # s without a new message, after the server finished, before the rest is given up


def _trading_day(strategy: Strategy, day: dt.date | str | None) -> dt.date:
    if day is None:
        return strategy.calendar.last_trading_day()  # China's today, not the machine's
    d = dt.date.fromisoformat(day) if isinstance(day, str) else day
    if not strategy.calendar.is_trading_day(d):
        raise ValueError(f"{d} is not a trading day")
    return d


def load_strategy(path: str | Path) -> Strategy:
    """Execute a strategy script and return the one ``Strategy`` it defines at module level (the signal
    sources of a ``SignalAggregator`` do not count: their account runs them).

    The script runs with ``__name__ == "__hkrt_run__"``, so its ``if __name__ == "__main__":``
    block (a direct live run) is skipped.
    """
    script = Path(path)
    if not script.is_file():
        raise FileNotFoundError(f"no strategy script at {script}")
    namespace = runpy.run_path(str(script), run_name="__hkrt_run__")
    from hkrt.strategy.aggregator import is_signal_source  # a SignalAggregator's sources run with their account

    found = {id(v): v for v in namespace.values() if isinstance(v, Strategy) and not is_signal_source(v)}
    if len(found) != 1:
        what = "no Strategy" if not found else f"{len(found)} Strategy objects"
        raise ValueError(f"{script} defines {what} at module level; it must define exactly one")
    return next(iter(found.values()))
