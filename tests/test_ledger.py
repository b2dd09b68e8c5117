"""The double-entry ledger (docs/ledger.md): postings by hand, average cost, refusals, the bound, a property over
random sequences, the frame and Parquet export, and a ledger built from a real simulated run's trades."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hkrt import OrderBrokerBase, OrderResult, OrderStatus
from hkrt.broker import OrderRequest
from hkrt.broker.asset import AssetInfo
from hkrt.bus import ExecutionReport
from hkrt.core.fees import FeeModel, Fees
from hkrt.strategy.book import Trade
from hkrt.strategy.ledger import LEDGER_COLUMNS, Ledger, LedgerError, split_fees, to_fen
from hkrt.strategy.ledger_book import LedgeredBook
from hkrt.strategy.order import Order
from hkrt.strategy.order_manager import OrderManager

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 11, 20, 10, 0)
T1 = dt.datetime(2026, 11, 23, 10, 0)


def test_round_trip_by_hand() -> None:
    ledger = Ledger(100_000)
    # buy 1,000 @ 10.00: amount 10,000.00; fees 5.10 (commission 5.00 minimum, transfer 0.10)
    buy = ledger.post_fill(T0, "SH600000", "buy", 1000, 10.00, Fees(5.00, 0.0, 0.10), trade_id="t1",
                           client_order_id="o1")  # fmt: skip
    assert buy.balanced and buy.trade_id == "t1" and buy.client_order_id == "o1"
    # cash 100,000 − 10,000 − 5.10 = 89,994.90; the position at cost 10,000.00 (fees expensed, not capitalized)
    assert ledger.cash == 89_994.90
    assert ledger.positions() == {"SH600000": (1000, 10_000.00)}
    # sell 1,000 @ 10.50: amount 10,500.00; fees 10.35 (commission 5.00, stamp tax 5.25, transfer 0.10)
    ledger.post_fill(T1, "SH600000", "sell", 1000, 10.50, Fees(5.00, 5.25, 0.10), trade_id="t2")
    # cash 89,994.90 + 10,500 − 10.35 = 100,484.55; realized 10,500 − 10,000 = 500.00 (gross of fees);
    # fees 5.10 + 10.35 = 15.45: commission 10.00, stamp 5.25, transfer 0.20; 100,000 + 500 − 15.45 = 100,484.55
    assert ledger.balances() == {
        "cash": 100_484.55,
        "equity:capital": -100_000.00,
        "fees:commission": 10.00,
        "fees:transfer": 0.20,
        "positions:SH600000": 0.0,
        "realized_pnl": -500.00,
        "taxes:stamp": 5.25,
    }
    assert ledger.realized_pnl() == 500.00 and ledger.fees() == 15.45 and ledger.positions() == {}
    assert sum(ledger.balance_fen(a) for a in ledger.balances()) == 0
    ledger.check()


def test_partial_sells_at_average_cost() -> None:
    ledger = Ledger(1_000_000)
    ledger.post_fill(T0, "SZ000001", "buy", 300, 10.00, 5.0)  # cost 3,000.00
    ledger.post_fill(T0, "SZ000001", "buy", 200, 11.00, 5.0)  # cost 3,000 + 2,200 = 5,200.00 for 500: 10.40 each
    ledger.post_fill(T1, "SZ000001", "sell", 100, 12.00, 5.0)
    # sold 100 at average 10.40: cost 1,040.00 off the position, realized 1,200 − 1,040 = 160.00
    assert ledger.positions() == {"SZ000001": (400, 4_160.00)}
    assert ledger.realized_pnl() == 160.00
    # 400 at 4,160.00 is still 10.40 each; a sale of 3 of 400 takes 4,160 × 3 / 400 = 31.20
    ledger.post_fill(T1, "SZ000001", "sell", 3, 10.00, 0.0)
    assert ledger.positions() == {"SZ000001": (397, 4_128.80)} and ledger.realized_pnl() == 160.00 - 1.20
    # a cost that does not divide: 3 shares at 1,000 fen in all, sell 1 -> 333.33 rounded half up to 333 fen
    odd = Ledger(100)
    odd.post_fill(T0, "SH600000", "buy", 3, 3.3333, 0.0)  # amount 9.9999 -> 10.00 yuan (1,000 fen)
    odd.post_fill(T1, "SH600000", "sell", 1, 4.00, 0.0)
    assert odd.balance_fen("positions:SH600000") == 667 and odd.balance_fen("realized_pnl") == -(400 - 333)
    # selling the rest takes the whole remaining cost: no residue of rounding stays in the position
    odd.post_fill(T1, "SH600000", "sell", 2, 4.00, 0.0)
    assert odd.balance_fen("positions:SH600000") == 0 and odd.realized_pnl() == 2.00  # 12.00 − 10.00
    ledger.check()
    odd.check()


def test_bad_fills_are_refused_and_post_nothing() -> None:
    ledger = Ledger(10_000)
    ledger.post_fill(T0, "SH600000", "buy", 100, 10.0, 5.0)
    before = (ledger.balances(), len(ledger.transactions))
    cases = [
        (("SH600000", "sell", 101, 10.0, 5.0), "SH600000 sell of 101 shares exceeds the 100 held"),
        (("SH600001", "sell", 100, 10.0, 5.0), "exceeds the 0 held"),
        (("SH600000", "buy", 0, 10.0, 5.0), "shares must be a positive integer, not 0"),
        (("SH600000", "buy", -100, 10.0, 5.0), "shares must be a positive integer"),
        (("SH600000", "buy", 100, 0.0, 5.0), "price must be a finite number > 0 yuan, not 0.0"),
        (("SH600000", "buy", 100, float("nan"), 5.0), "price must be a finite number > 0"),
        (("SH600000", "buy", 100, 10.0, -1.0), "fee fees:unitemized must be a finite number >= 0"),
        (("SH600000", "hold", 100, 10.0, 5.0), "side must be 'buy' or 'sell'"),
        (("SH600000", "buy", 100, 10.0, "5"), "fees must be yuan or a Fees"),
    ]
    for args, message in cases:
        with pytest.raises(LedgerError, match=message.replace("(", r"\(")) as info:
            ledger.post_fill(T0, *args)
        assert "\n" not in str(info.value)
    assert (ledger.balances(), len(ledger.transactions)) == before
    assert ledger.stats["refused"] == len(cases)
    with pytest.raises(LedgerError, match="zero to the fen"):
        ledger.post_cash(T0, 0.001)
    ledger.check()


def test_fen_exact_where_floats_drift() -> None:
    # 0.1 + 0.2 style drift: a float sum of ten thousand 0.01-yuan fees is not 100.00, the ledger's is
    ledger = Ledger(0)
    floats = 0.0
    for _ in range(10_000):
        ledger.post_cash(T0, 0.01)
        floats += 0.01
    assert floats != 100.0 and ledger.balance_fen("cash") == 10_000 and ledger.cash == 100.0
    # amounts are priced exactly: 3 × 0.07 is 0.21 (a float product is 0.21000000000000002)
    ledger.post_fill(T0, "SH600000", "buy", 3, 0.07, 0.0)
    assert ledger.balance_fen("positions:SH600000") == 21
    ledger.check()


def test_check_names_a_tampered_balance() -> None:
    ledger = Ledger(1000)
    ledger.post_fill(T0, "SH600000", "buy", 10, 10.0, 1.0)
    ledger._balances["cash"] += 1  # what a bug elsewhere would do
    with pytest.raises(LedgerError, match="cash balance 89901 fen but its postings sum to 89900 fen"):
        ledger.check()
    ledger._balances["cash"] -= 1
    ledger._shares["SH600000"] = -10  # and a position below zero: each named by check
    with pytest.raises(LedgerError, match="SH600000 holds -10 shares but its postings move 10"):
        ledger.check()


def test_bound_rolls_the_oldest_into_an_opening_balance() -> None:
    full = Ledger(1_000_000)
    bounded = Ledger(1_000_000, max_transactions=5)
    for ledger in (full, bounded):
        for i in range(20):
            ledger.post_fill(T0, "SH600000", "buy", 100, 10.0 + i / 100, 5.0)
            if i % 3 == 2:
                ledger.post_fill(T1, "SH600000", "sell", 100, 11.0, 5.0)
            ledger.post_cash(T0, 10.0)
    assert bounded.balances() == full.balances() and bounded.positions() == full.positions()
    kept = bounded.transactions
    assert len(kept) == 6 and kept[0].id == 0 and "rolled" in kept[0].description
    assert bounded.stats["rolled"] == full.stats["transactions"] - 5
    assert [t.id for t in kept[1:]] == [t.id for t in full.transactions[-5:]]
    bounded.check()
    assert bounded.to_frame().groupby("account").fen.sum().to_dict() == {
        a: bounded.balance_fen(a) for a in bounded.balances()
    }


SYMBOLS = st.sampled_from(["SH600000", "SZ000001"])
# (side, symbol, shares, price in fen, fees in fen) or ("cash", fen)
fill = st.tuples(st.sampled_from(["buy", "sell"]), SYMBOLS, st.integers(1, 5000), st.integers(1, 100_000),
                 st.integers(0, 5000))  # fmt: skip
cash_movement = st.tuples(st.just("cash"), st.integers(-1_000_000, 1_000_000).filter(bool))
moves = st.lists(st.one_of(fill, cash_movement), max_size=40)


@settings(max_examples=150, deadline=None)
@given(moves)
def test_property_every_sequence_stays_balanced(sequence: list[tuple[object, ...]]) -> None:
    ledger = Ledger(500_000)
    expected_cash = 500_000 * 100  # fen, counted independently of the ledger
    held: dict[str, int] = {}
    for move in sequence:
        if move[0] == "cash":
            fen = int(move[1])  # type: ignore[call-overload]
            ledger.post_cash(T0, fen / 100)
            expected_cash += fen
            continue
        side, symbol, shares, price_fen, fee_fen = move
        assert isinstance(shares, int) and isinstance(price_fen, int) and isinstance(fee_fen, int)
        symbol = str(symbol)
        if side == "sell" and shares > held.get(symbol, 0):
            with pytest.raises(LedgerError, match="exceeds"):
                ledger.post_fill(T0, symbol, "sell", shares, price_fen / 100, fee_fen / 100)
            continue
        txn = ledger.post_fill(T0, symbol, str(side), shares, price_fen / 100, fee_fen / 100)
        assert txn.balanced
        sign = 1 if side == "buy" else -1
        held[symbol] = held.get(symbol, 0) + sign * shares
        expected_cash += -sign * shares * price_fen - fee_fen
        assert all(n >= 0 for n, _ in ledger.positions().values())
    assert all(t.balanced for t in ledger.transactions)
    assert sum(ledger.balance_fen(a) for a in ledger.balances()) == 0
    assert ledger.balance_fen("cash") == expected_cash
    assert {s: n for s, (n, _) in ledger.positions().items()} == {s: n for s, n in held.items() if n}
    ledger.check()


def test_split_fees_itemizes_a_total_by_the_model_that_priced_it() -> None:
    model, day = FeeModel(), dt.date(2026, 11, 20)
    # sell 1,000 SH600000 @ 10.00 (10,000 yuan): stamp tax 0.05 % = 5.00, transfer fee 0.001 % = 0.10
    assert split_fees(10.10, model, "SH600000", "sell", 10.0, 1000, day) == Fees(5.00, 5.00, 0.10)
    assert split_fees(5.10, model, "SH600000", "buy", 10.0, 1000, day) == Fees(5.00, 0.0, 0.10)
    # a broker's total of 12.00: the taxes are the fill's, the commission the rest (6.90)
    assert split_fees(12.00, model, "SH600000", "sell", 10.0, 1000, day) == Fees(6.90, 5.00, 0.10)
    # less than the fill's taxes: charged by another schedule, kept as one total (unitemized), never guessed
    assert split_fees(3.00, model, "SH600000", "sell", 10.0, 1000, day) == 3.00
    assert split_fees(3.00, object(), "SH600000", "sell", 10.0, 1000, day) == 3.00  # not a fee model


class Venue(OrderBrokerBase):
    """A broker that reports: every order Sent; its fills are the reports the test hands the manager.  Its
    account (``get_asset_info``) is ``asset``, or none."""

    def __init__(self, name: str = "venue", asset: AssetInfo | None = None) -> None:
        super().__init__(name)
        self.asset = asset

    def attach(self, bus: object) -> None:
        pass

    def detach(self) -> None:
        pass

    def _buy(self, request: OrderRequest) -> OrderResult:
        return OrderResult(OrderStatus.Sent, order_id=f"V-{request.client_order_id}")

    _sell = _buy

    def _get_asset_info(self) -> str:
        return self.asset.to_json() if self.asset is not None else ""


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(fill, st.integers(1, 3), st.booleans()), max_size=30))
def test_property_every_fill_through_the_order_manager_keeps_the_ledger_equal_to_the_book(
    sequence: list[tuple[tuple[str, str, int, int, int], int, bool]],
) -> None:
    # the same random fills as above, now as orders of a reporting broker filled in 1-3 parts, each part's fees
    # the venue's (fee_fen) or the fee model's: the OrderManager books them, the book posts them, and after
    # every part the ledger balances and holds the book's cash, shares and fees to the fen
    model = FeeModel()
    book = LedgeredBook(1_000_000.0, fee_model=lambda broker: model)
    manager = OrderManager([Venue("venue")], book, strategy="p", fees=model, clock=lambda: T0)
    parts_posted = 0
    for (side, symbol, shares, price_fen, fee_fen), parts, venue_fees in sequence:
        if side == "sell":
            shares = min(shares, book.held(symbol))  # what the sizing lets through: never more than held
            if not shares:
                continue
        order = manager.submit(Order(manager.new_client_id(), symbol, side, shares, "limit", price=price_fen / 100,
                                     request_price=price_fen / 100, created=T0))  # fmt: skip
        sizes = [shares // parts] * (parts - 1)
        for i, n in enumerate([*sizes, shares - sum(sizes)]):
            if n <= 0:
                continue
            fees = fee_fen // parts / 100 if venue_fees else None  # a venue charges whole fen
            cid = order.client_order_id
            manager.on_report(ExecutionReport(broker="venue", kind="fill", client_order_id=cid, shares=n,
                                              price=price_fen / 100, fees=fees, trade_id=f"{cid}-{i}",
                                              datetime=T0))  # fmt: skip
            parts_posted += 1
            assert book.ledger.balance_fen("cash") == to_fen(book.cash)
            assert book.ledger.shares(symbol) == book.held(symbol)
        assert order.status == "filled"
        assert book.differences() == []
    assert book.ledger_stats == {"posted": parts_posted, "unposted": 0, "disagreements": 0, "reopened": 0,
                                 "followed": 0}  # fmt: skip
    assert book.ledger.stats["fills"] == parts_posted == book.trade_count
    assert to_fen(book.ledger.fees()) == to_fen(book.fees)
    if not any(venue_fees for _, _, venue_fees in sequence):  # the fee model's fees are always itemized
        assert "fees:unitemized" not in book.ledger.balances()
    assert sum(book.ledger.balance_fen(a) for a in book.ledger.balances()) == 0
    book.ledger.check()


def test_frame_and_parquet_round_trip(tmp_path: Path) -> None:
    ledger = Ledger(50_000)
    ledger.post_fill(T0, "SH600000", "buy", 1000, 10.0, Fees(5.0, 0.0, 0.1), trade_id="t1", client_order_id="o1")
    ledger.post_cash(T1, -1000.0, "withdrawal to the bank")
    frame = ledger.to_frame()
    assert list(frame.columns) == LEDGER_COLUMNS
    assert len(frame) == sum(len(t.postings) for t in ledger.transactions) == 2 + 4 + 2
    assert frame.groupby("txn_id").fen.sum().eq(0).all()
    buy = frame[frame.txn_id == 2]
    assert dict(zip(buy.account, buy.amount, strict=True)) == {
        "positions:SH600000": 10_000.0, "fees:commission": 5.0, "fees:transfer": 0.1, "cash": -10_005.1,
    }  # fmt: skip
    assert set(buy.trade_id) == {"t1"} and set(buy.client_order_id) == {"o1"}
    path = tmp_path / "ledger.parquet"
    ledger.to_parquet(path)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back.fen.dtype == "int64"


def test_from_trades_equals_posting_one_by_one() -> None:
    rows = [
        (T0, "SH600000", "buy", 10.0, 1000, 10_000.0, 5.1, "o1", "t1", "paper"),
        (T0, "SZ000001", "buy", 12.34, 500, 6170.0, 5.06, "o2", "t2", "paper"),
        (T1, "SH600000", "sell", 10.5, 400, 4200.0, 7.2, "o3", "t3", "paper"),
    ]
    trades = pd.DataFrame(rows, columns=["datetime", "symbol", "side", "price", "shares", "amount", "fees",
                                         "client_order_id", "trade_id", "broker"])  # fmt: skip
    built = Ledger.from_trades(trades, 100_000)
    by_hand = Ledger(100_000)
    for when, symbol, side, price, shares, _, fees, order, trade, _ in rows:
        by_hand.post_fill(when, symbol, side, shares, price, fees, trade_id=trade, client_order_id=order)
    pd.testing.assert_frame_equal(built.to_frame(), by_hand.to_frame())
    one_by_one = Ledger(100_000)
    for trade in (Trade(w, s, d, p, n, a, f, o, t, b) for w, s, d, p, n, a, f, o, t, b in rows):
        one_by_one.post_trade(trade)
    pd.testing.assert_frame_equal(one_by_one.to_frame(), by_hand.to_frame())
    with pytest.raises(LedgerError, match="trades lack the columns fees, price"):
        Ledger.from_trades(trades.drop(columns=["price", "fees"]), 1.0)


def held(number: int) -> dict[str, object]:
    """One position row as a broker's get_asset_info reports it."""
    return {"market": "SH", "code": "600000", "number": number, "stoploss": 0, "goal_price": 0, "cost_price": 10.0}


