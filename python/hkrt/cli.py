"""The ``hkrt`` command line."""

from __future__ import annotations

import datetime as dt
import time

import click
import pandas as pd

from hkrt.agent import SpotAgent
from hkrt.calendar import TradingCalendar
from hkrt.hooks import Bar
from hkrt.ktype import KType
from hkrt.synthetic import synthetic_day


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hkrt")
def main() -> None:
    """hkrt: real-time market data and K-lines for China A-shares."""


_date_option = click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Trading day to simulate (default: the latest trading day up to today).",
)


def _last_trading_day(calendar: TradingCalendar) -> dt.date:
    day = dt.date.today()
    while not calendar.is_trading_day(day):
        day -= dt.timedelta(days=1)
    return day


@main.command()
@click.option("--symbols", "n_symbols", default=50, show_default=True, help="Number of simulated symbols.")
@_date_option
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


@main.command("spot-server")
@click.option(
    "--source",
    type=click.Choice(["sim"]),
    default="sim",
    show_default=True,
    help="Where spots come from: 'sim' is a deterministic simulated market (offline).",
)
@click.option("--symbols", "n_symbols", default=500, show_default=True, help="Simulated symbols.")
@_date_option
@click.option("--interval", default=3.0, show_default=True, help="Market seconds between cycles.")
@click.option("--speed", default=1.0, show_default=True, help="Replay speed: 60 runs a market minute per second.")
@click.option("--address", default=None, help="Listen address (default: this user's ipc socket).")
@click.option("--tcp", default=None, help="Also listen on TCP: a port or host:port (loopback unless a host is named).")
@click.option("--max-part-spots", default=6000, show_default=True, help="Spots per message; larger cycles go in parts.")
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="Write logs to this file.")
def spot_server(
    source: str,
    n_symbols: int,
    day: dt.datetime | None,
    interval: float,
    speed: float,
    address: str | None,
    tcp: str | None,
    max_part_spots: int,
    log_file: str | None,
) -> None:
    """Publish spot cycles for agents to subscribe to (stop with Ctrl-C).

    Each cycle is one whole-market snapshot, framed as wire messages with a per-publisher
    sequence number, cycle id and part index, so agents detect any loss.
    """
    from hkrt.logs import configure_logging
    from hkrt.transport import SpotPublisher

    configure_logging(file=log_file)
    calendar = TradingCalendar.china()
    trading_day = day.date() if day else _last_trading_day(calendar)
    if speed <= 0:
        raise click.BadParameter("must be positive", param_hint="--speed")
    tcp_value: int | str | None = int(tcp) if tcp and tcp.isdigit() else tcp
    try:
        publisher = SpotPublisher(address, tcp=tcp_value, max_part_spots=max_part_spots)
    except OSError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"spot-server: source {source}, {n_symbols} symbols, {trading_day}, on {', '.join(publisher.addresses)}")
    pause = interval / speed
    try:
        with publisher:
            next_at = time.monotonic()
            for push in synthetic_day(n_symbols, trading_day, interval=interval):
                report = publisher.publish(push.columns())
                stamp = pd.Timestamp(push.datetime[0]).strftime("%H:%M:%S")
                click.echo(
                    f"\rcycle {report.cycle_id}  market {stamp}  spots {report.spots}  parts {report.parts}"
                    f"  {report.bytes / 1e6:.2f} MB  {report.seconds * 1000:.1f} ms ",
                    nl=False,
                )
                next_at += pause  # fixed rate: a slow cycle does not shift the schedule
                time.sleep(max(0.0, next_at - time.monotonic()))
            click.echo("\nday complete")
    except KeyboardInterrupt:
        click.echo("\nstopped")


@main.command()
@click.option("--address", default=None, help="Publisher address (default: this user's ipc socket).")
@click.option("--tcp", default=None, help="Dial TCP instead: a port or host:port.")
@click.option("--symbol", default="SH600000", show_default=True, help="Symbol whose completed bars are printed.")
@click.option("--ktype", default="MIN", show_default=True, help="Period whose completed bars are printed.")
@click.option("--seconds", default=0.0, help="Stop after this many seconds (default: run until Ctrl-C).")
def agent(address: str | None, tcp: str | None, symbol: str, ktype: str, seconds: float) -> None:
    """Subscribe to a spot server, aggregate all 13 periods, print completed bars and status."""
    from hkrt.agent import SpotAgent

    try:
        kt = KType.parse(ktype)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--ktype") from err
    spot_agent = SpotAgent()

    @spot_agent.on_bar(ktypes=[kt], symbols=[symbol])
    def show(sym: str, k: KType, bar: Bar) -> None:
        click.echo(
            f"\n{bar.datetime:%Y-%m-%d %H:%M} {sym} {k.value}  O {bar.open:.2f}  H {bar.high:.2f}  L {bar.low:.2f}"
            f"  C {bar.close:.2f}  V {bar.volume:,.0f} shares  A {bar.amount:,.0f} yuan"
        )

    tcp_value: int | str | None = int(tcp) if tcp and tcp.isdigit() else tcp
    spot_agent.start(address, tcp=tcp_value)
    click.echo(f"agent: listening on {spot_agent.address}; Ctrl-C stops")
    started = time.monotonic()
    try:
        while not seconds or time.monotonic() - started < seconds:
            time.sleep(1.0)
            stats = spot_agent.stats()
            t = stats["transport"]
            p50 = t["latency_ms"]["p50"]
            click.echo(
                f"\rmessages {t['messages']}  cycles {t['cycles']}  spots {stats['accepted']:,}"
                f"  rejected {stats['rejected_total'] + sum(t['rejected'].values())}  lost {t['missing_messages']}"
                f"  latency p50 {'-' if p50 is None else f'{p50:.1f} ms'} ",
                nl=False,
            )
    except KeyboardInterrupt:
        pass
    finally:
        spot_agent.stop()
        click.echo("\nstopped")
