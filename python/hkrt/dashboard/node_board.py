"""One web dashboard for all the strategies of a node (docs/dashboard.md, "A node's dashboard").

``hkrt node --dashboard 127.0.0.1:8050`` runs ``hkrt dashboard`` as a supervised child: a
:class:`~hkrt.dashboard.mirror.RelayReader` follows each strategy's relay (``hkrt run --dashboard-relay``) into a
:class:`~hkrt.dashboard.mirror.StrategyMirror`, and this server shows them on the single strategy's page, with a
strategy selector and a node panel (each child's state and restarts from the node's ``node.json``).

Routes as a strategy's dashboard, the strategy named by ``?strategy=NAME`` (else the first): ``/ws``,
``/api/snapshot``; ``POST /api/halt`` (``{"strategy", "reason"}``, the token always) halts that strategy through
its control channel (:func:`hkrt.strategy.control.send_command`: the strategy's run loop acts on it even when
its callbacks are stuck); ``/api/node`` the node panel; ``/api/stats`` the counters; ``/healthz`` (no data) what
the heartbeat checks.  A WebSocket client also gets ``{"type": "node", "data": ...}`` after each snapshot and
whenever the panel changes.

The heartbeat file (the node's sign of life of this child) is rewritten every second only while the web
server answers ``/healthz`` on its own address: a wedged server is killed and restarted by the node.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse

from hkrt.dashboard.access import Access, dashboard_access
from hkrt.dashboard.app import Gate, WebServer, halt_reason, page_app, serve_stream
from hkrt.dashboard.hub import Hub
from hkrt.dashboard.mirror import RelayReader, StrategyMirror
from hkrt.dashboard.wire import clean

log = logging.getLogger("hkrt.dashboard")

PANEL_SECONDS = 1.0  # the node panel is read, and the heartbeat written, this often
HALT_TIMEOUT_S = 10.0  # a strategy must answer a halt within this


class NodeBoard:
    """What the node's page shows beyond the strategies: the panel, and the per-strategy hubs it goes to."""

    def __init__(self, mirrors: dict[str, StrategyMirror], controls: dict[str, Path], node_status: Path | None,
                 *, queue_size: int, max_clients: int) -> None:  # fmt: skip
        self.mirrors = mirrors
        self.controls = controls
        self.node_status = node_status
        self.hubs = {name: Hub(queue_size=queue_size, max_clients=max_clients) for name in mirrors}
        for name, mirror in mirrors.items():
            mirror.listener = self.hubs[name].publish
        self._panel: dict[str, Any] = self._read_panel()
        self.halts = 0

    def panel(self) -> dict[str, Any]:
        return {"type": "node", "data": self._panel}

    def refresh(self) -> None:
        """Read the panel again; a change goes to every client."""
        panel = self._read_panel()
        if panel != self._panel:
            self._panel = panel
            for hub in self.hubs.values():
                hub.publish(self.panel())

    def _read_panel(self) -> dict[str, Any]:
        node: dict[str, Any] = {}
        if self.node_status is not None:
            try:
                node = json.loads(self.node_status.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                node = {}  # not written yet, or being replaced: the last panel stays until the next read
        found = node.get("processes")
        processes: dict[str, Any] = found if isinstance(found, dict) else {}
        keep = ("state", "pid", "starts", "restarts", "hung_kills", "last_exit", "gave_up")
        strategies = [{"name": n, "connected": m.connected, "state": m.risk_state, "lost": m.stats["lost"]}
                      for n, m in self.mirrors.items()]  # fmt: skip
        return {
            "strategies": strategies,
            "processes": {n: {k: p.get(k) for k in keep} for n, p in processes.items() if isinstance(p, dict)},
            "outcome": node.get("outcome", ""),
        }


def create_node_app(board: NodeBoard, access: Access) -> FastAPI:
    """The FastAPI application of a node's dashboard (exposed for tests; :func:`serve_node_dashboard` runs it)."""
    app = page_app("hkrt node dashboard")
    first = next(iter(board.mirrors))
    gate = Gate(access, {"unauthorized": 0})

    def pick(name: str | None) -> str:
        return name if name in board.mirrors else first

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/api/snapshot")
    def snapshot(request: Request, strategy: str | None = None) -> Any:
        if not gate.may_read(request):
            return gate.refused()
        return JSONResponse(clean(board.mirrors[pick(strategy)].snapshot()))

    @app.get("/api/node")
    def node(request: Request) -> Any:
        return board.panel()["data"] if gate.may_read(request) else gate.refused()

    @app.get("/api/stats")
    def stats(request: Request) -> Any:
        if not gate.may_read(request):
            return gate.refused()
        return {"halts": board.halts, "unauthorized": gate.stats["unauthorized"] + sum(h.stats["unauthorized"]
                for h in board.hubs.values()), "strategies": {n: {"connected": m.connected, "seq": m.seq,
                **m.stats, "server": dict(board.hubs[n].stats)} for n, m in board.mirrors.items()}}  # fmt: skip

    @app.post("/api/halt")
    async def halt(request: Request) -> Any:
        if not gate.may_halt(request):
            return gate.refused()
        reason, body = await halt_reason(request, "halted from the node's dashboard")
        name = body.get("strategy")
        if name not in board.controls:
            return JSONResponse({"error": f"no strategy {str(name)[:64]!r} on this node"}, status_code=404)
        from hkrt.strategy.control import ControlError, send_command

        try:
            answer = await asyncio.to_thread(send_command, board.controls[name], "halt", reason,
                                             timeout=HALT_TIMEOUT_S)  # fmt: skip
        except ControlError as err:
            log.warning("dashboard: halting %s failed: %s", name, err, extra={"strategy": name})
            return JSONResponse({"error": str(err)}, status_code=503)
        board.halts += 1
        log.warning("dashboard: %s: %s", name, reason, extra={"strategy": name, "cancelled": answer.get("cancelled")})
        status = 200 if answer.get("ok") else 500
        return JSONResponse({"strategy": name, "state": answer.get("state"), "reason": reason,
                             "cancelled": answer.get("cancelled", 0), "error": answer.get("error", "")},
                            status_code=status)  # fmt: skip

    @app.websocket("/ws")
    async def stream(ws: WebSocket) -> None:
        name = pick(ws.query_params.get("strategy"))
        await serve_stream(ws, access, board.hubs[name], board.mirrors[name], after_snapshot=board.panel)

    return app


class NodeDashboardServer(WebServer):
    """A node's running dashboard: the web server, the relay reader and the panel's thread."""

    def __init__(self, board: NodeBoard, reader: RelayReader, access: Access, heartbeat_file: Path | None) -> None:
        self.board = board
        self.reader = reader
        self.heartbeat_file = heartbeat_file
        super().__init__(create_node_app(board, access), access)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="hkrt-dashboard-panel", daemon=True)
        self.reader.start()
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(PANEL_SECONDS):
            try:
                self.board.refresh()
                if self.heartbeat_file is not None and self._answers():
                    from hkrt.strategy.control import write_json_atomic

                    write_json_atomic(self.heartbeat_file, {"pid": os.getpid(), "heartbeat": time.time(),
                                      "strategies": {n: {"connected": m.connected, "seq": m.seq, **m.stats}
                                                     for n, m in self.board.mirrors.items()}})  # fmt: skip
            except Exception:
                log.exception("dashboard: the panel's tick failed")

    def _answers(self) -> bool:
        """Whether the web server answers ``/healthz`` on its own address now."""
        host = self.access.bind.host
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        conn = http.client.HTTPConnection(host, self.port, timeout=2.0)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            log.warning("dashboard: the web server does not answer on %s", self.url)
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._ticker.join(5.0)
        self.reader.stop()
        self._stop_serving()


