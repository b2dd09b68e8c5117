"""The node's own alerts (``hkrt node --alerts FILE``): the supervisor's events through an
:class:`~hkrt.notify.alerts.AlertRouter`, with the router's rate limits (docs/alerts.md).

=============  ==========================  ========
event          alert kind                  severity
=============  ==========================  ========
restarting     ``process_restart``         error
hung           ``process_hung``            error
gave_up        ``process_gave_up``         critical
=============  ==========================  ========

What happens inside a strategy (a halt, a refused order, the feed's silence or a gap) alerts from that
strategy's process: the node gives each ``hkrt run`` the same file (hkrt.node.ops_plan).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hkrt.node.supervisor import Supervisor
    from hkrt.notify.alerts import AlertRouter


def restart_reason(info: dict[str, Any]) -> str:
    """Why a child is restarted, from the supervisor's ``restarting`` event."""
    if info.get("reason"):
        why = f"asked: {info['reason']}"
    elif info.get("hung"):
        why = "hung (no heartbeat)"
    else:
        why = f"exited with status {info.get('status')}"
    delay = info.get("delay")
    return f"{why}; restart {info.get('restarts')}" + (f" in {delay:.1f} s" if isinstance(delay, (int, float)) else "")


def route_supervisor_alerts(supervisor: Supervisor, router: AlertRouter) -> None:
    """Send ``supervisor``'s restarts, hangs and give-ups through ``router`` (started here; the caller stops
    it when the node ends, which sends what is queued)."""
    router.start()

    def on_event(kind: str, name: str, info: dict[str, Any]) -> None:
        if kind == "restarting":
            router.process_restarted(name, restart_reason(info))
        elif kind == "hung":
            router.process_hung(name, str(info.get("why", "")))
        elif kind == "gave_up":
            router.process_gave_up(name, f"after {info.get('restarts')} restarts (last status {info.get('status')})")

    supervisor.subscribe(on_event)
