"""The ledger a strategy keeps (docs/ledger.md, "In a strategy"): equal to the book to the fen after every fill of
simulated days with buys and sells, opened by sync_from_broker and set_cash, a fill it cannot post reported loudly,
a book changed by hand reported, and hkrt run --out writing ledger.parquet (ledger.csv without pyarrow)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import hkrt
from hkrt.adapters.paper.execution import PaperBroker
from hkrt.broker.asset import AssetInfo, BrokerPosition
from hkrt.bus import ExecutionReport
from hkrt.strategy import run_sim
from hkrt.strategy.ledger import to_fen
from hkrt.strategy.order import Order
from test_ledger import Venue

ROOT = Path(__file__).resolve().parents[1]
CODES = ["SH600000", "SZ000001", "SZ300001", "SH688001"]
FRIDAY = dt.datetime(2026, 11, 20, 10, 0)


def ledger_equals_book(strategy: hkrt.Strategy) -> list[str]:
    """What differs between the ledger and the book, counted here from their parts (not by the code under test)."""
    ledger, book = strategy.ledger, strategy.book
    found = []
    if ledger.balance_fen("cash") != to_fen(book.cash):
        found.append(f"cash {ledger.balance_fen('cash')} != {to_fen(book.cash)}")
    held = {s: n for s, (n, _) in ledger.positions().items()}
    if held != {s: p.shares for s, p in book.positions.items() if p.shares}:
        found.append(f"positions {held} != book")
    if sum(ledger.balance_fen(a) for a in ledger.balances()) != 0 or not all(t.balanced for t in ledger.transactions):
        found.append("unbalanced")
    return found


def test_every_fill_of_two_simulated_days_keeps_the_ledger_equal_to_the_book(caplog: Any) -> None:
    # day 1 buys (T+1: nothing to sell yet), day 2 sells half of what is sellable and buys again: the ledger
    # is kept across the days, and after every single fill of the paper broker it equals the book to the fen
    broker = PaperBroker(500_000, name="paper")
    strategy = hkrt.Strategy(CODES, brokers=[broker], cash=500_000, name="ledgerwire")
    checked: list[tuple[str, list[str]]] = []

    def after_each_fill(kind: str, order: Order, event: Any) -> None:  # runs right after the book took the fill
        if kind == "trade":
            checked.append((event.side, ledger_equals_book(strategy) + strategy.book.differences()))

    strategy.order_manager.listeners.append(after_each_fill)

    @strategy.run_daily(interval="5min")
    def trade() -> None:
        for symbol in CODES:
            sellable = strategy.book.sellable(symbol)
            if sellable:
                strategy.order(symbol, -(sellable // 2) or -sellable)
            else:
                strategy.order_value(symbol, 20_000)

    with caplog.at_level(logging.WARNING, logger="hkrt.strategy.ledger"):
        run_sim(strategy, "2026-11-19", symbols=20, speed=5000, handle_signals=False, until="10:00")
        day_one = len(checked)
        run_sim(strategy, "2026-11-20", symbols=20, speed=5000, handle_signals=False, until="10:00")
    sells = [d for side, d in checked if side == "sell"]
    assert day_one >= 4 and len(checked) > day_one and len(sells) >= 4, "both days must have filled, day 2 sold"
    assert [d for _, d in checked if d] == []  # every fill: equal, to the fen
    ledger = strategy.ledger
    assert ledger.stats["fills"] == strategy.book.trade_count == len(checked)
    assert ledger.transactions[0].description == "initial capital"  # one ledger over both days
    balances = ledger.balances()
    # itemized by the paper broker's own fee model: commission, transfer fee, and stamp tax on the sells
    assert balances["fees:commission"] > 0 and balances["fees:transfer"] > 0 and balances["taxes:stamp"] > 0
    assert "fees:unitemized" not in balances and to_fen(ledger.fees()) == to_fen(strategy.book.fees)
    assert strategy.check_ledger() == []
    report = strategy.ledger_report()
    assert report is not None and report.ok, report  # against the paper account itself
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def fill(strategy: hkrt.Strategy, symbol: str, side: str, shares: int, price: float, fees: float | None = None) -> None:
    """One order of ``shares`` sent to the strategy's broker and filled whole by its report."""
    manager = strategy.order_manager
    order = manager.submit(Order(manager.new_client_id(), symbol, side, shares, "limit", price=price,
                                 request_price=price, created=FRIDAY))  # fmt: skip
    manager.on_report(ExecutionReport(broker=strategy.brokers[0].name, kind="fill", symbol=symbol, side=side,
                                      client_order_id=order.client_order_id, shares=shares, price=price, fees=fees,
                                      trade_id=f"T-{order.client_order_id}", datetime=FRIDAY))  # fmt: skip
    assert order.status == "filled"


