"""``hkrt agent``: subscribe to a spot server and print completed bars and the feed's status; with
``--store`` and ``--journal`` it is the agent of a live setup (``hkrt node`` runs it so)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hkrt.cli.metrics_option import metrics_option, start_metrics
from hkrt.core.ktype import KType

if TYPE_CHECKING:
    from hkrt.hooks import Bar


@click.command()
@click.option("--address", default=None, help="Publisher address (default: this user's ipc socket).")
@click.option("--tcp", default=None, help="Dial TCP instead: a port or host:port.")
@click.option("--symbol", default="SH600000", show_default=True, help="Symbol whose completed bars are printed.")
@click.option("--ktype", default="MIN", show_default=True, help="Period whose completed bars are printed.")
@click.option("--seconds", default=0.0, help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option(
    "--redis",
    "redis_url",
    default=None,
    help="Read the feed from a Redis stream instead: redis://[user:pass@]HOST[:PORT][/DB], rediss://... or "
    "unix:///PATH/redis.sock (docs/scale-out-redis.md).",
)
@click.option("--group", default=None, help="--redis: this agent's consumer group (one per agent).")
@click.option("--consumer", default=None, help="--redis: this consumer's name in the group [default: the host name].")
@click.option("--stream", default=None, help="--redis: the stream's key [default: hkrt:spots].")
@click.option(
    "--retransmit-from",
    default=None,
    help="--redis: the spot server's feed address (ipc://PATH or tcp://HOST:PORT) whose retransmission "
    "socket fills sequence gaps; without it gaps are reported, not filled.",
)
@click.option(
    "--store",
    "store_dir",
    default=None,
    help="Persist completed bars to this K-data store directory, or a postgresql://... database (docs/scale-out.md), "
    "and load earlier days from it at start.",
)
@click.option(
    "--store-spots",
    is_flag=True,
    default=False,
    help="With --store postgresql://...: also record every spot (book included) in its hkrt.spots table; off by "
    'default, the whole market is about 26 M rows (about 10 GB) a day (docs/scale-out.md, "Spots").',
)
@click.option(
    "--journal",
    "journal_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Journal every accepted message here, one file per market day; a restart replays it first.",
)
@click.option(
    "--heartbeat-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Rewrite this JSON file every second (pid, heartbeat time, feed state): how hkrt node sees it live.",
)
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="Write logs to this file.")
@metrics_option
def agent(
    address: str | None,
    tcp: str | None,
    symbol: str,
    ktype: str,
    seconds: float,
    redis_url: str | None,
    group: str | None,
    consumer: str | None,
    stream: str | None,
    retransmit_from: str | None,
    metrics: str | None,
    store_dir: str | None,
    store_spots: bool,
    journal_dir: str | None,
    heartbeat_file: str | None,
    log_file: str | None,
) -> None:
    """Subscribe to a spot server, aggregate all 13 periods, print completed bars and status.

    The status line says when no publisher is connected and when the feed is silent, and
    counts rejections by reason, publisher restarts and gaps each apart.  Ctrl-C and SIGTERM
    stop it cleanly (store flushed, journal closed), exit status 130 and 143.
    """
    import pynng

    from hkrt._hkrt import normalize_symbol
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.cli.run import FeedWatch
    from hkrt.cli.signals import StopSignals, signum_of
    from hkrt.cli.status_line import StatusLine
    from hkrt.feed.transport import tcp_address

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
    _check_redis_flags(redis_url, group, consumer, stream, retransmit_from, address, tcp)
    if log_file is not None:
        from hkrt.core.logs import configure_logging

        configure_logging(file=log_file)
    status = StatusLine(sys.stdout, every=10.0, refresh=0.0)  # redrawn each second by the loop below
    options: dict[str, Any] = {}
    if store_spots and (store_dir is None or "://" not in store_dir):
        raise click.BadParameter("records spots in PostgreSQL only: give --store postgresql://...",
                                 param_hint="--store-spots")  # fmt: skip
    if store_dir is not None and "://" in store_dir:  # a database URL: the agent's PostgreSQL recorder
        options["store"] = store_dir
        options["store_spots"] = store_spots
        store_dir = None
    for flag, value, key in (("--store", store_dir, "store"), ("--journal", journal_dir, "journal_dir")):
        if value is not None:
            where = Path(value).expanduser()
            try:
                where.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise click.BadParameter(f"cannot use {where}: {err}", param_hint=flag) from err
            options[key] = where
    try:
        spot_agent = SpotAgent(**options)
    except (ValueError, OSError) as err:  # e.g. a bad $HKRT_HOLIDAYS_FILE: one line, no traceback
        raise click.ClickException(str(err)) from err
    start_metrics(metrics, agent=spot_agent)

    @spot_agent.on_bar(ktypes=[kt], symbols=[symbol])  # type: ignore[untyped-decorator,unused-ignore]
    def show(sym: str, k: KType, bar: Bar) -> None:
        label = f"{bar.datetime:%Y-%m-%d %H:%M}" if k.is_intraday else f"{bar.datetime:%Y-%m-%d}"
        status.print(  # above the status line being redrawn
            f"{label} {sym} {k.value}  O {bar.open:.2f}  H {bar.high:.2f}  L {bar.low:.2f}"
            f"  C {bar.close:.2f}  V {bar.volume:,.0f} shares  A {bar.amount:,.0f} yuan"
        )

    try:
        if redis_url is not None:
            assert group is not None
            spot_agent.start_redis(redis_url, group, consumer=consumer, stream=stream, retransmit_from=retransmit_from)
        else:
            spot_agent.start(address, tcp=tcp_value)
    except ImportError as err:  # the redis extra is not installed
        spot_agent.stop()
        raise click.ClickException(str(err)) from err
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
    stopped_by = StopSignals().__enter__()  # restored in the finally below
    status.hold_logs()  # a log line blanks the status line first (released by status.finish below)
    watch = FeedWatch(spot_agent.address or "")
    started = time.monotonic()
    printed_kind = ""
    closed_day = None
    beat = Path(heartbeat_file) if heartbeat_file is not None else None
    try:
        while not seconds or time.monotonic() - started < seconds:
            if stopped_by.stopping:
                break
            if beat is not None:
                _write_heartbeat(beat, spot_agent)
            stopped_by.wait(1.0 if not seconds else max(0.0, min(1.0, seconds - (time.monotonic() - started))))
            if stopped_by.stopping:
                break
            stats = spot_agent.stats()
            if spot_agent.closed_day != closed_day:  # the feed's end-of-day marker, or a live day's close
                closed_day = spot_agent.closed_day
                status.print(f"market day {closed_day} closed: its bars are complete")
            # a terminal: redrawn in place every second, never wider than it; a log or a pipe: a line when the
            # state changes, else every 10 s
            parts = watch.status_parts(stats)
            status.show(parts, changed=watch.kind != printed_kind)
            printed_kind = watch.kind
    except KeyboardInterrupt as interrupt:  # a second signal while stopping
        stopped_by.signum = stopped_by.signum or signum_of(interrupt)
    finally:
        stopped_by.restore()
        spot_agent.stop()
        if beat is not None:  # before the last line: a supervisor gone with our stdout must still see the end
            _write_heartbeat(beat, spot_agent, running=False)
        status.finish()
        click.echo("stopped: " + watch.status_line(spot_agent.stats()))
    stopped_by.exit()  # the shell's convention: 128 + the signal (130 Ctrl-C, 143 SIGTERM)


def _check_redis_flags(
    url: str | None,
    group: str | None,
    consumer: str | None,
    stream: str | None,
    retransmit_from: str | None,
    address: str | None,
    tcp: str | None,
) -> None:
    """The Redis flags go together: one Error line naming the flag (never the URL's password)."""
    if url is None:
        for flag, value in (("--group", group), ("--consumer", consumer), ("--stream", stream),
                            ("--retransmit-from", retransmit_from)):  # fmt: skip
            if value is not None:
                raise click.BadParameter("needs --redis URL", param_hint=flag)
        return
    from hkrt.feed.redis_url import parse_redis_url

    try:
        parse_redis_url(url)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--redis") from err
    if address is not None or tcp is not None:
        raise click.BadParameter(
            "--redis reads the feed from Redis; name the spot server for gap recovery with --retransmit-from",
            param_hint="--address/--tcp",
        )
    if not group:
        raise click.BadParameter("--redis needs --group NAME (this agent's consumer group)", param_hint="--group")
    for flag, value in (("--consumer", consumer), ("--stream", stream)):
        if value is not None and not value:
            raise click.BadParameter("is empty", param_hint=flag)
    if retransmit_from is not None and not retransmit_from.startswith(("ipc://", "tcp://", "inproc://")):
        raise click.BadParameter(f"{retransmit_from!r}: expected ipc://PATH or tcp://HOST:PORT",
                                 param_hint="--retransmit-from")  # fmt: skip


def _write_heartbeat(path: Path, spot_agent: Any, *, running: bool = True) -> None:
    """The agent's heartbeat file (hkrt node reads its pid and heartbeat, and the feed's last message age)."""
    from hkrt.strategy.control import write_json_atomic

    stats = spot_agent.stats()
    t = stats["transport"]
    try:
        write_json_atomic(path, {
            "pid": os.getpid(), "heartbeat": time.time(), "running": running, "address": spot_agent.address,
            "connected": t["connected"], "messages": t["messages"], "cycles": t["cycles"],
            "spots": stats["accepted"], "publishers": t["publishers"], "gaps": t["gaps"],
            "lost_messages": t["lost_messages"], "last_message_age_s": t["last_message_age_s"],
            "closed_day": t["closed_day"], "queue_depth": t["queue_depth"],
        })  # fmt: skip
    except OSError as err:  # a full disk must not stop the agent: the node will see a stale heartbeat
        click.echo(f"heartbeat file {path} not written: {err}", err=True)
