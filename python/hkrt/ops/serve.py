"""``serve_metrics``: ``/metrics`` and ``/health`` of an agent, strategies and a spot server (docs/metrics.md).

One call per process: ``hkrt agent --metrics``, ``hkrt run --metrics``, ``hkrt spot-server --metrics`` and
each child of ``hkrt node`` make one.  Everything is read when requested; nothing runs between requests.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from hkrt.core.calendar import could_trade
from hkrt.core.china_time import china_now
from hkrt.ops.access import Bind, check_bind, load_token, parse_address
from hkrt.ops.health import HealthReport, HealthRules, assess
from hkrt.ops.http import BoundedHTTPServer, Response
from hkrt.ops.metrics import AgentCollector, ScrapeErrors, ServerCollector, StrategyCollector, _read_strategy, _source
from hkrt.ops.restarts import restarts

if TYPE_CHECKING:
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.feed.server import SpotServer
    from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.ops")

DEFAULT_ADDRESS = "127.0.0.1:9300"


class MetricsServer:
    """A running endpoint: :attr:`url`, :meth:`health`, :attr:`registry`; :meth:`stop` (or ``with``) ends it."""

    def __init__(
        self,
        bind: Bind,
        registry: CollectorRegistry,
        health: Callable[[], HealthReport],
        *,
        token: str | None,
        max_connections: int,
        request_seconds: float,
    ) -> None:
        self.registry = registry
        self.health = health
        routes = {"/metrics": self._metrics, "/health": self._health}
        self.http = BoundedHTTPServer(bind, routes, token=token, max_connections=max_connections,
                                      request_seconds=request_seconds)  # fmt: skip
        self.bind = Bind(bind.host, self.http.port)
        self.http.start()
        log.info("metrics on http://%s/metrics and /health%s", self.bind, " (bearer token required)" if token else "",
                 extra={"address": str(self.bind)})  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://{self.bind}"

    @property
    def stats(self) -> dict[str, int]:
        """Requests served, refused (unauthorized, busy), cut for taking too long, failed."""
        return dict(self.http.stats)

    def _metrics(self) -> Response:
        return Response(200, CONTENT_TYPE_LATEST, generate_latest(self.registry))

    def _health(self) -> Response:
        report = self.health()
        return Response(report.http_status, "application/json", report.to_json().encode("utf-8"))

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_metrics(
    address: str = DEFAULT_ADDRESS,
    *,
    agent: SpotAgent | Callable[[], SpotAgent | None] | None = None,
    strategy: Strategy | Sequence[Strategy] | None = None,
    server: SpotServer | Callable[[], SpotServer | None] | None = None,
    token: str | None = None,
    collectors: Iterable[Collector] = (),
    clock: Callable[[], dt.datetime] = china_now,
    rules: HealthRules | None = None,
    process_metrics: bool = True,
    max_connections: int = 8,
    request_seconds: float = 10.0,
) -> MetricsServer:
    """Serve ``/metrics`` (Prometheus text) and ``/health`` (JSON; 503 when failing) on ``address``
    (``HOST:PORT`` or a port; default 127.0.0.1:9300; port 0: a free one, see ``.url``) from a thread.

    ``agent``: a SpotAgent or a function returning the current one; default: the (first) strategy's
    agent, read at each request (a strategy makes a new agent per run).  ``strategy``: one or several.
    ``server``: a SpotServer.  ``token`` (else ``$HKRT_METRICS_TOKEN`` or the file
    ``$HKRT_METRICS_TOKEN_FILE``): every request must carry it as a bearer token; an address beyond
    loopback without one is refused (:class:`hkrt.ops.access.AccessError`, a ValueError).  ``clock``:
    China local time for the health rules' trading hours.  The process's restarts counter
    (:data:`hkrt.ops.restarts.restarts`) is always exposed."""
    bind = parse_address(address)
    secret = load_token(token)
    check_bind(bind, secret)
    strategies: list[Strategy] = (
        [] if strategy is None else [strategy] if not isinstance(strategy, Sequence) else list(strategy)
    )
    if agent is None and strategies:
        first = strategies[0]
        agent = lambda: first.agent  # noqa: E731
    registry = CollectorRegistry(auto_describe=False)
    errors = ScrapeErrors()  # registered last: a scrape shows its own failed reads
    if agent is not None:
        registry.register(AgentCollector(agent, errors))
    if strategies:
        registry.register(StrategyCollector(strategies, errors))
    if server is not None:
        registry.register(ServerCollector(server, errors))
    registry.register(restarts)
    if process_metrics:
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory... (Linux /proc)
    for extra in collectors:
        registry.register(extra)
    registry.register(errors)
    agent_of = _source(agent)

    def health() -> HealthReport:
        current = agent_of()
        stats = errors.read("agent", current.stats) if current is not None else None
        rows = [r for r in (errors.read("strategy", lambda s=s: _read_strategy(s)) for s in strategies) if r]  # type: ignore[misc]
        calendar: Any = getattr(current, "calendar", None) if current is not None else None
        if calendar is None and strategies:
            calendar = strategies[0].calendar
        is_trading_day = calendar.is_trading_day if calendar is not None else could_trade
        return assess(stats, agent_running=bool(current is not None and current.running), strategies=rows,
                      is_trading_day=is_trading_day, clock=clock, rules=rules)  # fmt: skip

    return MetricsServer(bind, registry, health, token=secret, max_connections=max_connections,
                         request_seconds=request_seconds)  # fmt: skip
