"""The dashboard's web server: FastAPI on uvicorn in a background thread (docs/dashboard.md).

Routes: ``/`` the page and ``/static/*`` its files (no data in them); ``/api/snapshot`` the state as JSON;
``/ws`` the WebSocket that sends a snapshot and then the deltas; ``/api/halt`` (POST, ``Authorization:
Bearer <token>`` always) halts the strategy; ``/api/stats`` the server's counters.  Reading needs the token
only on an address beyond loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from hkrt.dashboard.access import Access, dashboard_access, token_matches
from hkrt.dashboard.hub import RESYNC, Hub
from hkrt.dashboard.state import DEFAULT_KTYPES, DashboardState
from hkrt.dashboard.wire import clean as _clean
from hkrt.dashboard.wire import dumps

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.dashboard")

STATIC = Path(__file__).with_name("static")
HELLO_SECONDS = 5.0  # a WebSocket client must say hello (with the token when needed) within this
MAX_HALT_REASON = 200


class Gate:
    """The token rules of a dashboard's routes (docs/dashboard.md, "Safety"); refusals counted in
    ``stats["unauthorized"]``."""

    def __init__(self, access: Access, stats: dict[str, int]) -> None:
        self.access = access
        self.stats = stats

    @staticmethod
    def bearer(request: Request) -> str | None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return given.strip() if scheme.lower() == "bearer" else None

    def may_read(self, request: Request) -> bool:
        return not self.access.read_needs_token or token_matches(self.bearer(request), self.access.token)

    def may_halt(self, request: Request) -> bool:
        if token_matches(self.bearer(request), self.access.token):
            return True
        log.warning("dashboard: a halt without a valid token was refused",
                    extra={"client": request.client.host if request.client else ""})  # fmt: skip
        return False

    def refused(self) -> JSONResponse:
        self.stats["unauthorized"] += 1
        return JSONResponse({"error": "a valid token is required"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


def page_app(title: str) -> FastAPI:
    """A FastAPI application serving the page (``/``) and its files (``/static``), which hold no data."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    return app


async def halt_reason(request: Request, prefix: str) -> tuple[str, dict[str, Any]]:
    """The halt's reason (``prefix`` and the body's ``reason``, cut to MAX_HALT_REASON) and the JSON body."""
    try:
        body = await request.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    text = str(body.get("reason") or "").strip()[:MAX_HALT_REASON]
    return prefix + (f": {text}" if text else ""), body


def create_app(state: DashboardState, access: Access, hub: Hub) -> FastAPI:
    """The FastAPI application over ``state`` (exposed for tests; :func:`serve_dashboard` runs it)."""
    app = page_app("hkrt dashboard")
    state.listener = hub.publish
    gate = Gate(access, hub.stats)

    @app.get("/api/snapshot")
    def snapshot(request: Request) -> Any:
        return JSONResponse(_clean(state.snapshot())) if gate.may_read(request) else gate.refused()

    @app.get("/api/stats")
    def stats(request: Request) -> Any:
        if not gate.may_read(request):
            return gate.refused()
        return {"server": dict(hub.stats), "state": dict(state.stats), "seq": state.seq}

    @app.post("/api/halt")
    async def halt(request: Request) -> Any:
        if not gate.may_halt(request):
            return gate.refused()
        reason, _body = await halt_reason(request, "halted from the dashboard")
        # Strategy.halt is safe from any thread and waits at most a few seconds on a stuck callback queue
        cancelled = await asyncio.to_thread(state.strategy.halt, reason)
        state.refresh_risk(reason)
        await asyncio.to_thread(state.refresh_health)
        hub.stats["halts"] += 1
        log.warning("dashboard: %s", reason, extra={"strategy": state.strategy.name, "cancelled": len(cancelled)})
        return {"state": state.strategy.trading_state, "reason": reason, "cancelled": len(cancelled)}

    @app.websocket("/ws")
    async def stream(ws: WebSocket) -> None:
        await serve_stream(ws, access, hub, state)

    return app


async def serve_stream(ws: WebSocket, access: Access, hub: Hub, state: Any,
                       after_snapshot: Callable[[], dict[str, Any] | None] | None = None) -> None:  # fmt: skip
    """One WebSocket client of ``state`` (a :class:`DashboardState` or anything with its ``snapshot()`` and
    ``watch()``): the hello (with the token when reading needs it), a snapshot, then what ``hub`` queues for it
    (a RESYNC marker becomes a fresh snapshot).  ``after_snapshot``: a message sent after each snapshot (the
    node's panel)."""
    await ws.accept()
    try:
        hello = json.loads(await asyncio.wait_for(ws.receive_text(), HELLO_SECONDS))
    except (asyncio.TimeoutError, ValueError, WebSocketDisconnect):
        await _close(ws, 1008, "say hello first")
        return
    given = hello.get("token") if isinstance(hello, dict) else None
    if access.read_needs_token and not token_matches(given if isinstance(given, str) else None, access.token):
        hub.stats["unauthorized"] += 1
        await _close(ws, 1008, "a valid token is required")
        return
    joined = hub.join(state.snapshot)
    if joined is None:
        await _close(ws, 1013, "too many dashboard clients")
        return
    client, first = joined
    reader = asyncio.create_task(_listen(ws, state))
    extra = after_snapshot or (lambda: None)
    try:
        await ws.send_text(dumps(first))
        following = extra()
        if following is not None:
            await ws.send_text(dumps(following))
        while not reader.done():
            getter = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            message = getter.result()
            following = None
            if message is RESYNC:
                message = {**state.snapshot(), "resync": True}
                following = extra()
            await ws.send_text(dumps(message))
            if following is not None:
                await ws.send_text(dumps(following))
            hub.stats["sent"] += 1
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        hub.leave(client)
        reader.cancel()


