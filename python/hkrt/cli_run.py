"""``hkrt run STRATEGY.py``: run a strategy script live, on a simulated day, or on a recorded one."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import click
import pandas as pd

from hkrt.strategy.broker_config import BROKERS, describe, load_config, make_broker, settings

log = logging.getLogger("hkrt.strategy")


@click.command("run")
@click.argument("script", type=click.Path(dir_okay=False))
@click.option(
    "--source",
    type=click.Choice(["feed", "sim", "replay"]),
    default="feed",
    show_default=True,
    help="feed: a running spot server (live); sim: a simulated day; replay: a recorded journal.",
)
@click.option(
    "--broker",
    "brokers",
    multiple=True,
    type=click.Choice(BROKERS),
    help="Where orders go (repeatable; the first is primary).  Default: the script's brokers, else test.",
)
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False), help="Broker settings (TOML).")
@click.option("--cash", default=None, type=float, help="Starting cash of the book and the test broker (yuan).")
@click.option("--address", default=None, help="feed: the spot server's address (default: this user's ipc socket).")
@click.option("--tcp", default=None, help="feed: dial TCP instead, a port or host:port.")
@click.option(
    "--feed-is-sim",
    is_flag=True,
    help="feed: the spot server plays a simulated or recorded day; follow only its clock, no live order guard.",
)
@click.option("--until", default=None, help="Stop when the market clock reaches this time of day (HH:MM).")
@click.option("--date", "day", default=None, type=click.DateTime(formats=["%Y-%m-%d"]), help="sim: the trading day.")
@click.option("--symbols", default=200, show_default=True, help="sim: symbols in the simulated market.")
@click.option("--seed", default=7, show_default=True, help="sim: random seed.")
@click.option("--speed", default=None, type=float, help="sim: market s per wall s (2000); replay: × recorded (0).")
@click.option("--replay", "replay_file", default=None, type=click.Path(dir_okay=False), help="replay: the journal.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Also write orders.csv, trades.csv here.")
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="Write logs to this file.")
def run(
    script: str,
    source: str,
    brokers: tuple[str, ...],
    config_file: str | None,
    cash: float | None,
    address: str | None,
    tcp: str | None,
    feed_is_sim: bool,
    until: str | None,
    day: dt.datetime | None,
    symbols: int,
    seed: int,
    speed: float | None,
    replay_file: str | None,
    out: str | None,
    log_file: str | None,
) -> None:
    """Run the strategy defined in SCRIPT (a Python file with one module-level hkrt.Strategy).

    Prints its orders, trades and P&L at the end.  With --source feed it runs live until
    Ctrl-C, SIGTERM or --until; brokers then refuse any order dated before the start.
    """
    from hkrt.logs import configure_logging
    from hkrt.strategy import load_strategy, run_replay, run_sim

    configure_logging(file=log_file)
    if source == "replay" and not replay_file:
        raise click.BadParameter("--source replay needs --replay FILE", param_hint="--replay")
    try:
        strategy = load_strategy(script)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    start_cash = cash if cash is not None else strategy.book.cash
    strategy.book.cash = strategy.book.initial_cash = start_cash
    if brokers or cash is not None:
        try:
            config = load_config(config_file)
            made = [make_broker(name, config, cash=start_cash) for name in brokers or ("test",)]
        except (ValueError, TypeError, ImportError, OSError) as err:
            raise click.ClickException(str(err)) from err
        strategy.set_brokers(made)
        for name in brokers:
            if name != "test":
                click.echo(f"broker {name}: {describe(settings(name, config))}")
    ktypes, names = ", ".join(k.value for k in strategy.ktypes), ", ".join(b.name for b in strategy.brokers)
    click.echo(f"strategy {Path(script).name}: {len(strategy.codes)} codes, ktypes {ktypes}, brokers {names}")
    try:
        if source == "sim":
            report = run_sim(strategy, day.date() if day else None, symbols=symbols, seed=seed,
                             speed=2000.0 if speed is None else speed)  # fmt: skip
            click.echo(f"simulated day {strategy.now:%Y-%m-%d}: {report.published_cycles} cycles, "
                       f"{report.published_spots:,} spots, {report.gaps} gaps, {report.seconds:.1f} s")  # fmt: skip
        elif source == "replay":
            report = run_replay(strategy, replay_file or "", speed=0.0 if speed is None else speed)
            click.echo(f"replayed {report.published_cycles} cycles, {report.gaps} gaps, {report.seconds:.1f} s")
        else:
            tcp_value: int | str | None = int(tcp) if tcp and tcp.isdigit() else tcp
            what = "a simulated or recorded feed" if feed_is_sim else "live"
            click.echo(f"{what}: subscribing to the spot feed; Ctrl-C or SIGTERM stops")
            strategy.run(address, tcp=tcp_value, live=not feed_is_sim, until=until)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    print_report(strategy)
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        strategy.orders.to_csv(folder / "orders.csv", index=False)
        strategy.trades.to_csv(folder / "trades.csv", index=False)
        click.echo(f"wrote {folder / 'orders.csv'} and {folder / 'trades.csv'}")


def print_report(strategy: Any) -> None:
    """Orders, trades and P&L of a finished run, as text tables."""
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_rows", 200):
        orders = strategy.orders
        click.echo(f"\norders ({len(orders)}):")
        if len(orders):
            shown = orders.drop(columns=["remark"]).fillna("")
            click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
        trades = strategy.trades
        click.echo(f"\ntrades ({len(trades)}):")
        if len(trades):
            click.echo(trades.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    s = strategy.summary()
    click.echo(
        f"\nP&L: {s['pnl']:+,.2f} yuan  (initial cash {s['initial_cash']:,.2f}, cash {s['cash']:,.2f}, "
        f"positions {s['market_value']:,.2f} at the latest prices, value {s['portfolio_value']:,.2f})"
    )
