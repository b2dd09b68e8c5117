"""Running a strategy on simulated or replayed days, and loading a strategy script.

A simulated or replayed day goes through the same parts as a live one: a ``SpotServer``
publishes the day's cycles on a real nng socket (in-process ``inproc://``, in a thread) and the
strategy's agent subscribes to it.  Only the clock differs: nothing follows the wall clock, so
the run is as fast as the parts allow and its orders are those of the live day.  The server
ends the day with the end-of-day marker, on which the agent delivers the day's last bars (the
15:00 bars, DAY, and WEEK..YEAR when the day ends them).

Several days (``run_sim(days=N)``, ``run_replay`` over several journals) are one run: one server
plays day after day, each ended by its marker, to one agent and one strategy, so positions,
cash, the brokers' holdings (T+1), held orders, the agent's bars (indicators keep warming) and
the equity curve carry over.  The server starts a day only once the strategy has been handed
the previous day's close (``DayClosed`` reached its callback thread), so every day's orders are
those of a run that ends with that day.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import runpy
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hkrt.agent.spot_agent import SpotAgent
from hkrt.core.china_time import MARKET_CLOSE
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
    day_closed: bool = False  # the (last) market day was closed and its last bars reached the strategy
    complete: bool = False  # the feed ended, every message arrived (or was lost as a reported gap)
    seconds: float = 0.0
    days: list[dt.date] = field(default_factory=list)  # the market days the server played (began), in order
    closed_days: list[dt.date] = field(default_factory=list)  # those whose close reached the strategy, in order

    @property
    def days_played(self) -> int:
        return len(self.days)


class _DayCloses:
    """The days' closes as the strategy receives them, for a server playing several days.

    Subscribed to the agent's bus (from the server thread, before the first message), it runs on
    the callback thread after everything of the day: it records the day, moves the strategy's
    clock to the close (its evening timers fire on their own day, as at the end of a run), and
    lets the server, waiting in :meth:`wait`, start the next day."""

    def __init__(self, strategy: Strategy, report: FeedReport) -> None:
        from hkrt.bus import DayClosed

        self._strategy = strategy
        self._report = report
        self._closed: set[dt.date] = set()
        self._changed = threading.Condition()
        self._event_type = DayClosed
        self._subscription: Any = None

    def attach(self) -> None:
        agent = self._strategy.agent
        if agent is not None:
            self._subscription = agent.bus.subscribe(self._event_type, self._on_closed, name="run.day_closed")

    def detach(self) -> None:
        agent = self._strategy.agent
        if agent is not None and self._subscription is not None:
            agent.bus.unsubscribe(self._subscription)
        self._subscription = None

    def _on_closed(self, event: Any) -> None:
        strategy, day = self._strategy, event.day
        if strategy._delivering:
            self._report.closed_days.append(day)
            delay = dt.timedelta(seconds=strategy.bar_close_delay, milliseconds=1)  # as Strategy._close_day
            strategy._clock_to_close(dt.datetime.combine(day, MARKET_CLOSE) + delay)
        with self._changed:
            self._closed.add(day)
            self._changed.notify_all()

    def wait(self, day: dt.date, server: Any) -> bool:
        """Wait until the close of ``day`` reached the callback thread: True; False when the server
        is stopping, or the agent received nothing for DAY_CLOSE_WAIT seconds without closing it
        (the next day then goes on, and the report shows the day not closed)."""
        agent = self._strategy.agent
        seen, since = -1, time.monotonic()
        while True:
            with self._changed:
                if day in self._closed or self._changed.wait_for(lambda: day in self._closed, 0.05):
                    return True
            if server.stopping or agent is None:
                return False
            messages = agent.stats()["transport"]["messages"]
            if messages != seen:
                seen, since = messages, time.monotonic()
            elif time.monotonic() - since > DAY_CLOSE_WAIT:
                log.warning("the strategy did not get the close of a day: the next one goes on",
                            extra={"day": day.isoformat()})  # fmt: skip
                return False


class _InProcessFeed:
    """A SpotServer in a thread on an ``inproc://`` address, publishing once the agent subscribed."""

    def __init__(self, run: Any, strategy: Strategy) -> None:
        from hkrt.feed.server import SpotServer
        from hkrt.feed.transport import SpotPublisher

        self.address = f"inproc://hkrt-feed-{secrets.token_hex(6)}"
        self.publisher = SpotPublisher(self.address, simulated_time=True)  # sim or replay: times run ahead
        self.server = SpotServer(self.publisher)
        self.report = FeedReport()
        self.days = _DayCloses(strategy, self.report)
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
            self.days.attach()  # the agent subscribed: it exists, and nothing was published yet
            self._run(self.server, self)
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

    def play_day(self, day: dt.date, first: bool) -> bool:
        """Before each day the server plays: wait for the previous day's close to reach the strategy
        (not before the first), and count the day.  False: the server is stopping."""
        if self.server.stopping:
            return False
        if not first and self.report.days:
            self.days.wait(self.report.days[-1], self.server)
            if self.server.stopping:
                return False
        self.report.days.append(day)
        return True

    def close(self, agent: SpotAgent | None) -> FeedReport:
        self.server.stop()
        self._thread.join(10)
        self.days.detach()
        self.publisher.close()
        r = self.report
        r.published_messages = self.publisher.sequence
        r.published_cycles = self.server.status.cycles
        r.published_spots = self.server.status.spots
        if agent is not None:
            t = agent.stats()["transport"]
            r.received_messages, r.gaps, r.missing = t["messages"] - t["heartbeats"], t["gaps"], t["missing_messages"]
            closed = agent.closed_day
            r.day_closed = closed is not None and (not r.days or closed == r.days[-1])
        if self._error is not None:
            raise RuntimeError(f"the in-process spot server failed: {self._error}") from self._error
        return r


