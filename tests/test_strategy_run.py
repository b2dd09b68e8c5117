"""Strategies over a whole simulated day, end to end: spot server -> agent -> strategy -> broker.

Expected orders are computed independently of the strategy runtime, from the simulated market
itself (its snapshots, or a reference agent fed in-process), with the rules written out here.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import hkrt
from hkrt.fetcher.sim import SimConfig, SimMarket
from hkrt.strategy import load_strategy, round_buy, run_replay, run_sim

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 20)
SYMBOLS = 50  # the simulated universe: SH600000.., SZ000001.., SZ300001.., SH688001.., BJ920001..


def hkrt_cli(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hkrt", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, **(env or {})})  # fmt: skip


def round_fen(yuan: float) -> float:
    """Half up to 0.01 yuan, as the fee model rounds each component."""
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(repr(yuan)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def sim_prices_at(when: dt.datetime, symbols: list[str]) -> dict[str, float]:
    market = SimMarket(DAY, SimConfig(symbols=SYMBOLS))
    for t in market.times():
        snap = market.snapshot(t)
        if t == when:
            names = [s.decode() for s in snap["symbol"]]
            return {s: float(snap["close"][names.index(s)]) for s in symbols}
    raise AssertionError(f"no snapshot at {when}")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def without_ids(orders: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in o.items() if k != "client_order_id"} for o in orders]


# ------------------------------------------------------------- daily rebalance, CLI
def test_hkrt_run_daily_rebalance_over_a_simulated_day_matches_the_hand_computed_orders(tmp_path: Path) -> None:
    # the paper broker's instant mode (every order filled at its own price) so the fills are computed by hand
    # too; the realistic one (the default) is tested by the lifecycle tests
    out = hkrt_cli("run", "examples/daily_rebalance.py", "--source", "sim", "--broker", "test",
                   "--date", str(DAY), "--symbols", str(SYMBOLS), "--out", str(tmp_path),
                   "--state-dir", str(tmp_path / "state"), env={"HKRT_TEST_FILLS": "instant"})  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"held orders journalled in {tmp_path / 'state' / 'emulator.jsonl'}" in out.stdout
    # the run's performance: printed, its equity curve and a PNG written next to the orders
    assert "max drawdown" in out.stdout and "Sharpe" in out.stdout
    assert (tmp_path / "performance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    equity = read_csv(tmp_path / "equity.csv")
    # one sample per market minute the feed delivered: the call auction 09:15..09:29 (15), the sessions
    # 09:30..11:29 and 13:00..14:59 (240) and the close at 15:00
    assert len(equity) == 256 and (equity[0]["datetime"], equity[-1]["datetime"]) == (
        "2026-11-20 09:15:00",
        "2026-11-20 15:00:00",
    )
    assert float(equity[0]["equity"]) == pytest.approx(1_000_000)
    basket = ["SH600000", "SH600002", "SZ000001", "SZ000003", "SZ300002"]
    at = dt.datetime.combine(DAY, dt.time(14, 50))
    prices = sim_prices_at(at, basket)
    # By hand: value 1,000,000 yuan in cash, 2 % kept back, five equal parts of 196,000 yuan,
    # each rounded down to whole 100-share lots at the 14:50:00 price.
    target = 1_000_000 * 0.98 / 5
    want = [(s, math.floor(target / prices[s] / 100) * 100, prices[s]) for s in basket]
    orders = read_csv(tmp_path / "orders.csv")
    got = [(o["symbol"], int(o["shares"]), float(o["price"])) for o in orders]
    assert got == want
    assert {o["created"] for o in orders} == {"2026-11-20 14:50:00"}
    assert {(o["side"], o["status"], o["broker"]) for o in orders} == {("buy", "filled", "TestOrderBroker")}
    trades = read_csv(tmp_path / "trades.csv")
    assert [(t["symbol"], int(t["shares"])) for t in trades] == [(s, n) for s, n, _ in want]
    spent = sum(n * p for _, n, p in want)
    # fees by hand: each buy ~38,000-196,000 yuan pays 0.025 % commission (over the 5-yuan minimum) and
    # 0.001 % transfer fee, each rounded half up to the fen; no stamp tax on buys
    fees = sum(round_fen(n * p * 0.00025) + round_fen(n * p * 0.00001) for _, n, p in want)
    assert sum(float(t["fees"]) for t in trades) == pytest.approx(fees)
    assert f"cash {1_000_000 - spent - fees:,.2f}" in out.stdout
    assert "P&L:" in out.stdout and "0 gaps" in out.stdout


# ------------------------------------------------------------- MA cross, in process
def reference_ma_cross_orders() -> list[tuple[dt.datetime, str, str, int, float]]:
    """The MA cross rules of examples/ma_cross.py applied to MIN5 bars of a reference agent
    that was fed the simulated day in-process (no sockets, no strategy runtime)."""
    ref = hkrt.SpotAgent(["MIN5"])
    for snap in SimMarket(DAY, SimConfig(symbols=SYMBOLS)).day_snapshots():
        ref.ingest(snap)
    ref.advance_to(dt.datetime.combine(DAY, dt.time(15, 5)))
    orders = []
    cash = 1_000_000.0
    for symbol in ["SH600000", "SH600001", "SZ000001", "SZ000002", "SZ300001", "SH688001"]:
        close = ref.kdata(symbol, "MIN5")["close"]
        fast, slow = close.rolling(5).mean(), close.rolling(20).mean()
        held = 0
        for i in range(20, len(close)):
            was, now = fast.iloc[i - 1] > slow.iloc[i - 1], fast.iloc[i] > slow.iloc[i]
            when, price = close.index[i].to_pydatetime(), float(close.iloc[i])
            if now and not was and held == 0:
                held = round_buy(symbol, min(100_000 / price, cash / price))
                orders.append((when, symbol, "buy", held, price))
            elif was and not now and held > 0:
                orders.append((when, symbol, "sell", 0, price))  # refused: bought today (T+1)
    return sorted(orders, key=lambda o: (o[0], o[1]))


def test_ma_cross_on_a_simulated_day_places_the_reference_orders_on_one_callback_thread() -> None:
    strategy = load_strategy(ROOT / "examples" / "ma_cross.py")
    strategy.set_brokers([hkrt.TestOrderBroker(cash=1_000_000)])  # instant fills: the reference is computed by hand
    threads: set[int] = set()
    events: list[str] = []
    strategy.on_start(lambda: (threads.add(threading.get_ident()), events.append("start")))
    strategy.on_stop(lambda: (threads.add(threading.get_ident()), events.append("stop")))
    strategy.on_bar(lambda *a: threads.add(threading.get_ident()))
    strategy.on_cycle(lambda info: threads.add(threading.get_ident()))
    fired: list[dt.datetime] = []

    @strategy.run_daily(interval="30min")
    def every_half_hour() -> None:
        threads.add(threading.get_ident())
        assert strategy.now is not None
        fired.append(strategy.now)

    report = run_sim(strategy, DAY, symbols=SYMBOLS, speed=3000, handle_signals=False)
    assert (report.gaps, report.published_messages, report.received_messages) == (0, 5101, 5101)
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert events == ["start", "stop"]
    # run_daily fires at the first 3-second snapshot at or after each instant: the instants themselves
    assert [t.strftime("%H:%M:%S") for t in fired] == [
        "09:30:00", "10:00:00", "10:30:00", "11:00:00", "13:00:00", "13:30:00", "14:00:00", "14:30:00",
    ]  # fmt: skip
    orders = strategy.orders
    got = sorted(
        (r.created.to_pydatetime(), r.symbol, r.side, int(r.shares), float(r.price)) for r in orders.itertuples()
    )
    want = reference_ma_cross_orders()
    assert want, "the reference day must contain at least one cross"
    assert got == want
    buys = orders[orders.side == "buy"]
    assert set(buys.status) == {"filled"} and set(orders[orders.side == "sell"].status) <= {"rejected"}
    summary = strategy.summary()
    assert summary["trades"] == len(buys)
    assert summary["cash"] == pytest.approx(1_000_000 - (buys.shares * buys.price).sum() - buys.fees.sum())
    assert (buys.fees >= 5.0).all()  # the commission's minimum at least
    broker = strategy.brokers[0]
    assert isinstance(broker, hkrt.TestOrderBroker)
    assert {f"{m}{c}": p.number for (m, c), p in broker.positions.items()} == summary["positions"]


# -------------------------------------------- the same script on a live-style feed
def test_the_same_script_on_a_spot_server_feed_and_on_its_recording_gives_the_same_orders(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    journal = tmp_path / "day.hkj"
    server = subprocess.Popen(
        [sys.executable, "-m", "hkrt", "spot-server", "--source", "sim", "--symbols", str(SYMBOLS), "--date", str(DAY),
         "--speed", "2000", "--address", address, "--wait-subscribers", "1", "--record", str(journal)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # its status line would fill a pipe
    )  # fmt: skip
    try:
        feed = hkrt_cli("run", "examples/daily_rebalance.py", "--source", "feed", "--address", address,
                        "--feed-is-sim", "--until", "15:00", "--out", str(tmp_path / "feed"))  # fmt: skip
    finally:
        server.wait(60)
    assert feed.returncode == 0, feed.stdout + feed.stderr
    sim = hkrt_cli("run", "examples/daily_rebalance.py", "--source", "sim", "--date", str(DAY),
                   "--symbols", str(SYMBOLS), "--out", str(tmp_path / "sim"))  # fmt: skip
    assert sim.returncode == 0, sim.stdout + sim.stderr
    from_feed, from_sim = read_csv(tmp_path / "feed" / "orders.csv"), read_csv(tmp_path / "sim" / "orders.csv")
    # the same orders both ways; client ids differ between runs (each run has its own tag)
    assert len(from_sim) == 5 and without_ids(from_feed) == without_ids(from_sim)

    replayed = load_strategy(ROOT / "examples" / "daily_rebalance.py")
    report = run_replay(replayed, journal, handle_signals=False)
    assert report.gaps == 0
    got = replayed.orders.astype(str).to_dict("records")
    assert [(o["created"], o["symbol"], o["shares"], o["price"]) for o in got] == [
        (o["created"], o["symbol"], o["shares"], o["price"]) for o in from_sim
    ]
    # and the same fills: the paper broker matches the same spots in the same order every way
    fills = ["datetime", "symbol", "side", "price", "shares", "fees"]
    trades_feed, trades_sim = read_csv(tmp_path / "feed" / "trades.csv"), read_csv(tmp_path / "sim" / "trades.csv")
    assert trades_sim and [[t[k] for k in fills] for t in trades_feed] == [[t[k] for k in fills] for t in trades_sim]
    replayed_trades = replayed.trades.astype(str).to_dict("records")
    assert [[t[k] for k in fills] for t in replayed_trades] == [[t[k] for k in fills] for t in trades_sim]


def test_a_live_run_never_sends_history_to_the_broker(tmp_path: Path) -> None:
    """Live (the default for --source feed), every broker refuses orders dated before the start:
    a simulated past day's orders are all Skipped and the paper broker never sees them."""
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "hkrt", "spot-server", "--source", "sim", "--symbols", str(SYMBOLS), "--date", str(DAY),
         "--speed", "2000", "--address", address, "--wait-subscribers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # its status line would fill a pipe
    )  # fmt: skip
    try:
        live = hkrt_cli("run", "examples/daily_rebalance.py", "--address", address, "--until", "15:00",
                        "--out", str(tmp_path))  # fmt: skip
    finally:
        server.wait(60)
    assert live.returncode == 0, live.stdout + live.stderr
    orders = read_csv(tmp_path / "orders.csv")
    assert len(orders) == 5 and {o["status"] for o in orders} == {"rejected"}
    assert all(o["reason"].startswith("Skipped") for o in orders), orders
    assert all("broker_last_datetime" in o["reason"] or "before" in o["reason"] for o in orders), orders
    assert read_csv(tmp_path / "trades.csv") == []


