"""The end of the market day reaches strategies and agents, and nothing is invented after a stop.

Real parts throughout: spot servers publishing on nng sockets (in-process or ipc), agents and
strategies subscribed to them.  A simulated day of three symbols at a high pace takes a few
seconds.  Expected values come from the simulated market itself.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hkrt
from hkrt.core.calendar import TradingCalendar
from hkrt.core.ktype import KType
from hkrt.feed.server import FetchOutcome, Phase, PullSchedule, SpotServer
from hkrt.feed.transport import SpotPublisher
from hkrt.feed.wire import decode_header, encode_heartbeat
from hkrt.fetcher.sim import SimConfig, SimMarket, universe
from hkrt.hooks import Bar
from hkrt.strategy import run_replay, run_sim

DAY = dt.date(2026, 11, 20)  # a Friday: its close ends the week too
MONDAY = dt.date(2026, 11, 23)
THURSDAY = dt.date(2026, 11, 19)
CODES = universe(3)  # SH600000, SZ000001, BJ920001
SPEED = 50_000.0  # market seconds per wall second: the day in well under a second of pacing
CLOSE = dt.datetime.combine(DAY, dt.time(15))
ROOT = Path(__file__).resolve().parents[1]


def at(day: dt.date, hhmmss: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmmss))


def last_snapshot(day: dt.date = DAY, symbols: int = 3) -> dict[str, tuple[float, float]]:
    """symbol -> (close, cumulative volume) of the simulated day's last snapshot."""
    last: dict[str, Any] = {}
    for snap in SimMarket(day, SimConfig(symbols=symbols)).day_snapshots():
        last = snap
    return {s.decode(): (float(c), float(v)) for s, c, v in zip(last["symbol"], last["close"], last["volume"],
                                                                 strict=True)}  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def inproc() -> str:
    return f"inproc://hkrt-day-close-{secrets.token_hex(6)}"


class Collector:
    """Completed bars an on_bar hook received: (symbol, ktype name, Bar)."""

    def __init__(self) -> None:
        self.bars: list[tuple[str, str, Bar]] = []

    def __call__(self, symbol: str, ktype: KType, bar: Bar) -> None:
        self.bars.append((symbol, ktype.value, bar))

    def of(self, ktype: str, symbol: str | None = None) -> list[Bar]:
        return [b for s, k, b in self.bars if k == ktype and (symbol is None or s == symbol)]


# --------------------------------------------------------------- (a) run_sim gets the close
def test_run_sim_delivers_the_15_00_bars_of_every_period_and_one_day_bar_per_symbol() -> None:
    strategy = hkrt.Strategy(CODES, ktypes=["MIN", "MIN60", "DAY", "WEEK"])
    got = Collector()
    strategy.on_bar(got)
    report = run_sim(strategy, DAY, symbols=3, speed=SPEED, handle_signals=False)
    assert report.day_closed and report.complete, report
    want = last_snapshot()
    for code in CODES:
        assert CLOSE in [b.datetime for b in got.of("MIN", code)], code
        assert CLOSE in [b.datetime for b in got.of("MIN60", code)], code
        minutes = [b.datetime for b in got.of("MIN", code)]
        assert len(minutes) == len(set(minutes)) and max(minutes) == CLOSE  # each once, the close last
        days = got.of("DAY", code)
        assert len(days) == 1 and days[0].datetime.date() == DAY, days
        assert (days[0].close, days[0].volume) == want[code]  # the whole day, closing snapshot included
        weeks = got.of("WEEK", code)  # Friday's close ends the week
        assert len(weeks) == 1 and weeks[0].volume == want[code][1], weeks
    assert strategy.agent is not None
    t = strategy.agent.stats()["transport"]
    assert t["day_end_markers"] >= 1 and t["days_closed"] == 1 and t["closed_day"] == str(DAY)
    assert report.received_messages == report.published_messages  # heartbeats are not counted as published


