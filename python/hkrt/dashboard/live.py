"""A live chart in a notebook: bars arrive by WebSocket from a background server while the kernel runs other
cells (docs/dashboard.md, "In a notebook").

:func:`live_chart` starts a dashboard server (:class:`~hkrt.dashboard.app.DashboardServer`, on a free loopback
port by default) in a background thread and returns a :class:`LiveChart`; as a cell's last line it shows the
chart-only page ``static/live.html`` in an iframe: the dashboard's chart code (``candles.js``) fed by the
dashboard's WebSocket protocol, so zoom, pan and hover work while bars arrive.  Nothing runs on the kernel's
main thread: the next cell runs at once.  ``.stop()`` ends it; so does the kernel's exit (``atexit``).

The source is a :class:`~hkrt.strategy.Strategy` (its :class:`~hkrt.dashboard.state.DashboardState`: closed and
forming bars, trades marked, its live indicators) or a :class:`~hkrt.agent.spot_agent.SpotAgent`
(:class:`AgentSeries`: the bars of the series, from the ones the agent holds already).  Bounded: bars per
series ``max_bars``, messages queued per page ``queue_size`` (then it resyncs), pages ``max_clients``.
"""

from __future__ import annotations

import atexit
import collections
import html
import logging
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from hkrt.bus import BarClosed, CycleEnded, MarketFilter
from hkrt.core.ktype import KType
from hkrt.core.logs import log_limited
from hkrt.dashboard.access import dashboard_access
from hkrt.dashboard.app import DashboardServer, serve_dashboard
from hkrt.dashboard.notebook import chart_data
from hkrt.dashboard.state import DashboardState, NumberedChanges, bar_row

if TYPE_CHECKING:
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.bus import Subscription

log = logging.getLogger("hkrt.dashboard")

Message = dict[str, Any]
Key = tuple[str, str]


