"""`hkrt demo`: a simulated day through spot server, agent and strategy, with a summary, a chart
and the orders as CSV.  Expected counts come from the simulated market itself, not the demo.
One day (--days 1) here; the default multi-day demo is tested in tests/test_multiday_cli.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hkrt
from hkrt.agent.spot_agent import SpotAgent
from hkrt.cli.demo import _Progress
from hkrt.core.ktype import KType
from hkrt.feed.server import ServerStatus
from hkrt.fetcher.sim import SimConfig, SimMarket, universe
from hkrt.strategy.demo import demo_codes, ma_cross_strategy

DAY = dt.date(2026, 11, 20)
SYMBOLS = 60
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Run = tuple[subprocess.CompletedProcess[str], Path]


def demo(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    # the hkrt this test imported (the installed package in CI, the source tree in development); a deprecated
    # API (click's, numpy's, pandas') on the demo's path fails it
    env = {**os.environ, "PYTHONPATH": str(Path(hkrt.__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-m", "hkrt", "demo", "--date", str(DAY), "--days", "1",
         "--symbols", str(SYMBOLS), "--out", str(out), *args],
        capture_output=True, text=True, timeout=300, cwd=out.parent, env=env,
    )  # fmt: skip


def summary_value(stdout: str, name: str) -> str:
    match = re.search(rf"^  {re.escape(name)}\s+(.+)$", stdout, re.M)
    assert match, f"no {name!r} row in:\n{stdout}"
    return match.group(1)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def same_orders(a: list[dict[str, str]], b: list[dict[str, str]]) -> bool:
    """The same orders, but for their client ids (each run has its own run tag in them)."""

    def strip(orders: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in o.items() if k != "client_order_id"} for o in orders]

    return strip(a) == strip(b)


def market_facts() -> tuple[int, int]:
    """(snapshots of the day, symbols trading) of the simulated market, straight from SimMarket."""
    market = SimMarket(DAY, SimConfig(symbols=SYMBOLS))
    times = list(market.times())
    trading = 0
    for t in times:
        snap = market.snapshot(t)
        if t.time() == dt.time(9, 30):
            trading = int((snap["close"] > 0).sum())  # a suspended symbol has no price all day
            break
    return len(times), trading


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("demo") / "out"
    return demo("--speed", "3000", out=out), out


def test_demo_runs_a_whole_day_and_reports_every_period(fast_run: Run) -> None:
    result, _ = fast_run
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    snapshots, trading = market_facts()
    assert trading > 0
    assert summary_value(out, "spots received / accepted").startswith(f"{snapshots * SYMBOLS:,} / ")
    assert summary_value(out, "cycles published / received") == f"{snapshots:,} / {snapshots:,}"
    assert summary_value(out, "messages").endswith("gaps 0 (0 lost)")
    # every period is built for every trading symbol: 240 one-minute bars a day, 48 MIN5, ...
    per_day = {"MIN": 240, "MIN3": 80, "MIN5": 48, "MIN15": 16, "MIN30": 8, "MIN60": 4, "HOUR2": 2}
    for k in KType:
        count = int(summary_value(out, k.value).split(" bars")[0].replace(",", ""))
        assert count == per_day.get(k.value, 1) * trading, k
    assert re.search(r"latency p50 / p99\s+\d+\.\d+ ms / \d+\.\d+ ms", out)
    # no carriage-return status line when stdout is not a terminal: a line per tenth of the day
    assert "\r" not in out
    progress = [line for line in out.splitlines() if line.startswith("market ")]
    assert 8 <= len(progress) <= 11 and progress[-1].startswith("market 15:00:00 100%")
    # INFO logs and per-order warnings stay off the terminal
    assert "order not sent" not in result.stderr and " INFO " not in result.stderr


def test_demo_writes_the_chart_and_the_orders_it_reports(fast_run: Run) -> None:
    result, folder = fast_run
    assert result.returncode == 0, result.stdout + result.stderr
    chart = Path(re.search(r"^chart:\s+(\S+\.png)", result.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert chart.parent == folder and chart.is_file()
    data = chart.read_bytes()
    assert data.startswith(PNG_MAGIC) and 10_000 < len(data) < 2_000_000
    orders, trades = rows(folder / "orders.csv"), rows(folder / "trades.csv")
    assert summary_value(result.stdout, "orders").startswith(f"{len(orders)}  (")
    assert summary_value(result.stdout, "trades").startswith(f"{len(trades)}  (")
    assert trades, "the MA cross trades on the demo's day"
    codes = set(demo_codes(universe(SYMBOLS)))
    assert {o["symbol"] for o in orders} <= codes
    # the chart is of the most traded symbol
    counts = {s: sum(t["symbol"] == s for t in trades) for s in codes}
    assert counts[chart.name.split("-")[2]] == max(counts.values())
    refused = [o for o in orders if o["broker"] == "(strategy)"]
    assert all("T+1" in o["reason"] for o in refused)  # a single day: today's buys cannot be sold
    if refused:
        assert summary_value(result.stdout, "refused before sending").startswith(f"{len(refused)}  (T+1")


def test_a_real_time_stretch_changes_the_pace_not_the_day(fast_run: Run, tmp_path: Path) -> None:
    fast, fast_folder = fast_run
    out = tmp_path / "realtime"
    # one 3-second snapshot at the market's own pace, the rest of the day fast
    result = demo("--realtime", "--start", "14:59:54", "--minutes", "0.05", "--symbol", "SZ000001", out=out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "real time from 14:59 to 14:59:57, the rest at 20000x" in result.stdout
    assert (out / "hkrt-demo-SZ000001-MIN5.png").read_bytes().startswith(PNG_MAGIC)
    # market time drives everything: same bars, same orders as the fast run
    assert same_orders(rows(out / "orders.csv"), rows(fast_folder / "orders.csv"))
    assert summary_value(result.stdout, "MIN") == summary_value(fast.stdout, "MIN")


def test_demo_refuses_bad_options(tmp_path: Path) -> None:
    for args, message in [
        (["--date", "2026-10-01"], "2026-10-01 is not a trading day"),
        (["--start", "25:00"], "'25:00' is not a time of day"),
        (["--symbol", "SH609999"], "SH609999 is not among the 60 simulated symbols"),
        (["--speed", "0"], "must be positive"),
    ]:
        result = demo(*args, out=tmp_path / "x")
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_line_on_a_terminal_and_prints_tenths_otherwise() -> None:
    strategy = ma_cross_strategy(["SH600000"])
    agent = SpotAgent(["MIN"])
    terminal, log = _Terminal(), io.StringIO()
    ticks = iter(range(1000))  # each redraw a second after the one before: past the refresh interval
    on_tty = _Progress(strategy, 100, terminal, clock=lambda: float(next(ticks)))
    in_log = _Progress(strategy, 100, log)
    for cycle in range(1, 101):
        status = ServerStatus(cycles=cycle, last_market_time=dt.datetime(2026, 11, 20, 9, 30))
        in_log(agent, status)
        on_tty(agent, status)
    on_tty.finish(agent, status)
    assert "\n" not in terminal.getvalue().rstrip("\n") and terminal.getvalue().count("\r") == 101
    lines = log.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in log.getvalue()
    assert [line.split()[2] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]


def test_without_out_each_run_gets_a_folder_of_its_own_and_the_current_directory_stays_clean(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(hkrt.__file__).resolve().parents[1]), "HKRT_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "hkrt", "demo", "--date", str(DAY), "--days", "1", "--symbols", "10",
         "--speed", "20000"],
        capture_output=True, text=True, timeout=300, cwd=work, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    folder = Path(re.search(r"^run folder: (.+)$", result.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert folder.parent == home / "runs" and folder.name.startswith("demo-")
    assert {p.name for p in folder.iterdir()} >= {"orders.csv", "trades.csv"}
    assert any(p.suffix == ".png" for p in folder.iterdir())
    assert f"orders: {folder / 'orders.csv'}" in result.stdout
    assert list(work.iterdir()) == []  # nothing written where it ran


def test_run_folders_never_overwrite_an_earlier_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hkrt.cli.demo import _run_folder

    monkeypatch.setenv("HKRT_HOME", str(tmp_path))
    folders = [_run_folder(None) for _ in range(3)]  # within a second or two: same stamp, -2, -3
    assert len(set(folders)) == 3 and all(f.is_dir() and f.parent == tmp_path / "runs" for f in folders)
    chosen = _run_folder(str(tmp_path / "mine"))  # --out: that folder, made if missing
    assert chosen == tmp_path / "mine" and chosen.is_dir()


def test_refused_orders_are_summarised_not_logged_one_by_one() -> None:
    from hkrt.cli.demo import _RefusalFilter

    def record(name: str, msg: str, **extra: str) -> logging.LogRecord:
        made = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)
        made.__dict__.update(extra)
        return made

    refusals = _RefusalFilter()
    assert not refusals.filter(record("hkrt.strategy", "order not sent: T+1", reason="T+1"))
    assert not refusals.filter(record("hkrt.risk", "order refused: buy SH600000: risk: hours", check="trading_hours"))
    assert refusals.filter(record("hkrt.risk", "trading halted: daily loss", state="halted"))  # not a refusal
    assert refusals.filter(record("hkrt.agent", "messages lost"))
    assert refusals.count == 2
