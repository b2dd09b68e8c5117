"""The node's one ``/metrics`` and ``/health`` (``hkrt node --metrics``; docs/operations.md, docs/metrics.md).

``/metrics`` holds, at each scrape:

- the supervisor's view of every child: ``hkrt_process_restarts_total{process}`` (the process-wide
  :data:`hkrt.ops.restarts.restarts`, each child declared at 0 when the node starts and counted on each
  restart), ``hkrt_node_process_up``, ``hkrt_node_process_state``, ``hkrt_node_process_heartbeat_age_seconds``,
  ``hkrt_node_process_starts_total``, ``hkrt_node_process_hung_kills_total``, ``hkrt_node_process_gave_up``;
- each running child's own metrics (the agent's feed and bars, each strategy's orders and risk, the spot
  server's cycles), read from the child's loopback endpoint (hkrt.node.ops_plan gives each one) and
  re-labelled ``process="<child>"`` (a child's own ``process`` label becomes ``exported_process``);
- ``hkrt_node_scrape_errors_total{process}``: children that did not answer within ``child_timeout``
  (or answered what does not parse); their metrics are left out of that scrape, which never fails for them;
- the node process's own ``hkrt_node_self_process_*`` (CPU, memory: prometheus_client's process collector).

The children are read in parallel (at most :data:`MAX_PARALLEL` at once), so a scrape takes at most about
``child_timeout`` however many children hang.  ``/health`` is failing (503) while the spot server or the agent
is not running (waiting for a restart, given up on) or its heartbeat is older than the node's heartbeat timeout;
degraded while a strategy is down; and each running child's own ``/health`` is folded in (its reasons named
after it).  The JSON lists every child's state, restarts, heartbeat age and own health.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from hkrt.core.logs import log_limited
from hkrt.ops.access import check_bind, load_token, parse_address
from hkrt.ops.health import DEGRADED, FAILING, Finding, HealthReport
from hkrt.ops.restarts import restarts
from hkrt.ops.serve import MetricsServer

if TYPE_CHECKING:
    from hkrt.node.supervisor import Supervisor

log = logging.getLogger("hkrt.node")

CHILD_TIMEOUT_S = 2.0  # a child's answer waited for at most this long per scrape
MAX_PARALLEL = 16  # children read at once
MAX_BODY = 8 << 20  # bytes of a child's answer read at most (a whole-market strategy's positions stay far below)
STATES = ("waiting", "running", "done", "exited", "failed", "stopped")
NODE_OWN = frozenset({"hkrt_process_restarts"})  # the node counts these itself: a child's copy would clash
READ_ATTEMPTS = 3


class ChildScraper:
    """Reads a path of each child's endpoint in parallel, each answer within ``timeout`` seconds."""

    def __init__(self, endpoints: Mapping[str, str], *, token: str | None, timeout: float = CHILD_TIMEOUT_S) -> None:
        self.endpoints = endpoints  # kept, not copied: hkrt.node.ops_plan updates it when a child starts again
        self.token = token
        self.timeout = timeout
        self.errors: collections.Counter[str] = collections.Counter(dict.fromkeys(self.endpoints, 0))
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(self.endpoints))),
                                        thread_name_prefix="hkrt-node-scrape")  # fmt: skip

    def get(self, name: str, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.endpoints[name] + path)
        if self.token is not None:  # children inherit the node's $HKRT_METRICS_TOKEN: theirs is the same
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return int(answer.status), answer.read(MAX_BODY)
        except urllib.error.HTTPError as err:  # /health answers 503 when failing: an answer all the same
            with err:
                return int(err.code), err.read(MAX_BODY)

    def read(self, names: list[str], path: str) -> dict[str, tuple[int, bytes] | None]:
        """Each child's (HTTP status, body), or None (counted in ``errors``) when it did not answer in time."""
        futures: dict[str, Future[tuple[int, bytes]]] = {n: self._pool.submit(self.get, n, path) for n in names}
        wait_all(futures.values(), timeout=self.timeout + 0.5)
        out: dict[str, tuple[int, bytes] | None] = {}
        for name, future in futures.items():
            if future.done() and future.exception() is None:
                out[name] = future.result()
                continue
            future.cancel()
            why = future.exception() if future.done() else f"no answer within {self.timeout:g} s"
            self.failed(name, f"{path}: {why}")
            out[name] = None
        return out

    def failed(self, name: str, why: str) -> None:
        with self._lock:
            self.errors[name] += 1
            count = self.errors[name]
        log_limited(log, logging.WARNING, ("node-scrape", name), f"node metrics: {name} left out: {why}",
                    {"child": name, "scrape_errors": count}, 60.0)  # fmt: skip

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def relabelled(text: str, process: str) -> list[Metric]:
    """A child's exposition as metric families whose samples carry ``process``; ValueError when it does not parse."""
    families = []
    for family in text_string_to_metric_families(text):
        if family.name in NODE_OWN:
            continue
        metric = Metric(family.name, family.documentation, family.type, family.unit)
        for s in family.samples:
            labels = dict(s.labels)
            if "process" in labels:
                labels["exported_process"] = labels.pop("process")
            labels["process"] = process
            metric.add_sample(s.name, labels, s.value, s.timestamp, s.exemplar)
        families.append(metric)
    return families


