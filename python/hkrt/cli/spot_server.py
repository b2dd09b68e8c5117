"""``hkrt spot-server``: run a data venue on its schedule and publish every cycle.

One loop over the venue registry (:mod:`hkrt.adapters.registry`): the command's flags become the chosen
venue's config (each flag sets the config field of its name, see ``FLAG_FIELDS``; a flag the venue does
not take is refused in one line), the registry builds its data client, and the client serves the spot
server (pull cycles, push subscriptions, a simulated or replayed day).  No venue is named here.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hkrt.adapters.registry import data_venues
from hkrt.cli.metrics_option import metrics_option, start_metrics
from hkrt.cli.signals import StopSignals, signum_of
from hkrt.cli.status_line import StatusLine
from hkrt.core.calendar import CalendarCoverageError, TradingCalendar
from hkrt.core.china_time import AUCTION_OPEN_MS, DAY_CLOSE_CUTOFF, SESSIONS_MS

if TYPE_CHECKING:
    from hkrt.feed.server import ServerStatus


def _clock(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}"


# Pull phases from the engine's schedule: the morning from the auction's open to a minute past the
# midday close (the close's own quotes), the afternoon from a minute before it reopens to a minute
# past the after-hours cutoff (the closing auction's quotes, stamped up to it, settle the day).
_PHASE1 = f"{_clock(AUCTION_OPEN_MS)}-{_clock(SESSIONS_MS[0][1] + 60_000)}"
_PHASE2 = (
    f"{_clock(SESSIONS_MS[1][0] - 60_000)}-"
    f"{_clock((DAY_CLOSE_CUTOFF.hour * 60 + DAY_CLOSE_CUTOFF.minute + 1) * 60_000)}"
)

END_OF_DAY_LINGER = 1.5  # s a finished sim/replay server stays up after its end-of-day marker (heartbeats: 1 s)
#: config field -> the flag that sets it (a venue's config takes the fields it declares)
FLAG_FIELDS = {
    "interval": "--interval",
    "base_url": "--base-url",
    "mode": "--qmt-mode",
    "symbols": "--symbols",
    "day": "--date",
    "speed": "--speed",
    "path": "--replay",
    "first_day": "--first-day",
}


@click.command("spot-server")
@click.option(
    "--source",
    type=click.Choice(data_venues()),
    default="sim",
    show_default=True,
    help="qq / sina: public HTTP quotes; qmt: xtquant (Windows); sim: the simulated market (offline); "
    "replay: a recorded journal (--replay FILE).",
)
@click.option("--interval", default=3.0, show_default=True, help="Seconds between cycles (sim: market seconds).")
@click.option("--phase1", default=_PHASE1, show_default=True, help="Morning collection phase (pull sources).")
@click.option("--phase2", default=_PHASE2, show_default=True, help="Afternoon collection phase (pull sources).")
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
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="sim: trading day to simulate (default: the latest trading day up to today).",
)
@click.option(
    "--first-day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="sim: the first day of a multi-day run that --date continues (each day opens from the day before's "
    "closes); default: --date stands alone.",
)
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
@click.option(
    "--redis",
    "redis_url",
    default=None,
    help="Also append every message to a Redis stream: redis://[user:pass@]HOST[:PORT][/DB], rediss://... (TLS) "
    "or unix:///PATH/redis.sock (docs/scale-out-redis.md).",
)
@click.option("--stream", default=None, help="--redis: the stream's key [default: hkrt:spots].")
@click.option(
    "--maxlen",
    default=None,
    type=int,
    help="--redis: entries the stream keeps (MAXLEN ~), oldest trimmed [default: 1000].",
)
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="Write logs to this file.")
@metrics_option
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
    first_day: dt.datetime | None,
    speed: float,
    replay_file: str | None,
    record: str | None,
    address: str | None,
    tcp: str | None,
    max_part_spots: int,
    wait_subscribers: int,
    redis_url: str | None,
    stream: str | None,
    maxlen: int | None,
    log_file: str | None,
    metrics: str | None,
) -> None:
    """Publish spot cycles for agents to subscribe to (stop with Ctrl-C or SIGTERM).

    Each cycle is one whole-market snapshot, framed as wire messages with a per-publisher
    sequence number, cycle id and part index, so agents detect any loss.  Pull sources run
    at a fixed rate inside --phase1/--phase2 on trading days of the exchange calendar.
    """
    from hkrt.adapters import registry
    from hkrt.adapters.base import ServePlan, VenueConfigError
    from hkrt.core.calendar import CoverageWatch
    from hkrt.core.logs import configure_logging
    from hkrt.feed.server import Phase, PullSchedule, SpotServer, china_now
    from hkrt.feed.transport import SpotPublisher

    configure_logging(file=log_file)
    venue = registry.venue(source)
    try:
        calendar = TradingCalendar.china()  # extended by the HKRT_HOLIDAYS_FILE file when set
        if venue.serves_today:  # a live or simulated day the calendar must vouch for (a replay has its own)
            served = day.date() if day else china_now().date()
            try:
                calendar.ensure_covered(served)
            except ValueError as err:
                raise ValueError(f"{'--date' if day else 'today'}: {err}") from err
    except ValueError as err:  # a bad holidays file, or a day past the table: one line, exit code 2
        raise _usage_error(str(err)) from err
    # warns now, and once a day while serving, when the holiday table is about to run out
    click.get_current_context().call_on_close(CoverageWatch(calendar, clock=lambda: china_now().date()).start().stop)
    flags = {"interval": interval, "base_url": base_url, "mode": qmt_mode, "symbols": n_symbols,
             "day": day.date() if day else None, "speed": speed, "path": replay_file,
             "first_day": first_day.date() if first_day else None}  # fmt: skip
    try:  # the venue's config from the flags: a bad one fails here, before listening
        client = registry.data_client(source, _venue_settings(venue, flags))
    except VenueConfigError as err:
        if err.missing:
            needed = ", ".join(FLAG_FIELDS.get(k, k) + (" FILE" if k == "path" else "") for k in err.missing)
            raise _usage_error(f"--source {source} needs {needed}") from err
        raise _usage_error(str(err)) from err
    try:
        schedule = PullSchedule([Phase.parse(phase1), Phase.parse(phase2)], calendar)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--phase1/--phase2") from err
    # a bad code fails here, before listening, whatever the source
    code_list = _codes(codes, source) if codes is not None or venue.takes_codes else []
    if codes is not None and not venue.takes_codes:
        takers = [name for name in registry.data_venues() if registry.venue(name).takes_codes]
        raise click.BadParameter(f"applies to the pull sources ({', '.join(takers)}), not to {source}",
                                 param_hint="--codes")  # fmt: skip
    sink_settings = _redis_settings(redis_url, stream, maxlen)
    tcp_value: int | str | None = int(tcp) if tcp and tcp.isdigit() else tcp
    try:
        publisher = SpotPublisher(
            address,
            tcp=tcp_value,
            max_part_spots=max_part_spots,
            record=record,
            simulated_time=venue.simulated_time,  # spot times that run ahead of the wall clock
        )
    except (OSError, ValueError) as err:  # address in use; a TCP listener beyond loopback without a feed key
        raise click.ClickException(str(err)) from err

    sink = None
    if sink_settings is not None:
        from hkrt.feed.redis_sink import RedisStreamSink

        try:
            sink = RedisStreamSink(**sink_settings)
        except ImportError as err:  # the redis extra is not installed
            publisher.close()
            raise click.ClickException(str(err)) from err
        publisher.add_sink(sink)

    line = StatusLine(sys.stdout)  # one line redrawn on a terminal; a plain line every 10 s in a log

    def show(status: ServerStatus) -> None:
        line.show(status.line().split("  "))  # its parts, so a narrow terminal drops the last ones whole

    server = SpotServer(publisher, on_status=show)
    click.echo(f"spot-server: source {source}, on {', '.join(publisher.addresses)}")
    if sink is not None:
        click.echo(f"spot-server: appending to Redis {sink.url.display}, stream {sink.stream} (MAXLEN ~{sink.maxlen})")
    plan = ServePlan(code_list, schedule, interval, calendar, china_now().date(), line.print)
    # Ctrl-C and SIGTERM: the current cycle, then stop; log lines blank the status line first
    with StopSignals(on_stop=server.stop) as stopped_by, line.hold_logs():
        try:
            _serve(server, publisher, client, plan, wait_subscribers, metrics, line)
        except KeyboardInterrupt as interrupt:  # a second signal while stopping
            stopped_by.signum = stopped_by.signum or signum_of(interrupt)
            line.finish()
            click.echo("stopped")
        finally:
            if sink is not None:
                sink.close(timeout=10.0)
                stats = sink.stats()
                click.echo(f"redis: {stats['appended']:,} messages appended, {stats['dropped']:,} dropped, "
                           f"{stats['errors']:,} errors, {stats['reconnects']:,} reconnects")  # fmt: skip
    stopped_by.exit()  # 130 after Ctrl-C, 143 after SIGTERM


def _redis_settings(url: str | None, stream: str | None, maxlen: int | None) -> dict[str, Any] | None:
    """The Redis sink's settings from the flags, checked (one Error line naming the flag, never the password)."""
    if url is None:
        if stream is not None or maxlen is not None:
            raise _usage_error(f"{'--stream' if stream is not None else '--maxlen'} needs --redis URL")
        return None
    from hkrt.feed.redis_sink import DEFAULT_MAXLEN, DEFAULT_STREAM
    from hkrt.feed.redis_url import parse_redis_url

    try:
        parsed = parse_redis_url(url)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--redis") from err
    if maxlen is not None and maxlen < 1:
        raise click.BadParameter(f"must be at least 1, not {maxlen}", param_hint="--maxlen")
    if stream is not None and not stream:
        raise click.BadParameter("is empty", param_hint="--stream")
    return {"url": parsed, "stream": stream or DEFAULT_STREAM, "maxlen": maxlen or DEFAULT_MAXLEN}


