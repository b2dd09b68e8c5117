"""``hkrt run STRATEGY.py``: run a strategy script live, on simulated days, or on recorded ones."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from hkrt.cli.dashboard_option import dashboard_option, relay_option, start_dashboard, start_relay
from hkrt.cli.metrics_option import metrics_option, start_metrics
from hkrt.cli.signals import signal_name, strategy_stop_signals
from hkrt.cli.status_line import fit, terminal_width  # noqa: F401  (terminal_width: once defined here)
from hkrt.strategy.broker_config import BROKERS, describe, load_config, make_broker, settings

log = logging.getLogger("hkrt.strategy")


@click.command("run")
@click.argument("script", type=click.Path(dir_okay=False))
@click.option(
    "--source",
    type=click.Choice(["feed", "sim", "replay"]),
    default="feed",
    show_default=True,
    help="feed: a running spot server (live); sim: simulated days; replay: recorded journals.",
)
@click.option(
    "--broker",
    "brokers",
    multiple=True,
    type=click.Choice(BROKERS),
    help="Where orders go (repeatable; the first is primary).  Default: the script's brokers, else test.",
)
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False), help="Broker settings (TOML).")
@click.option(
    "--risk",
    "risk_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="The risk engine's limits (TOML, a [risk] table; docs/risk.md).  Default: a [risk] table in --config, "
    "else the script's own.",
)
@click.option(
    "--alerts", "alerts_file", default=None, type=click.Path(dir_okay=False),
    help="Send alerts (halts, refusals, feed silence and gaps, broker rejections) as set in this TOML file's "
    "[alerts] and [notify.<name>] tables (docs/alerts.md).",
)  # fmt: skip
@click.option("--cash", default=None, type=float, help="Starting cash of the book and the test broker (yuan).")
@click.option(
    "--book", type=click.Choice(["fresh", "broker"]), default="fresh", show_default=True,
    help="fresh: the book starts with --cash and no positions; broker: it starts from the first broker's account "
    "(its cash, and its positions at its cost prices), as a live strategy restarted mid-day must.",
)  # fmt: skip
@click.option("--address", default=None, help="feed: the spot server's address (default: this user's ipc socket).")
@click.option("--tcp", default=None, help="feed: dial TCP instead, a port or host:port.")
@click.option(
    "--redis", "redis_url", default=None,
    help="feed: read the spot feed from a Redis stream instead, as one consumer group (another host's collector): "
    "redis://[user:pass@]HOST[:PORT][/DB], rediss://... or unix:///PATH/redis.sock (docs/scale-out-redis.md).",
)  # fmt: skip
@click.option("--group", default=None, help="--redis: this strategy's consumer group (one per reader of the feed).")
@click.option("--consumer", default=None, help="--redis: this consumer's name in the group [default: the host name].")
@click.option("--stream", default=None, help="--redis: the stream's key [default: hkrt:spots].")
@click.option(
    "--retransmit-from", default=None,
    help="--redis: the spot server's feed address (ipc://PATH or tcp://HOST:PORT) whose retransmission socket "
    "fills sequence gaps.",
)  # fmt: skip
@click.option(
    "--backfill", "backfill_from", default=None, type=click.Path(),
    help="feed: before subscribing, replay today's earlier messages from this journal (a file, or an agent's "
    "journal directory: its newest day), so a strategy started or restarted mid-day has the day's bars.",
)  # fmt: skip
@click.option(
    "--feed-is-sim",
    is_flag=True,
    help="feed: the spot server plays a simulated or recorded day; follow only its clock, no live order guard.",
)
@click.option("--until", default=None, help="Stop when the market clock reaches this time of day (HH:MM).")
@click.option(
    "--date", "day", default=None, type=click.DateTime(formats=["%Y-%m-%d"]),
    help="sim: the (first) trading day; default: the days end on the latest trading day.",
)  # fmt: skip
@click.option(
    "--days", default=1, show_default=True, type=int,
    help="sim: consecutive trading days in one run (positions carried over, T+1 sells show).",
)  # fmt: skip
@click.option("--symbols", default=200, show_default=True, help="sim: symbols in the simulated market.")
@click.option("--seed", default=7, show_default=True, help="sim: random seed.")
@click.option("--interval", default=3.0, show_default=True, help="sim: market seconds between snapshots.")
@click.option("--speed", default=None, type=float, help="sim: market s per wall s (2000); replay: × recorded (0).")
@click.option(
    "--replay", "replay_files", multiple=True, type=click.Path(),
    help="replay: a journal, or a directory of them (repeatable: days in increasing date order, one run).",
)  # fmt: skip
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Also write orders.csv, trades.csv here.")
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="Write logs to this file.")
@click.option(
    "--state-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Journal the held stop, trailing-stop and bracket orders here, so a restart keeps them, and take "
    "hkrt halt / resume / status there (default for a live feed: ~/.hkrt/state/<strategy name>; sim and "
    "replay: memory only, no control).",
)
@metrics_option
@dashboard_option
@relay_option
def run(
    script: str,
    source: str,
    brokers: tuple[str, ...],
    config_file: str | None,
    risk_file: str | None,
    alerts_file: str | None,
    cash: float | None,
    book: str,
    address: str | None,
    tcp: str | None,
    redis_url: str | None,
    group: str | None,
    consumer: str | None,
    stream: str | None,
    retransmit_from: str | None,
    backfill_from: str | None,
    feed_is_sim: bool,
    until: str | None,
    day: dt.datetime | None,
    days: int,
    symbols: int,
    seed: int,
    interval: float,
    speed: float | None,
    replay_files: tuple[str, ...],
    out: str | None,
    log_file: str | None,
    state_dir: str | None,
    metrics: str | None,
    dashboard: str | None,
    dashboard_relay: str | None,
) -> None:
    """Run the strategy defined in SCRIPT (a Python file with one module-level hkrt.Strategy).

    Prints its orders, trades and P&L at the end.  With --source feed it runs live until
    Ctrl-C, SIGTERM or --until; brokers then refuse any order dated before the start.
    """
    from hkrt.core.logs import configure_logging
    from hkrt.strategy import load_strategy, run_replay, run_sim

    configure_logging(file=log_file)
    if source == "replay" and not replay_files:
        raise click.BadParameter("--source replay needs --replay FILE", param_hint="--replay")
    if days < 1:
        raise click.BadParameter(f"must be at least 1, not {days}", param_hint="--days")
    if days > 1 and source != "sim":
        raise click.BadParameter("is for --source sim (a replay plays the days of its journals)", param_hint="--days")
    if backfill_from is not None and source != "feed":
        raise click.BadParameter(f"is for --source feed, not --source {source}", param_hint="--backfill")
    redis = _redis_feed(source, {"url": redis_url, "group": group, "consumer": consumer, "stream": stream,
                                 "retransmit_from": retransmit_from}, address, tcp)  # fmt: skip
    played = _played_config(
        source, day, symbols, seed, interval, speed, replay_files[:1]
    )  # checked before the script loads
    try:
        strategy = load_strategy(script)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    _configure_risk(strategy, risk_file, config_file)
    live = source == "feed" and not feed_is_sim
    if state_dir is None and live:
        state_dir = str(Path.home() / ".hkrt" / "state" / strategy.name)
    if state_dir is not None:
        from hkrt.strategy.emulator import OrderEmulator

        journal = Path(state_dir).expanduser() / "emulator.jsonl"
        strategy.set_emulator(OrderEmulator(strategy.order_manager, journal=journal, calendar=strategy.calendar))
        click.echo(f"held orders journalled in {journal}")
        strategy.state_dir = Path(state_dir).expanduser()  # its control channel too (docs/kill-switch.md)
        click.echo(f"control: hkrt halt {state_dir} --reason ... (and hkrt resume, hkrt status)")
    start_cash = cash if cash is not None else strategy.book.cash
    strategy.set_cash(start_cash)  # the book and its ledger (docs/ledger.md)
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
    if book == "broker":
        _book_from_broker(strategy, cash, (brokers or ("test",))[0])
    router = None
    if alerts_file:
        from hkrt.notify import router_from_config

        try:
            router = router_from_config(alerts_file, source=strategy.name)
        except (ValueError, TypeError, ImportError, OSError) as err:
            raise click.ClickException(str(err)) from err
        strategy.bus_listeners.append(router.follow)  # attached to the bus the strategy runs on
        click.echo(f"alerts: {', '.join(o.name for o in router.outboxes)} (minimum {router.min_severity})")
    ktypes, names = ", ".join(k.value for k in strategy.ktypes), ", ".join(b.name for b in strategy.brokers)
    click.echo(f"strategy {Path(script).name}: {len(strategy.codes)} codes, ktypes {ktypes}, brokers {names}")
    start_metrics(metrics, strategy=strategy)
    start_dashboard(dashboard, strategy)
    start_relay(dashboard_relay, strategy)
    stopped_by = strategy_stop_signals(strategy).__enter__()  # the run ends, reports, then exits 130 / 143
    try:
        if source == "sim":
            report = run_sim(strategy, played.day, days=days, symbols=played.symbols, seed=played.seed,
                             interval=played.interval, speed=played.speed, until=until,
                             handle_signals=False)  # fmt: skip
            click.echo(f"simulated {_days_text(report, strategy.now)}: {report.published_cycles} cycles, "
                       f"{report.published_spots:,} spots, {report.gaps} gaps, {report.seconds:.1f} s"
                       f"{_day_end_text(report)}")  # fmt: skip
        elif source == "replay":
            journals = replay_files[0] if len(replay_files) == 1 else list(replay_files)
            report = run_replay(strategy, journals, speed=played.speed, until=until, handle_signals=False)
            what = f" {_days_text(report, strategy.now)}:" if report.days_played > 1 else ""
            click.echo(f"replayed{what} {report.published_cycles} cycles, {report.gaps} gaps, {report.seconds:.1f} s"
                       f"{_day_end_text(report)}")  # fmt: skip
        else:
            tcp_value: int | str | None = int(tcp) if tcp and tcp.isdigit() else tcp
            what = "a simulated or recorded feed" if feed_is_sim else "live"
            click.echo(f"{what}: subscribing to the spot feed; Ctrl-C or SIGTERM stops")
            watch = FeedNotices()
            options = _backfill_options(backfill_from)
            strategy.run(address, tcp=tcp_value, live=not feed_is_sim, until=until, feed_done=watch, redis=redis,
                         handle_signals=False, agent_options=options)  # fmt: skip
            if strategy.agent is not None:
                _print_backfill(strategy.agent.stats().get("backfill"), options)
                click.echo("feed: " + watch.watch.status_line(strategy.agent.stats()))
    except (ValueError, FileNotFoundError, RuntimeError, ImportError) as err:  # ImportError: no redis client
        raise click.ClickException(str(err)) from err
    finally:
        stopped_by.restore()  # a signal from here on: the group's one line (hkrt.cli.signals)
        if router is not None:
            router.stop()  # what is queued goes out first (bounded)
            _print_alerts(router)
    print_report(strategy)
    _print_ledger(strategy)
    if out:
        folder = Path(out).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        strategy.orders.to_csv(folder / "orders.csv", index=False)
        strategy.trades.to_csv(folder / "trades.csv", index=False)
        strategy.broker_orders.to_csv(folder / "broker_orders.csv", index=False)  # each broker's answers
        click.echo(f"wrote {folder / 'orders.csv'}, {folder / 'trades.csv'} and {folder / 'broker_orders.csv'}")
        if len(strategy.equity):
            from hkrt.strategy.performance import plot_performance

            strategy.equity.to_csv(folder / "equity.csv")
            png = plot_performance(strategy.performance(), folder / "performance.png", title=Path(script).name)
            click.echo(f"wrote {folder / 'equity.csv'} and {png} (equity and drawdown)")
        strategy.ledger.to_parquet(folder / "ledger.parquet")  # pyarrow: a dependency of hkrt (the store)
        click.echo(f"wrote {folder / 'ledger.parquet'} (the double-entry ledger, one row per posting)")
    if stopped_by.signum is not None:
        click.echo(f"stopped by {signal_name(stopped_by.signum)}")
    stopped_by.exit()  # 130 after Ctrl-C, 143 after SIGTERM


def _redis_feed(source: str, flags: dict[str, str | None], address: str | None, tcp: str | None) -> Any:
    """``Strategy.run(redis=...)`` from the Redis flags (``url``, ``group``, ``consumer``, ``stream``,
    ``retransmit_from``), checked as ``hkrt agent`` checks them (one Error line naming the flag, never the
    password), or None (no ``--redis``): dial the spot server."""
    from hkrt.cli.agent import _check_redis_flags

    if flags["url"] is not None and source != "feed":
        raise click.BadParameter(f"is for --source feed, not --source {source}", param_hint="--redis")
    _check_redis_flags(**flags, address=address, tcp=tcp)
    return flags if flags["url"] is not None else None


def _configure_risk(strategy: Any, risk_file: str | None, config_file: str | None) -> None:
    """The limits of ``--risk``, else of a ``[risk]`` table in ``--config``; a bad file or limit: one line."""
    from hkrt.strategy.risk import RiskConfig, RiskConfigError

    try:
        if risk_file is None and config_file is not None:
            from hkrt.core.toml_file import read_toml

            if "risk" not in read_toml(Path(config_file).expanduser()):
                return
            risk_file = config_file
        if risk_file is not None:
            strategy.risk.configure(RiskConfig.from_toml(risk_file))
            click.echo(f"risk limits from {risk_file}")
    except (RiskConfigError, ValueError) as err:
        raise click.ClickException(str(err)) from None


def _backfill_options(path: str | None) -> dict[str, Any] | None:
    """The strategy's agent options for ``--backfill``: the journal file to replay (a directory: its newest day;
    none there yet, as at a node's first start: nothing to replay)."""
    if path is None:
        return None
    from hkrt.feed.day_journal import newest_day_file

    source = Path(path).expanduser()
    if not source.exists():  # a journal directory its agent has not made yet (a node's first start)
        click.echo(f"backfill: no journal at {source} yet: nothing to replay")
        return None
    if source.is_dir():
        newest = newest_day_file(source)
        if newest is None:
            click.echo(f"backfill: no journal in {source} yet: nothing to replay")
            return None
        source = newest
    return {"backfill": source}