def merged(per_child: Mapping[str, list[Metric]], scraper: ChildScraper) -> list[Metric]:
    """One family per name with every child's samples (the exposition format allows a name once).  Keyed by
    the name the exposition shows: a counter ``x`` is ``x_total``, and may sit beside a gauge ``x``."""
    out: dict[str, Metric] = {}
    for name, families in per_child.items():
        for family in families:
            shown = f"{family.name}_total" if family.type == "counter" else family.name
            into = out.get(shown)
            if into is None:
                out[shown] = family
            elif into.type != family.type:  # the same name with another type: a defect of a child; left out
                scraper.failed(name, f"{family.name} is a {family.type} here, a {into.type} elsewhere")
            else:
                into.samples.extend(family.samples)
    return list(out.values())


def _stats(supervisor: Supervisor) -> dict[str, Any]:
    """The supervisor's stats, read again when a child changed under the read (another thread runs it)."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return supervisor.stats()
        except (AttributeError, RuntimeError):
            if attempt + 1 == READ_ATTEMPTS:
                raise
            time.sleep(0.01)
    raise AssertionError("unreachable")


class NodeCollector(Collector):
    """The supervisor's children and their own metrics; see the module docstring."""

    def __init__(self, supervisor: Supervisor, scraper: ChildScraper) -> None:
        self.supervisor = supervisor
        self.scraper = scraper

    def collect(self) -> Iterator[Metric]:
        stats = _stats(self.supervisor)
        yield from process_metrics(stats)
        running = [n for n in self.scraper.endpoints if stats.get(n, {}).get("state") == "running"]
        per_child: dict[str, list[Metric]] = {}
        for name, answer in self.scraper.read(running, "/metrics").items():
            if answer is None:
                continue
            status, body = answer
            try:
                if status != 200:
                    raise ValueError(f"HTTP {status}")
                per_child[name] = relabelled(body.decode("utf-8", "replace"), name)
            except ValueError as err:
                self.scraper.failed(name, f"/metrics: {err}")
        yield from merged(per_child, self.scraper)
        errors = CounterMetricFamily("hkrt_node_scrape_errors", "Reads of a child's metrics or health that failed "
                                     "(it was left out of that scrape), by process", labels=["process"])  # fmt: skip
        for name, count in sorted(self.scraper.errors.items()):
            errors.add_metric([name], float(count))
        yield errors


def process_metrics(stats: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    """The supervisor's view of its children (one sample per child; the state is a fixed set)."""
    up = GaugeMetricFamily("hkrt_node_process_up", "1 while the child process runs", labels=["process"])
    state = GaugeMetricFamily("hkrt_node_process_state", "1 for the child's state (waiting, running, done, exited, "
                              "failed, stopped), 0 for the others", labels=["process", "state"])  # fmt: skip
    age = GaugeMetricFamily("hkrt_node_process_heartbeat_age_seconds", "Seconds since the child's last heartbeat "
                            "(NaN while it has given none, or is not running)", labels=["process"])  # fmt: skip
    starts = CounterMetricFamily("hkrt_node_process_starts", "Starts of the child", labels=["process"])
    hung = CounterMetricFamily("hkrt_node_process_hung_kills", "Times the child was killed as hung",
                               labels=["process"])  # fmt: skip
    gave_up = GaugeMetricFamily("hkrt_node_process_gave_up", "1 once the node gave up on the child",
                                labels=["process"])  # fmt: skip
    for name, s in stats.items():
        up.add_metric([name], 1.0 if s["state"] == "running" else 0.0)
        for each in STATES:
            state.add_metric([name, each], 1.0 if s["state"] == each else 0.0)
        beat = s.get("heartbeat_age")
        age.add_metric([name], float(beat) if isinstance(beat, (int, float)) else math.nan)
        starts.add_metric([name], float(s["starts"]))
        hung.add_metric([name], float(s["hung_kills"]))
        gave_up.add_metric([name], 1.0 if s["gave_up"] else 0.0)
    yield from (up, state, age, starts, hung, gave_up)


@dataclass
class NodeHealthReport(HealthReport):
    """The node's health with each child's state and own health."""

    processes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "processes": self.processes}


