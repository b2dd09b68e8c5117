"""The hkrt command: entry points, demo argument checks, the pull source (the demo itself: test_demo.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hkrt.cli import main
from hkrt.cli.run import FeedNotices, FeedWatch, fit


def test_demo_refuses_a_non_trading_day() -> None:
    result = CliRunner().invoke(main, ["demo", "--date", "2026-10-01"])
    assert result.exit_code != 0
    assert "2026-10-01 is not a trading day" in result.output


def test_console_entry_point_and_module_run() -> None:
    run = subprocess.run([sys.executable, "-m", "hkrt", "demo", "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    assert "--symbols" in run.stdout and "--date" in run.stdout


def test_pull_source_keeps_one_client_and_drops_codes_the_source_does_not_know(tmp_path) -> None:
    import datetime as dt

    import hkrt
    from hkrt.cli.spot_server import _codes, _pull_fetcher
    from hkrt.testing import QuoteServer

    when = dt.datetime(2026, 11, 20, 10, 0)
    known = [
        hkrt.Spot(s, when, open=10, high=10, low=10, close=10, volume=100, amount=1000)
        for s in ("SH600000", "SZ000001")
    ]
    codes_file = tmp_path / "codes.txt"
    codes_file.write_text("SH600000, sz000001\n600001.SH  SH600002\n", encoding="utf-8")
    codes = _codes(f"@{codes_file}", "sina")
    assert codes == ["SH600000", "SZ000001", "SH600001", "SH600002"]
    with QuoteServer(known) as quotes:
        fetch = _pull_fetcher("sina", quotes.base_url("sina"))
        for cycle in (1, 2, 3):  # answered unknown three cycles running: dropped on the third
            outcome = fetch(codes)
            assert sorted(s.symbol for s in outcome.spots) == ["SH600000", "SZ000001"] and outcome.failed_batches == 0
            assert outcome.dropped == (2 if cycle == 3 else 0)
        quotes.requests.clear()
        fourth = fetch(codes)
        assert len(fourth.spots) == 2
        assert sorted(quotes.tokens("sina")) == ["sh600000", "sz000001"]  # the unknown two are no longer asked


# ------------------------------------------------------------------ visible waiting
def hkrt_process(*args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.Popen([sys.executable, "-m", "hkrt", *args], text=True, env=env, **popen)


def test_agent_without_a_publisher_says_it_is_waiting(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path / 'nobody.ipc'}"
    proc = hkrt_process("agent", "--address", address, "--seconds", "3", stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert any(line.startswith(f"waiting for a publisher at {address} (") for line in lines), out
    assert lines[-1].startswith(f"stopped: waiting for a publisher at {address}"), out


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")
def test_agent_status_line_fits_the_terminal(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 44, 0, 0))  # 44 columns
    proc = hkrt_process("agent", "--address", f"ipc://{tmp_path / 'x.ipc'}", "--seconds", "3",
                        stdout=follower, stderr=subprocess.PIPE)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(30)
    os.close(leader)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0, text
    drawn = [part for line in text.split("\n") for part in line.split("\r") if part.strip()]
    status = [part for part in drawn if part.startswith("waiting for a publisher")]
    assert status, text
    assert all(len(part.rstrip()) <= 43 for part in status), status  # never wraps
    assert all(part.rstrip().endswith("...") for part in status)  # cut, said to be cut


def stats_of(**transport: Any) -> dict[str, Any]:
    """The shape of ``SpotAgent.stats()`` (only what FeedWatch reads)."""
    base = {"messages": 0, "cycles": 0, "gaps": 0, "missing_messages": 0, "duplicate_messages": 0,
            "publisher_restarts": 0, "rejected": {"malformed": 0}, "latency_ms": {"p50": None},
            "queue_depth": 0}  # fmt: skip
    return {"accepted": 0, "rejected": {"out_of_order": 0}, "transport": {**base, **transport}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_feed_watch_from_counters_alone() -> None:
    """An agent without connection and silence keys: waiting until the first message, then
    silent after ``silent_after`` seconds without one."""
    clock = Clock()
    watch = FeedWatch("ipc:///x.ipc", silent_after=10, clock=clock)
    clock.now = 5
    assert watch.update(stats_of()) == "waiting" and watch.seconds == 5
    assert watch.state_text() == "waiting for a publisher at ipc:///x.ipc (5 s)"
    clock.now = 6
    assert watch.update(stats_of(messages=3)) == "flowing" and watch.state_text() == ""
    clock.now = 15.9
    assert watch.update(stats_of(messages=3)) == "flowing"
    clock.now = 16
    assert watch.update(stats_of(messages=3)) == "silent"
    assert watch.state_text() == "feed silent for 10 s: no message"
    clock.now = 17
    assert watch.update(stats_of(messages=4)) == "flowing"


def test_feed_watch_follows_the_agents_own_verdict() -> None:
    clock = Clock()
    watch = FeedWatch("tcp://127.0.0.1:9200", silent_after=10, clock=clock)
    assert watch.update(stats_of(connected=0, last_message_age_s=None, silent=False)) == "waiting"
    clock.now = 2
    assert watch.update(stats_of(connected=1, last_message_age_s=None, silent=False)) == "flowing"
    clock.now = 30  # heartbeats keep a quiet publisher "not silent": the agent knows
    assert watch.update(stats_of(connected=1, messages=5, last_message_age_s=28.0, silent=False)) == "flowing"
    clock.now = 40
    assert watch.update(stats_of(connected=1, messages=5, last_message_age_s=38.0, silent=True)) == "silent"
    assert watch.state_text() == "feed silent for 38 s: no message from the connected publisher"
    clock.now = 50  # the publisher went away after its last message
    assert watch.update(stats_of(connected=0, messages=5, last_message_age_s=48.0, silent=True)) == "waiting"
    clock.now = 53
    watch.update(stats_of(connected=0, messages=5, last_message_age_s=51.0, silent=True))
    assert watch.state_text() == "waiting for a publisher at tcp://127.0.0.1:9200 (3 s; last message 51 s ago)"


def test_status_line_names_every_reason_apart_and_fits_a_width() -> None:
    """A server restart is "publisher restarts 1", not "rejected 35500"; each reason its own count."""
    stats = stats_of(connected=1, messages=120_000, cycles=40_000, gaps=2, missing_messages=7,
                     recovered_messages=5, publisher_restarts=1, rejected={"malformed": 2, "too_short": 0},
                     latency_ms={"p50": 1.25})  # fmt: skip
    stats["accepted"] = 3_000_000
    stats["rejected"] = {"out_of_order": 35_500, "invalid_value": 3, "non_trading_day": 0}
    line = FeedWatch("ipc:///x.ipc").status_line(stats)
    assert line == ("messages 120,000  spots 3,000,000  gaps 2: 7 messages missing, 5 recovered  "
                    "publisher restarts 1  rejected 35,500 out_of_order spots, 3 invalid_value spots, "
                    "2 malformed messages  cycles 40,000  latency p50 1.2 ms")  # fmt: skip
    # whole parts in order of importance, the first that does not fit and all after left out
    assert FeedWatch("ipc:///x.ipc").status_line(stats, width=74) == (
        "messages 120,000  spots 3,000,000  gaps 2: 7 messages missing, 5 recovered"
    )
    assert FeedWatch("ipc:///x.ipc").status_line(stats, width=73) == "messages 120,000  spots 3,000,000"
    assert fit(["a" * 30, "b"], 10) == "aaaaaaa..." and fit(["ab", "cd", "ef"], 6) == "ab  cd"


def test_feed_notices_over_a_real_socket(tmp_path: Path) -> None:
    """``hkrt run --source feed``'s notices with a real agent and publisher: waiting, then the
    publisher connects and the feed flows."""
    import hkrt
    from hkrt.feed.transport import SpotPublisher

    address = f"ipc://{tmp_path / 'feed.ipc'}"
    said: list[str] = []
    clock = Clock()
    notices = FeedNotices(echo=said.append, clock=clock)
    agent = hkrt.SpotAgent(["MIN"]).start(address)
    try:
        clock.now = 0.5
        notices(agent)
        assert said == []  # a publisher that comes within a second is no news
        clock.now = 1.2
        notices(agent)
        assert said == [f"waiting for a publisher at {address} (1 s)"]
        with SpotPublisher(address) as publisher:
            assert publisher.wait_for_subscribers(1, timeout=10)
            spot = hkrt.Spot("SH600000", "2026-11-20 10:00:00", close=10.0, volume=100, amount=1000)
            deadline = time.monotonic() + 10
            while len(said) < 2 and time.monotonic() < deadline:
                publisher.publish([spot])
                clock.now += 1.0
                notices(agent)
                time.sleep(0.05)
    finally:
        agent.stop()
    assert said[1] == f"publisher connected at {address}: the feed flows"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM stops a run on POSIX")
def test_run_on_a_feed_without_a_publisher_says_it_is_waiting(tmp_path: Path) -> None:
    script = tmp_path / "strategy.py"
    script.write_text("import hkrt\nstrategy = hkrt.Strategy(['SH600000'])\n", encoding="utf-8")
    address = f"ipc://{tmp_path / 'nobody.ipc'}"
    out_path = tmp_path / "out.txt"
    with open(out_path, "w") as out:
        proc = hkrt_process("run", str(script), "--address", address, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while f"waiting for a publisher at {address}" not in out_path.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, out_path.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 143  # 128 + SIGTERM, after its report
        finally:
            if proc.poll() is None:
                proc.kill()
    text = out_path.read_text()
    assert "Traceback" not in text
    assert f"feed: waiting for a publisher at {address}" in text  # the last word on the feed