def _print_backfill(report: dict[str, Any] | None, options: dict[str, Any] | None) -> None:
    if options is None:
        return
    if report is None:  # skipped: today's own journal was recovered, or the replay failed (logged)
        click.echo(f"backfill: nothing replayed from {options['backfill']}")
        return
    click.echo(f"backfill: {report['messages']:,} messages replayed from {options['backfill']} "
               f"({report['skipped']:,} skipped, {report['seconds']:.2f} s)")  # fmt: skip


def _book_from_broker(strategy: Any, cash: float | None, name: str) -> None:
    """``--book broker``: the book and its ledger open with the primary broker's account (docs/strategy.md,
    "Starting from the account"), or one ``Error:`` line saying why not."""
    if cash is not None:
        raise click.UsageError("--cash and --book broker do not go together: the broker's account sets the cash")
    from hkrt.adapters import registry

    if name in registry.execution_venues() and not registry.venue(name).reports_account:
        raise click.UsageError(f"--book broker: broker {name} keeps no account ({registry.venue(name).summary})")
    try:
        strategy.sync_from_broker(0)
    except Exception as err:  # a broker that keeps no account (mail), or cannot be reached: not a start
        raise click.ClickException(f"--book broker: the account of broker {name} could not be read: {err}") from None
    held = strategy.book.positions
    shown = ", ".join(f"{s} {p.shares}" for s, p in sorted(held.items())[:10]) + (" ..." if len(held) > 10 else "")
    click.echo(f"book: from broker {name}: cash {strategy.book.cash:,.2f}, {len(held)} positions"
               + (f" ({shown})" if held else ""))  # fmt: skip


