"""``hkrt dashboard``: one web dashboard of several strategies' relays (what ``hkrt node --dashboard`` runs as a
supervised child; docs/dashboard.md, "A node's dashboard").

Runs until Ctrl-C or SIGTERM (exit status 130 / 143).  A bad setting (a refused address, a relay given twice, a
``--control`` of no relay) is one ``Error:`` line, exit status 2.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise click.BadParameter(f"{value!r}: expected NAME=VALUE", param_hint=flag)
        if name.strip() in out:
            raise click.BadParameter(f"strategy {name.strip()!r} given twice", param_hint=flag)
        out[name.strip()] = rest.strip()
    return out


@click.command("dashboard")
@click.option("--relay", "relays", multiple=True, metavar="NAME=ADDRESS", required=True,
              help="A strategy's relay (hkrt run --dashboard-relay ADDRESS); repeatable.")  # fmt: skip
@click.option("--control", "controls", multiple=True, metavar="NAME=STATE_DIR",
              help="A strategy's state dir: its halt button halts it there (hkrt halt); repeatable.")  # fmt: skip
@click.option("--address", default="127.0.0.1:8050", show_default=True, metavar="HOST:PORT",
              help="Serve here (beyond loopback only with $HKRT_DASHBOARD_TOKEN(_FILE) set).")  # fmt: skip
@click.option("--node-status", default=None, type=click.Path(dir_okay=False), help="The node's node.json (its panel).")
@click.option("--heartbeat-file", default=None, type=click.Path(dir_okay=False),
              help="Rewritten every second while the server answers (the node's heartbeat of this child).")  # fmt: skip
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="Write logs to this file.")
def dashboard(relays: tuple[str, ...], controls: tuple[str, ...], address: str, node_status: str | None,
              heartbeat_file: str | None, log_file: str | None) -> None:  # fmt: skip
    """Serve one web dashboard of the strategies whose relays are given (a node's strategies)."""
    from hkrt.core.logs import configure_logging

    relay_map = _pairs(relays, "--relay")
    control_map = _pairs(controls, "--control")
    stray = sorted(set(control_map) - set(relay_map))
    if stray:
        raise click.BadParameter(f"strategy {stray[0]!r} has no --relay", param_hint="--control")
    configure_logging(file=log_file)
    try:
        from hkrt.dashboard.node_board import serve_node_dashboard
        from hkrt.ops.access import AccessError
    except ImportError as err:
        raise click.ClickException(f"hkrt dashboard needs FastAPI and uvicorn ({err}): "
                                   "pip install 'hkrt[dashboard]'") from err  # fmt: skip
    try:
        board = serve_node_dashboard(
            relay_map, {n: Path(d).expanduser() for n, d in control_map.items()}, address,
            node_status=Path(node_status) if node_status else None,
            heartbeat_file=Path(heartbeat_file) if heartbeat_file else None,
        )  # fmt: skip
    except AccessError as err:
        raise click.BadParameter(str(err), param_hint="--address") from err
    except OSError as err:
        raise click.ClickException(f"--address {address}: cannot listen: {err.strerror or err}") from err
    secret = f"/#token={board.token}" if board.access.generated else "/  (halt button: the dashboard token)"
    click.echo(f"dashboard of {', '.join(relay_map)}: {board.url}{secret}")
    stop = threading.Event()
    got: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        got.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        board.stop()
    click.get_current_context().exit(128 + got[0] if got else 0)