def _serve(
    server: Any, publisher: Any, client: Any, plan: Any, wait_subscribers: int, metrics: str | None, line: StatusLine
) -> None:
    """Run the venue's client on the server until it is done or stopped."""
    try:
        with publisher:
            start_metrics(metrics, server=server)  # a refused --metrics closes the publisher on its way out
            if wait_subscribers:
                click.echo(f"waiting for {wait_subscribers} subscriber(s)")
                while not publisher.wait_for_subscribers(wait_subscribers, timeout=0.2):
                    if server.stopping:  # Ctrl-C or SIGTERM while waiting
                        click.echo("stopped")
                        return
            try:
                client.serve(server, plan)
            except ImportError as err:  # a venue whose library cannot load here (xtquant off Windows)
                raise click.ClickException(str(err)) from err
            line.finish(server.status.line().split("  ") if server.status.cycles else None)
            if server.stopping:
                click.echo("stopped")
            else:
                if server.status.days_ended:
                    # pub/sub may drop what is still queued when the socket closes: the next
                    # heartbeat repeats the end-of-day marker before it does
                    time.sleep(END_OF_DAY_LINGER)
                click.echo(f"done: {server.status.days_ended} end-of-day marker(s) sent")
    except CalendarCoverageError as err:  # the table ran out while serving: one line, exit 2, how to extend
        raise _usage_error(str(err)) from err