def _print_alerts(router: Any) -> None:
    for name, s in router.status()["notifiers"].items():
        failed = f", {s.get('alerts_failed', 0)} not delivered ({s['last_error']})" if s.get("alerts_failed") else ""
        dropped = f", {s['dropped']} dropped (queue full)" if s.get("dropped") else ""
        click.echo(f"alerts {name}: {s.get('alerts_sent', 0)} sent{failed}{dropped}")


def _played_config(
    source: str,
    day: dt.datetime | None,
    symbols: int,
    seed: int,
    interval: float,
    speed: float | None,
    replay_files: tuple[str, ...],
) -> Any:
    """The sim or replay venue's config (hkrt.adapters.registry) from the flags, or None for the live feed;
    a bad value is one line naming it."""
    from hkrt.adapters import registry
    from hkrt.adapters.base import VenueConfigError

    if source == "sim":
        flags = {"day": day.date() if day else None, "symbols": symbols, "seed": seed, "interval": interval,
                 "speed": 2000.0 if speed is None else speed}  # fmt: skip
    elif source == "replay":
        flags = {"path": replay_files[0], "speed": 0.0 if speed is None else speed}  # the speed; every path later
    else:
        return None
    try:
        return registry.data_config(source, flags)
    except VenueConfigError as err:
        raise click.ClickException(str(err)) from err