# ------------------------------------------------------- (b) stop() mid-day invents nothing
def test_stop_from_a_callback_ends_delivery_no_filler_bars_and_no_orders_after_it() -> None:
    strategy = hkrt.Strategy(CODES, ktypes=["MIN", "DAY"])
    got: list[tuple[str, str, dt.datetime, bool]] = []
    stopped_at: list[dt.datetime] = []

    @strategy.on_bar
    def on_bar(symbol: str, ktype: KType, bar: Bar) -> None:
        got.append((symbol, ktype.value, bar.datetime, bool(stopped_at)))
        strategy.order(symbol, 100)  # an order on every bar: one after the stop would show
        if bar.datetime >= at(DAY, "10:00") and not stopped_at:
            stopped_at.append(bar.datetime)
            strategy.stop()

    timers_after_stop: list[dt.datetime | None] = []

    @strategy.run_daily(interval="1min")
    def every_minute() -> None:
        if stopped_at:
            timers_after_stop.append(strategy.now)

    report = run_sim(strategy, DAY, symbols=3, speed=SPEED, handle_signals=False)
    assert stopped_at == [at(DAY, "10:00")]
    assert timers_after_stop == []
    assert [g for g in got if g[3]] == []  # not one bar after stop(), not even the rest of its batch
    assert max(g[2] for g in got) <= at(DAY, "10:01")
    assert not [g for g in got if g[1] == "DAY"]
    orders = strategy.orders
    assert len(orders) == len(got) and orders["created"].max() <= at(DAY, "10:01")
    assert not report.day_closed


# --------------------------------------------------------- (c) until ends delivery as well
def test_until_ends_delivery_at_that_market_time_without_closing_the_day() -> None:
    address = inproc()
    strategy = hkrt.Strategy(CODES, ktypes=["MIN", "MIN5", "DAY"])
    got = Collector()
    strategy.on_bar(got)
    strategy.on_bar(lambda symbol, ktype, bar: strategy.order(symbol, 100), ktypes=["MIN5"])
    publisher = SpotPublisher(address, simulated_time=True)
    server = SpotServer(publisher)

    def publish() -> None:
        if publisher.wait_for_subscribers(1, timeout=30):
            server.run_sim(SimMarket(DAY, SimConfig(symbols=3)), speed=SPEED)

    feed = threading.Thread(target=publish, daemon=True)
    feed.start()
    try:
        strategy.run(address, live=False, until="10:30", handle_signals=False)
    finally:
        server.stop()
        feed.join(30)
        publisher.close()
    labels = [b.datetime for _, _, b in got.bars]
    assert labels and max(labels) <= at(DAY, "10:30"), max(labels)
    assert max(b.datetime for b in got.of("MIN")) >= at(DAY, "10:25")  # it did run to about then
    assert got.of("DAY") == []
    orders = strategy.orders
    assert len(orders) and orders["created"].max() <= at(DAY, "10:30")
    assert strategy.now is not None and strategy.now <= at(DAY, "10:30")


# ------------------------------------------------------------- (d) a replayed journal too
def record_days(path: Path, days: list[dt.date], symbols: int) -> None:
    """A spot server's journal (--record) of whole simulated days, published to nobody."""
    with SpotPublisher(inproc(), record=path, simulated_time=True, heartbeat_interval=0) as publisher:
        server = SpotServer(publisher)
        for day in days:
            server.run_sim(SimMarket(day, SimConfig(symbols=symbols)), speed=1e9)


def test_replay_of_a_recorded_journal_delivers_each_days_close(tmp_path: Path) -> None:
    """Two days in one journal: the replay ends the first when the journal moves on to the
    second (so its DAY and WEEK bars come), and the second at the journal's end."""
    journal = tmp_path / "days.hkj"
    record_days(journal, [DAY, MONDAY], symbols=1)
    (code,) = universe(1)
    strategy = hkrt.Strategy([code], ktypes=["MIN", "DAY", "WEEK"])
    got = Collector()
    strategy.on_bar(got)
    report = run_replay(strategy, journal, handle_signals=False)
    assert report.day_closed and report.gaps == 0, report
    days = got.of("DAY")
    assert [b.datetime.date() for b in days] == [DAY, MONDAY]
    assert [b.volume for b in days] == [last_snapshot(d, 1)[code][1] for d in (DAY, MONDAY)]
    assert [b.datetime.date() for b in got.of("WEEK")] == [DAY]  # Monday's week goes on
    closes = [b.datetime for b in got.of("MIN") if b.datetime.time() == dt.time(15)]
    assert closes == [CLOSE, at(MONDAY, "15:00")]
    # (Friday's marker may be lost to nng at this pace: then Monday's first spots end Friday's bars)
    assert strategy.agent is not None and strategy.agent.closed_day == MONDAY