class AgentSeries(NumberedChanges):
    """The bars of a few series (symbol, period) of a :class:`SpotAgent`, in the dashboard's protocol: a
    numbered snapshot (the bars the agent held when it began, then each closed bar) and deltas ``bar`` and
    ``forming`` (the bar still forming, read from the agent at most every ``sample_seconds`` of wall time, on
    ``CycleEnded``).  Handlers run on the agent's callback thread; at most ``max_bars`` bars per series."""

    def __init__(self, agent: SpotAgent, series: Iterable[Key], *, max_bars: int = 1000,
                 sample_seconds: float = 0.5) -> None:  # fmt: skip
        self.agent = agent
        self.keys = [(symbol, KType.parse(ktype).value) for symbol, ktype in series]
        self.sample_seconds = sample_seconds
        self.listener: Callable[[Message], None] | None = None
        self.seq = 0
        self.stats = {"events": 0, "samples": 0, "sample_errors": 0}
        self._lock = threading.Lock()
        self._bars: dict[Key, collections.deque[dict[str, Any]]] = {
            key: collections.deque(maxlen=max_bars) for key in self.keys
        }
        self._forming: dict[Key, dict[str, Any]] = {}
        self._last_sample = 0.0
        chosen = MarketFilter(symbols=[s for s, _ in self.keys], ktypes=[k for _, k in self.keys])
        self._subs: list[Subscription] = [
            agent.bus.subscribe(BarClosed, self._on_bar, filter=chosen, name="live_chart.bar"),
            agent.bus.subscribe(CycleEnded, self._on_cycle, name="live_chart.cycle"),
        ]
        for key in self.keys:  # subscribed first: a bar closing meanwhile is in both and kept once
            self._seed(key)

    def _seed(self, key: Key) -> None:
        """The bars the agent holds now: the closed ones, and its last as the forming one."""
        rows, _ = chart_data(self.agent.kdata(*key))
        with self._lock:
            series = self._bars[key]
            first = series[0]["time"] if series else None
            older = [r for r in rows[:-1] if first is None or r["time"] < first]
            merged = older + list(series)
            series.clear()
            series.extend(merged)  # the newest max_bars stay
            if rows and (not series or rows[-1]["time"] > series[-1]["time"]):
                self._forming[key] = rows[-1]

    def _on_bar(self, event: BarClosed) -> None:
        key = (event.symbol, event.ktype.value)
        series = self._bars.get(key)
        if series is None:
            return
        bar = bar_row(event.bar)
        with self._lock:
            if series and series[-1]["time"] == bar["time"]:
                series[-1] = bar  # an amended bar replaces the one it corrects
            else:
                series.append(bar)
            forming = self._forming.get(key)
            if forming is not None and forming["time"] <= bar["time"]:
                del self._forming[key]
            self._emit("bar", {"symbol": key[0], "ktype": key[1], "bar": bar})

    def _on_cycle(self, event: CycleEnded) -> None:
        if time.monotonic() - self._last_sample < self.sample_seconds:
            return
        self._last_sample = time.monotonic()
        try:
            newest = {key: self._newest(key) for key in self.keys}
        except Exception:  # a read must never break the agent's callbacks
            self.stats["sample_errors"] += 1
            log_limited(log, logging.WARNING, "live_chart.sample", "live chart: reading the agent's bars failed",
                        exc_info=True)  # fmt: skip
            return
        self.stats["samples"] += 1
        with self._lock:
            for key, bar in newest.items():
                closed = self._bars[key]
                if bar is None or (closed and closed[-1]["time"] >= bar["time"]) or self._forming.get(key) == bar:
                    continue
                self._forming[key] = bar
                self._emit("forming", {"symbol": key[0], "ktype": key[1], "bar": bar})

    def _newest(self, key: Key) -> dict[str, Any] | None:
        view = self.agent.kdata_view(*key)
        if not len(view):
            return None
        r = view[-1]
        seconds = int(r["datetime"].astype("datetime64[s]").astype("int64"))
        return {"time": seconds, "open": float(r["open"]), "high": float(r["high"]), "low": float(r["low"]),
                "close": float(r["close"]), "volume": float(r["volume"])}  # fmt: skip

    def watch(self, old: Key | None, new: Key | None) -> Key | None:
        """A page shows ``new``: every series of this chart has its forming bar read already."""
        return new if new is None or new in self._bars else old

    def snapshot(self) -> Message:
        """The bars and the sequence number they were taken at, in the shape of the dashboard's snapshot (the
        parts an agent has not, such as orders, empty: the full dashboard page shows it too)."""
        with self._lock:
            return {
                "type": "snapshot",
                "seq": self.seq,
                "data": {
                    "strategy": "",
                    "symbols": list(dict.fromkeys(s for s, _ in self.keys)),
                    "ktypes": list(dict.fromkeys(k for _, k in self.keys)),
                    "bars": [{"symbol": k[0], "ktype": k[1], "bars": list(v)} for k, v in self._bars.items()],
                    "forming": [{"symbol": k[0], "ktype": k[1], "bar": b} for k, b in self._forming.items()],
                    "indicators": {},
                    "orders": [],
                    "trades": [],
                    "equity": [],
                    "positions": [],
                    "account": {},
                    "risk": {},
                    "health": {},
                    "feed": {},
                },
            }

    def close(self) -> None:
        """Stop following the agent."""
        for sub in self._subs:
            self.agent.bus.unsubscribe(sub)
        self._subs = []


