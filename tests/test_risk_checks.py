"""The risk engine's checks one by one on hand-computed accounts, the rate limiter and the REDUCING state
as properties (hypothesis), and fail-closed checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hkrt.strategy.order import Order
from hkrt.strategy.pretrade import Quote
from hkrt.strategy.risk import ACTIVE, HALTED, REDUCING, RiskConfig, RiskEngine
from hkrt.strategy.risk.hours import takes_orders
from hkrt.strategy.risk.rates import RateLimiter

T = dt.datetime(2026, 11, 20, 10, 0)


@dataclass
class Account:
    """An account by hand: cash, shares held, latest prices and open orders."""

    cash: float = 100_000.0
    held: dict[str, int] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    now: dt.datetime | None = T
    live: bool = False
    quotes: dict[str, Quote] = field(default_factory=dict)

    def position(self, symbol: str) -> int:
        return self.held.get(symbol, 0)

    def last_price(self, symbol: str) -> float | None:
        return self.prices.get(symbol)

    def portfolio_value(self) -> float:
        return self.cash + sum(n * self.prices.get(s, 0.0) for s, n in self.held.items())

    def open_orders(self, symbol: str | None = None, side: str | None = None) -> list[Order]:
        return [o for o in self.orders if (symbol is None or o.symbol == symbol) and (side is None or o.side == side)]

    def holdings(self) -> dict[str, int]:
        return {s: n for s, n in self.held.items() if n > 0}

    def day_quote(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)


_ids = iter(range(1, 1_000_000))


def order(symbol: str, side: str, shares: int, price: float | None = None, kind: str = "limit") -> Order:
    o = Order(f"c{next(_ids)}", symbol, side, shares, order_type=kind, price=price)
    o.request_price = price or 0.0
    return o


def engine(account: Account, **limits: object) -> RiskEngine:
    return RiskEngine(RiskConfig.load(limits), account=account, name="t")


def check(eng: RiskEngine, o: Order) -> str:
    return eng.check(o, "market" if o.price is None else "limit", o.price)


# ------------------------------------------------------------ hand-computed
def test_order_size_both_sides() -> None:
    eng = engine(Account(prices={"SH600000": 10.0}), max_order_shares=1_000, max_order_value=8_000)
    assert check(eng, order("SH600000", "buy", 800, 10.0)) == ""  # 8,000.00: at the limit
    assert check(eng, order("SH600000", "buy", 900, 10.0)).endswith(
        "worth 9,000.00 yuan, above max_order_value 8,000.00"
    )
    assert "above max_order_shares 1000" in check(eng, order("SH600000", "sell", 1_100, 1.0))  # sells too
    market = order("SH600000", "buy", 900)  # a market order: valued at its reference (request) price
    market.request_price = 8.0
    assert check(eng, market) == ""  # 7,200.00
    assert eng.stats["refused_order_size"] == 2


def test_position_value_and_pct_count_held_and_open_buys() -> None:
    acct = Account(cash=50_000, held={"SH600000": 1_000}, prices={"SH600000": 10.0})  # equity 60,000
    acct.orders.append(order("SH600000", "buy", 500, 10.0))  # an open buy: 500 more
    eng = engine(acct, max_position_value=20_000, max_position_pct=0.3)
    # 1,000 held + 500 open + 400 = 1,900 x 10 = 19,000 <= 20,000; but 31.67 % of 60,000 > 30 %
    why = check(eng, order("SH600000", "buy", 400, 10.0))
    assert why == "risk: SH600000 would be 19,000.00 yuan, 31.67% of equity 60,000.00, above max_position_pct 30.00%"
    assert check(eng, order("SH600000", "buy", 300, 10.0)) == ""  # 18,000: 30 % exactly
    assert "would be 2100 shares worth 21,000.00 yuan at 10" in check(eng, order("SH600000", "buy", 600, 10.0))
    assert check(eng, order("SH600000", "sell", 1_000, 10.0)) == ""  # a sell is never refused by them
    held_stop = order("SH600000", "buy", 5_000, kind="stop")
    held_stop.emulated = True  # not working yet: checked when released
    acct.orders.append(held_stop)
    assert check(eng, order("SH600000", "buy", 300, 10.0)) == ""


def test_gross_exposure_and_max_positions() -> None:
    acct = Account(
        cash=60_000, held={"SH600000": 2_000, "SZ000001": 1_000}, prices={"SH600000": 10.0, "SZ000001": 20.0}
    )
    # equity 60,000 + 20,000 + 20,000 = 100,000; positions 40,000
    acct.orders.append(order("SZ300001", "buy", 1_000, 15.0))  # open buy 15,000
    eng = engine(acct, max_gross_exposure=0.6, max_positions=3)
    assert check(eng, order("SH600000", "buy", 500, 10.0)) == ""  # 40 + 15 + 5 = 60 %
    assert check(eng, order("SH600000", "buy", 600, 10.0)) == (
        "risk: gross exposure would be 61,000.00 yuan, 61.00% of equity 100,000.00 (positions 40,000.00, "
        "open buys 15,000.00, this buy 6,000.00), above max_gross_exposure 60.00%"
    )
    # three symbols held or being bought: a fourth is refused, more of one of them is not
    assert check(eng, order("SH600004", "buy", 100, 10.0)) == (
        "risk: a buy of SH600004 would make 4 positions (held or being bought), above max_positions 3"
    )
    assert check(eng, order("SZ300001", "buy", 100, 15.0)) == ""


def test_price_band_and_the_days_limits_at_release() -> None:
    acct = Account(prices={"SH600000": 10.0}, quotes={"SH600000": Quote(True, True, prev_close=10.5)})
    eng = engine(acct, price_band=0.05)
    assert check(eng, order("SH600000", "buy", 100, 10.5)) == ""  # 5 % exactly
    assert check(eng, order("SH600000", "buy", 100, 10.6)) == (
        "risk: limit price 10.6 is 6.00% from SH600000's latest price 10, outside price_band 5.00%"
    )
    # the day's limits from the previous close 10.5: [9.45, 11.55]; with no band 9.4 is refused by them
    eng = engine(acct, price_band=None)
    assert "limit price 9.4 is outside SH600000's limits today [9.45, 11.55]" in check(
        eng, order("SH600000", "buy", 100, 9.4)
    )
    assert eng.stats["refused_day_limits"] == 1
    acct.prices.clear()
    assert engine(acct).check(order("SH600000", "buy", 100, 10.6), "limit", 10.6) == ""  # no latest price: no band
    held = order("SH600000", "buy", 100, 20.0, kind="stop_limit")
    assert engine(acct, price_band=0.05).check(held, "stop_limit", 20.0) == ""  # held: checked at release


@pytest.mark.parametrize(
    ("clock", "takes"),
    [("09:14:59", False), ("09:15:00", True), ("09:27:00", True), ("11:29:59", True), ("11:30:00", False),
     ("12:30:00", False), ("13:00:00", True), ("14:59:59", True), ("15:00:00", False), ("20:00:00", False)],
)  # fmt: skip
def test_trading_hours(clock: str, takes: bool) -> None:
    t = dt.time.fromisoformat(clock)
    assert takes_orders(t) is takes
    acct = Account(now=dt.datetime.combine(T.date(), t))
    why = check(engine(acct), order("SH600000", "buy", 100, 10.0))
    assert (why == "") is takes
    if not takes:
        assert why == f"risk: {clock} is outside the exchange's order hours (09:15-11:30, 13:00-15:00)"
    assert check(engine(acct, trading_hours=False), order("SH600000", "buy", 100, 10.0)) == ""


def test_no_clock_no_hours_check() -> None:
    assert check(engine(Account(now=None)), order("SH600000", "buy", 100, 10.0)) == ""


def test_rates_count_orders_and_cancels_and_forced_cancels_pass() -> None:
    acct = Account(prices={"SH600000": 10.0})
    eng = engine(acct, max_orders_per_second=3, max_orders_per_day=5)
    assert [check(eng, order("SH600000", "buy", 100, 10.0)) for _ in range(2)] == ["", ""]
    assert eng.note_cancel(order("SH600000", "buy", 100, 10.0)) == ""  # 3 in this second
    why = eng.note_cancel(order("SH600000", "buy", 100, 10.0))
    assert (
        why
        == "risk: order rate: 3 orders and cancels in the last second (max_orders_per_second); this cancel is not sent"
    )
    assert eng.note_cancel(order("SH600000", "buy", 100, 10.0), forced=True) == ""  # the kill switch's: counted
    assert (eng.stats["cancels_refused"], eng.stats["cancels_forced"], eng.rates.today) == (1, 1, 4)
    acct.now = T + dt.timedelta(seconds=1)  # the window has moved on (market clock: not live)
    assert check(eng, order("SH600000", "buy", 100, 10.0)) == ""  # the 5th today
    assert check(eng, order("SH600000", "buy", 100, 10.0)).endswith(
        "reach max_orders_per_day 5 (a runaway loop?); trading halted"
    )
    assert eng.state == HALTED
    acct.now = T.replace(day=23)  # a new day: the count starts again, the state stays until resumed
    assert check(eng, order("SH600000", "buy", 100, 10.0)).startswith("risk: trading halted: order rate")
    eng.resume()
    assert check(eng, order("SH600000", "buy", 100, 10.0)) == "" and eng.rates.today == 1


def test_live_accounts_count_wall_seconds() -> None:
    acct = Account(live=True, now=T)
    eng = engine(acct)
    day, first = eng.rate_clock()
    assert day != T.date() or abs(first - T.timestamp()) > 1e6  # not the market clock
    acct.live = False
    assert eng.rate_clock() == (T.date(), T.timestamp())


def test_losses_act_once_when_crossed() -> None:
    acct = Account(cash=100_000)
    eng = engine(acct, max_daily_loss=5_000, max_drawdown_pct=0.1)
    eng.update_equity(T, 100_000)
    eng.update_equity(T, 110_000)  # the peak
    eng.update_equity(T, 104_000)  # 0 lost today on 100,000? no: opening 100,000, now 104,000
    assert eng.state == ACTIVE
    eng.update_equity(T, 94_000)  # 6,000 below the opening: daily loss; 14.5 % below the peak: drawdown
    assert eng.state == HALTED and "drawdown 14.55%" in eng.reason
    assert [c.state for c in eng.trading.history] == [REDUCING, HALTED]
    eng.resume("looked at it")
    eng.update_equity(T, 93_000)  # still past both: not acted on again
    assert eng.state == ACTIVE
    eng.update_equity(T.replace(day=23), 93_000)  # a new day: the opening is 93,000
    eng.update_equity(T.replace(day=23), 87_000)  # 6,000 lost today: the daily loss crosses again
    assert eng.state == REDUCING and eng.reason.startswith("daily loss 6,000.00 yuan is above max_daily_loss 5,000.00")


def test_a_raising_check_halts_and_names_the_error() -> None:
    acct = Account(prices={"SH600000": 10.0})
    eng = engine(acct)

    def broken(*args: object) -> str:
        raise KeyError("SH600000")

    eng.checks.append(("model", broken))
    why = check(eng, order("SH600000", "buy", 100, 10.0))
    assert why == "risk: the model check failed (KeyError: 'SH600000'); trading halted"
    assert eng.state == HALTED and eng.stats["check_failures"] == 1
    assert check(eng, order("SH600000", "sell", 100, 10.0)).startswith("risk: trading halted: the model check failed")


# ------------------------------------------------------------- properties
@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=300),
    per_second=st.integers(min_value=1, max_value=10),
    per_day=st.integers(min_value=10, max_value=200),
)
def test_the_rate_limiter_never_lets_more_than_n_through_any_window(
    gaps: list[int], per_second: int, per_day: int
) -> None:
    limiter = RateLimiter(per_second, per_day)
    day, t, passed = T.date(), 0.0, []
    for gap in gaps:
        t += gap / 1000  # milliseconds apart
        if limiter.refusal(day, t) == "":
            limiter.record(day, t)
            passed.append(t)
    assert len(passed) <= per_day
    for i, start in enumerate(passed):  # every window (start - 1 s, start] holds at most per_second
        assert sum(1 for x in passed[: i + 1] if x > start - 1.0) <= per_second
    if len(gaps) and all(g >= 1000 for g in gaps[1:]):  # a slow stream is never refused (below the day's cap)
        assert len(passed) == min(len(gaps), per_day)


@settings(max_examples=200, deadline=None)
@given(
    held=st.integers(min_value=0, max_value=5),
    steps=st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(min_value=1, max_value=5)), max_size=30),
)
def test_reducing_never_lets_a_position_grow(held: int, steps: list[tuple[str, int]]) -> None:
    """In REDUCING, whatever orders come, the position once every passed order fills is never larger than
    at the start, nor below zero (no short)."""
    acct = Account(held={"SH600000": held * 100}, prices={"SH600000": 10.0})
    eng = engine(acct, max_orders_per_second=250, max_orders_per_day=10_000)
    eng.reduce("daily loss")
    start = held * 100
    for side, lots in steps:
        o = order("SH600000", side, lots * 100, 10.0)
        if check(eng, o) == "":
            acct.orders.append(o)  # working: its shares are spoken for
        after = (
            start
            - sum(x.shares for x in acct.orders if x.side == "sell")
            + sum(x.shares for x in acct.orders if x.side == "buy")
        )
        assert 0 <= after <= start
    assert eng.state == REDUCING
