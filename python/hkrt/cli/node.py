"""``hkrt node``: the spot server, the agent (journal, store), the traders and the strategies as supervised child
processes, with one ``/metrics`` and ``/health`` for the whole node (``--metrics``), alerts on restarts
(``--alerts``), and the feed through Redis and the bars into PostgreSQL (``--redis``, ``--group``,
``--store postgresql://...``).

Flags, or ``--config node.toml`` with the same keys (hkrt.node.config; a flag given here wins).  Exit status:
0 when a simulated or replayed feed is done (or the node was asked to stop), 130 on Ctrl-C, 143 on SIGTERM,
1 when the supervisor gave up on the spot server or the agent, 2 for a bad setting (one line naming it).
"""

from __future__ import annotations

import datetime as dt
import signal
from typing import TYPE_CHECKING, Any

import click

from hkrt.adapters.registry import data_venues
from hkrt.node.config import DEFAULT_METRICS

if TYPE_CHECKING:
    from collections.abc import Callable

    from hkrt.node.config import NodeConfig
    from hkrt.node.supervisor import Supervisor


@click.command("node")
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False), help="node.toml (same keys).")
@click.option("--source", type=click.Choice(data_venues()), default=None, help="The feed (as spot-server).")
@click.option("--address", default=None, help="Where the children meet (default: this user's ipc socket).")
@click.option("--symbols", type=int, default=None, help="sim: symbols in the simulated market.")
@click.option("--date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="sim: the (first) day.")
@click.option("--days", type=int, default=None, help="sim: consecutive trading days (each a spot-server run).")
@click.option("--speed", type=float, default=None, help="sim / replay: times real time.")
@click.option("--interval", type=float, default=None, help="Seconds between cycles (sim: market seconds).")
@click.option("--replay", default=None, type=click.Path(dir_okay=False), help="replay: the journal.")
@click.option("--codes", default=None, help="Pull sources: symbols to collect (as hkrt spot-server --codes).")
@click.option("--base-url", default=None, help="qq / sina: another host.")
@click.option("--qmt-mode", type=click.Choice(["pull", "push"]), default=None, help="qmt: push or pull.")
@click.option("--record", default=None, type=click.Path(dir_okay=False), help="The spot server's journal of all.")
@click.option("--store", default=None, help="Agent's store: a directory (RUN_DIR/store) or a postgresql://... URL.")
@click.option("--journal", default=None, type=click.Path(file_okay=False), help="Agent's journal (RUN_DIR/journal).")
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A strategy script (repeatable; per-strategy brokers, state dir: [[strategy]] in node.toml).",
)
@click.option("--broker", "brokers", multiple=True, help="Brokers of the strategies (repeatable; default test).")
@click.option("--broker-config", default=None, type=click.Path(dir_okay=False), help="The brokers' settings (TOML).")
@click.option("--cash", type=float, default=None, help="Starting cash of each strategy (yuan).")
@click.option(
    "--trader/--no-trader", default=None,
    help="Run each broker but test in an hkrt trader child (default), or in the strategies' own processes.",
)  # fmt: skip
@click.option(
    "--run-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Logs (a rotated file per child), node.json, the strategies' state [default: ~/.hkrt/node]",
)
@click.option("--max-restarts", type=int, default=None, help="Restarts of a child within --restart-window (5).")
@click.option("--restart-window", type=float, default=None, help="Seconds the restart count covers (300).")
@click.option("--heartbeat-timeout", type=float, default=None, help="A child silent this long is hung (15 s).")
@click.option("--startup-timeout", type=float, default=None, help="A child without a first heartbeat is hung (60 s).")
@click.option("--stop-timeout", type=float, default=None, help="Seconds a child gets to stop, then killed (15).")
@click.option(
    "--metrics",
    default=None,
    is_flag=False,
    flag_value=DEFAULT_METRICS,
    metavar="[HOST:PORT]",
    help=f"Serve the node's one /metrics and /health (every child's metrics, labelled process=...) here "
    f"[bare: {DEFAULT_METRICS}; beyond loopback only with $HKRT_METRICS_TOKEN set].",
)
@click.option(
    "--alerts",
    default=None,
    type=click.Path(dir_okay=False),
    help="Alerts TOML ([alerts], [notify.<name>]): the node alerts on restarts, hangs and give-ups; each strategy "
    "gets it as hkrt run --alerts (halts, refusals, feed silence and gaps).",
)
@click.option("--redis", default=None, help="The spot server appends the feed to this Redis; the agent reads it there.")
@click.option("--group", default=None, help="--redis: the agent's consumer group [default: hkrt-node].")
@click.option("--dashboard", default=None, metavar="HOST:PORT",
              help="One web dashboard of all the strategies (such as 127.0.0.1:8050; docs/dashboard.md).")  # fmt: skip
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="The node's own log.")
def node(config_file: str | None, log_file: str | None, **flags: Any) -> None:
    """Run the spot server, the agent (journal, store), the traders and the strategies as supervised processes.

    Each broker but test runs in an hkrt trader child (a paper account: one per strategy), so a hung broker
    call never blocks a strategy.  A child that crashes is restarted with backoff; one whose heartbeat goes
    stale (hung) is killed and restarted; a strategy's failures never stop the feed or the agent.  Ctrl-C or
    SIGTERM stops the strategies, then the traders, the agent, the spot server.  A simulated or replayed
    feed ends the node when done.
    --metrics serves one endpoint for the whole node, --alerts sends restarts, hangs and give-ups.
    """
    from hkrt.core.logs import configure_logging
    from hkrt.node.config import NodeConfigError, node_config, read_toml
    from hkrt.node.dashboard_plan import dashboard_line
    from hkrt.node.ops_plan import ops_specs
    from hkrt.node.plan import feed_address, node_specs, restart_a_waiting_feed
    from hkrt.node.scale_out import describe, prepare_group
    from hkrt.node.supervisor import Supervisor
    from hkrt.node.traders import renew_paper_accounts_with_their_strategy

    ctx = click.get_current_context()
    given = {k: v for k, v in flags.items() if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    renamed = {"strategies": "strategy", "brokers": "broker"}
    given = {renamed.get(k, k): (list(v) if isinstance(v, tuple) else v) for k, v in given.items()}
    if isinstance(given.get("date"), dt.datetime):
        given["date"] = given["date"].date()
    try:
        file_settings = read_toml(config_file) if config_file else {}
        config = node_config(file_settings, given, file_name=config_file or "node.toml")
        specs, endpoints = ops_specs(config, node_specs(config))
        board_line = dashboard_line(config)
    except (NodeConfigError, ValueError) as err:
        from hkrt.cli.spot_server import _usage_error

        raise _usage_error(str(err)) from None
    configure_logging(file=log_file)
    supervisor = Supervisor(specs, config.run_dir, log_max_bytes=config.log_max_bytes, log_backups=config.log_backups)
    names = ", ".join(s.name for s in specs)
    click.echo(f"node: {names} on {feed_address(config)}; logs in {config.run_dir / 'logs'}; Ctrl-C stops")
    if describe(config):
        click.echo(f"node: {describe(config)}")
    ops = _start_ops(config, supervisor, endpoints)
    prepare_group(config)
    if board_line:
        click.echo(f"node: {board_line}")

    def on_event(kind: str, name: str, info: dict[str, Any]) -> None:
        if kind in ("restarting", "hung", "gave_up"):
            click.echo(f"node: {name} {kind} {info}")

    supervisor.subscribe(on_event)
    restart_a_waiting_feed(supervisor, config)
    renew_paper_accounts_with_their_strategy(supervisor, config)
    previous = {}
    for sig in (getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, n)):
        previous[sig] = signal.signal(sig, lambda signum, frame: supervisor.request_stop(signum))
    try:
        status = supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for stop in reversed(ops):
            stop()
    restarts = {k: v for k, v in supervisor.restarts.items() if v}
    click.echo(f"node: {supervisor.outcome or 'ended'}; restarts {restarts or 0}; status {status}")
    ctx.exit(status)