async def _listen(ws: WebSocket, state: Any) -> None:
    """Read what the client sends until it goes (that is how a disconnect is seen): ``{"type": "watch",
    "symbol": ..., "ktype": ...}`` names the series it shows, whose forming bar it then receives."""
    watched: tuple[str, str] | None = None
    try:
        while True:
            try:
                message = json.loads(await ws.receive_text())
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "watch":
                wanted = (str(message.get("symbol")), str(message.get("ktype")))
                watched = state.watch(watched, wanted)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        state.watch(watched, None)


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, OSError):
        await ws.close(code=code, reason=reason)


class WebServer:
    """FastAPI ``app`` served by uvicorn from a background thread on ``access.bind``: :attr:`url`, :attr:`token`;
    :meth:`stop` (or ``with``) ends it.  The base of a strategy's and a node's dashboard."""

    def __init__(self, app: FastAPI, access: Access) -> None:
        self.access = access
        self.app = app
        host = access.bind.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, access.bind.port))
        except OSError:
            self._socket.close()
            raise
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, ws_max_size=64 * 1024)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="hkrt-dashboard", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self._stop_serving()
            raise OSError(f"the dashboard server on {self.url} did not start")
        log.info("dashboard on %s", self.url, extra={"address": str(access.bind)})

    def _serve(self) -> None:
        self._server.run(sockets=[self._socket])

    @property
    def url(self) -> str:
        host = self.access.bind.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def token(self) -> str:
        return self.access.token

    def _stop_serving(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10.0)
        self._socket.close()

    def stop(self) -> None:
        """Stop serving (open WebSockets are closed)."""
        self._stop_serving()

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DashboardServer(WebServer):
    """A running dashboard: :attr:`url`, :attr:`token`, :attr:`stats`; :meth:`stop` (or ``with``) ends it."""

    def __init__(self, state: DashboardState, access: Access, *, queue_size: int, max_clients: int) -> None:
        self.state = state
        self.hub = Hub(queue_size=queue_size, max_clients=max_clients)
        super().__init__(create_app(state, access, self.hub), access)

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.hub.stats)

    def _repr_html_(self) -> str:
        """In a notebook: the live page, updating while the strategy runs (the kernel stays free)."""
        fragment = f"#token={self.token}" if self.access.generated else ""
        return (f'<iframe src="{self.url}/{fragment}" style="width:100%;height:760px;border:0"></iframe>'
                f'<div><a href="{self.url}/{fragment}" target="_blank">{self.url}</a></div>')  # fmt: skip

    def stop(self) -> None:
        """Stop serving (open WebSockets are closed) and stop following the strategy."""
        self._stop_serving()
        self.state.close()
        self.state.listener = None

    def __enter__(self) -> DashboardServer:
        return self


def serve_dashboard(
    strategy: Strategy,
    address: str = "127.0.0.1:8050",
    *,
    token: str | None = None,
    ktypes: Iterable[str] = DEFAULT_KTYPES,
    queue_size: int = 1000,
    max_clients: int = 16,
    **bounds: Any,
) -> DashboardServer:
    """Serve the live dashboard of ``strategy`` on ``address`` (``HOST:PORT`` or a port; port 0: a free one)
    from a background thread, until :meth:`DashboardServer.stop`.

    ``token`` (else ``$HKRT_DASHBOARD_TOKEN`` or the file ``$HKRT_DASHBOARD_TOKEN_FILE``; else a random one,
    see ``.token``): required by the halt button, and for everything on an address beyond loopback (refused
    without one: :class:`hkrt.ops.access.AccessError`, a ValueError).  ``ktypes``: the periods charted.
    ``queue_size``: messages waiting per client at most (then it resyncs); ``max_clients``: WebSockets at
    most.  ``bounds``: :class:`~hkrt.dashboard.state.DashboardState`'s (``max_bars``...)."""
    access = dashboard_access(address, token)
    state = DashboardState(strategy, ktypes=ktypes, **bounds)
    try:
        return DashboardServer(state, access, queue_size=queue_size, max_clients=max_clients)
    except BaseException:
        state.close()
        raise