def node_health(stats: Mapping[str, Mapping[str, Any]], own: Mapping[str, Mapping[str, Any] | None], *,
                heartbeat_timeout: float) -> NodeHealthReport:  # fmt: skip
    """Failing while a critical child (the spot server, the agent) is not running or its heartbeat is stale;
    degraded while another child is down; each child's own health (``own``: its /health JSON, None when it
    did not answer) folded in with its reasons named after it."""
    report = NodeHealthReport()
    for name, s in stats.items():
        state, beat = s["state"], s.get("heartbeat_age")
        worst = FAILING if s["critical"] else DEGRADED
        if state not in ("running", "done"):
            what = "given up on" if s["gave_up"] else "waiting for a restart" if state == "waiting" else state
            report.findings.append(Finding(worst, "process_down", f"{name} is {what}"))
        elif state == "running" and isinstance(beat, (int, float)) and beat > heartbeat_timeout:
            report.findings.append(Finding(worst, "process_hung", f"{name}: heartbeat {beat:.0f} s old"))
        health = own.get(name)
        for reason in (health or {}).get("reasons", []):
            if isinstance(reason, Mapping) and reason.get("status") in (DEGRADED, FAILING):
                report.findings.append(Finding(str(reason["status"]), f"{name}: {reason.get('check')}",
                                               str(reason.get("detail", ""))))  # fmt: skip
        report.processes[name] = {
            "state": state, "pid": s["pid"], "restarts": s["restarts"], "gave_up": s["gave_up"],
            "heartbeat_age": beat, "health": (health or {}).get("status"),
        }  # fmt: skip
    return report


def _read_health(scraper: ChildScraper, stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any] | None]:
    import json

    running = [n for n in scraper.endpoints if stats.get(n, {}).get("state") == "running"]
    out: dict[str, dict[str, Any] | None] = {}
    for name, answer in scraper.read(running, "/health").items():
        try:
            data = json.loads(answer[1].decode("utf-8")) if answer is not None else None
        except ValueError as err:
            scraper.failed(name, f"/health: {err}")
            data = None
        out[name] = data if isinstance(data, dict) else None
    return out


class NodeMetrics:
    """The running endpoint (:attr:`server`, a :class:`~hkrt.ops.serve.MetricsServer`) and its scraper."""

    def __init__(self, server: MetricsServer, scraper: ChildScraper) -> None:
        self.server = server
        self.scraper = scraper

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.scraper.close()


def count_restarts(supervisor: Supervisor) -> None:
    """Declare every child in :data:`hkrt.ops.restarts.restarts` and count each restart the supervisor makes."""
    for child in supervisor.children:
        restarts.declare(child.spec.name)

    def on_event(kind: str, name: str, info: dict[str, Any]) -> None:
        if kind == "restarting":
            restarts.inc(name)

    supervisor.subscribe(on_event)


def serve_node_metrics(
    address: str,
    supervisor: Supervisor,
    endpoints: Mapping[str, str],
    *,
    heartbeat_timeout: float,
    token: str | None = None,
    child_timeout: float = CHILD_TIMEOUT_S,
    max_connections: int = 8,
    request_seconds: float = 10.0,
) -> NodeMetrics:
    """Serve the node's ``/metrics`` and ``/health`` on ``address`` (``HOST:PORT``; beyond loopback only with a
    token: ``token``, else ``$HKRT_METRICS_TOKEN`` or the file ``$HKRT_METRICS_TOKEN_FILE``), reading the
    children at ``endpoints`` (name -> ``http://127.0.0.1:PORT``).  Counts ``supervisor``'s restarts from now."""
    bind = parse_address(address)
    secret = load_token(token)
    check_bind(bind, secret)
    scraper = ChildScraper(endpoints, token=secret, timeout=child_timeout)
    count_restarts(supervisor)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(restarts)
    registry.register(NodeCollector(supervisor, scraper))
    ProcessCollector(namespace="hkrt_node_self", registry=registry)  # the node's own CPU and memory

    def health() -> HealthReport:
        stats = _stats(supervisor)
        return node_health(stats, _read_health(scraper, stats), heartbeat_timeout=heartbeat_timeout)

    try:
        server = MetricsServer(bind, registry, health, token=secret, max_connections=max_connections,
                               request_seconds=request_seconds)  # fmt: skip
    except BaseException:
        scraper.close()
        raise
    return NodeMetrics(server, scraper)
