"""``--dashboard HOST:PORT`` of ``hkrt run`` and ``hkrt demo``: the live web dashboard of the command's strategy
(:func:`hkrt.dashboard.serve_dashboard`, docs/dashboard.md).

hkrt.dashboard (and FastAPI, uvicorn) load only when the option is given: ``hkrt --help`` stays lean.
"""

from __future__ import annotations

import sys
from typing import Any

import click

dashboard_option = click.option(
    "--dashboard",
    default=None,
    metavar="HOST:PORT",
    help="Serve the live web dashboard here (e.g. 127.0.0.1:8050; beyond loopback only with "
    "$HKRT_DASHBOARD_TOKEN set).",
)


def start_dashboard(address: str | None, strategy: Any) -> Any:
    """Start the dashboard of ``strategy`` when ``address`` is given; it stops when the command ends.  Prints
    its URL once (with a token made for this run in the URL's fragment, never logged).  A refused address is
    one ``Error:`` line (exit status 2)."""
    if address is None:
        return None
    try:
        from hkrt.dashboard import serve_dashboard
        from hkrt.ops.access import AccessError
    except ImportError as err:
        raise click.ClickException(
            f"--dashboard needs FastAPI and uvicorn ({err}): pip install 'hkrt[dashboard]'"
        ) from err
    try:
        board = serve_dashboard(strategy, address)
    except AccessError as err:
        raise click.BadParameter(str(err), param_hint="--dashboard") from err
    except OSError as err:  # the port is taken, the host is not this machine's
        raise click.ClickException(f"--dashboard {address}: cannot listen: {err.strerror or err}") from err
    click.get_current_context().call_on_close(board.stop)
    secret = f"/#token={board.token}" if board.access.generated else "  (halt button: $HKRT_DASHBOARD_TOKEN)"
    click.echo(f"dashboard: {board.url}{secret}")
    return board


def linger(board: Any) -> None:
    """After the run, keep the dashboard up for a look until Enter (on a terminal only).  Ctrl-C or SIGTERM end
    it as they end any command: one line, exit status 130 or 143 (hkrt.cli.signals)."""
    if board is None or not sys.stdin.isatty():
        return
    click.echo(f"the dashboard stays at {board.url}: press Enter (or Ctrl-C) to quit")
    sys.stdin.readline()


relay_option = click.option(
    "--dashboard-relay",
    "dashboard_relay",
    default=None,
    metavar="ADDRESS",
    help="Serve this strategy's dashboard stream to a node's dashboard on this nng address (ipc://..., given by "
    "hkrt node).",
)


def start_relay(address: str | None, strategy: Any) -> Any:
    """Serve ``strategy``'s dashboard stream at ``address`` (:class:`hkrt.dashboard.relay.RelayServer`) when given;
    it stops when the command ends.  An address nng cannot listen on is one ``Error:`` line."""
    if address is None:
        return None
    import pynng

    from hkrt.dashboard.relay import RelayServer

    try:
        relay = RelayServer(strategy, address).start()
    except pynng.NNGException as err:
        raise click.ClickException(f"--dashboard-relay {address}: cannot listen: {err}") from err
    click.get_current_context().call_on_close(relay.stop)
    return relay
