"""The trader's heartbeat file (``hkrt trader --heartbeat-file``): what ``hkrt node`` watches to tell a live
trader from a frozen one.

Rewritten every :data:`BEAT_S` seconds (atomically, owner-only) while the request loop turns: a trader whose
loop stopped (a frozen process, a defect that ended the loop) stops beating and is killed and restarted by
its supervisor.  A broker call that hangs does not stop the beat: the request loop never calls the broker, the
strategies' orders wait at the trader, not in their callbacks, and ``busy`` in the file (seconds the broker
call under way has run) shows the hang to the operator; killing the trader would make that order's outcome
unknown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hkrt.trader.server import TraderServer

log = logging.getLogger("hkrt.trader")

BEAT_S = 1.0
LOOP_STALE_S = 5.0  # the request loop turns every 0.2 s: this long without a turn, it is stuck


def beat(server: TraderServer) -> dict[str, Any]:
    """The heartbeat's content now."""
    busy = server.busy_since
    return {
        "pid": os.getpid(),
        "heartbeat": time.time(),
        "broker": server.broker.name,
        "address": server.address,
        "epoch": server.epoch,
        "busy": round(time.monotonic() - busy, 3) if busy is not None else 0.0,
        "unknown_orders": server.journal.unknown,
        "stats": dict(server.stats),
    }


def serve_with_heartbeat(server: TraderServer, stop: threading.Event, path: str | os.PathLike[str] | None) -> None:
    """Wait until ``stop`` is set, rewriting the heartbeat file at ``path`` (None: none) while the server's
    request loop turns.  A file that cannot be written is a WARNING (once a minute) and the wait goes on."""
    from hkrt.core.logs import LogLimiter, log_limited
    from hkrt.strategy.control import write_json_atomic

    if path is None:
        server.wait(stop)
        return
    where = Path(path).expanduser()
    where.parent.mkdir(parents=True, exist_ok=True)
    limiter = LogLimiter(60.0)
    failures = 0
    while True:
        if time.monotonic() - server.loop_at <= LOOP_STALE_S:
            try:
                write_json_atomic(where, beat(server))
            except OSError as err:
                failures += 1
                log_limited(log, logging.WARNING, "heartbeat", f"trader heartbeat {where} not written: {err}",
                            {"path": str(where), "failures": failures}, 60.0, limiter=limiter)  # fmt: skip
        if stop.wait(BEAT_S):
            return