# --------------------------------------------- (e) an agent on a spot server, and recovery
def test_an_agent_on_a_sim_server_closes_the_day_on_the_marker_and_recovery_does_too(tmp_path: Path) -> None:
    address = inproc()
    agent = hkrt.SpotAgent(["MIN", "MIN60", "DAY", "WEEK"], journal_dir=tmp_path / "journal")
    got = Collector()
    agent.on_bar(got)
    agent.start(address)
    try:
        with SpotPublisher(address, simulated_time=True, heartbeat_interval=0.2) as publisher:
            assert publisher.wait_for_subscribers(1, timeout=10)
            server = SpotServer(publisher)
            server.run_sim(SimMarket(DAY, SimConfig(symbols=3)), speed=SPEED)
            assert server.status.days_ended == 1 and publisher.day_ended == CLOSE
            assert wait_for(lambda: agent.closed_day == DAY), agent.stats()["transport"]
            # the publisher repeats the marker with every heartbeat: repeats change nothing
            assert wait_for(lambda: agent.stats()["transport"]["day_end_markers"] >= 3)
        assert agent.wait_idle()
    finally:
        agent.stop()
    t = agent.stats()["transport"]
    assert (t["days_closed"], t["days_closed_by_clock"], t["day_end_ignored"], t["gaps"]) == (1, 0, 0, 0), t
    want = last_snapshot()
    for code in CODES:
        assert [b.volume for b in got.of("DAY", code)] == [want[code][1]]
        assert len(got.of("WEEK", code)) == 1
        assert CLOSE in [b.datetime for b in got.of("MIN60", code)]
    assert len(got.of("DAY")) == 3  # once each, however often the marker came

    # A restart replays the journal: it holds the marker, so the day is closed again.
    again = hkrt.SpotAgent(["MIN", "MIN60", "DAY", "WEEK"], journal_dir=tmp_path / "journal")
    assert again.recover() > 5101 - 1
    assert again.closed_day == DAY and again.stats()["transport"]["days_closed"] == 1
    # ... and a journal without it (the day still open) closes nothing
    partial = tmp_path / "partial"
    recorder = hkrt.SpotAgent(["MIN", "DAY"], journal_dir=partial)
    for snap in SimMarket(DAY, SimConfig(symbols=3)).day_snapshots():
        recorder.ingest(hkrt.wire.encode_spots(snap, simulated_time=True, publisher_id=1, sequence=0))
    recorder.close_journal()
    fresh = hkrt.SpotAgent(["MIN", "DAY"], journal_dir=partial)
    fresh.recover()
    assert fresh.closed_day is None and fresh.market_day == DAY


# ------------------------------------------------ (f) a marker for another day changes nothing
def publish_spots(publisher: SpotPublisher, day: dt.date, times: list[str]) -> None:
    """One cycle per time, of two symbols; the cumulative volume grows with the time of day."""
    for hhmmss in times:
        when = at(day, hhmmss)
        minutes = when.hour * 60 + when.minute - 9 * 60
        spots = [hkrt.Spot(code, when, open=10.0, high=10.5, low=9.5, close=10.0 + minutes / 1000,
                           volume=1000.0 * minutes, amount=10_000.0 * minutes) for code in CODES[:2]]  # fmt: skip
        publisher.publish(spots)


