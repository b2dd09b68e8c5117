"""The node's one endpoint (hkrt.node.metrics) over a real supervisor with tiny real children, and real local
HTTP servers standing for the children's own endpoints: a child that answers is merged under its process
label, one that never answers and one that answers nonsense are counted and left out while the scrape still
succeeds, and /health fails while a critical child waits for its restart."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hkrt.node import ProcessSpec, RestartPolicy, Supervisor

AGENT_METRICS = """# HELP hkrt_bars_emitted_total Completed bars
# TYPE hkrt_bars_emitted_total counter
hkrt_bars_emitted_total 5.0
# HELP hkrt_strategy_orders The strategy's orders now in each status
# TYPE hkrt_strategy_orders gauge
hkrt_strategy_orders{status="filled"} 2.0
# HELP hkrt_strategy_orders_total Orders placed
# TYPE hkrt_strategy_orders_total counter
hkrt_strategy_orders_total 3.0
# HELP hkrt_process_restarts_total A child's own restarts counter (the node's would clash)
# TYPE hkrt_process_restarts_total counter
hkrt_process_restarts_total{process="inner"} 7.0
# HELP hkrt_inner A sample with its own process label
# TYPE hkrt_inner gauge
hkrt_inner{process="inner"} 1.0
"""
AGENT_HEALTH = {"status": "degraded", "reasons": [{"status": "degraded", "check": "callback_queue",
                                                   "detail": "callback queue at 90/100 events"}]}  # fmt: skip


class _Child(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes: dict[str, tuple[str, bytes]] = self.server.routes  # type: ignore[attr-defined]
        content_type, body = routes.get(self.path, ("text/plain", b"not found"))
        self.send_response(200 if self.path in routes else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def child_endpoint(routes: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Child)
    server.daemon_threads = True
    server.routes = routes  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """Accepts connections (the kernel's backlog) and never answers: a hung child."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(120)"]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def wait_for(what: str, check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_node_endpoint_merges_the_children_and_leaves_out_those_that_fail(tmp_path: Path) -> None:
    from hkrt.node.metrics import serve_node_metrics

    never = RestartPolicy(backoff=60, backoff_max=60, max_restarts=3, window=600)  # waits a minute to restart
    specs = [
        ProcessSpec("t1-server", [sys.executable, "-c", "import sys; sys.exit(1)"], restart=never, critical=True),
        ProcessSpec("t1-agent", sleeper(), critical=True, stop_timeout=5),
        ProcessSpec("t1-strategy-hung", sleeper(), stop_timeout=5),
        ProcessSpec("t1-strategy-nonsense", sleeper(), stop_timeout=5),
    ]
    supervisor = Supervisor(specs, tmp_path, poll=0.02)
    runner = threading.Thread(target=supervisor.run, daemon=True)
    agent_routes = {"/metrics": ("text/plain", AGENT_METRICS.encode()),
                    "/health": ("application/json", json.dumps(AGENT_HEALTH).encode())}  # fmt: skip
    nonsense = {"/metrics": ("text/plain", b"this is { not prometheus\n"), "/health": ("text/plain", b"<html>")}
    with child_endpoint(agent_routes) as agent, silent_endpoint() as hung, child_endpoint(nonsense) as odd:
        endpoints = {"t1-agent": agent, "t1-strategy-hung": hung, "t1-strategy-nonsense": odd}
        node = serve_node_metrics("127.0.0.1:0", supervisor, endpoints, heartbeat_timeout=10, child_timeout=0.5)
        runner.start()
        try:
            wait_for(
                "the server's restart and the others running",
                lambda: (
                    supervisor.restarts["t1-server"] == 1
                    and all(s["state"] == "running" for n, s in supervisor.stats().items() if n != "t1-server")
                ),
            )
            found = samples(urllib.request.urlopen(node.url + "/metrics", timeout=10).read().decode())
            try:
                urllib.request.urlopen(node.url + "/health", timeout=10)
                pytest.fail("/health answered 200 while a critical child waits for its restart")
            except urllib.error.HTTPError as err:
                assert err.code == 503
                health = json.loads(err.read())
        finally:
            supervisor.request_stop()
            runner.join(30)
            node.stop()

    def value(name: str, **labels: str) -> float | None:
        return found.get((name, frozenset(labels.items())))

    assert value("hkrt_process_restarts_total", process="t1-server") == 1
    assert value("hkrt_process_restarts_total", process="t1-agent") == 0
    assert value("hkrt_process_restarts_total", process="inner") is None  # the child's own copy is dropped
    assert value("hkrt_node_process_up", process="t1-server") == 0
    assert value("hkrt_node_process_state", process="t1-server", state="waiting") == 1
    assert value("hkrt_node_process_up", process="t1-agent") == 1
    # the answering child's metrics, under its process label; a gauge beside a counter of the same stem
    assert value("hkrt_bars_emitted_total", process="t1-agent") == 5
    assert value("hkrt_strategy_orders", process="t1-agent", status="filled") == 2
    assert value("hkrt_strategy_orders_total", process="t1-agent") == 3
    assert value("hkrt_inner", process="t1-agent", exported_process="inner") == 1
    # the hung and the nonsense child: counted, left out; the scrape itself succeeded
    assert (value("hkrt_node_scrape_errors_total", process="t1-strategy-hung") or 0) >= 1
    assert (value("hkrt_node_scrape_errors_total", process="t1-strategy-nonsense") or 0) >= 1
    assert value("hkrt_node_scrape_errors_total", process="t1-agent") == 0
    own = {"hkrt_node_process_up", "hkrt_node_process_state", "hkrt_node_process_heartbeat_age_seconds",
           "hkrt_node_process_starts_total", "hkrt_node_process_hung_kills_total", "hkrt_node_process_gave_up",
           "hkrt_node_scrape_errors_total", "hkrt_process_restarts_total"}  # fmt: skip
    for bad in ("t1-strategy-hung", "t1-strategy-nonsense"):
        assert {name for name, labels in found if ("process", bad) in labels} <= own
    # /health: failing for the critical child, the agent's own reason folded in, every child's state listed
    assert health["status"] == "failing"
    checks = {(r["check"], r["status"]) for r in health["reasons"]}
    assert ("process_down", "failing") in checks and ("t1-agent: callback_queue", "degraded") in checks
    assert health["processes"]["t1-server"]["state"] == "waiting"
    assert health["processes"]["t1-agent"]["health"] == "degraded"
    assert health["processes"]["t1-strategy-hung"]["health"] is None


def test_the_node_endpoint_beyond_loopback_needs_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hkrt.node.metrics import serve_node_metrics
    from hkrt.ops.access import AccessError

    monkeypatch.delenv("HKRT_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("HKRT_METRICS_TOKEN_FILE", raising=False)
    supervisor = Supervisor([ProcessSpec("t2-agent", sleeper())], tmp_path)
    with pytest.raises(AccessError, match="reachable beyond this machine"):
        serve_node_metrics("0.0.0.0:0", supervisor, {}, heartbeat_timeout=10)
    token = "a-token-long-enough-for-the-rule"
    node = serve_node_metrics("127.0.0.1:0", supervisor, {}, heartbeat_timeout=10, token=token)
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(node.url + "/metrics", timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(node.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        text = urllib.request.urlopen(request, timeout=10).read().decode()
        assert 'hkrt_node_process_up{process="t2-agent"} 0.0' in text  # not started: this supervisor never ran
    finally:
        node.stop()


def test_each_metrics_child_gets_a_loopback_port_and_each_strategy_the_alerts_file(tmp_path: Path) -> None:
    from hkrt.node.config import node_config
    from hkrt.node.ops_plan import ops_specs
    from hkrt.node.plan import node_specs
    from hkrt.node.process import Launch

    alerts = tmp_path / "alerts.toml"
    alerts.write_text('[notify.ops]\ntype = "wecom"\nkey = "k"\n', encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    config = node_config({"run-dir": str(tmp_path), "metrics": "127.0.0.1:0", "alerts": str(alerts),
                          "strategy": [str(root / "examples" / "macd_cross.py")]})  # fmt: skip
    specs, endpoints = ops_specs(config, node_specs(config))
    assert list(endpoints) == ["spot-server", "agent", "strategy-macd_cross"]
    first = {s.name: s.command(Launch(0, 0, 0)) for s in specs}
    for name, argv in first.items():
        assert argv[argv.index("--metrics") + 1] == endpoints[name].removeprefix("http://")
        assert endpoints[name].startswith("http://127.0.0.1:")
        assert ("--alerts" in argv) == name.startswith("strategy-")
    strategy = first["strategy-macd_cross"]
    assert strategy[strategy.index("--alerts") + 1] == str(alerts)
    before = endpoints["agent"]
    again = specs[1].command(Launch(0, 1, 1, fresh=False))  # a restart: a port free now, the endpoint follows
    assert again[again.index("--metrics") + 1] == endpoints["agent"].removeprefix("http://")
    assert again.count("--metrics") == 1 and before.startswith("http://127.0.0.1:")
    plain, none = ops_specs(node_config({"run-dir": str(tmp_path)}), node_specs(config))
    assert none == {} and all("--metrics" not in s.command(Launch(0, 0, 0)) for s in plain)
