"""``hkrt_process_restarts_total{process}``: the restarts a supervisor (``hkrt node``) made of its children.

The supervisor calls ``restarts.inc(process="strategy:ks")`` each time it starts a child again; every
metrics endpoint of that process (:func:`hkrt.ops.serve_metrics`) shows the counts.  The ``process``
label is one per supervised child: at most :data:`MAX_PROCESSES` names, later ones counted under
``process="_other"`` (with a WARNING once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger("hkrt.ops")

MAX_PROCESSES = 64
OTHER = "_other"


class ProcessRestarts(Collector):
    """Restart counts by process name (thread-safe; a Prometheus collector)."""

    def __init__(self, max_processes: int = MAX_PROCESSES) -> None:
        self.max_processes = max_processes
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._warned = False

    def declare(self, process: str) -> None:
        """Show ``process`` with 0 restarts (so a rate over it exists before its first restart)."""
        self.inc(process, 0)

    def inc(self, process: str, by: int = 1) -> None:
        """Count ``by`` restarts of ``process``."""
        if by < 0:
            raise ValueError(f"restarts only go up: by={by}")
        with self._lock:
            if process not in self._counts and len(self._counts) >= self.max_processes:
                if not self._warned:
                    self._warned = True
                    log.warning("more than %d processes counted: the others' restarts go under %r",
                                self.max_processes, OTHER, extra={"supervised": process})  # fmt: skip
                process = OTHER
            self._counts[process] = self._counts.get(process, 0) + by

    def count(self, process: str) -> int:
        with self._lock:
            return self._counts.get(process, 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("hkrt_process_restarts", "Restarts of a supervised process, by process",
                                     labels=["process"])  # fmt: skip
        for process, n in sorted(self.counts().items()):
            family.add_metric([process], float(n))
        yield family


restarts = ProcessRestarts()
"""The process-wide counter the node's supervisor increments and every endpoint of the process shows."""
