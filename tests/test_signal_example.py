"""examples/signal_vote.py end to end: a MACD and an RSI source vote for one account over simulated days.

Real parts: ``run_sim`` (its in-process spot server, the account's agent and bus, the paper broker) for two
consecutive trading days with the book carried over, so the sells decided on the first day go out on the
second (T+1) and round trips show; and ``hkrt run`` in a subprocess, as the example's docstring says.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hkrt.strategy import Strategy, load_strategy, run_sim
from hkrt.strategy.aggregator import SignalAggregator, aggregator_of
from hkrt.strategy.signals_attribution import ACCOUNT, COLUMNS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "signal_vote.py"
FRIDAY, MONDAY = "2026-11-20", "2026-11-23"
SYMBOLS = 20


def check_sums(account: Strategy, aggregator: SignalAggregator) -> pd.DataFrame:
    """The attribution table against the account's own records: its trades, fees, orders and P&L."""
    table = aggregator.attribution()
    trades, summary = account.trades, account.summary()
    assert table["bought"].sum() == pytest.approx(trades[trades.side == "buy"].shares.sum())
    assert table["sold"].sum() == pytest.approx(trades[trades.side == "sell"].shares.sum())
    assert table["fees"].sum() == pytest.approx(trades.fees.sum()) == pytest.approx(summary["fees"])
    assert table["orders"].sum() == pytest.approx(len(account.orders))
    assert table["pnl"].sum() == pytest.approx(summary["pnl"])
    assert table["market_value"].sum() == pytest.approx(summary["market_value"])
    assert (table.loc[ACCOUNT, COLUMNS].abs() < 1e-6).all(), table  # the account traded only on the vote
    return table


def test_two_sources_vote_over_two_simulated_days_and_the_attribution_sums_to_the_account() -> None:
    account = load_strategy(EXAMPLE)  # the account: its sources are module-level too, and not picked
    aggregator = aggregator_of(account)
    assert aggregator is not None
    macd, rsi = aggregator.sources
    assert (account.name, macd.name, rsi.name) == ("account", "macd", "rsi")

    report = run_sim(account, FRIDAY, symbols=SYMBOLS, speed=20000, handle_signals=False)
    assert report.day_closed and report.gaps == 0
    friday = check_sums(account, aggregator)
    orders = account.orders
    assert len(orders) > 0 and set(orders.side) == {"buy"}  # sells wait for sellable shares (T+1)
    assert (orders.status == "filled").all()
    assert aggregator.stats["waiting_sellable"] > 0
    for remark in orders.remark:  # "signals vote +0.68: macd 0.73, rsi 0.27": a score over 0.6, both voting
        head, shares = remark.split(": ")
        assert head.startswith("signals vote +") and float(head.rsplit(" ", 1)[1]) >= 0.6
        parts = dict(p.split(" ") for p in shares.split(", "))
        assert set(parts) == {"macd", "rsi"} and math.isclose(sum(map(float, parts.values())), 1.0, abs_tol=0.02)
    assert friday.loc["macd", "signals"] > 0 and friday.loc["rsi", "signals"] > 0
    assert macd.orders.empty and rsi.orders.empty and macd.bus is None  # they signalled; detached with the account

    report = run_sim(account, MONDAY, symbols=SYMBOLS, speed=20000, handle_signals=False)
    assert report.day_closed and report.gaps == 0
    monday = check_sums(account, aggregator)
    sells = account.orders[account.orders.side == "sell"]
    assert len(sells) > 0 and (sells.created.dt.date == dt.date(2026, 11, 23)).all()
    assert sells.filled_shares.sum() > 0
    for source in ("macd", "rsi"):  # round trips: each source sold part of what it bought, and has realised P&L
        row = monday.loc[source]
        assert 0 < row["sold"] <= row["bought"] + 1e-6 and row["realized_pnl"] != 0
    assert monday["realized_pnl"].sum() != 0


def read_table(stdout: str) -> pd.DataFrame:
    """The attribution table the example prints at its stop."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("signal attribution by source"))
    rows = {}
    for line in lines[start + 1 :]:
        words = line.split()
        if words and words[0] in ("macd", "rsi", ACCOUNT):
            rows[words[0]] = [float(w) for w in words[1:]]
        if len(rows) == 3:
            break
    return pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)


def test_the_example_runs_under_hkrt_run_and_prints_an_attribution_that_sums(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hkrt", "run", str(EXAMPLE), "--source", "sim", "--broker", "paper", "--date", FRIDAY,
         "--symbols", str(SYMBOLS), "--speed", "20000", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr and " raised" not in done.stderr, done.stderr[-3000:]
    table = read_table(done.stdout)
    orders = pd.read_csv(tmp_path / "orders.csv")
    trades = pd.read_csv(tmp_path / "trades.csv")
    assert len(orders) > 0 and orders.remark.str.startswith("signals vote +").all()
    assert table["bought"].sum() == pytest.approx(trades.shares.sum(), abs=0.05)  # printed to 2 decimals
    assert table["fees"].sum() == pytest.approx(trades.fees.sum(), abs=0.05)
    assert table["orders"].sum() == pytest.approx(len(orders), abs=0.05)
    assert (table.loc[ACCOUNT].abs() < 0.01).all()