def account_strategy(asset: AssetInfo, cash: float = 1_000_000.0) -> hkrt.Strategy:
    return hkrt.Strategy(CODES, brokers=[Venue("account", asset)], cash=cash, name="lw")


def test_sync_from_broker_opens_the_ledger_with_the_cash_and_each_position_at_its_cost() -> None:
    asset = AssetInfo(80_000.0, [BrokerPosition("SH", "600000", 1000, cost_price=10.005),
                                 BrokerPosition("SZ", "000001", 300, cost_price=12.3456)])  # fmt: skip
    strategy = account_strategy(asset)
    strategy.sync_from_broker()
    ledger = strategy.ledger
    # 1,000 × 10.005 = 10,005.00 and 300 × 12.3456 = 3,703.68 at cost; capital = 80,000 + both = 93,708.68
    assert ledger.positions() == {"SH600000": (1000, 10_005.00), "SZ000001": (300, 3_703.68)}
    assert ledger.cash == 80_000.0 and ledger.balance("equity:capital") == -93_708.68
    assert [t.description for t in ledger.transactions] == [
        "initial capital", "opening position 1000 SH600000 @ 10.005", "opening position 300 SZ000001 @ 12.3456",
    ]  # fmt: skip
    ledger.check()
    assert strategy.check_ledger() == [] and strategy.book.initial_cash == 80_000.0
    report = strategy.ledger_report()
    assert report is not None and report.ok
    # sell 500 of the opening SH600000 at 11.00 (held from before: sellable), the broker charging 8.25 yuan:
    # cost 10,005.00 × 500 / 1,000 = 5,002.50 leaves the position, realized 5,500 − 5,002.50 = 497.50
    fill(strategy, "SH600000", "sell", 500, 11.00, fees=8.25)
    assert ledger.positions()["SH600000"] == (500, 5_002.50) and ledger.realized_pnl() == 497.50
    assert ledger.cash == 80_000 + 5_500 - 8.25 == strategy.book.cash
    assert strategy.check_ledger() == []