def test_reconcile_against_asset_info() -> None:
    ledger = Ledger(100_000)
    ledger.post_fill(T0, "SH600000", "buy", 1000, 10.0, 5.1)
    asset = AssetInfo.parse({"cash": 89_994.90, "positions": [held(1000)]})
    assert ledger.reconcile(asset).ok
    off = AssetInfo.parse({"cash": 89_990.00, "positions": [held(900)]})
    result = ledger.reconcile(off)
    assert not result.ok and [(d.symbol, d.book, d.broker) for d in result.positions] == [("SH600000", 1000, 900)]
    assert result.cash_difference == pytest.approx(-4.90)


def test_ledger_of_a_simulated_run_matches_the_book_to_the_fen() -> None:
    from hkrt.strategy import load_strategy, run_sim

    strategy = load_strategy(ROOT / "examples" / "daily_rebalance.py")
    run_sim(strategy, dt.date(2026, 11, 20), symbols=50, speed=3000, handle_signals=False, until="14:55")
    trades = strategy.trades
    assert len(trades) >= 3, "the 14:50 rebalance must have bought the basket"
    ledger = Ledger.from_trades(trades, strategy.book.initial_cash)
    ledger.check()
    assert ledger.balance_fen("cash") == round(strategy.book.cash * 100)
    assert {s: n for s, (n, _) in ledger.positions().items()} == {
        s: p.shares for s, p in strategy.book.positions.items() if p.shares
    }
    assert ledger.fees() == pytest.approx(strategy.book.fees, abs=0.005)


def test_parquet_and_plot_paths_expand_the_home_directory(tmp_path, monkeypatch) -> None:
    import pandas as pd

    from hkrt.strategy.ledger import Ledger
    from hkrt.strategy.performance import performance, plot_performance

    monkeypatch.setenv("HOME", str(tmp_path))
    ledger = Ledger(1000.0)
    ledger.post_cash(dt.datetime(2026, 11, 20, 10), 10.0, "deposit")
    ledger.to_parquet("~/ledger.parquet")
    assert (tmp_path / "ledger.parquet").exists()
    curve = pd.Series([100.0, 101.0], index=pd.to_datetime(["2026-11-19 15:00", "2026-11-20 15:00"]))
    assert plot_performance(performance(curve), "~/perf.png") == tmp_path / "perf.png"
    assert (tmp_path / "perf.png").exists()