class LiveChart:
    """A live chart a notebook shows (``_repr_html_``: the page in an iframe); :attr:`url` opens it in a
    browser tab; :attr:`stats` are its server's counters; :meth:`stop` (or ``with``) ends it."""

    def __init__(self, server: DashboardServer, symbol: str, ktype: str, height: int) -> None:
        self.server = server
        self.symbol = symbol
        self.ktype = ktype
        self.height = height
        self._stopped = False
        # the kernel's exit stops the server (a weak reference: a chart dropped is not kept alive for it)
        stop = weakref.WeakMethod(self.stop)
        self._at_exit = lambda: (m := stop()) is not None and m()
        atexit.register(self._at_exit)

    @property
    def url(self) -> str:
        """The chart's page (add ``#token=...`` beyond loopback)."""
        query = urllib.parse.urlencode({"symbol": self.symbol, "ktype": self.ktype})
        return f"{self.server.url}/static/live.html?{query}"

    @property
    def stats(self) -> dict[str, int]:
        return self.server.stats

    @property
    def running(self) -> bool:
        return not self._stopped

    def __repr__(self) -> str:
        return f"<LiveChart {self.symbol} {self.ktype} {self.url}{'' if self.running else ' (stopped)'}>"

    def _repr_html_(self) -> str:
        if self._stopped:
            return f"<div>live chart of {html.escape(self.symbol)} {html.escape(self.ktype)}: stopped</div>"
        url = html.escape(self.url, quote=True)
        return (f'<iframe src="{url}" style="width:100%;height:{self.height}px;border:0"></iframe>'
                f'<div><a href="{url}" target="_blank">{url}</a></div>')  # fmt: skip

    def stop(self) -> None:
        """Stop the server (the page says "disconnected" and keeps what it drew) and stop following the source."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self._at_exit)
        self.server.stop()

    def __enter__(self) -> LiveChart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def live_chart(
    source: Any,
    symbol: str | None = None,
    ktype: str | KType | None = None,
    *,
    address: str = "127.0.0.1:0",
    token: str | None = None,
    height: int = 460,
    max_bars: int = 1000,
    queue_size: int = 1000,
    max_clients: int = 4,
) -> LiveChart:
    """A chart of ``symbol``'s ``ktype`` bars that updates live while ``source`` runs, without blocking the
    kernel: ``source`` is a Strategy (its first code and period unless told; its trades and live indicators
    drawn) or a SpotAgent (``symbol`` and ``ktype`` required).  Start it before the run to see every bar of a
    strategy; an agent's chart starts with the bars the agent holds.  ``address``/``token`` as
    :func:`~hkrt.dashboard.serve_dashboard` (loopback and a free port by default: the browser must run on the
    kernel's machine).  ValueError (one line) for a symbol or period the source does not follow."""
    from hkrt.strategy.strategy import Strategy

    if isinstance(source, Strategy):
        symbol = symbol or source.codes[0]
        period = KType.parse(ktype or source.ktypes[0]).value
        if symbol not in source.codes or period not in {k.value for k in source.ktypes}:
            raise ValueError(f"the strategy {source.name!r} does not follow {symbol} {period} "
                             f"(codes {list(source.codes)}, periods {[k.value for k in source.ktypes]})")  # fmt: skip
        server = serve_dashboard(source, address, token=token, ktypes=[period], queue_size=queue_size,
                                 max_clients=max_clients, max_bars=max_bars)  # fmt: skip
        return LiveChart(server, symbol, period, height)
    if not hasattr(source, "kdata_view") or symbol is None or ktype is None:
        raise ValueError("live_chart(source, symbol, ktype): source is a Strategy or a SpotAgent, and an agent's "
                         "chart needs the symbol and the period")  # fmt: skip
    period = KType.parse(ktype).value
    access = dashboard_access(address, token)
    state = AgentSeries(source, [(symbol, period)], max_bars=max_bars)
    try:
        # the dashboard's server over the agent's series: the routes read only what AgentSeries provides
        server = DashboardServer(cast(DashboardState, state), access, queue_size=queue_size, max_clients=max_clients)
    except BaseException:
        state.close()
        raise
    # an agent has nothing to halt: its chart has no halt route
    server.app.router.routes[:] = [r for r in server.app.router.routes if getattr(r, "path", "") != "/api/halt"]
    return LiveChart(server, symbol, period, height)
