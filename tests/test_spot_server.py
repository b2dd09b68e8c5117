"""The spot server: its schedule, its pull loop, and the CLI publishing a simulated day
(and its replay) into a real agent over a real socket."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import hkrt
from hkrt.core.calendar import TradingCalendar
from hkrt.feed.server import FetchOutcome, Phase, PullSchedule, SpotServer
from hkrt.feed.transport import SpotPublisher
from hkrt.fetcher.sim import SimConfig, SimMarket

DAY = dt.date(2026, 11, 20)
SCHEDULE = PullSchedule([Phase.parse("09:15-11:31"), Phase.parse("12:59-15:01")], TradingCalendar.china())


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("now", "active", "next_start"),
    [
        ("2026-11-20 10:00:00", True, "2026-11-20 10:00:00"),
        ("2026-11-20 09:00:00", False, "2026-11-20 09:15:00"),
        ("2026-11-20 11:31:00", False, "2026-11-20 12:59:00"),  # lunch
        ("2026-11-20 15:30:00", False, "2026-11-23 09:15:00"),  # Friday evening -> Monday
        ("2026-11-21 10:00:00", False, "2026-11-23 09:15:00"),  # Saturday
        ("2026-09-30 16:00:00", False, "2026-10-08 09:15:00"),  # National Day holidays skipped
    ],
)
def test_pull_schedule_follows_phases_and_the_calendar(now: str, active: bool, next_start: str) -> None:
    assert SCHEDULE.active(t(now)) is active
    assert SCHEDULE.next_start(t(now)) == t(next_start)


def test_phase_errors() -> None:
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        Phase.parse("morning")
    with pytest.raises(ValueError, match="end after"):
        Phase.parse("11:30-09:30")
    assert Phase.parse("9:15-11:31") == Phase(dt.time(9, 15), dt.time(11, 31))


def test_pull_loop_waits_for_the_phase_then_fetches_at_a_fixed_rate(tmp_path: Path) -> None:
    clock = [t("2026-11-21 12:00:00")]  # a Saturday: nothing until Monday 09:15
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += dt.timedelta(seconds=seconds)

    fetched: list[dt.datetime] = []

    with SpotPublisher(f"ipc://{tmp_path / 'feed.ipc'}") as pub:
        server = SpotServer(pub, sleep=sleep)

        def fetch(codes: list[str]) -> FetchOutcome:
            fetched.append(clock[0])
            if len(fetched) == 3:
                server.stop()
            spot = hkrt.Spot(codes[0], clock[0], close=10.0, volume=100, amount=1000)
            return FetchOutcome([spot], failed_batches=1 if len(fetched) == 2 else 0)

        server.run_pull(fetch, ["SH600000"], SCHEDULE, interval=3.0, clock=lambda: clock[0])
    assert fetched[0] == t("2026-11-23 09:15:00")
    assert sum(s for s in slept if s >= 60) > 0  # waited over the weekend in bounded steps
    assert pub.cycle_id == 3 and server.status.cycles == 3 and server.status.failed_batches == 1


def run_cli(*args: str, timeout: float = 120) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hkrt", "spot-server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def reference(symbols: int) -> hkrt.SpotAgent:
    agent = hkrt.SpotAgent(["MIN", "MIN60", "DAY"])
    for snap in SimMarket(DAY, SimConfig(symbols=symbols)).day_snapshots():
        agent.ingest(snap)
    return agent


def receive_all(address: str, proc: subprocess.Popen[str]) -> hkrt.SpotAgent:
    agent = hkrt.SpotAgent(["MIN", "MIN60", "DAY"]).start(address)
    try:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        deadline = time.monotonic() + 30
        while agent.stats()["transport"]["cycles"] < 5101 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        agent.stop()
    return agent


def assert_same(got: hkrt.SpotAgent, want: hkrt.SpotAgent) -> None:
    context = f"agent stats: {got.stats()}"
    assert got.symbols == want.symbols, context
    for symbol in want.symbols:
        for k in ("MIN", "MIN60", "DAY"):
            try:
                pd.testing.assert_frame_equal(got.kdata(symbol, k), want.kdata(symbol, k))
            except AssertionError as err:
                raise AssertionError(f"{symbol} {k}: {err}\n{context}") from None


def test_cli_publishes_a_simulated_day_into_an_agent_and_replays_it(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    journal = tmp_path / "day.journal"
    common = ["--address", address, "--wait-subscribers", "1"]
    proc = run_cli("--source", "sim", "--symbols", "25", "--date", "2026-11-20", "--speed", "5000",
                   "--record", str(journal), *common)  # fmt: skip
    live = receive_all(address, proc)
    t_live = live.stats()["transport"]
    assert t_live["gaps"] == 0, t_live
    assert (t_live["messages"] - t_live["heartbeats"], t_live["gaps"], t_live["cycles"]) == (5101, 0, 5101)
    want = reference(25)
    assert_same(live, want)
    assert all(len(live.kdata(s, "MIN")) == 240 for s in live.symbols if not live.kdata(s, "DAY").empty)

    # At the recorded pace (already 5000x the market's), not --speed 0: a busy CI machine must
    # not let the publisher outrun the agent by more than nng's queues (a loss shows as a gap).
    proc = run_cli("--source", "replay", "--replay", str(journal), "--speed", "1", *common)
    replayed = receive_all(address, proc)
    assert replayed.stats()["transport"]["gaps"] == 0, replayed.stats()["transport"]
    assert_same(replayed, want)


def test_cli_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = run_cli("--source", "sim", "--symbols", "5", "--speed", "1", "--address", f"ipc://{tmp_path / 'f.ipc'}")
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 143, out  # 128 + SIGTERM, after a clean stop
    assert "stopped" in out and "cycle" in out


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    proc = run_cli("--source", "replay")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "--replay FILE" in out
    proc = run_cli("--source", "sim", "--phase1", "noon")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "HH:MM-HH:MM" in out