def run_sim(
    strategy: Strategy,
    day: dt.date | str | None = None,
    *,
    days: int = 1,
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
    """Run ``strategy`` over simulated market days (``hkrt.fetcher.sim``) and return what the
    feed carried.  Each day ends with the end-of-day marker, so the strategy gets the 15:00 bars
    of every period, DAY, and WEEK..YEAR when the day ends their period; stopped early
    (``strategy.stop()``, ``until``, Ctrl-C) it gets nothing after the stop, and no later day.

    ``days``: how many consecutive trading days (of ``strategy.calendar``) to play in one run,
    from ``day`` on (default ``day``: the one that makes the last day the latest trading day up
    to today, China time).  Each day's previous close is the day before's close
    (``SimMarket.following``); positions, cash, the brokers' holdings (T+1: yesterday's buys are
    sellable today), held orders, the agent's bars and the equity curve carry over, and day
    orders expire at each close.  ``until`` is a time of day: the run stops at it on the first
    day.

    The simulated universe is ``hkrt.fetcher.sim.universe(symbols)`` (SH600000…, SZ000001…,
    SZ300001…, SH688001…, BJ920001… in fixed shares); the strategy's codes must be in it.

    ``speed`` is market seconds per wall second (2000: a 4-hour day in about 7 s).  Faster than
    the agent keeps up with, nng drops messages; they are reported as gaps, never hidden.

    ``window=(start, end)``: only the snapshots from ``start`` to before ``end`` play at ``speed``,
    the others at ``outside_speed`` (at least ``speed``): a stretch of the day at the real pace
    without waiting hours for it, and still the whole day, so bars and orders are the day's.  Over
    several days the window is the last day's; the days before play at ``outside_speed``.
    ``progress(agent, server_status)`` is called on the calling thread about every 50 ms.
    ``until``: stop when the market clock reaches this time of day (``Strategy.run``).
    """
    from hkrt.fetcher.sim import SimConfig, SimMarket, universe

    trading_days = _trading_days(strategy, day, days)
    simulated = set(universe(symbols))
    outside = [c for c in strategy.codes if c not in simulated]
    if outside:
        raise ValueError(
            f"{', '.join(outside)} not in the simulated market of {symbols} symbols"
            " (hkrt.fetcher.sim.universe): trade codes from it or simulate more symbols"
        )
    config = SimConfig(symbols=symbols, seed=seed, interval=interval)

    def spans(market: SimMarket) -> list[tuple[_SimSpan, float]]:
        fast = max(speed, outside_speed)
        if window is None:
            return [(_SimSpan(market, None, None), speed)]
        if market.day != trading_days[-1]:
            return [(_SimSpan(market, None, None), fast)]  # the window is the last day's: the days before play fast
        start, end = window
        return [(_SimSpan(market, None, start), fast), (_SimSpan(market, start, end), speed),
                (_SimSpan(market, end, None), fast)]  # fmt: skip

    def play(server: Any, feed: _InProcessFeed) -> None:
        market: SimMarket | None = None
        for i, trading_day in enumerate(trading_days):
            if not feed.play_day(trading_day, first=i == 0):
                return
            market = SimMarket(trading_day, config) if market is None else SimMarket.following(market, trading_day)
            for span, pace in spans(market):
                if server.stopping:
                    return
                server.run_sim(span, speed=pace, end_day=False)  # one day in pieces: ended once, below
            if server.stopping:
                return
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
    journal: str | Path | Sequence[str | Path],
    *,
    speed: float = 0.0,
    handle_signals: bool = True,
    until: dt.time | str | None = None,
) -> FeedReport:
    """Run ``strategy`` over recorded days (journals written by ``hkrt spot-server --record``, or an
    agent's ``spots-YYYYMMDD.hkj``) at ``speed`` times the recorded pace (0: as fast as the agent
    keeps up).  The end of each journal ends its market day (the end-of-day marker), as in
    :func:`run_sim`.

    ``journal``: one file, several (played in the order given, which must be the order of their
    market days), or a directory (its ``*.hkj`` files, played in the order of their days; in a list
    too).  Each journal's headers are read once before the run, for its days.  Several
    journals are one run, as ``run_sim(days=N)``: positions, holdings and held orders carry over.
    A journal whose days do not all come after the previous one's is refused (ValueError)."""
    from hkrt.fetcher.replay import ReplayConfig, ReplaySource

    ordered = _journals_in_order(journal)

    def play(server: Any, feed: _InProcessFeed) -> None:
        for i, (path, days) in enumerate(ordered):
            if not feed.play_day(days[0], first=i == 0):
                return
            feed.report.days.extend(days[1:])  # a journal of several days: the server ends each as it goes
            server.run_replay(ReplaySource(ReplayConfig(path, speed)))
            if server.stopping:
                return

    return _run_feed(strategy, play, handle_signals, until=until)