def test_a_forged_end_of_day_marker_for_a_later_or_earlier_day_changes_nothing() -> None:
    address = inproc()
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    got = Collector()
    agent.on_bar(got)
    agent.start(address)
    try:
        with SpotPublisher(address, simulated_time=True, heartbeat_interval=0) as publisher:
            assert publisher.wait_for_subscribers(1, timeout=10)
            publish_spots(publisher, DAY, ["09:30:00", "10:00:00", "14:30:00"])
            assert wait_for(lambda: agent.stats()["accepted"] == 6)
            for day in (MONDAY, THURSDAY):  # signed as the publisher, sealed as it would be: only the day is wrong
                forged = encode_heartbeat(publisher_id=publisher.publisher_id, session_epoch=publisher.session_epoch,
                                          sequence=publisher.sequence, market_time=at(day, "15:00:00"),
                                          simulated_time=True, day_end=True)  # fmt: skip
                assert decode_header(forged).day_end
                publisher.send_raw(forged)
            assert wait_for(lambda: agent.stats()["transport"]["day_end_markers"] == 2)
            assert agent.wait_idle()
            t = agent.stats()["transport"]
            assert (t["day_end_ignored"], t["days_closed"], agent.closed_day) == (2, 0, None), t
            assert got.of("DAY") == [] and max(b.datetime for b in got.of("MIN")) < at(DAY, "14:35")
            assert agent.market_day == DAY
            publisher.end_day(at(DAY, "14:30:00"))  # the real one: the control that the check can fail
            assert wait_for(lambda: agent.closed_day == DAY)
            assert agent.wait_idle()
    finally:
        agent.stop()
    assert [b.datetime.date() for b in got.of("DAY")] == [DAY, DAY]
    assert max(b.datetime for b in got.of("MIN")) == CLOSE  # filled to the close once the day is over


# ------------------------------------------------------ (g) a live day closes by the clock
def test_a_live_feed_closes_its_day_by_the_agents_wall_clock_and_a_simulated_one_never_does(tmp_path: Path) -> None:
    address = inproc()
    agent = hkrt.SpotAgent(["MIN", "DAY"], journal_dir=tmp_path)
    now = [at(DAY, "16:00:00")]
    agent._clock = lambda: now[0]  # the seam: the agent's China wall clock
    got = Collector()
    agent.on_bar(got)
    agent.start(address)
    try:
        with SpotPublisher(address, simulated_time=True, heartbeat_interval=0) as publisher:
            assert publisher.wait_for_subscribers(1, timeout=10)
            # a simulated (or replayed) feed: its day is not the wall clock's, however late it is
            publish_spots(publisher, DAY, ["14:58:00", "14:59:00"])
            assert wait_for(lambda: agent.stats()["accepted"] == 4)
            time.sleep(0.5)  # several idle turns of the receiver
            assert agent.closed_day is None
            # live: the feed's last message is not simulated; 15:05 + bar_close_delay is not yet past
            publisher.simulated_time = False
            now[0] = at(DAY, "15:05:02")
            publish_spots(publisher, DAY, ["15:00:00"])
            assert wait_for(lambda: agent.stats()["accepted"] == 6)
            time.sleep(0.5)
            assert agent.closed_day is None and got.of("DAY") == []
            # past it, but a spot came 28 s ago (by that clock): the feed may not be done
            now[0] = at(DAY, "15:05:30")
            time.sleep(0.5)
            assert agent.closed_day is None
            # a minute without spots, and no message at all: the receiver's idle turn closes the day
            now[0] = at(DAY, "15:06:02.100")
            assert wait_for(lambda: agent.closed_day == DAY, timeout=10)
            assert agent.wait_idle()
    finally:
        agent.stop()
    t = agent.stats()["transport"]
    assert (t["days_closed"], t["days_closed_by_clock"], t["day_end_markers"]) == (1, 1, 0), t
    assert sorted(s for s, k, _ in got.bars if k == "DAY") == sorted(CODES[:2])
    assert {s for s, k, b in got.bars if k == "MIN" and b.datetime == CLOSE} == set(CODES[:2])
    # the agent journaled a marker of its own for that close: a restart closes the day again
    again = hkrt.SpotAgent(["MIN", "DAY"], journal_dir=tmp_path)
    again.recover()
    assert again.closed_day == DAY