def _days_text(report: Any, now: dt.datetime | None) -> str:
    """The days played: "day 2026-11-20", or "3 days 2026-11-20 to 2026-11-24" for a multi-day run."""
    if report.days_played > 1:
        return f"{report.days_played} days {report.days[0]} to {report.days[-1]}"
    day = report.days[0] if report.days else (now.date() if now is not None else None)
    return f"day {day}"


def _day_end_text(report: Any) -> str:
    """Whether the run got to the (last) day's close (its 15:00 bars and DAY delivered) or stopped before."""
    if report.days_played > 1:
        closed = f"; {len(report.closed_days)} of {report.days_played} days closed"
        return closed if report.day_closed else closed + ", stopped before the last close"
    return "; day closed" if report.day_closed else "; stopped before the close: the day's last bars not delivered"


def print_report(strategy: Any) -> None:
    """Orders, trades and P&L of a finished run, as text tables."""
    import pandas as pd

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
    if len(strategy.equity):
        click.echo("\nperformance (docs/performance.md):")
        click.echo(strategy.performance().table(markdown=False))
    from hkrt.strategy.aggregator import aggregator_of

    aggregator = aggregator_of(strategy)
    if aggregator is not None:  # several strategies on this account: who earned what
        click.echo("\nsignal attribution by source (docs/signals.md):")
        click.echo(aggregator.attribution().round(2).to_string())


