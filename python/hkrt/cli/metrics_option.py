"""``--metrics HOST:PORT`` of ``hkrt agent``, ``hkrt run`` and ``hkrt spot-server``: ``/metrics`` and ``/health``
of the command's agent, strategy or server (:func:`hkrt.ops.serve_metrics`, docs/metrics.md).

hkrt.ops (and prometheus_client) load only when the option is given: ``hkrt --help`` stays lean.
"""

from __future__ import annotations

from typing import Any

import click

metrics_option = click.option(
    "--metrics",
    default=None,
    metavar="HOST:PORT",
    help="Serve Prometheus /metrics and /health here (e.g. 127.0.0.1:9300; beyond loopback only with "
    "$HKRT_METRICS_TOKEN set).",
)


def start_metrics(address: str | None, **sources: Any) -> Any:
    """Start the endpoint for ``sources`` (``agent=``, ``strategy=``, ``server=``) when ``address`` is given;
    it stops when the command ends.  A refused address is one ``Error:`` line (exit status 2)."""
    if address is None:
        return None
    try:
        from hkrt.ops.access import AccessError
        from hkrt.ops.serve import serve_metrics
    except ImportError as err:
        raise click.ClickException(f"--metrics needs prometheus_client ({err}): pip install 'hkrt[ops]'") from err
    try:
        server = serve_metrics(address, **sources)
    except AccessError as err:
        raise click.BadParameter(str(err), param_hint="--metrics") from err
    except OSError as err:  # the port is taken, the host is not this machine's
        raise click.ClickException(f"--metrics {address}: cannot listen: {err.strerror or err}") from err
    click.get_current_context().call_on_close(server.stop)
    click.echo(f"metrics: {server.url}/metrics and {server.url}/health")
    return server
