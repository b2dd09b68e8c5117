"""``hkrt node``: the spot server, the agent, the traders and the strategies as supervised child processes
(docs/operations.md).

- :mod:`hkrt.node.process`: :class:`ProcessSpec` (one child: argv, restart policy, heartbeat), generic;
- :mod:`hkrt.node.supervisor`: :class:`Supervisor` (start, watch, restart with backoff, kill the hung, stop in
  order; ``restarts`` and ``stats()`` for the metrics);
- :mod:`hkrt.node.config`: :class:`NodeConfig` from flags or node.toml;
- :mod:`hkrt.node.plan`: the specs of a node's children from its config;
- :mod:`hkrt.node.traders`: which brokers run in ``hkrt trader`` children, where they listen, their specs;
- :mod:`hkrt.node.child`: the entry a child runs (an hkrt command, made stoppable on Windows);
- :mod:`hkrt.node.child_log`: each child's output into its own rotated log file.
- :mod:`hkrt.node.ops_plan`: the children's ``--metrics`` ports and ``--alerts`` file; :mod:`hkrt.node.metrics`:
  the node's one ``/metrics`` and ``/health``; :mod:`hkrt.node.alerting`: the supervisor's events as alerts;
- :mod:`hkrt.node.scale_out`: the ``redis``/``group`` keys and a ``postgresql://`` store.
"""

from __future__ import annotations

from hkrt.node.config import NodeConfig, NodeConfigError, StrategyConfig, node_config
from hkrt.node.process import Heartbeat, Launch, ProcessSpec, RestartPolicy, file_heartbeat, hkrt_command
from hkrt.node.supervisor import Supervisor

__all__ = [
    "Heartbeat",
    "Launch",
    "NodeConfig",
    "NodeConfigError",
    "ProcessSpec",
    "RestartPolicy",
    "StrategyConfig",
    "Supervisor",
    "file_heartbeat",
    "hkrt_command",
    "node_config",
]