def _start_ops(config: NodeConfig, supervisor: Supervisor, endpoints: dict[str, str]) -> list[Callable[[], None]]:
    """The node's alert router and metrics endpoint, started before the children; what stops them."""
    stops: list[Callable[[], None]] = []
    if config.alerts is not None:
        from hkrt.node.alerting import route_supervisor_alerts
        from hkrt.notify import router_from_config

        router = router_from_config(config.alerts, source="node")  # checked with the config: it makes
        route_supervisor_alerts(supervisor, router)
        stops.append(router.stop)  # what is queued goes out first (bounded)
        click.echo(f"node: alerts to {', '.join(o.name for o in router.outboxes)} (minimum {router.min_severity})")
    if config.metrics is not None:
        from hkrt.node.metrics import serve_node_metrics

        try:
            timeout = config.heartbeat_timeout
            served = serve_node_metrics(config.metrics, supervisor, endpoints, heartbeat_timeout=timeout)
        except OSError as err:  # the port is taken, the host is not this machine's
            for stop in reversed(stops):
                stop()
            raise click.ClickException(f"--metrics {config.metrics}: cannot listen: {err.strerror or err}") from err
        stops.append(served.stop)
        supervisor.status_extra["metrics"] = {"url": served.url, "children": endpoints}
        click.echo(f"node: metrics on {served.url}/metrics and {served.url}/health")
    return stops
