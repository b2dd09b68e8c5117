"""``/health``'s rules (docs/metrics.md, "Health"): a real agent whose feed stops, judged in and out of trading
hours; the callback queue near its bound; ledger disagreements and a dead-man alert; and ``--metrics`` on the
command line (refused beyond loopback, scraped when running)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hkrt.ops import serve_metrics
from hkrt.ops.health import DEGRADED, FAILING, OK, HealthRules, agent_findings, strategy_findings

ROOT = Path(__file__).resolve().parents[1]
IN_SESSION = dt.datetime(2026, 11, 20, 10, 0)  # a Friday, trading
LUNCH = dt.datetime(2026, 11, 20, 12, 0)
SATURDAY = dt.datetime(2026, 11, 21, 10, 0)


def health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url + "/health", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_silent_feed_fails_during_trading_hours_only() -> None:
    from hkrt.adapters.sim.config import SimConfig
    from hkrt.adapters.sim.data import SimMarket
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.feed.transport import SpotPublisher

    address = "inproc://hkrt-metrics-health"
    publisher = SpotPublisher(address, simulated_time=True)
    agent = SpotAgent(["MIN"], silence_after=0.5)
    now = {"clock": IN_SESSION}
    with serve_metrics("127.0.0.1:0", agent=agent, clock=lambda: now["clock"]) as server:
        try:
            agent.start(address)
            publisher.wait_for_subscribers(1)
            market = SimMarket(IN_SESSION.date(), SimConfig(symbols=5))
            for t in list(market.times())[:20]:
                publisher.publish(market.snapshot(t), market_time=t)
            deadline = time.monotonic() + 10
            while agent.stats()["transport"]["messages"] < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert health(server.url) == (200, {"status": OK, "reasons": []})
            publisher.close()  # the feed stops: no message, no heartbeat
            while not agent.stats()["transport"]["silent"] and time.monotonic() < deadline:
                time.sleep(0.05)
            status, report = health(server.url)
            assert status == 503 and report["status"] == FAILING
            assert [r["check"] for r in report["reasons"]] == ["feed_silent"]
            assert "during trading hours" in report["reasons"][0]["detail"]
            for outside in (LUNCH, SATURDAY):  # silence is normal outside the sessions
                now["clock"] = outside
                assert health(server.url) == (200, {"status": OK, "reasons": []})
        finally:
            agent.stop()
            publisher.close()


def real_agent_stats() -> dict[str, Any]:
    from hkrt.agent.spot_agent import SpotAgent

    return SpotAgent(["MIN"]).stats()


def test_a_callback_queue_near_its_bound_degrades() -> None:
    stats = real_agent_stats()
    bound = stats["callbacks"]["max_events"]
    assert agent_findings(stats, running=True, session=False, rules=HealthRules()) == []
    stats["callbacks"]["depth"] = int(bound * 0.85)
    (finding,) = agent_findings(stats, running=True, session=False, rules=HealthRules())
    assert (finding.status, finding.check) == (DEGRADED, "callback_queue")
    assert "85% of its bound" in finding.detail
    stats["callbacks"]["depth"] = int(bound * 0.5)
    assert agent_findings(stats, running=True, session=False, rules=HealthRules()) == []


def strategy_row(**changes: Any) -> dict[str, Any]:
    from hkrt.ops.metrics import _read_strategy
    from hkrt.strategy import DeadManSwitch, Strategy

    strategy = Strategy(["SH600000"], name="h", deadman=DeadManSwitch(wall=lambda: IN_SESSION))
    return {**_read_strategy(strategy), **changes}


def test_a_ledger_disagreement_fails_and_a_recent_deadman_alert_degrades() -> None:
    rules = HealthRules(deadman_recent_s=600)
    row = strategy_row()
    assert strategy_findings(row, wall=IN_SESSION, rules=rules) == []
    bad = strategy_findings(strategy_row(ledger={"disagreements": 1, "unposted": 0}), wall=IN_SESSION, rules=rules)
    assert [(f.status, f.check) for f in bad] == [(FAILING, "ledger")]
    alert = {"heartbeat": "feed", "reason": "feed silent 60 s", "cancelled": 2, "wall": "2026-11-20T10:00:00"}
    fired = strategy_row(deadman={**row["deadman"], "last_alert": alert})
    recent = strategy_findings(fired, wall=IN_SESSION + dt.timedelta(minutes=5), rules=rules)
    assert [(f.status, f.check) for f in recent] == [(DEGRADED, "deadman_fired")]
    assert strategy_findings(fired, wall=IN_SESSION + dt.timedelta(minutes=11), rules=rules) == []
    reducing = strategy_row(risk={"state": "REDUCING", "reason": "daily loss", "since": None, "stats": {}})
    assert [(f.status, f.check) for f in strategy_findings(reducing, wall=IN_SESSION, rules=rules)] == [
        (DEGRADED, "risk_reducing")
    ]


# ------------------------------------------------------------------ the command line
def hkrt(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hkrt", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, **(env or {})})  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [
        ["agent", "--seconds", "1"],
        ["spot-server", "--speed", "1000"],
        ["run", "examples/ma_cross.py", "--source", "sim"],
    ],
)
def test_the_command_line_refuses_metrics_beyond_loopback_in_one_line(command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HKRT_METRICS_TOKEN")}
    done = subprocess.run([sys.executable, "-m", "hkrt", *command, "--metrics", "0.0.0.0:9300"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert errors == [
        "Error: Invalid value for --metrics: metrics on 0.0.0.0:9300 would be reachable beyond this machine: set "
        "HKRT_METRICS_TOKEN (or HKRT_METRICS_TOKEN_FILE) to a bearer token, or bind 127.0.0.1"
    ]
    assert "Traceback" not in done.stderr


def test_hkrt_agent_metrics_is_scraped() -> None:
    process = hkrt("agent", "--metrics", "127.0.0.1:0", "--seconds", "20", "--address", "inproc://nobody")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", line)
        assert found, line
        assert process.stdout.readline().startswith("agent: subscribing")  # started
        with urllib.request.urlopen(found.group(1) + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        assert "hkrt_agent_running 1.0" in text
        assert "hkrt_feed_messages_total 0.0" in text
    finally:
        process.terminate()
        process.communicate(timeout=30)