def test_set_cash_and_a_book_assigned_before_the_first_fill_keep_the_ledger_in_agreement(caplog: Any) -> None:
    strategy = account_strategy(AssetInfo(0.0))
    strategy.set_cash(250_000)
    assert (strategy.book.cash, strategy.book.initial_cash, strategy.ledger.cash) == (250_000, 250_000, 250_000)
    assert strategy.ledger.balance("equity:capital") == -250_000
    with pytest.raises(ValueError, match="cash must be a finite number of yuan, not nan"):
        strategy.set_cash(float("nan"))
    # the former way (hkrt run did this): assigned before any fill, the ledger follows the book
    strategy.book.cash = strategy.book.initial_cash = 300_000.0
    fill(strategy, "SH600000", "buy", 1000, 10.00, fees=5.10)
    assert strategy.book.ledger_stats["followed"] == 1 and strategy.ledger.balance("equity:capital") == -300_000
    assert strategy.ledger.cash == 300_000 - 10_000 - 5.10 and strategy.check_ledger() == []
    # after trading began a hand-made change of the book is never followed: the next fill says so, in fen
    strategy.book.cash += 12.34
    with caplog.at_level(logging.ERROR, logger="hkrt.strategy.ledger"):
        fill(strategy, "SZ000001", "buy", 100, 12.00, fees=5.01)
        found = strategy.check_ledger()
    assert strategy.book.ledger_stats["disagreements"] == 1
    assert any("ledger and book differ after fill" in r.getMessage() and "(-1234 fen)" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    # ledger 300,000 − 10,005.10 − 1,205.01 = 288,789.89; the book 12.34 more
    assert found == ["cash: ledger 28878989 fen (288,789.89 yuan), book 28880223 fen (288,802.23 yuan), "
                     "difference -1234 fen"]  # fmt: skip
    assert any(r.getMessage() == f"ledger and book: {found[0]}" for r in caplog.records)


def test_a_fill_the_ledger_cannot_post_is_an_error_counted_kept_and_its_cash_held_in_suspense(caplog: Any) -> None:
    # the broker reports a sale of 500 SH600000 the strategy never held (shares bought by hand, outside it): the
    # book takes the fill, the ledger cannot (a sell of more than it holds); nothing is dropped silently
    strategy = account_strategy(AssetInfo(0.0), cash=100_000)
    with caplog.at_level(logging.ERROR, logger="hkrt.strategy.ledger"):
        fill(strategy, "SH600000", "sell", 500, 10.00, fees=7.60)
        found = strategy.check_ledger()
    book, ledger = strategy.book, strategy.ledger
    assert book.ledger_stats["unposted"] == 1 and ledger.stats["refused"] == 1
    trade, why = book.unposted[0]
    assert (trade.symbol, trade.side, trade.shares) == ("SH600000", "sell", 500)
    assert why == "SH600000 sell of 500 shares exceeds the 0 held"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("could not post fill" in m and why in m for m in errors), errors
    # the cash it moved (5,000 − 7.60) is the book's and sits against suspense: balanced, visible
    assert ledger.cash == book.cash == 100_000 + 5_000 - 7.60 and ledger.suspense == 4_992.40
    ledger.check()
    assert found == [
        "fees: ledger 0 fen (0.00 yuan), book 760 fen (7.60 yuan), difference -760 fen",
        "suspense holds 499240 fen (4,992.40 yuan) of cash the ledger could not explain",
        "1 fills could not be posted (strategy.book.unposted)",
    ]


SCRIPT = """
import hkrt

strategy = hkrt.Strategy(["SH600000", "SZ000001", "SZ300001"], cash=1_000_000, name="ledger_cli")


@strategy.run_daily(interval="10min")
def buy() -> None:
    for symbol in strategy.codes:
        strategy.order_value(symbol, 30_000)
"""


def test_hkrt_run_cash_and_out_write_the_ledger_opened_with_that_cash(tmp_path: Path) -> None:
    script = tmp_path / "buyer.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    args = ["run", str(script), "--source", "sim", "--date", "2026-11-20", "--symbols", "20", "--speed", "5000",
            "--until", "10:00", "--cash", "300000", "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "hkrt", *args], capture_output=True, text=True, timeout=180,
                          cwd=ROOT, env={**os.environ, "HKRT_TEST_FILLS": "market"})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"ledger: \d+ transactions, balanced, equal to the book to the fen", done.stdout), done.stdout
    assert re.search(r"ledger and broker \S+ agree: cash ", done.stdout), done.stdout
    ledger = pd.read_parquet(out / "ledger.parquet")
    assert ledger.groupby("txn_id").fen.sum().eq(0).all()  # every transaction balanced
    opening = ledger[ledger.txn_id == 1]  # --cash opened the ledger (Strategy.set_cash), not the script's cash
    assert dict(zip(opening.account, opening.fen, strict=True)) == {"cash": 30_000_000, "equity:capital": -30_000_000}
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades) >= 3 and set(trades.side) == {"buy"}
    # the ledger's cash is --cash less what the trades.csv fills cost, fees included, to the fen
    spent = sum(to_fen(p * n) + to_fen(f) for p, n, f in zip(trades.price, trades.shares, trades.fees, strict=True))
    assert ledger.groupby("account").fen.sum()["cash"] == 30_000_000 - spent
    assert not [line for line in done.stderr.splitlines() if "ERROR" in line], done.stderr


def test_the_worked_example_of_docs_ledger_md_in_a_strategy() -> None:
    asset = AssetInfo(80_000.0, [BrokerPosition("SH", "600000", 1000, cost_price=10.005),
                                 BrokerPosition("SZ", "000001", 300, cost_price=12.3456)])  # fmt: skip
    strategy = account_strategy(asset)  # the default FeeModel prices the fills (the reports carry no fees)
    strategy.sync_from_broker()
    fill(strategy, "SH600000", "sell", 500, 11.00)  # fees 5.00 + stamp 2.75 + transfer 0.06 = 7.81
    fill(strategy, "SZ000001", "buy", 200, 12.00)  # fees 5.00 + transfer 0.02 = 5.02
    assert strategy.ledger.balances() == {
        "cash": 83_087.17,
        "equity:capital": -93_708.68,
        "fees:commission": 10.00,
        "fees:transfer": 0.08,
        "positions:SH600000": 5_002.50,
        "positions:SZ000001": 6_103.68,
        "realized_pnl": -497.50,
        "taxes:stamp": 2.75,
    }
    assert strategy.book.cash == pytest.approx(83_087.17, abs=1e-9) and strategy.check_ledger() == []
    assert strategy.positions["SZ000001"].cost_price == pytest.approx((3_703.68 + 2_400 + 5.02) / 500)
