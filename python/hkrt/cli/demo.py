"""``hkrt demo``: a few simulated market days, live K-lines and a strategy trading, offline.

Every part is the real one: a SpotServer publishes the simulated days on an nng socket
(``inproc://``, in a thread), one after another, each ended by its end-of-day marker; the
strategy's SpotAgent subscribes and builds all 13 periods, and the MA-cross strategy
(hkrt.strategy.demo) orders through the paper broker, its positions carried from day to day, so
yesterday's buys are sold today (T+1) and the summary shows round trips and the performance
table.  Only the clock is simulated, so a whole day takes seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
import numpy as np

from hkrt.cli.dashboard_option import dashboard_option, linger, start_dashboard
from hkrt.cli.signals import signal_name, strategy_stop_signals
from hkrt.cli.status_line import StatusLine
from hkrt.core.calendar import CalendarCoverageError
from hkrt.core.china_time import MARKET_CLOSE, MARKET_OPEN, SESSIONS_MS
from hkrt.core.ktype import KType

if TYPE_CHECKING:  # the command imports them when it runs: `hkrt --help` stays quick
    import pandas as pd

    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.feed.server import ServerStatus
    from hkrt.strategy.strategy import Strategy

DEFAULT_SPEED = 3000.0  # market s per wall s: the 4 h 15 min day in about 5 s
FAST_SPEED = 20_000.0  # the days before the last, and the last day outside --start/--minutes: as fast as it goes
WHOLE_DAY = (dt.time.min, dt.time.max)  # the window of a run without --start/--minutes: all of the last day
DEFAULT_DAYS = 3  # trading days in one run: a buy of day 1 can be sold from day 2 (T+1)
ALL_KTYPES = tuple(KType)
TTY_REFRESH = 0.25  # seconds between status-line redraws on a terminal
RUNS_DIR = "runs"  # the default --out: <hkrt home>/runs/demo-<time>, a folder of its own for each run
LOG_STEPS = 10  # without a terminal: a line per tenth of the day
_MIN = KType.MIN.record_code  # the ktype code of completed-bar records
_CLOSE = np.timedelta64(SESSIONS_MS[-1][1], "ms")  # the day's last MIN bar: the close (15:00)


class _RefusalFilter(logging.Filter):
    """Counts the strategy's "order not sent" warnings and the risk engine's "order refused" ones (an order at
    the 15:00 close is outside the order hours) and keeps them off the terminal: the summary reports them
    grouped by reason ("refused before sending") instead of one line per refused order."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        strategy = record.name == "hkrt.strategy" and hasattr(record, "reason")
        risk = record.name == "hkrt.risk" and hasattr(record, "check") and str(record.msg).startswith("order refused")
        if strategy or risk:
            self.count += 1
            return False
        return True