def _journals_in_order(journal: str | Path | Sequence[str | Path]) -> list[tuple[Path, list[dt.date]]]:
    """Each journal with its market days, in playing order: the entries as given, a directory's
    ``*.hkj`` files in the order of their first days.  One line (ValueError) for a journal without a
    spot cycle, or one whose first day is not after the previous journal's last (an earlier or a
    repeated day); FileNotFoundError for a missing one.  Reads each journal's headers once."""
    entries = [journal] if isinstance(journal, (str, Path)) else list(journal)
    if not entries:
        raise ValueError("no journal given")
    dated: list[tuple[Path, list[dt.date]]] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_dir():
            found = sorted(((p, _journal_days(p)) for p in path.glob("*.hkj")), key=lambda item: item[1][0])
            if not found:
                raise FileNotFoundError(f"no journal (*.hkj) in {path}")
            dated += found
        elif path.is_file():
            dated.append((path, _journal_days(path)))
        else:
            raise FileNotFoundError(f"no journal at {path}")
    for (before, earlier), (path, days) in itertools.pairwise(dated):
        if days[0] <= earlier[-1]:
            what = "repeats" if days[0] == earlier[-1] else "comes before"
            raise ValueError(f"journal {path} ({days[0]}) {what} the day of {before} ({earlier[-1]}):"
                             " give journals in increasing date order, each day once")  # fmt: skip
    return dated


def _journal_days(path: Path) -> list[dt.date]:
    """The market days of a journal's spot cycles, in order of first appearance (ValueError: none)."""
    from hkrt.core.china_time import market_time
    from hkrt.feed.journal import read_journal
    from hkrt.feed.wire import WireError, decode_header, decode_spots

    days: list[dt.date] = []
    for record in read_journal(path, log_damage=False):  # damage is reported when the journal plays
        try:
            header = decode_header(record.payload)
            if header.heartbeat:
                continue
            when = market_time(header.market_time_ms)
            if when is None:  # no market time in the header: its spots'
                when = max((s.datetime for s in decode_spots(record.payload)), default=None)
        except WireError:
            continue
        if when is not None and (not days or when.date() != days[-1]):
            days.append(when.date())
    if not days:
        raise ValueError(f"{path} holds no spot cycle: not a journal of a market day")
    return days


def _run_feed(
    strategy: Strategy,
    run: Any,
    handle_signals: bool,
    progress: Progress | None = None,
    until: dt.time | str | None = None,
) -> FeedReport:
    feed = _InProcessFeed(run, strategy)
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
DAY_CLOSE_WAIT = 10.0  # s without a new message before a day not closed is given up and the next one played


def _trading_days(strategy: Strategy, day: dt.date | str | None, days: int) -> list[dt.date]:
    """``days`` consecutive trading days from ``day`` (None: ending on the latest trading day)."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a whole number of at least 1, not {days!r}")
    calendar = strategy.calendar
    if day is None:
        out = [_trading_day(strategy, None)]
        while len(out) < days:
            out.insert(0, calendar.previous_trading_day(out[0]))
        return out
    out = [_trading_day(strategy, day)]
    while len(out) < days:
        out.append(calendar.next_trading_day(out[-1]))
    return out


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
