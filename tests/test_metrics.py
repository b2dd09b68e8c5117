"""``/metrics`` and ``/health`` over real HTTP (urllib) of a strategy's agent playing a simulated day, of a spot
server, and of the endpoint's own bounds (docs/metrics.md).  The scraped values are compared with the dicts
they are read from (``SpotAgent.stats()``, ``Strategy.summary()``, ``RiskEngine.status()``), parsed by
prometheus_client's own parser."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hkrt.ops import AccessError, serve_metrics
from hkrt.ops.access import TOKEN_ENV, TOKEN_FILE_ENV
from hkrt.ops.restarts import ProcessRestarts, restarts
from hkrt.strategy import Strategy, run_sim

DAY = dt.date(2026, 11, 20)
CODES = ["SH600000", "SH600001", "SH600002"]
TOKEN = "a-test-token-0123456789"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(url: str, token: str | None = None, timeout: float = 10.0) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8")


def parse(text: str) -> Samples:
    """Every sample by (name, sorted labels), through prometheus_client's parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(url: str, token: str | None = None) -> Samples:
    status, text = get(url + "/metrics", token)
    assert status == 200, text
    return parse(text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


class DayStrategy:
    """A strategy that buys at the market, places a limit buy away from it (expires at the close) and, once
    halted and resumed by its own timers, has one order refused by the risk state."""

    def __init__(self) -> None:
        self.strategy = Strategy(CODES, name="metrics-day")
        s = self.strategy

        @s.run_daily_at(time="09:35")
        def place() -> None:
            s.order("SH600000", 200)
            last = s.last_price("SH600001")
            assert last is not None
            s.order("SH600001", 100, round(last * 0.95, 2), order_type="limit")

        @s.run_daily_at(time="10:00")
        def refused() -> None:
            s.risk.halt("a test halt")
            s.order("SH600002", 100)  # refused: halted
            s.resume("test over")


@pytest.fixture(scope="module")
def played() -> Iterator[tuple[Strategy, Any, list[Samples]]]:
    """One simulated day with the endpoint up; a scrape during the day (from the run's progress callback)."""
    day = DayStrategy()
    server = serve_metrics("127.0.0.1:0", strategy=day.strategy)
    during: list[Samples] = []

    def progress(agent: Any, status: Any) -> None:
        if not during and agent.stats()["transport"]["messages"] > 50:
            during.append(scrape(server.url))

    try:
        run_sim(day.strategy, DAY, symbols=20, speed=20000, progress=progress)
        yield day.strategy, server, during
    finally:
        server.stop()


def test_a_scrape_during_the_day_sees_the_running_agent(played: tuple[Strategy, Any, list[Samples]]) -> None:
    _, _, during = played
    assert during, "the progress callback never scraped"
    samples = during[0]
    assert value(samples, "hkrt_agent_running") == 1
    assert value(samples, "hkrt_feed_messages_total") > 50
    assert value(samples, "hkrt_feed_last_message_age_seconds") < 5


def test_the_scraped_feed_values_are_the_agent_stats(played: tuple[Strategy, Any, list[Samples]]) -> None:
    strategy, server, _ = played
    assert strategy.agent is not None and not strategy.agent.running  # the day is over: nothing moves
    stats = strategy.agent.stats()
    t, cb = stats["transport"], stats["callbacks"]
    samples = scrape(server.url)
    assert value(samples, "hkrt_agent_running") == 0
    assert value(samples, "hkrt_feed_messages_total") == t["messages"] > 4000
    assert value(samples, "hkrt_feed_gaps_total") == t["gaps"]
    assert value(samples, "hkrt_feed_missing_messages_total") == t["missing_messages"]
    assert value(samples, "hkrt_feed_cycles_total") == t["cycles"]
    assert value(samples, "hkrt_feed_days_closed_total") == t["days_closed"] == 1
    for reason, n in t["rejected"].items():
        assert value(samples, "hkrt_feed_messages_rejected_total", reason=reason) == n
    assert value(samples, "hkrt_spots_received_total") == stats["received"] > 0
    assert value(samples, "hkrt_spots_accepted_total") == stats["accepted"]
    for reason, n in stats["rejected"].items():
        assert value(samples, "hkrt_spots_rejected_total", reason=reason) == n
    assert value(samples, "hkrt_symbols") == stats["symbols"] == 20
    assert value(samples, "hkrt_bars_emitted_total") == t["bars_emitted"] > 0
    assert value(samples, "hkrt_callback_errors_total") == cb["errors"] == t["callback_errors"]
    assert value(samples, "hkrt_callback_queue_depth") == cb["depth"]
    assert value(samples, "hkrt_callback_queue_capacity") == cb["max_events"]
    assert value(samples, "hkrt_callback_events_total") == cb["published"] > 0
    assert value(samples, "hkrt_feed_latency_seconds", quantile="0.5") == pytest.approx(t["latency_ms"]["p50"] / 1000)


def test_the_scraped_strategy_values_are_its_summary_and_risk_status(
    played: tuple[Strategy, Any, list[Samples]],
) -> None:
    strategy, server, _ = played
    summary, risk = strategy.summary(), strategy.risk.status()
    samples = scrape(server.url)
    name = {"strategy": "metrics-day"}
    assert value(samples, "hkrt_strategy_orders_total", **name) == summary["orders"] == 3
    assert summary["order_statuses"] == {"filled": 1, "expired": 1, "rejected": 1}
    for status in ("submitted", "accepted", "partially_filled", "filled", "cancelled", "rejected", "expired"):
        assert value(samples, "hkrt_strategy_orders", status=status, **name) == summary["order_statuses"].get(status, 0)
    assert value(samples, "hkrt_strategy_trades_total", **name) == summary["trades"] > 0
    # the text carries each float's repr: the values come back exact
    assert value(samples, "hkrt_strategy_fees_yuan_total", **name) == summary["fees"] > 0
    assert value(samples, "hkrt_strategy_cash_yuan", **name) == summary["cash"]
    assert value(samples, "hkrt_strategy_equity_yuan", **name) == summary["portfolio_value"]
    assert value(samples, "hkrt_strategy_pnl_yuan", **name) == summary["pnl"] != 0
    assert value(samples, "hkrt_strategy_position_shares", symbol="SH600000", **name) == 200
    assert value(samples, "hkrt_risk_state", state="ACTIVE", **name) == 1
    assert value(samples, "hkrt_risk_state", state="HALTED", **name) == 0
    assert value(samples, "hkrt_risk_refusals_total", check="state", **name) == risk["stats"]["refused_state"] == 1
    assert value(samples, "hkrt_risk_state_changes_total", state="HALTED", **name) == 1
    assert value(samples, "hkrt_ledger_disagreements_total", **name) == 0


def test_health_fails_while_halted_and_recovers_on_resume(played: tuple[Strategy, Any, list[Samples]]) -> None:
    strategy, server, _ = played
    status, body = get(server.url + "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok", "reasons": []})
    strategy.halt("x")
    try:
        status, body = get(server.url + "/health")
        assert status == 503
        report = json.loads(body)
        assert report["status"] == "failing"
        assert [(r["check"], r["detail"]) for r in report["reasons"]] == [
            ("risk_halted", "strategy metrics-day HALTED: x")
        ]
        assert value(scrape(server.url), "hkrt_risk_state", state="HALTED", strategy="metrics-day") == 1
    finally:
        strategy.resume("test over")
    status, body = get(server.url + "/health")
    assert (status, json.loads(body)["status"]) == (200, "ok")