def _print_ledger(strategy: Any) -> None:
    """The ledger in one line: balanced and equal to the book, and against the primary broker's account."""
    ledger = strategy.ledger
    found = strategy.book.differences()  # logged at ERROR by the run's end already
    agree = "balanced, equal to the book to the fen" if not found else "DIFFERS from the book: " + "; ".join(found)
    click.echo(f"\nledger: {ledger.stats['transactions']} transactions, {agree}")
    result = strategy.ledger_report() if strategy.brokers else None
    if result is not None:
        name = strategy.brokers[0].name
        if result.ok:
            click.echo(f"ledger and broker {name} agree: cash {result.book_cash:,.2f}")
        else:
            held = "; ".join(f"{d.symbol} ledger {d.book} broker {d.broker}" for d in result.positions)
            cash = "" if result.cash_ok else f"cash ledger {result.book_cash:,.2f} broker {result.broker_cash:,.2f}"
            click.echo(f"ledger and broker {name} differ: " + "; ".join(x for x in (held, cash) if x))


# ------------------------------------------------------------------ what the feed is doing
SILENT_AFTER_S = 10.0  # no message for this long: the feed is called silent


class FeedWatch:
    """Says in words what a subscribed feed is doing, from ``SpotAgent.stats()``.

    ``waiting``: no publisher is connected (``stats()["transport"]["connected"] == 0``; an
    agent that cannot count its pipes is waiting until its first message).  ``silent``: a
    publisher is connected but the agent says the feed is silent (``transport["silent"]``,
    which knows the publisher's heartbeats), or, from an agent without that key, no message
    came for ``silent_after`` seconds.  ``flowing``: otherwise.  Every key is read with a
    default, so older and newer agents both work.
    """

    def __init__(self, address: str, *, silent_after: float = SILENT_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.address = address
        self.silent_after = silent_after
        self._clock = clock
        self._messages = 0
        self._last_message_at: float | None = None
        self._waiting_since = self._connected_at = clock()
        self.kind = ""  # "waiting", "silent" or "flowing" after the first update
        self.seconds = 0.0  # how long it has been waiting, or silent
        self.message_age: float | None = None  # seconds since the last message, None before one
        self.connected: int | None = None  # publishers connected, if the agent counts them

    def update(self, stats: Mapping[str, Any]) -> str:
        """Take a fresh ``stats()`` and return the feed's state: waiting, silent or flowing."""
        now = self._clock()
        t = stats.get("transport") or {}
        messages = int(t.get("messages", 0) or 0)
        if messages != self._messages:
            self._messages, self._last_message_at = messages, now
        if "last_message_age_s" in t:
            self.message_age = t["last_message_age_s"]
        else:
            self.message_age = None if self._last_message_at is None else now - self._last_message_at
        connected = t.get("connected")
        self.connected = None if connected is None else int(connected)
        waiting = int(connected) == 0 if connected is not None else messages == 0
        if waiting:
            if self.kind not in ("", "waiting"):  # waiting again; at first, since the watch began
                self._waiting_since = now
            self.kind, self.seconds = "waiting", now - self._waiting_since
            return self.kind
        if self.kind in ("", "waiting"):
            self._connected_at = now
        # quiet since the last message, but never longer than since this connection began
        quiet = now - self._connected_at
        if self.message_age is not None:
            quiet = min(quiet, self.message_age)
        # the agent's own verdict wins when it has one: it knows the publisher's heartbeats
        silent = bool(t["silent"]) if "silent" in t else quiet >= self.silent_after
        self.kind, self.seconds = ("silent", quiet) if silent else ("flowing", 0.0)
        return self.kind

    def state_text(self) -> str:
        """The state in words: what the user is waiting for, or "" while the feed flows."""
        if self.kind == "waiting":
            text = f"waiting for a publisher at {self.address} ({self.seconds:.0f} s"
            if self.message_age is not None:
                text += f"; last message {self.message_age:.0f} s ago"
            return text + ")"
        if self.kind == "silent":
            who = " from the connected publisher" if self.connected else ""
            return f"feed silent for {self.seconds:.0f} s: no message{who}"
        return ""

    def status_line(self, stats: Mapping[str, Any], width: int | None = None) -> str:
        """One line: the state, then the counters, most important first, cut to ``width``
        columns by leaving out whole parts from the end."""
        return fit(self.status_parts(stats), width)

    def status_parts(self, stats: Mapping[str, Any]) -> list[str]:
        """The status line's parts, most important first (empty ones are skipped when joined)."""
        self.update(stats)
        t = stats.get("transport") or {}
        parts = [self.state_text()] if self.kind != "flowing" else []
        parts += [f"messages {int(t.get('messages', 0) or 0):,}", f"spots {int(stats.get('accepted', 0) or 0):,}"]
        parts.append(_gap_text(t))
        rejected = _rejected_text(stats)
        parts += [f"{label} {n:,}" for label, n in notable_counts(t)] + [rejected]
        parts.append(f"cycles {int(t.get('cycles', 0) or 0):,}")
        p50 = (t.get("latency_ms") or {}).get("p50")
        if p50 is not None:
            parts.append(f"latency p50 {p50:.1f} ms")
        depth = int(t.get("queue_depth", 0) or 0)
        if depth:
            parts.append(f"callback queue {depth:,}")
        return parts


# transport counters worth a word when not 0: each one a different thing, never summed
NOTABLE = (
    ("unauthenticated", "refused: not sealed with our feed key"),  # a wrong or missing key on this side
    ("publisher_restarts", "publisher restarts"),
    ("anomalies", "quarantined (sequence anomalies)"),
    ("old_session_messages", "old-session messages"),
    ("duplicate_messages", "duplicate messages"),
    ("market_time_invalid", "bad market times"),
    ("market_time_clamped", "market times clamped"),
    ("day_end_ignored", "end-of-day markers for another day"),
)


def notable_counts(transport: Mapping[str, Any]) -> list[tuple[str, int]]:
    found = [(label, int(transport.get(key, 0) or 0)) for key, label in NOTABLE if transport.get(key)]
    publishers = int(transport.get("publishers", 0) or 0)
    if publishers > 1:  # another server (a new publisher id) is not a restart, and says why spots repeat
        found.insert(0, ("publishers seen", publishers))
    return found


def _gap_text(t: Mapping[str, Any]) -> str:
    gaps = int(t.get("gaps", 0) or 0)
    if not gaps:
        return "gaps 0"
    text = f"gaps {gaps:,}: {int(t.get('missing_messages', 0) or 0):,} messages missing"
    if "recovered_messages" in t:
        text += f", {int(t['recovered_messages'] or 0):,} recovered"
    if t.get("forgotten_messages"):
        text += f", {int(t['forgotten_messages']):,} beyond recovery"
    return text


def rejections(stats: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Every reason with a count, spots' and messages' apart ("out_of_order spots", "malformed
    messages"), largest first."""
    found: list[tuple[str, int]] = []
    transport = stats.get("transport") or {}
    for what, counts in (("spots", stats.get("rejected")), ("messages", transport.get("rejected"))):
        if isinstance(counts, Mapping):
            found += [(f"{reason} {what}", int(n)) for reason, n in counts.items() if n]
    return sorted(found, key=lambda item: -item[1])


def _rejected_text(stats: Mapping[str, Any]) -> str:
    found = rejections(stats)
    if not found:
        return ""
    # "rejected 3,000 out_of_order spots" reads as a count of things, per reason
    return "rejected " + ", ".join(f"{n:,} {reason}" for reason, n in found)


class FeedNotices:
    """``Strategy.run(feed_done=...)`` for ``hkrt run --source feed``: checks the agent once a
    second and prints a line when the feed starts waiting, falls silent or flows again (and a
    reminder every ``remind_every`` seconds while it waits), and when publishers restart,
    messages go missing or are rejected (at most every ``counts_every`` seconds).  Never stops
    the run: it returns False."""

    def __init__(
        self,
        *,
        remind_every: float = 60.0,
        counts_every: float = 10.0,
        echo: Callable[[str], Any] = click.echo,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watch = FeedWatch("", clock=clock)
        self._echo = echo
        self._clock = clock
        self._remind_every = remind_every
        self._counts_every = counts_every
        self._next_check = clock() + 1.0  # a publisher that connects within a second is no news
        self._kind = ""
        self._said_at = 0.0
        self._counts: dict[str, int] = {}
        self._counts_said_at = 0.0

    def __call__(self, agent: Any) -> bool:
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + 1.0
        self.watch.address = agent.address or ""
        stats = agent.stats()
        kind = self.watch.update(stats)
        if kind != self._kind:
            previous, self._kind, self._said_at = self._kind, kind, now
            if kind != "flowing":
                self._echo(self.watch.state_text())
            elif previous == "waiting":
                self._echo(f"publisher connected at {self.watch.address}: the feed flows")
            elif previous == "silent":
                self._echo("the feed flows again")
        elif kind != "flowing" and now - self._said_at >= self._remind_every:
            self._said_at = now
            self._echo("still " + self.watch.state_text())
        if now - self._counts_said_at >= self._counts_every:
            news = self._count_changes(stats)
            if news:
                self._counts_said_at = now
                self._echo("feed: " + "; ".join(news))
        return False

    def _count_changes(self, stats: Mapping[str, Any]) -> list[str]:
        t = stats.get("transport") or {}
        counts = {"gaps": int(t.get("gaps", 0) or 0),
                  "missing messages": int(t.get("missing_messages", 0) or 0),
                  "recovered messages": int(t.get("recovered_messages", 0) or 0),
                  **dict(notable_counts(t)),
                  **{f"rejected {reason}": n for reason, n in rejections(stats)}}  # fmt: skip
        news = [f"{name} +{n - self._counts.get(name, 0):,} ({n:,} in all)"
                for name, n in counts.items() if n > self._counts.get(name, 0)]  # fmt: skip
        self._counts = counts
        return news
