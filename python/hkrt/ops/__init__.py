"""Operating hkrt: Prometheus metrics, the health endpoint, process restarts (docs/metrics.md).

Needs ``prometheus_client`` (``pip install 'hkrt[ops]'``); nothing here is imported by ``import hkrt``.
``serve_metrics`` and the rest load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hkrt._lazy import lazy_exports

if TYPE_CHECKING:
    from hkrt.ops.access import AccessError
    from hkrt.ops.health import HealthReport, HealthRules
    from hkrt.ops.restarts import ProcessRestarts, restarts
    from hkrt.ops.serve import MetricsServer, serve_metrics

_LAZY_NAMES: dict[str, str] = {
    **dict.fromkeys(("MetricsServer", "serve_metrics"), "hkrt.ops.serve"),
    **dict.fromkeys(("ProcessRestarts", "restarts"), "hkrt.ops.restarts"),
    **dict.fromkeys(("HealthReport", "HealthRules"), "hkrt.ops.health"),
    "AccessError": "hkrt.ops.access",
}
_SUBMODULES = frozenset({"access", "health", "http", "metrics", "restarts", "serve"})

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY_NAMES, _SUBMODULES)

__all__ = ["AccessError", "HealthReport", "HealthRules", "MetricsServer", "ProcessRestarts", "restarts",
           "serve_metrics"]  # fmt: skip
