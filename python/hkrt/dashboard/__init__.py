"""hkrt.dashboard: a live web dashboard of a running strategy (docs/dashboard.md).

Needs the ``dashboard`` extra (FastAPI, uvicorn): ``pip install 'hkrt[dashboard]'``.  ``hkrt run --dashboard
127.0.0.1:8050`` and ``hkrt demo --dashboard ADDR`` start one; in code::

    from hkrt.dashboard import serve_dashboard
    with serve_dashboard(strategy, "127.0.0.1:8050") as board:
        print(board.url, board.token)
        strategy.run(...)

A node's strategies, each in its own process, share one page: ``hkrt node --dashboard 127.0.0.1:8050``
(:mod:`hkrt.dashboard.relay` in each strategy, :mod:`hkrt.dashboard.node_board` serving them all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hkrt.dashboard.app import DashboardServer, serve_dashboard

__all__ = ["DashboardServer", "serve_dashboard"]


def __getattr__(name: str) -> Any:  # the web stack loads on first use
    if name in __all__:
        from hkrt.dashboard import app

        return getattr(app, name)
    raise AttributeError(f"module 'hkrt.dashboard' has no attribute {name!r}")