def serve_node_dashboard(
    relays: dict[str, str],
    controls: dict[str, Path],
    address: str = "127.0.0.1:8050",
    *,
    token: str | None = None,
    node_status: Path | None = None,
    heartbeat_file: Path | None = None,
    queue_size: int = 1000,
    max_clients: int = 16,
    poll: float = 0.1,
    **bounds: Any,
) -> NodeDashboardServer:
    """Serve one dashboard of the strategies whose relays are ``relays`` (name -> nng address), halting them
    through their control channels ``controls`` (name -> state dir), on ``address`` (token rules as
    :func:`hkrt.dashboard.serve_dashboard`).  ``node_status``: the node's node.json (the panel);
    ``heartbeat_file``: written every second while the server answers; ``queue_size``, ``max_clients``: per
    strategy's clients; ``bounds``: each mirror's (``max_bars``...)."""
    if not relays:
        raise ValueError("a node's dashboard needs at least one strategy relay")
    access = dashboard_access(address, token)
    mirrors = {name: StrategyMirror(name, **bounds) for name in relays}
    board = NodeBoard(mirrors, dict(controls), node_status, queue_size=queue_size, max_clients=max_clients)
    reader = RelayReader(mirrors, relays, poll=poll)
    return NodeDashboardServer(board, reader, access, heartbeat_file)
