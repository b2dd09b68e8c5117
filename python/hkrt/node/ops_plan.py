"""The node's operations flags on its children (docs/operations.md, "Metrics and alerts"):

- ``metrics``: each child that serves metrics (the spot server, the agent, each strategy) gets
  ``--metrics 127.0.0.1:<port>`` on a loopback port the node finds free at each start; the node's one
  endpoint scrapes them (:mod:`hkrt.node.metrics`), and they are listed in node.json's ``metrics``;
- ``alerts``: each strategy gets ``hkrt run --alerts FILE``, so halts, refusals, feed silence and gaps alert
  from the process where they happen (the node's own router alerts on restarts, hangs and give-ups).

Specs are wrapped, not rebuilt: the flags are appended to whatever command a spec makes.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Sequence

from hkrt.node.config import NodeConfig
from hkrt.node.plan import AGENT, SERVER
from hkrt.node.process import Launch, ProcessSpec

STRATEGY_PREFIX = "strategy-"


def serves_metrics(name: str) -> bool:
    """Whether the child ``name`` takes ``--metrics`` (the spot server, the agent, a strategy's ``hkrt run``)."""
    return name in (SERVER, AGENT) or name.startswith(STRATEGY_PREFIX)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it; the child binds it a moment later, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def with_args(spec: ProcessSpec, extra: Callable[[Launch], list[str]]) -> ProcessSpec:
    """``spec`` whose every command ends with ``extra(launch)``."""

    def argv(launch: Launch) -> list[str]:
        return [*spec.command(launch), *extra(launch)]

    return dataclasses.replace(spec, argv=argv)


def ops_specs(config: NodeConfig, specs: Sequence[ProcessSpec]) -> tuple[list[ProcessSpec], dict[str, str]]:
    """``specs`` with the metrics and alerts flags, and each metrics child's endpoint (name -> ``http://...``;
    empty without ``metrics``).  The endpoints dict is kept current: a child started again gets a port free
    at that moment (the one it had may have been taken meanwhile), written there before it starts."""
    out: list[ProcessSpec] = []
    endpoints: dict[str, str] = {}
    for spec in specs:
        metrics = config.metrics is not None and serves_metrics(spec.name)
        alerts = config.alerts is not None and spec.name.startswith(STRATEGY_PREFIX)
        if not metrics and not alerts:
            out.append(spec)
            continue
        if metrics:
            endpoints[spec.name] = f"http://127.0.0.1:{free_port()}"

        def extra(launch: Launch, name: str = spec.name, metrics: bool = metrics, alerts: bool = alerts) -> list[str]:
            args: list[str] = []
            if metrics:
                if launch.attempt:
                    endpoints[name] = f"http://127.0.0.1:{free_port()}"
                args += ["--metrics", endpoints[name].removeprefix("http://")]
            if alerts:
                args += ["--alerts", str(config.alerts)]
            return args

        out.append(with_args(spec, extra))
    return out, endpoints
