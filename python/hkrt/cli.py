"""The ``hkrt`` command line."""

from __future__ import annotations

import datetime as dt
import time

import click
import pandas as pd

from hkrt.agent import SpotAgent
from hkrt.calendar import TradingCalendar
from hkrt.ktype import KType
from hkrt.synthetic import synthetic_day


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hkrt")
def main() -> None:
    """hkrt: real-time market data and K-lines for China A-shares."""


def _last_trading_day(calendar: TradingCalendar) -> dt.date:
    day = dt.date.today()
    while not calendar.is_trading_day(day):
        day -= dt.timedelta(days=1)
    return day


@main.command()
@click.option("--symbols", "n_symbols", default=50, show_default=True, help="Number of simulated symbols.")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Trading day to simulate (default: the latest trading day up to today).",
)
@click.option("--interval", default=3.0, show_default=True, help="Seconds between whole-market pushes.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the simulated market.")
@click.option("--show", "show_symbol", default="SH600000", show_default=True, help="Symbol whose bars are printed.")
def demo(n_symbols: int, day: dt.datetime | None, interval: float, seed: int, show_symbol: str) -> None:
    """Aggregate one simulated market day into all 13 periods and print the bars.

    Runs offline: a deterministic synthetic market (random-walk prices, cumulative
    volume/amount, the 09:25 opening auction) is pushed through the C++ engine exactly
    as live spots would be.
    """
    calendar = TradingCalendar.china()
    trading_day = day.date() if day else _last_trading_day(calendar)
    if not calendar.is_trading_day(trading_day):
        raise click.BadParameter(f"{trading_day} is not a trading day", param_hint="--date")
    agent = SpotAgent(calendar=calendar)
    click.echo(f"hkrt demo: {n_symbols} simulated symbols on {trading_day}, a whole-market push every {interval:g} s")
    started = time.perf_counter()
    pushes = 0
    for push in synthetic_day(n_symbols, trading_day, interval=interval, seed=seed):
        agent.ingest_columns(**push.columns())
        pushes += 1
    agent.advance_to(dt.datetime.combine(trading_day, dt.time(15, 1)))
    elapsed = time.perf_counter() - started
    stats = agent.stats()
    rate = stats["received"] / elapsed if elapsed > 0 else float("inf")
    click.echo(
        f"{pushes} pushes, {stats['received']:,} spots in {elapsed:.2f} s"
        f" ({rate / 1e6:.1f} M spots/s incl. simulation); accepted {stats['accepted']:,},"
        f" rejected {stats['rejected_total']:,}, duplicates {stats['duplicates']:,}"
    )
    symbols = agent.symbols
    counts = {k.value: sum(len(agent.kdata(s, k)) for s in symbols) for k in agent.ktypes}
    click.echo("bars per period: " + ", ".join(f"{k} {n:,}" for k, n in counts.items()))
    click.echo(f"engine memory: {agent._engine.memory_bytes() / 2**20:.1f} MiB")
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        for ktype in (KType.MIN60, KType.HOUR2, KType.DAY):
            click.echo(f"\n{show_symbol} {ktype.value} (volume in shares, amount in yuan):")
            click.echo(agent.kdata(show_symbol, ktype).to_string())
        click.echo(f"\n{show_symbol} MIN5, last 6 bars:")
        click.echo(agent.kdata(show_symbol, KType.MIN5).tail(6).to_string())