# ---------------------------------------------- the pull loop ends each trading day once
def test_the_pull_loop_sends_the_end_of_day_marker_once_after_its_last_phase() -> None:
    schedule = PullSchedule([Phase.parse("09:15-11:31"), Phase.parse("12:59-15:01")], TradingCalendar.china())
    clock = [at(DAY, "11:29:00")]
    received: list[Any] = []
    with SpotPublisher(inproc(), heartbeat_interval=0) as publisher:
        step = dt.timedelta(milliseconds=1)  # spot times are whole milliseconds
        server = SpotServer(publisher, sleep=lambda s: clock.__setitem__(0, clock[0] + round(s * 1000) * step))
        original = publisher.end_day

        def end_day(market_time: Any) -> None:
            received.append((clock[0], market_time))
            original(market_time)

        publisher.end_day = end_day  # type: ignore[method-assign]

        fetched: list[dt.datetime] = []

        def fetch(codes: list[str]) -> FetchOutcome:
            if clock[0] >= at(MONDAY, "09:15"):
                server.stop()  # the next trading day began: enough
            fetched.append(clock[0])
            return FetchOutcome([hkrt.Spot(codes[0], clock[0], close=10.0, volume=100, amount=1000)])

        server.run_pull(fetch, ["SH600000"], schedule, interval=3.0, clock=lambda: clock[0])
    # not at lunch, not over the weekend: once, when the afternoon phase ended, at the last market time
    assert len(received) == 1, received
    sent_at, market_time = received[0]
    assert sent_at.date() == DAY and sent_at >= at(DAY, "15:01")  # (the fake clock moves in uneven steps)
    assert market_time == max(t for t in fetched if t.date() == DAY) and at(DAY, "12:59") < market_time < sent_at
    assert any(t.date() == MONDAY for t in fetched)  # it ran on into the next trading day
    assert server.status.days_ended == 1


# ------------------------------------------------------------------- the command line
def hkrt_process(*args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(Path(hkrt.__file__).resolve().parents[1])
    return subprocess.Popen([sys.executable, "-m", "hkrt", *args], text=True, env=env, cwd=ROOT, **popen)


def test_spot_server_sim_and_hkrt_agent_print_the_day_bar(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    server_log = tmp_path / "server.txt"
    with server_log.open("w") as out:  # a file: its status line would fill a pipe nobody reads yet
        server = hkrt_process("spot-server", "--source", "sim", "--symbols", "3", "--date", str(DAY),
                              "--speed", "50000", "--address", address, "--wait-subscribers", "1",
                              stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    agent = hkrt_process("agent", "--address", address, "--symbol", "SZ000001", "--ktype", "DAY", "--seconds", "120",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    lines: list[str] = []
    try:
        assert agent.stdout is not None
        deadline = time.monotonic() + 120
        while not any(line.startswith("market day") for line in lines):
            line = agent.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        server.wait(60)
    finally:
        for proc in (agent, server):
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)
    close, volume = last_snapshot()["SZ000001"]
    day_lines = [line for line in lines if " SZ000001 DAY " in line]
    assert len(day_lines) == 1, lines
    assert day_lines[0].startswith(f"{DAY} SZ000001 DAY ") and f"C {close:.2f}" in day_lines[0]
    assert f"V {volume:,.0f} shares" in day_lines[0]
    assert f"market day {DAY} closed" in "".join(lines)
    server_out = server_log.read_text()
    assert server.returncode == 0 and "1 end-of-day marker(s) sent" in server_out, server_out


def test_demo_summary_counts_the_day_bars_delivered(tmp_path: Path) -> None:
    symbols = 6
    run = subprocess.run(
        [sys.executable, "-m", "hkrt", "demo", "--date", str(DAY), "--days", "1", "--symbols", str(symbols),
         "--speed", "50000", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(hkrt.__file__).resolve().parents[1])},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    market = SimMarket(DAY, SimConfig(symbols=symbols))
    trading = next(int((market.snapshot(t)["close"] > 0).sum()) for t in market.times() if t.time() >= dt.time(9, 30))
    row = next(line for line in run.stdout.splitlines() if line.strip().startswith("delivered at the close"))
    assert row.split("delivered at the close")[1].strip() == (
        f"{trading} DAY bars, {trading} MIN bars at 15:00 (every symbol)"
    ), run.stdout


@pytest.mark.parametrize("day", [DAY])
def test_end_day_needs_a_market_time(day: dt.date) -> None:
    with SpotPublisher(inproc(), heartbeat_interval=0) as publisher:
        with pytest.raises(ValueError, match="market time"):
            publisher.end_day(None)
        with pytest.raises(ValueError, match="market_time"):
            encode_heartbeat(publisher_id=1, session_epoch=1, sequence=0, day_end=True)
        publisher.end_day(at(day, "15:00:00"))
        assert publisher.stats()["day_ends"] == 1 and publisher.day_ended == at(day, "15:00")
        publisher.publish([hkrt.Spot("SH600000", at(day, "15:00:00"), close=10.0, volume=100, amount=1000)])
        assert publisher.day_ended is None  # data again: later heartbeats are plain ones
