"""``hkrt trader --broker NAME``: host one broker in a process of its own (docs/trader-process.md).

A strategy reaches it with ``--broker remote`` (``[remote] address = ...`` in ``--config``, or
``HKRT_REMOTE_ADDRESS``): its orders cross over nng, so a hung broker call never blocks its callbacks.
``hkrt node`` starts one of these per broker as a supervised child.
"""

from __future__ import annotations

import logging
import threading

import click

from hkrt.cli.signals import StopSignals
from hkrt.strategy.broker_config import BROKERS

log = logging.getLogger("hkrt.trader")


@click.command("trader")
@click.option(
    "--broker", "broker_name", required=True, type=click.Choice([b for b in BROKERS if b != "remote"]),
    help="The broker this process hosts (its settings: --config or HKRT_<BROKER>_* variables).",
)  # fmt: skip
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False), help="Broker settings (TOML).")
@click.option(
    "--address", default=None,
    help="Where strategies reach it: ipc://PATH (default: trader-<broker>.ipc in this user's runtime directory) "
    "or tcp://127.0.0.1:PORT (needs HKRT_TRADER_KEY or --key-file).",
)  # fmt: skip
@click.option("--key-file", default=None, type=click.Path(dir_okay=False), help="Owner-only file of the hex key.")
@click.option(
    "--journal", default=None, type=click.Path(dir_okay=False),
    help="The client ids it has sent (so a restart never sends one twice); default: "
    "~/.hkrt/state/trader-<name or broker>.journal.",
)  # fmt: skip
@click.option(
    "--guard", type=click.Choice(["now", "none"]), default="now", show_default=True,
    help="now: no order dated before this process started reaches the broker; none: only each strategy's guard "
    "(a simulated or replayed day).",
)  # fmt: skip
@click.option("--cash", default=1_000_000.0, show_default=True, help="Starting cash of the paper broker (yuan).")
@click.option("--name", default=None, help="The broker's name (default: its own).")
@click.option(
    "--heartbeat-file", default=None, type=click.Path(dir_okay=False),
    help="Rewrite this JSON file every second while the request loop turns (hkrt node's heartbeat).",
)  # fmt: skip
@click.option(
    "--account-file", default=None, type=click.Path(dir_okay=False),
    help="paper: keep the account in this file (read at start, rewritten after each change), so a restarted "
    "trader keeps its strategy's cash, shares and open orders.",
)  # fmt: skip
@click.option("--new-account", is_flag=True, help="paper: open the account file afresh with --cash.")
def trader(
    broker_name: str,
    config_file: str | None,
    address: str | None,
    key_file: str | None,
    journal: str | None,
    guard: str,
    cash: float,
    name: str | None,
    heartbeat_file: str | None,
    account_file: str | None,
    new_account: bool,
) -> None:
    """Host one broker; strategies send it orders over nng (--broker remote) and get its reports back."""
    from pathlib import Path

    from hkrt.feed.feed_auth import FeedKeyError
    from hkrt.strategy.broker_config import load_config, make_broker
    from hkrt.trader.heartbeat import serve_with_heartbeat
    from hkrt.trader.paper_account import keep_paper_account, report_inline
    from hkrt.trader.protocol import default_address, load_key
    from hkrt.trader.server import TraderServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        key = load_key(key_file=key_file)
        config = load_config(config_file)
        broker = make_broker(broker_name, config, cash=cash)
        if name:
            broker.name = name
        where = address or default_address(broker_name)
        if journal is None:  # beside the strategies' state (survives a reboot, unlike the runtime dir)
            folder = Path.home() / ".hkrt" / "state"
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            journal = str(folder / f"trader-{name or broker_name}.journal")
        server = TraderServer(broker, where, key=key, journal=journal, guard=None if guard == "none" else "now")
        if account_file is not None:
            keep_paper_account(server, account_file, new=new_account)
        server.start()
        if account_file is not None:
            report_inline(server)
    except (ValueError, OSError, FeedKeyError) as err:
        raise click.ClickException(str(err)) from None
    except Exception as err:  # pynng's errors (address in use, bad URL) in one line
        raise click.ClickException(f"cannot serve on {address or 'the default address'}: {err}") from None
    stop = threading.Event()
    with StopSignals(on_stop=stop.set) as stopped_by:  # Ctrl-C and SIGTERM: stop serving, exit 130 / 143
        click.echo(f"trader {broker.name} ({broker_name}) serving on {where}", err=True)
        try:
            serve_with_heartbeat(server, stop, heartbeat_file)
        finally:
            server.stop()
            if server.after_work is not None:
                server.after_work()  # the account as the last work left it
            log.info("trader stopped", extra={"broker": broker.name, **server.stats})
    stopped_by.exit()