def test_labels_are_bounded_and_never_an_order_id(played: tuple[Strategy, Any, list[Samples]]) -> None:
    strategy, server, _ = played
    samples = scrape(server.url)
    allowed = {"reason", "strategy", "status", "state", "check", "heartbeat", "symbol", "quantile", "collector",
               "process"}  # fmt: skip
    ids = {o.client_order_id for o in strategy.order_manager.orders}
    per_family: dict[str, int] = {}
    for name, labels in samples:
        assert {k for k, _ in labels} <= allowed, (name, labels)
        assert not ids & {v for _, v in labels}
        per_family[name] = per_family.get(name, 0) + 1
    assert max(per_family.values()) <= 20  # reasons and statuses: fixed sets


def test_positions_by_symbol_are_capped() -> None:
    from hkrt.ops.metrics import MAX_SYMBOL_LABELS, OTHER, bounded_positions

    codes = [f"SZ{n:06d}" for n in range(1, 501)]
    held = {c: 100 for c in codes} | {"SH999999": 300}  # one not of the strategy's codes
    labelled = bounded_positions(held, codes)
    assert len(labelled) == MAX_SYMBOL_LABELS + 1
    assert labelled[OTHER] == 100 * (500 - MAX_SYMBOL_LABELS) + 300
    assert sum(labelled.values()) == sum(held.values())


def test_restarts_are_counted_by_process_and_bounded(played: tuple[Strategy, Any, list[Samples]]) -> None:
    _, server, _ = played
    before = restarts.count("strategy:a")
    restarts.inc(process="strategy:a")
    restarts.inc(process="strategy:a")
    assert value(scrape(server.url), "hkrt_process_restarts_total", process="strategy:a") == before + 2
    small = ProcessRestarts(max_processes=2)
    for name in ("a", "b", "c", "d"):
        small.inc(name)
    assert small.counts() == {"a": 1, "b": 1, "_other": 2}
    with pytest.raises(ValueError, match="only go up"):
        small.inc("a", -1)


def test_a_failing_read_is_counted_and_the_scrape_goes_on(played: tuple[Strategy, Any, list[Samples]]) -> None:
    strategy, _, _ = played

    def broken() -> dict[str, Any]:
        raise KeyError("a defect")

    with serve_metrics("127.0.0.1:0", strategy=strategy) as server:
        strategy.summary = broken  # type: ignore[method-assign]
        try:
            samples = scrape(server.url)
        finally:
            del strategy.summary
    assert value(samples, "hkrt_scrape_errors_total", collector="strategy") == 1
    assert value(samples, "hkrt_feed_messages_total") > 0  # the agent's part is still there
    assert not [k for k in samples if k[0].startswith("hkrt_strategy_")]