class _Progress:
    """The live status line (a terminal: redrawn in place, cut to its width) or a line per tenth of the run
    (logs, CI)."""

    def __init__(
        self, strategy: Strategy, total_cycles: int, out: TextIO, days: list[dt.date] | None = None, **status: Any
    ) -> None:
        self.strategy = strategy
        self.total_cycles = max(total_cycles, 1)
        self.days = days or []  # several: the line says which day plays
        self.status = StatusLine(out, refresh=TTY_REFRESH, **status)
        self.tty = self.status.tty
        self.bars = np.zeros(len(ALL_KTYPES), dtype=np.int64)  # completed bars per ktype, all symbols
        self.close_minutes = 0  # of the MIN bars, those labelled 15:00: the close reached the hooks
        self.started = time.monotonic()
        self._next_step = 1

        @strategy.on_start
        def count_bars() -> None:
            # on the callback thread, before the first data: completed bars of every symbol
            assert strategy.agent is not None

            @strategy.agent.on_bars
            def add(records: np.ndarray) -> None:
                self.bars += np.bincount(records["ktype"].astype(np.int64), minlength=len(ALL_KTYPES))
                when = records["datetime"][records["ktype"] == _MIN]
                self.close_minutes += int(np.count_nonzero(when - when.astype("M8[D]") == _CLOSE))

    def delivered(self, ktype: KType) -> int:
        """Completed bars of ``ktype`` (every symbol) handed to the hooks so far."""
        return int(self.bars[KType.parse(ktype).record_code])

    def __call__(self, agent: SpotAgent, status: ServerStatus) -> None:
        if self.tty:
            self.status.show(self._parts(agent, status))  # at most every TTY_REFRESH s
        elif status.cycles * LOG_STEPS >= self._next_step * self.total_cycles:
            self._next_step = status.cycles * LOG_STEPS // self.total_cycles + 1
            self.status.show(self._parts(agent, status), force=True)

    def finish(self, agent: SpotAgent | None, status: ServerStatus) -> None:
        if self.tty and agent is not None:
            self.status.finish(self._parts(agent, status))

    def _parts(self, agent: SpotAgent, status: ServerStatus) -> list[str]:
        """The line's parts, most telling first: a narrow terminal drops the last ones."""
        stats = agent.stats()
        t = stats["transport"]
        market = f"{status.last_market_time:%H:%M:%S}" if status.last_market_time else "--:--:--"
        p50 = t["latency_ms"]["p50"]
        latency = "-" if p50 is None else f"{p50:.1f} ms"
        percent = min(100, 100 * status.cycles // self.total_cycles)
        day = ""
        if len(self.days) > 1 and status.last_market_time is not None and status.last_market_time.date() in self.days:
            day = f" day {self.days.index(status.last_market_time.date()) + 1}/{len(self.days)}"
        return [
            f"market {market} {percent:3d}%{day}",
            f"bars {int(self.bars.sum()):,}",
            f"orders {len(self.strategy.orders)}",
            f"cycles {t['cycles']:,}",
            f"spots {stats['accepted']:,}",
            f"gaps {t['gaps']}",
            f"latency p50 {latency}",
            f"{time.monotonic() - self.started:.0f} s",
        ]


def _parse_start(value: str | None) -> dt.time | None:
    if value is None:
        return None
    try:
        return dt.time.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not a time of day (HH:MM)", param_hint="--start") from err


@click.command("demo")
@click.option("--symbols", "n_symbols", default=100, show_default=True, help="Symbols in the simulated market.")
@click.option(
    "--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
    help="First trading day to simulate (default: the days end on the latest trading day up to today).",
)  # fmt: skip
@click.option(
    "--days", default=DEFAULT_DAYS, show_default=True, type=int,
    help="Consecutive trading days in one run (positions carried over, so T+1 sells show).",
)  # fmt: skip
@click.option("--seed", default=7, show_default=True, help="Random seed of the simulated market.")
@click.option("--interval", default=3.0, show_default=True, help="Market seconds between the simulated snapshots.")
@click.option(
    "--speed", default=DEFAULT_SPEED, show_default=True, type=float,
    help="Market seconds per wall second (3000: a day in about 5 s, if the machine keeps up).",
)  # fmt: skip
@click.option(
    "--realtime", is_flag=True,
    help="Play the last day at the market's own pace (speed 1; from 09:30 unless --start); the days before fast.",
)  # fmt: skip
@click.option(
    "--start", default=None,
    help="Market time (HH:MM) from which the last day plays at --speed; all before it plays fast.",
)  # fmt: skip
@click.option(
    "--minutes", default=None, type=float,
    help="Play only this many market minutes from --start at --speed, the rest of the days fast.",
)  # fmt: skip
@click.option("--symbol", "chart_symbol", default=None, help="Symbol to chart (default: the one with most trades).")
@click.option(
    "--out", default=None, type=click.Path(file_okay=False),
    help="Folder for the chart PNG, orders.csv and trades.csv (~ expanded) [default: a new folder "
    "~/.hkrt/runs/demo-DATE-TIME for each run; $HKRT_HOME/runs/... when HKRT_HOME is set].",
)  # fmt: skip
@click.option("--verbose", is_flag=True, help="Show hkrt's INFO logs and every refused order on stderr.")
@dashboard_option
def demo(
    n_symbols: int,
    day: dt.datetime | None,
    days: int,
    seed: int,
    interval: float,
    speed: float,
    realtime: bool,
    start: str | None,
    minutes: float | None,
    chart_symbol: str | None,
    out: str | None,
    verbose: bool,
    dashboard: str | None,
) -> None:
    """Watch simulated market days: live K-lines of all 13 periods and a strategy trading.

    Offline, no account: a spot server publishes a few consecutive simulated China A-share days
    (--days, each opening from the day before's close), an agent builds the bars, and a
    moving-average cross on MIN5 trades a few codes through a paper broker, its positions carried
    over, so yesterday's buys are sold today (T+1).  Ends with a summary (round trips and the
    performance table included), a candlestick chart (PNG) of one symbol with its trades, and the
    orders and trades as CSV.
    """
    from hkrt._hkrt import normalize_symbol
    from hkrt.core.logs import configure_logging
    from hkrt.feed.server import ServerStatus
    from hkrt.fetcher.sim import SimConfig, SimMarket, universe
    from hkrt.strategy.demo import demo_codes, ma_cross_strategy
    from hkrt.strategy.runner import _trading_days, run_sim

    refusals = _RefusalFilter()
    configure_logging("INFO" if verbose else "WARNING")
    if not verbose:
        for handler in logging.getLogger("hkrt").handlers:
            handler.addFilter(refusals)
    if n_symbols < 1:
        raise click.BadParameter("must be at least 1", param_hint="--symbols")
    if days < 1:
        raise click.BadParameter(f"must be at least 1, not {days}", param_hint="--days")
    if not interval > 0:
        raise click.BadParameter(f"must be positive, not {interval:g}", param_hint="--interval")
    if realtime:
        speed = 1.0
    if speed <= 0:
        raise click.BadParameter("must be positive", param_hint="--speed")
    if minutes is not None and minutes <= 0:
        raise click.BadParameter("must be positive", param_hint="--minutes")
    window = _window(_parse_start(start), minutes, realtime)
    codes = demo_codes(universe(n_symbols))
    strategy = ma_cross_strategy(codes, ktypes=ALL_KTYPES)
    try:
        if day is not None and not strategy.calendar.is_trading_day(day.date()):
            raise click.BadParameter(f"{day.date()} is not a trading day", param_hint="--date")
        # from --date on, or ending on the latest trading day up to today (China time)
        trading_days = _trading_days(strategy, day.date() if day else None, days)
    except CalendarCoverageError as err:  # a day the holiday table cannot vouch for: one line, how to extend
        raise click.BadParameter(str(err), param_hint="--date") from err
    if chart_symbol is not None:
        try:
            chart_symbol = normalize_symbol(chart_symbol)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--symbol") from err
        if chart_symbol not in universe(n_symbols):
            raise click.BadParameter(
                f"{chart_symbol} is not among the {n_symbols} simulated symbols", param_hint="--symbol"
            )

    total_cycles = len(trading_days) * sum(
        1 for _ in SimMarket(trading_days[0], SimConfig(symbols=n_symbols, interval=interval)).times()
    )
    click.echo(
        f"hkrt demo: a simulated market of {n_symbols} symbols on {_days_text(trading_days)} (seed {seed}), "
        f"{_pace(speed, window, len(trading_days))}\n"
        f"strategy: MA cross (5/20 bars) on MIN5 of {', '.join(codes)}; paper broker, 1,000,000 yuan, "
        f"positions carried from day to day\n"
        f"the agent builds all 13 periods of every symbol; Ctrl-C ends the run early"
    )
    folder = _run_folder(out)
    click.echo(f"run folder: {folder}")
    board = start_dashboard(dashboard, strategy)  # watch it with a slower --speed (docs/dashboard.md)
    progress = _Progress(strategy, total_cycles, sys.stdout, trading_days)
    started = time.perf_counter()
    status = ServerStatus()

    def watch(agent: SpotAgent, server_status: ServerStatus) -> None:
        nonlocal status
        status = server_status
        progress(agent, server_status)

    # Ctrl-C / SIGTERM: the day stops where it is, the summary is printed, then exit 130 / 143
    with strategy_stop_signals(strategy) as stopped_by, progress.status.hold_logs():
        try:
            # the last day plays at --speed (its --start/--minutes stretch), the days before it fast
            report = run_sim(strategy, trading_days[0], days=len(trading_days), symbols=n_symbols, speed=speed,
                             seed=seed, interval=interval, window=window or WHOLE_DAY, outside_speed=FAST_SPEED,
                             progress=watch, handle_signals=False)  # fmt: skip
        except (ValueError, RuntimeError) as err:
            raise click.ClickException(str(err)) from err
        progress.finish(strategy.agent, status)
    wall = time.perf_counter() - started

    orders_csv, trades_csv = folder / "orders.csv", folder / "trades.csv"
    strategy.orders.to_csv(orders_csv, index=False)
    strategy.trades.to_csv(trades_csv, index=False)
    symbol = chart_symbol or _most_traded(strategy)
    chart = _chart(strategy, symbol, folder, trading_days)

    assert strategy.agent is not None
    early = not report.day_closed
    _summary(strategy, strategy.agent, report, wall, refusals.count, status.last_market_time if early else None,
             progress)  # fmt: skip
    click.echo(f"\nchart:  {chart}  ({symbol} MIN5 with its trades)")
    click.echo(f"orders: {orders_csv}\ntrades: {trades_csv}")
    if stopped_by.signum is not None:
        click.echo(f"stopped by {signal_name(stopped_by.signum)}")
        stopped_by.exit()  # 130 after Ctrl-C, 143 after SIGTERM
    linger(board)


def _run_folder(out: str | None) -> Path:
    """``--out`` (~ expanded, made if missing), else a new folder for this run: <hkrt home>/runs/demo-DATE-TIME
    (-2, -3... when a run of the same second has it), so a run never overwrites another's files."""
    if out is not None:
        folder = Path(out).expanduser()  # "--out=~/x" reaches us unexpanded
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise click.BadParameter(f"cannot use {folder}: {err.strerror or err}", param_hint="--out") from err
        return folder
    from hkrt.core.settings_env import hkrt_home

    runs = hkrt_home() / RUNS_DIR
    stamp = f"demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    for n in range(1, 1000):
        folder = runs / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
        except OSError as err:
            raise click.ClickException(
                f"cannot make the run folder {folder}: {err.strerror or err} (--out DIR)"
            ) from None
    raise click.ClickException(f"{runs} has 999 runs of {stamp}: give --out DIR")


def _window(start: dt.time | None, minutes: float | None, realtime: bool) -> tuple[dt.time, dt.time] | None:
    """The stretch of the day played at --speed (None: all of it)."""
    if start is None and minutes is None and not realtime:
        return None
    first = start or MARKET_OPEN  # real time from the open: the 15-minute auction is played fast
    if minutes is None:
        return (first, dt.time.max)
    end = dt.datetime.combine(dt.date(2000, 1, 1), first) + dt.timedelta(minutes=minutes)
    return (first, end.time() if end.day == 1 else dt.time.max)


def _days_text(days: list[dt.date]) -> str:
    if len(days) == 1:
        return str(days[0])
    return f"{len(days)} trading days, {days[0]} to {days[-1]}"


def _pace(speed: float, window: tuple[dt.time, dt.time] | None, days: int = 1) -> str:
    pace = "real time" if speed == 1 else f"{speed:g}x real time"
    before = f"; the days before it at up to {FAST_SPEED:g}x" if days > 1 else ""
    last = "the last day at " if days > 1 else ""
    if window is None:
        return f"{last}{pace} (a day in about {15_300 / speed:,.0f} s){before}"
    end = "the close" if window[1] >= MARKET_CLOSE else f"{window[1]:%H:%M:%S}"
    which = " of the last day" if days > 1 else ""
    return f"{pace} from {window[0]:%H:%M} to {end}{which}, the rest at {FAST_SPEED:g}x"


def _most_traded(strategy: Strategy) -> str:
    trades = strategy.trades
    if len(trades):
        return str(trades["symbol"].value_counts().index[0])
    return strategy.codes[0]


def _chart(strategy: Strategy, symbol: str, folder: Path, days: list[dt.date]) -> Path:
    from hkrt.notebook.chart import save_candlestick

    bars = strategy.kdata(symbol, KType.MIN5)
    trades = strategy.trades
    trades = trades[trades["symbol"] == symbol]
    when = f"on {days[0]}" if len(days) == 1 else f"{days[0]} to {days[-1]}"
    title = f"{symbol} MIN5 {when} (simulated), MA cross: {len(trades)} trade{'' if len(trades) == 1 else 's'}"
    return save_candlestick(folder / f"hkrt-demo-{symbol}-MIN5.png", bars, trades=trades, title=title)


def _summary(
    strategy: Strategy,
    agent: SpotAgent,
    report: Any,
    wall: float,
    hidden_warnings: int,
    stopped: dt.datetime | None,
    progress: _Progress,
) -> None:
    stats = agent.stats()
    t = stats["transport"]
    latency = t["latency_ms"]
    rows: list[tuple[str, str]] = [
        ("wall time", f"{wall:.1f} s"),
        ("cycles published / received", f"{report.published_cycles:,} / {t['cycles']:,}"),
        ("spots received / accepted", f"{stats['received']:,} / {stats['accepted']:,}"
                                      f"  (rejected {stats['rejected_total']:,}, duplicates {stats['duplicates']:,})"),
        ("messages", f"{t['messages']:,}, gaps {t['gaps']} ({t['missing_messages']} lost)"),
        ("message latency p50 / p99", f"{_ms(latency['p50'])} / {_ms(latency['p99'])}"),
        ("delivered at the close", f"{progress.delivered(KType.DAY):,} DAY bars, {progress.close_minutes:,} MIN bars "
                                   f"at 15:00 (every symbol{'' if report.day_closed else '; the day was not closed'}"
                                   f"{', each day' if report.days_played > 1 else ''})"),
    ]  # fmt: skip
    if report.days_played > 1:
        closed = len(report.closed_days)
        rows.insert(0, ("days", f"{report.days_played}: {report.days[0]} to {report.days[-1]}, "
                                f"{'each' if closed == report.days_played else closed} closed"))  # fmt: skip
    if stopped is not None:
        rows.insert(0, ("stopped early", f"at market time {stopped:%H:%M:%S}: the day was not closed, "
                                         "no later bar was delivered"))  # fmt: skip
    click.echo("\nsummary")
    _table(rows)

    click.echo("\nbars per period (every symbol)")
    bar_rows = []
    for k in ALL_KTYPES:
        per_symbol = Counter(len(agent.kdata(s, k)) for s in agent.symbols)
        total = sum(n * c for n, c in per_symbol.items())
        shape = ", ".join(f"{c} symbols x {n}" for n, c in sorted(per_symbol.items(), reverse=True) if n)
        bar_rows.append((k.value, f"{total:>9,} bars  ({shape or 'none'})"))
    _table(bar_rows)

    s = strategy.summary()
    orders = strategy.orders
    click.echo("\nstrategy")
    statuses = ", ".join(f"{name} {n}" for name, n in sorted(s["order_statuses"].items())) or "none"
    trades = strategy.trades
    sides = trades["side"].value_counts().to_dict() if len(trades) else {}
    refused = orders[orders["broker"] == "(strategy)"]
    performance = strategy.performance() if len(strategy.equity) else None
    trips = f"{performance.round_trips}" if performance is not None else "0"
    if performance is not None and performance.round_trips:
        trips += f"  (win rate {performance.win_rate:.0%})"
    rows = [
        ("orders", f"{s['orders']}  ({statuses})"),
        ("refused before sending", f"{len(refused)}  ({_reasons(refused['reason'])})" if len(refused) else "0"),
        ("trades", f"{s['trades']}  (buy {sides.get('buy', 0)}, sell {sides.get('sell', 0)})"),
        ("round trips", trips),
        (
            "P&L",
            f"{s['pnl']:+,.2f} yuan  (cash {s['cash']:,.2f}, positions {s['market_value']:,.2f}, "
            f"fees paid {s.get('fees', 0.0):,.2f})",
        ),
    ]
    if hidden_warnings:
        rows.append(("warnings", f"{hidden_warnings} 'order not sent' / 'order refused' warnings summarised above "
                                 "(--verbose shows)"))  # fmt: skip
    _table(rows)
    if performance is not None:
        click.echo("\nperformance (docs/performance.md)")
        for line in performance.table(markdown=False).splitlines():
            click.echo(f"  {line}")


_SIZE = ("cash", "below the lot")  # the sizing refusals of hkrt.strategy.pretrade


def _reasons(errors: pd.Series) -> str:
    """Refusal reasons grouped by kind (the texts name the symbol, so they are not grouped as is)."""
    kinds = Counter(
        "T+1: nothing sellable today" if "T+1" in e else "cash or lot rounding" if e.startswith(_SIZE) else e
        for e in errors.astype(str)
    )
    return ", ".join(f"{kind}: {n}" for kind, n in kinds.most_common())


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"  {name:<{width}}  {value}")