def _usage_error(text: str) -> click.ClickException:
    """One ``Error:`` line and exit status 2 (a refused argument, not a failure)."""
    error = click.ClickException(text)
    error.exit_code = 2
    return error


def _venue_settings(venue: Any, flags: dict[str, Any]) -> dict[str, Any]:
    """The flags the venue's config takes (by field name); a flag given on the command line that it does
    not take is a BadParameter naming the flag."""
    from hkrt.adapters.base import config_fields

    ctx = click.get_current_context()
    taken = set(config_fields(venue.data_config))
    settings = {}
    for field, value in flags.items():
        if field in taken:
            if value is not None:
                settings[field] = value
        elif field != "interval" and ctx.get_parameter_source(_param(field)) == click.core.ParameterSource.COMMANDLINE:
            raise click.BadParameter(f"does not apply to --source {venue.name}", param_hint=FLAG_FIELDS[field])
    return settings


def _param(field: str) -> str:
    """The click parameter name of a config field's flag."""
    return {"mode": "qmt_mode", "symbols": "n_symbols", "path": "replay_file"}.get(field, field)


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


def _pull_fetcher(source: str, base_url: str | None) -> Any:
    """A fetch function over one long-lived pull session of the source (connections are reused):
    the pull data client's ``fetch`` (``hkrt.adapters.base.PullDataClient``).

    Codes missing from an answer are asked again in the same cycle; codes the source answers
    as unknown three cycles running are dropped from later cycles (so the default universe,
    the whole code space, shrinks to the listed codes) and re-probed every trading day.
    """
    from hkrt.adapters import registry

    client = registry.data_client(source, {"base_url": base_url} if base_url is not None else None)
    return client.fetch  # type: ignore[attr-defined]