# ------------------------------------------------------------------- stopping
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_hkrt_run_stops_cleanly_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hkrt", "run", "examples/ma_cross.py", "--address", f"ipc://{tmp_path / 'none.ipc'}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while "subscribing" not in (line := proc.stdout.readline()):
        assert line and time.monotonic() < deadline, "hkrt run did not start"
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err  # 143 / 130, after the report
    assert "orders (0)" in out and "P&L: +0.00 yuan" in out
    assert "Traceback" not in err


# ---------------------------------------------------------------- CLI errors
def test_hkrt_run_errors_are_clear(tmp_path: Path) -> None:
    missing = hkrt_cli("run", "no_such_strategy.py", "--source", "sim")
    assert missing.returncode != 0 and "no strategy script" in missing.stderr
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    none = hkrt_cli("run", str(empty), "--source", "sim")
    assert none.returncode != 0 and "defines no Strategy" in none.stderr
    outside = tmp_path / "outside.py"
    outside.write_text("import hkrt\nstrategy = hkrt.Strategy(['SH601999'])\n")
    out = hkrt_cli("run", str(outside), "--source", "sim", "--symbols", "20")
    assert out.returncode != 0 and "SH601999 not in the simulated market" in out.stderr
    secret = "s3cret-do-not-print"
    mail = hkrt_cli("run", "examples/ma_cross.py", "--source", "sim", "--broker", "mail",
                    env={"HKRT_MAIL_PASSWORD": secret, "HKRT_MAIL_HOST": ""})  # fmt: skip
    assert mail.returncode != 0 and "HKRT_MAIL_HOST" in mail.stderr
    assert secret not in mail.stdout + mail.stderr
    qmt = hkrt_cli("run", "examples/ma_cross.py", "--source", "sim", "--broker", "qmt",
                   env={"HKRT_QMT_PATH": "C:/QMT/userdata_mini", "HKRT_QMT_ACCOUNT": "123"})  # fmt: skip
    assert qmt.returncode != 0 and "Windows" in qmt.stderr and "Traceback" not in qmt.stderr
