"""The spot server: runs a source on its schedule and publishes every cycle.

The sources are the venue adapters' data clients (``hkrt.adapters.<venue>.data``, docs/adding-a-venue.md):
each one's ``serve(server, plan)`` calls one of the loops below.  Sources:
- pull (qq, sina, qmt): a fetch each ``interval`` seconds at a fixed rate, inside the
  phases of trading days of the exchange calendar (weekends and holidays skipped), by the
  China wall clock;
- sim: the simulated market, one snapshot per ``interval`` market seconds, played at
  ``speed`` times real time;
- replay: a recorded journal, at its own recorded pace times ``speed``.

Every cycle goes out through the transport (sequence numbers, cycle id, parts), so
subscribers see any loss.  When a source has nothing more for a market day -- the simulated
day played out, the journal ended (or moved to another day), a pull source's last phase of
the day ended by its clock -- the server sends the end-of-day marker
(``SpotPublisher.end_day``), and agents complete that day's last bars.  ``stop()`` (also on
SIGTERM) ends the loop after the current cycle; a stopped source ends no day.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hkrt.core.calendar import TradingCalendar
from hkrt.core.china_time import CHINA_TZ, china_now
from hkrt.core.china_time import market_time as recorded_market_time
from hkrt.feed.transport import SpotPublisher

if TYPE_CHECKING:  # the venues' data clients call these loops (hkrt.adapters.<venue>.data); none is imported here
    from hkrt.adapters.replay.data import ReplaySource
    from hkrt.adapters.sim.data import SimMarket

log = logging.getLogger("hkrt.server")
CHINA = CHINA_TZ  # kept importable from here; china_now too (hkrt.core.china_time holds both)


@dataclass(frozen=True)
class Phase:
    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> Phase:
        """'09:15-11:31' (H:MM or HH:MM[:SS] on each side)."""
        try:
            start, end = (dt.time.fromisoformat(p.strip().zfill(5)) for p in text.split("-"))
        except ValueError as err:
            raise ValueError(f"invalid phase {text!r}: expected HH:MM-HH:MM, e.g. 09:15-11:31") from err
        if end <= start:
            raise ValueError(f"invalid phase {text!r}: it must end after it starts")
        return cls(start, end)


@dataclass(frozen=True)
class PullSchedule:
    """When a pull source runs: inside the phases, on trading days."""

    phases: Sequence[Phase]
    calendar: TradingCalendar

    def __post_init__(self) -> None:
        for a, b in zip(self.phases, self.phases[1:], strict=False):
            if b.start < a.end:
                raise ValueError("phases must be in order and must not overlap")

    def active(self, now: dt.datetime) -> bool:
        return self.calendar.is_trading_day(now.date()) and any(p.start <= now.time() < p.end for p in self.phases)

    def day_over(self, day: dt.date, now: dt.datetime) -> bool:
        """Whether the last phase of ``day`` has ended at ``now``."""
        return now.date() > day or (now.date() == day and now.time() >= self.phases[-1].end)

    def next_start(self, now: dt.datetime) -> dt.datetime:
        """The first moment at or after ``now`` when the schedule is active."""
        day = self.calendar.first_trading_day(now.date())
        while True:  # the calendar raises CalendarCoverageError past its table: no endless walk
            if day != now.date():
                now = dt.datetime.combine(day, dt.time())
            for p in self.phases:
                if now < dt.datetime.combine(day, p.end):
                    return max(dt.datetime.combine(day, p.start), now)
            day = self.calendar.next_trading_day(day)


@dataclass
class ServerStatus:
    cycles: int = 0
    spots: int = 0
    failed_batches: int = 0
    skipped_ticks: int = 0  # fixed-rate ticks missed because a cycle overran
    last_cycle_ms: float = 0.0
    last_market_time: dt.datetime | None = None
    started: float = field(default_factory=time.monotonic)
    # pull sources (totals over the run; see hkrt.fetcher.pull):
    failures: dict[str, int] = field(default_factory=dict)  # failed batches per reason ("deadline", "connect" ...)
    missing_retried: int = 0  # codes re-asked in their cycle because an answer lacked them
    dropped: int = 0  # codes dropped after answering unknown cycle after cycle
    reprobed: int = 0  # dropped codes asked again on a new trading day
    days_ended: int = 0  # end-of-day markers sent

    def line(self) -> str:
        market = self.last_market_time.strftime("%H:%M:%S") if self.last_market_time else "-"
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.failures.items()))
        pull = "".join(
            f"  {name} {value:,}"
            for name, value in (("re-asked", self.missing_retried), ("dropped", self.dropped),
                                ("re-probed", self.reprobed))
            if value
        )  # fmt: skip
        return (
            f"cycle {self.cycles}  market {market}  spots {self.spots:,}  failed batches {self.failed_batches}"
            f"{f' ({reasons})' if reasons else ''}{pull}  last {self.last_cycle_ms:.1f} ms"
        )


@dataclass
class FetchOutcome:
    """What one pull cycle fetched: the spots, how many batches failed and why, and what the pull
    session did (codes re-asked in the cycle, dropped, re-probed)."""

    spots: Sequence[Any]
    failed_batches: int = 0
    failures: Mapping[str, int] = field(default_factory=dict)  # failed batches per reason
    missing_retried: int = 0
    dropped: int = 0
    reprobed: int = 0


class SpotServer:
    def __init__(
        self,
        publisher: SpotPublisher,
        *,
        on_status: Callable[[ServerStatus], None] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.status = ServerStatus()
        self._on_status = on_status
        self._stop = threading.Event()
        self._sleep_fn = sleep  # tests inject a fake clock's sleep

    # ---------------------------------------------------------------- control
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        """SIGTERM stops the server cleanly (Ctrl-C arrives as KeyboardInterrupt)."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop())

    def _sleep(self, seconds: float) -> None:
        if self._sleep_fn is not None:
            self._sleep_fn(max(0.0, seconds))
        else:
            self._stop.wait(max(0.0, seconds))  # wakes at once on stop()

    def end_day(self, market_time: dt.datetime | None) -> bool:
        """Send the end-of-day marker for the market day of ``market_time`` (the day's last
        market time).  False (and nothing sent) when there is no market time: nothing was
        published, so there is no day to end."""
        if market_time is None:
            return False
        self.publisher.end_day(market_time)
        self.status.days_ended += 1
        return True

    def _publish(self, spots: Any, count: int, market_time: Any, started: float, failed: int = 0) -> None:
        self.publisher.publish(spots, market_time=market_time)
        s = self.status
        s.cycles += 1
        s.spots += count
        s.failed_batches += failed
        s.last_cycle_ms = (time.perf_counter() - started) * 1000
        if isinstance(market_time, dt.datetime):
            s.last_market_time = market_time
        if self._on_status:
            self._on_status(s)

    # ---------------------------------------------------------------- sources
    def run_sim(self, market: SimMarket, *, speed: float = 1.0, end_day: bool = True) -> None:
        """Publish the simulated day, one snapshot every interval/speed wall seconds (fixed rate),
        then (``end_day``, unless stopped) the end-of-day marker at the last snapshot's time.
        A caller playing one day in several pieces passes ``end_day=False`` and calls
        :meth:`end_day` itself after the last."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        pause = market.config.interval / speed
        next_at = time.monotonic()
        last: dt.datetime | None = None
        for t in market.times():
            if self.stopping:
                return
            started = time.perf_counter()
            columns = market.snapshot(t)
            self._publish(columns, len(columns["symbol"]), t, started)
            last = t
            next_at += pause
            self._sleep(next_at - time.monotonic())
        if end_day and not self.stopping:
            self.end_day(last)

    def run_replay(self, source: ReplaySource) -> None:
        """Publish the journal's cycles; the end-of-day marker goes out when the journal moves
        on to another market day and when it ends (unless stopped), at the day's last market time."""
        last: dt.datetime | None = None  # the latest market time of the day being replayed
        for cycle in source.cycles():
            if self.stopping:
                return
            when = _cycle_time(cycle)
            if last is not None and when is not None and when.date() != last.date():
                self.end_day(last)  # the journal went on to another day: the earlier one is over
                last = None
            started = time.perf_counter()
            market_time = cycle.market_time_ms or None
            self.publisher.changes_only = cycle.changes_only  # as the recorded source sent it
            self._publish(cycle.spots, len(cycle.spots), market_time, started)
            if cycle.spots:
                self.status.last_market_time = max(s.datetime for s in cycle.spots)
            if when is not None and (last is None or when > last):
                last = when
        if not self.stopping:
            self.end_day(last)

    def _last_time_of(self, day: dt.date, schedule: PullSchedule) -> dt.datetime:
        """The market time a pull day ended at: the last one published, if it is of that day,
        else the end of the day's last phase."""
        last = _as_datetime(self.publisher.last_market_time)
        if last is not None and last.date() == day:
            return last
        return dt.datetime.combine(day, schedule.phases[-1].end)

    def run_push(self, make_client: Callable[[Callable[[list[Any]], None]], Any], codes: Iterable[str]) -> None:
        """A push source (QMT whole-quote subscription): every push is published as a cycle
        from the source's own thread, until stop().  ``make_client(on_spots)`` returns an object
        with ``start(codes)`` and ``stop()``."""

        def on_spots(spots: list[Any]) -> None:
            if spots and not self.stopping:
                started = time.perf_counter()
                self._publish(spots, len(spots), None, started)
                self.status.last_market_time = max(s.datetime for s in spots)

        self.publisher.changes_only = True  # a push sends a symbol only when it changed
        client = make_client(on_spots)
        client.start(list(codes))
        try:
            while not self.stopping:
                self._sleep(0.5)
        finally:
            client.stop()

    def run_pull(
        self,
        fetch: Callable[[list[str]], FetchOutcome],
        codes: Iterable[str],
        schedule: PullSchedule,
        *,
        interval: float,
        clock: Callable[[], dt.datetime] = china_now,
    ) -> None:
        """Fetch and publish every ``interval`` seconds at a fixed rate while the schedule is
        active; between phases and over weekends and holidays, wait for the next start.  Once
        the last phase of a trading day has ended (by ``clock``), send the end-of-day marker
        for it, once."""
        codes = list(codes)
        next_at: float | None = None
        open_day: dt.date | None = None  # the trading day cycles were run on and not yet ended
        while not self.stopping:
            now = clock()
            if not schedule.active(now):
                if open_day is not None and schedule.day_over(open_day, now):
                    self.end_day(self._last_time_of(open_day, schedule))
                    open_day = None
                start = schedule.next_start(now)
                log.info("waiting for the next trading phase", extra={"start": start.isoformat()})
                self._sleep(min((start - now).total_seconds(), 60.0))
                next_at = None
                continue
            open_day = now.date()
            started = time.perf_counter()
            outcome = fetch(codes)
            status = self.status  # the session's counters first: _publish reports the status
            for reason, n in outcome.failures.items():
                status.failures[reason] = status.failures.get(reason, 0) + n
            status.missing_retried += outcome.missing_retried
            status.dropped += outcome.dropped
            status.reprobed += outcome.reprobed
            self._publish(list(outcome.spots), len(outcome.spots), None, started, outcome.failed_batches)
            self.status.last_market_time = now
            tick = time.monotonic()
            next_at = (next_at or tick) + interval
            if next_at < tick:  # the cycle overran: skip the ticks it covered, keep the grid
                missed = int((tick - next_at) // interval) + 1
                self.status.skipped_ticks += missed
                next_at += missed * interval
            self._sleep(next_at - tick)


def _cycle_time(cycle: Any) -> dt.datetime | None:
    """A replayed cycle's market time (naive China local): its recorded market time when that is a
    sane one (1990..2200, as the agent believes them), else its latest spot."""
    recorded = recorded_market_time(cycle.market_time_ms)
    if recorded is not None:
        return recorded
    return max((s.datetime for s in cycle.spots), default=None)


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    to_datetime = getattr(value, "to_pydatetime", None)  # a pandas Timestamp
    return to_datetime() if to_datetime is not None else None
