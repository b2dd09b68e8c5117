"""The ``hkrt`` command line."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hkrt.calendar import CalendarCoverageError, TradingCalendar
from hkrt.ktype import KType

if TYPE_CHECKING:
    from hkrt.hooks import Bar

# Every command imports what it needs (agent, server, fetchers, pandas, pynng, pyarrow) inside its
# body, so `hkrt --help` and a mistyped option cost only click and the C++ core
# (tests/test_lean_import.py holds this).


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
    from hkrt.server import china_now

    day = china_now().date()
    while not calendar.is_trading_day(day):
        day -= dt.timedelta(days=1)
    return day


PULL_SOURCES = ("qq", "sina", "qmt")
END_OF_DAY_LINGER = 1.5  # s a finished sim/replay server stays up after its end-of-day marker (heartbeats: 1 s)


@main.command("spot-server")
@click.option(
    "--source",
    type=click.Choice(["qq", "sina", "qmt", "sim", "replay"]),
    default="sim",
    show_default=True,
    help="qq / sina: public HTTP quotes; qmt: xtquant (Windows); sim: the simulated market (offline); "
    "replay: a recorded journal (--replay FILE).",
)
@click.option("--interval", default=3.0, show_default=True, help="Seconds between cycles (sim: market seconds).")
@click.option("--phase1", default="09:15-11:31", show_default=True, help="Morning collection phase (pull sources).")
@click.option("--phase2", default="12:59-15:06", show_default=True, help="Afternoon collection phase (pull sources).")
@click.option(
    "--codes",
    default=None,
    help="Symbols to collect: a comma list (SH600000,sz000001,600519.SH) or @FILE with one or more per line. "
    "Default: the whole A-share code space, pruned of codes the source answers unknown three cycles running "
    "(re-probed each trading day).",
)
@click.option("--base-url", default=None, help="Send qq/sina requests to another host (a proxy or a test server).")
@click.option(
    "--qmt-mode",
    type=click.Choice(["pull", "push"]),
    default="push",
    show_default=True,
    help="qmt: push (whole-quote subscription, each push a cycle, watchdog) or pull (get_full_tick per interval).",
)
@click.option("--symbols", "n_symbols", default=500, show_default=True, help="sim: number of simulated symbols.")
@_date_option
@click.option("--speed", default=1.0, show_default=True, help="sim / replay: times real time (replay: 0 = at once).")
@click.option(
    "--replay", "replay_file", default=None, type=click.Path(exists=True, dir_okay=False), help="replay: the journal."
)
@click.option(
    "--record", default=None, type=click.Path(dir_okay=False), help="Also write every message to this journal."
)
@click.option("--address", default=None, help="Listen address (default: this user's ipc socket).")
@click.option("--tcp", default=None, help="Also listen on TCP: a port or host:port (loopback unless a host is named).")
@click.option("--max-part-spots", default=6000, show_default=True, help="Spots per message; larger cycles go in parts.")
@click.option(
    "--wait-subscribers", default=0, show_default=True, help="Wait for this many subscribers before publishing."
)
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="Write logs to this file.")
def spot_server(
    source: str,
    interval: float,
    phase1: str,
    phase2: str,
    codes: str | None,
    base_url: str | None,
    qmt_mode: str,
    n_symbols: int,
    day: dt.datetime | None,
    speed: float,
    replay_file: str | None,
    record: str | None,
    address: str | None,
    tcp: str | None,
    max_part_spots: int,
    wait_subscribers: int,
    log_file: str | None,
) -> None:
    """Publish spot cycles for agents to subscribe to (stop with Ctrl-C or SIGTERM).

    Each cycle is one whole-market snapshot, framed as wire messages with a per-publisher
    sequence number, cycle id and part index, so agents detect any loss.  Pull sources run
    at a fixed rate inside --phase1/--phase2 on trading days of the exchange calendar.
    """
    from hkrt.calendar import CoverageWatch
    from hkrt.fetcher.replay import ReplayConfig, ReplaySource
    from hkrt.fetcher.sim import SimConfig, SimMarket
    from hkrt.logs import configure_logging
    from hkrt.server import Phase, PullSchedule, SpotServer, china_now
    from hkrt.transport import SpotPublisher

    configure_logging(file=log_file)
    try:
        calendar = TradingCalendar.china()  # extended by the HKRT_HOLIDAYS_FILE file when set
        if source != "replay":  # sim and the live sources serve a day the calendar must vouch for
            served = day.date() if day else china_now().date()
            try:
                calendar.ensure_covered(served)
            except ValueError as err:
                raise ValueError(f"{'--date' if day else 'today'}: {err}") from err
    except ValueError as err:  # a bad holidays file, or a day past the table: one line, exit code 2
        refused = click.ClickException(str(err))
        refused.exit_code = 2
        raise refused from err
    # warns now, and once a day while serving, when the holiday table is about to run out
    click.get_current_context().call_on_close(CoverageWatch(calendar, clock=lambda: china_now().date()).start().stop)
    if speed < 0 or (speed == 0 and source != "replay"):
        raise click.BadParameter("must be positive (0 only for replay)", param_hint="--speed")
    if source == "replay" and not replay_file:
        raise click.BadParameter("--source replay needs --replay FILE", param_hint="--replay")
    try:
        schedule = PullSchedule([Phase.parse(phase1), Phase.parse(phase2)], calendar)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--phase1/--phase2") from err
    # a bad code fails here, before listening, whatever the source
    code_list = _codes(codes, source) if codes is not None or source in PULL_SOURCES else []
    if codes is not None and source not in PULL_SOURCES:
        raise click.BadParameter(f"applies to the pull sources ({', '.join(PULL_SOURCES)}), not to {source}",
                                 param_hint="--codes")  # fmt: skip
    tcp_value: int | str | None = int(tcp) if tcp and tcp.isdigit() else tcp
    try:
        publisher = SpotPublisher(
            address,
            tcp=tcp_value,
            max_part_spots=max_part_spots,
            record=record,
            simulated_time=source in ("sim", "replay"),  # their spot times run ahead of the wall clock
        )
    except (OSError, ValueError) as err:  # address in use; a TCP listener beyond loopback without a feed key
        raise click.ClickException(str(err)) from err

    def show(status: object) -> None:
        click.echo("\r" + status.line() + " ", nl=False)  # type: ignore[attr-defined]

    server = SpotServer(publisher, on_status=show)
    server.install_signal_handlers()
    click.echo(f"spot-server: source {source}, on {', '.join(publisher.addresses)}")
    try:
        with publisher:
            if wait_subscribers:
                click.echo(f"waiting for {wait_subscribers} subscriber(s)")
                publisher.wait_for_subscribers(wait_subscribers)
            if source == "sim":
                trading_day = day.date() if day else _last_trading_day(calendar)
                market = SimMarket(trading_day, SimConfig(symbols=n_symbols, interval=interval))
                click.echo(f"simulated market: {n_symbols} symbols, {trading_day}, {speed:g}x real time")
                server.run_sim(market, speed=speed)
            elif source == "replay":
                server.run_replay(ReplaySource(ReplayConfig(Path(replay_file or ""), speed)))
            elif source == "qmt" and qmt_mode == "push":
                from hkrt.fetcher.qmt import QmtConfig, QmtPushClient

                try:
                    server.run_push(lambda on_spots: QmtPushClient(QmtConfig(), on_spots), code_list)
                except ImportError as err:
                    raise click.ClickException(str(err)) from err
            else:
                server.run_pull(_pull_fetcher(source, base_url), code_list, schedule, interval=interval)
            if server.stopping:
                click.echo("\nstopped")
            else:
                if server.status.days_ended:
                    # pub/sub may drop what is still queued when the socket closes: the next
                    # heartbeat repeats the end-of-day marker before it does
                    time.sleep(END_OF_DAY_LINGER)
                click.echo(f"\ndone: {server.status.days_ended} end-of-day marker(s) sent")
    except KeyboardInterrupt:
        click.echo("\nstopped")
    except CalendarCoverageError as err:  # the table ran out while serving: one line, exit 2, how to extend
        failure = click.ClickException(str(err))
        failure.exit_code = 2
        raise failure from err


def _codes(option: str | None, source: str) -> list[str]:
    from hkrt._hkrt import normalize_symbol

    if option is None:
        from hkrt.fetcher.universe import candidate_codes

        return candidate_codes()
    text = Path(option[1:]).read_text(encoding="utf-8") if option.startswith("@") else option
    tokens = [t for t in text.replace(",", " ").split() if t]
    try:
        return [normalize_symbol(t) for t in tokens]
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--codes") from err


def _pull_fetcher(source: str, base_url: str | None) -> Callable[[list[str]], object]:
    """A fetch function over one long-lived pull session of the source (connections are reused).

    Codes missing from an answer are asked again in the same cycle; codes the source answers
    as unknown three cycles running are dropped from later cycles (so the default universe,
    the whole code space, shrinks to the listed codes) and re-probed every trading day.
    """
    from hkrt.fetcher import make_client
    from hkrt.fetcher.pull import PullSession
    from hkrt.server import FetchOutcome

    if source == "qmt":
        from hkrt.fetcher.qmt import QmtClient

        try:
            client = QmtClient()
        except ImportError as err:
            raise click.ClickException(str(err)) from err
    else:
        client = make_client(source, base_url=base_url)
    session = PullSession(client)

    def run(codes: list[str]) -> FetchOutcome:
        cycle = session.fetch(codes)
        return FetchOutcome(
            cycle.spots,
            len(cycle.failed_batches),
            failures=cycle.failures,
            missing_retried=len(cycle.missing_retried),
            dropped=len(cycle.dropped),
            reprobed=len(cycle.reprobed),
        )

    return run


@main.command()
@click.option("--address", default=None, help="Publisher address (default: this user's ipc socket).")
@click.option("--tcp", default=None, help="Dial TCP instead: a port or host:port.")
@click.option("--symbol", default="SH600000", show_default=True, help="Symbol whose completed bars are printed.")
@click.option("--ktype", default="MIN", show_default=True, help="Period whose completed bars are printed.")
@click.option("--seconds", default=0.0, help="Stop after this many seconds (default: run until Ctrl-C).")
def agent(address: str | None, tcp: str | None, symbol: str, ktype: str, seconds: float) -> None:
    """Subscribe to a spot server, aggregate all 13 periods, print completed bars and status.

    The status line says when no publisher is connected and when the feed is silent, and
    counts rejections by reason, publisher restarts and gaps each apart.
    """
    import pynng

    from hkrt._hkrt import normalize_symbol
    from hkrt.agent import SpotAgent
    from hkrt.cli_run import FeedWatch, terminal_width
    from hkrt.transport import tcp_address

    # every argument is checked before the agent starts: one Error line, no traceback
    try:
        kt = KType.parse(ktype)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--ktype") from err
    try:
        symbol = normalize_symbol(symbol)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--symbol") from err
    if seconds < 0:
        raise click.BadParameter(f"must be 0 (until Ctrl-C) or more, not {seconds:g}", param_hint="--seconds")
    tcp_value: int | str | None = int(tcp) if tcp and tcp.isdigit() else tcp
    if tcp_value is not None:
        try:
            tcp_address(tcp_value)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--tcp") from err
    on_terminal = terminal_width() is not None
    try:
        spot_agent = SpotAgent()
    except ValueError as err:  # e.g. a bad $HKRT_HOLIDAYS_FILE: one line, no traceback
        raise click.ClickException(str(err)) from err

    @spot_agent.on_bar(ktypes=[kt], symbols=[symbol])
    def show(sym: str, k: KType, bar: Bar) -> None:
        label = f"{bar.datetime:%Y-%m-%d %H:%M}" if k.is_intraday else f"{bar.datetime:%Y-%m-%d}"
        click.echo(
            ("\n" if on_terminal else "")  # leave the status line being redrawn
            + f"{label} {sym} {k.value}  O {bar.open:.2f}  H {bar.high:.2f}  L {bar.low:.2f}"
            f"  C {bar.close:.2f}  V {bar.volume:,.0f} shares  A {bar.amount:,.0f} yuan"
        )

    try:
        spot_agent.start(address, tcp=tcp_value)
    except pynng.NNGException as err:  # dialling is asynchronous: this is an address nng cannot parse
        spot_agent.stop()
        raise click.BadParameter(
            f"cannot dial {spot_agent.address!r}: {err} (expected ipc://PATH or tcp://HOST:PORT)",
            param_hint="--tcp" if tcp_value is not None else "--address",
        ) from err
    except (ValueError, OSError) as err:  # refused before dialling, e.g. TCP beyond loopback without a feed key
        spot_agent.stop()
        raise click.ClickException(str(err)) from err
    click.echo(f"agent: subscribing to {spot_agent.address}; Ctrl-C stops")
    watch = FeedWatch(spot_agent.address or "")
    started = time.monotonic()
    drawn = 0  # width of the status line on the terminal, to blank what a shorter one leaves
    printed_kind, printed_at = "", 0.0
    closed_day = None
    try:
        while not seconds or time.monotonic() - started < seconds:
            time.sleep(1.0 if not seconds else max(0.0, min(1.0, seconds - (time.monotonic() - started))))
            stats = spot_agent.stats()
            if spot_agent.closed_day != closed_day:  # the feed's end-of-day marker, or a live day's close
                closed_day = spot_agent.closed_day
                click.echo(("\n" if on_terminal else "") + f"market day {closed_day} closed: its bars are complete")
            if on_terminal:  # redrawn in place every second, never wider than the terminal
                width = terminal_width() or 79
                line = watch.status_line(stats, width)
                click.echo("\r" + line.ljust(min(drawn, width)), nl=False)
                drawn = len(line)
            else:  # a log or a pipe: a line when the state changes, else every 10 s
                line = watch.status_line(stats)
                now = time.monotonic()
                if watch.kind != printed_kind or now - printed_at >= 10.0:
                    click.echo(line)
                    printed_kind, printed_at = watch.kind, now
    except KeyboardInterrupt:
        pass
    finally:
        spot_agent.stop()
        click.echo(("\n" if on_terminal else "") + "stopped: " + watch.status_line(spot_agent.stats()))


from hkrt.cli_run import run  # noqa: E402

main.add_command(run)

from hkrt.cli_demo import demo  # noqa: E402

main.add_command(demo)

from hkrt.cli_store import export  # noqa: E402

main.add_command(export)