# ------------------------------------------------------------------ a spot server
def test_the_spot_server_metrics_are_its_status() -> None:
    from hkrt.adapters.sim.config import SimConfig
    from hkrt.adapters.sim.data import SimMarket
    from hkrt.feed.server import SpotServer
    from hkrt.feed.transport import SpotPublisher

    publisher = SpotPublisher("inproc://hkrt-metrics-test", simulated_time=True)
    server = SpotServer(publisher)
    with publisher, serve_metrics("127.0.0.1:0", server=server) as endpoint:
        server.run_sim(SimMarket(DAY, SimConfig(symbols=10, interval=60.0)), speed=1e9)
        samples = scrape(endpoint.url)
    status = server.status
    assert value(samples, "hkrt_server_cycles_total") == status.cycles > 200
    assert value(samples, "hkrt_server_spots_published_total") == status.spots == 10 * status.cycles
    assert value(samples, "hkrt_server_days_ended_total") == 1
    assert value(samples, "hkrt_server_failed_batches_total") == 0
    assert not [k for k in samples if k[0].startswith(("hkrt_feed_", "hkrt_strategy_"))]


# ------------------------------------------------------------------ safety
def test_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    with pytest.raises(AccessError, match=f"reachable beyond this machine: set {TOKEN_ENV}"):
        serve_metrics("0.0.0.0:0")
    with pytest.raises(AccessError, match="shorter than 16"):
        serve_metrics("0.0.0.0:0", token="short")
    with pytest.raises(AccessError, match="expected HOST:PORT"):
        serve_metrics("127.0.0.1:http")


def test_addresses_are_parsed_and_only_loopback_is_open() -> None:
    from hkrt.ops.access import parse_address

    assert (parse_address("9300").host, parse_address("9300").port) == ("127.0.0.1", 9300)
    assert parse_address("[::1]:9301").loopback and parse_address("[::1]:9301").port == 9301
    assert parse_address("localhost:0").loopback and parse_address("127.0.0.2:1").loopback
    assert not parse_address("0.0.0.0:9300").loopback and not parse_address("metrics.example:9300").loopback
    for bad in ("", "127.0.0.1", "127.0.0.1:99999", "[::1", ":9300", "host:port"):
        with pytest.raises(AccessError, match="metrics address"):
            parse_address(bad)


def test_the_token_is_required_and_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv(TOKEN_FILE_ENV, str(token_file))
    with serve_metrics("0.0.0.0:0") as server:
        url = f"http://127.0.0.1:{server.bind.port}"
        assert get(url + "/metrics")[0] == 401
        assert get(url + "/health", token=TOKEN[:-1] + "x")[0] == 401
        assert get(url + "/health", token=TOKEN[:-1])[0] == 401
        status, text = get(url + "/metrics", token=TOKEN)
        assert status == 200 and "hkrt_process_restarts_total" in text
        assert get(url + "/health", token=TOKEN)[0] == 200
        assert server.stats["unauthorized"] == 3
    monkeypatch.setenv(TOKEN_ENV, TOKEN)  # on loopback too, once set
    with serve_metrics("127.0.0.1:0") as server:
        assert get(server.url + "/metrics")[0] == 401
        assert get(server.url + "/metrics", token=TOKEN)[0] == 200


def test_requests_are_bounded_in_number_and_time() -> None:
    with serve_metrics("127.0.0.1:0", max_connections=1, request_seconds=1.0) as server:
        assert get(server.url + "/nothing")[0] == 404
        deadline = time.monotonic() + 10
        while server.http.open_connections > 0 and time.monotonic() < deadline:  # that request's slot given back
            time.sleep(0.01)
        idle = socket.create_connection(("127.0.0.1", server.bind.port))  # holds the only slot, sends nothing
        try:
            deadline = time.monotonic() + 10
            while server.http.open_connections < 1 and time.monotonic() < deadline:  # accepted (a loaded machine)
                time.sleep(0.01)
            assert get(server.url + "/metrics")[0] == 503  # busy: answered at once
            deadline = time.monotonic() + 5
            idle.settimeout(5)
            assert idle.recv(100) == b""  # cut by the server after request_seconds
            assert time.monotonic() < deadline
        finally:
            idle.close()
        time.sleep(0.1)
        assert get(server.url + "/metrics")[0] == 200  # the slot is free again
        assert server.stats["busy"] == 1 and server.stats["cut"] == 1


def test_a_post_is_refused() -> None:
    with serve_metrics("127.0.0.1:0") as server:
        request = urllib.request.Request(server.url + "/metrics", data=b"x" * 100, method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 501


def test_the_server_answers_while_many_scrapes_run_at_once(played: tuple[Strategy, Any, list[Samples]]) -> None:
    _, server, _ = played
    codes: list[int] = []

    def one() -> None:
        codes.append(get(server.url + "/metrics")[0])

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [200] * 6
