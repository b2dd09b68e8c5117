"""Several strategies on one account through a real EventBus: sources signal from their bar and timer
callbacks, the aggregator votes or weighs at the cycle's end and orders through the account's paper broker,
whose fills are split per source so the attribution table sums to the account (docs/signals.md)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hkrt
from hkrt.bus import Bar, BarClosed, CycleEnded, CycleInfo, EventBus, SignalEvent, SpotBatch
from hkrt.strategy import SignalAggregator, load_strategy
from hkrt.strategy.aggregator import is_signal_source
from hkrt.strategy.signals_attribution import ACCOUNT, COLUMNS
from hkrt.strategy.sizing import affordable

FRIDAY = dt.date(2026, 11, 20)
MONDAY = dt.date(2026, 11, 23)
SYMBOL, OTHER = "SH600000", "SZ000001"
_cycles = itertools.count(1)


def at(hms: str, day: dt.date = FRIDAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hms))


def spot(when: dt.datetime, close: float, symbol: str = SYMBOL) -> hkrt.Spot:
    """A liquid spot: 50,000 shares a level, the ask one tick above the close (a market buy pays it)."""
    return hkrt.Spot(symbol, when, name="x", yesterday_close=10.0, open=10.0, high=max(10.0, close),
                     low=min(10.0, close), close=close, volume=1e6, amount=1e6 * close,
                     ask=[round(close + 0.01, 2), round(close + 0.02, 2)], ask_volume=[50_000, 50_000],
                     bid=[close, round(close - 0.01, 2)], bid_volume=[50_000, 50_000])  # fmt: skip


class Market:
    """Publishes by hand what an agent would: spots, closed bars and the cycle's end, then waits for the bus."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def cycle(self, when: dt.datetime, close: float = 10.0, *, bar: dt.datetime | None = None,
              symbols: tuple[str, ...] = (SYMBOL,)) -> None:  # fmt: skip
        self.bus.publish(SpotBatch.from_spots([spot(when, close, s) for s in symbols]))
        if bar is not None:
            for s in symbols:
                self.bus.publish(BarClosed(s, hkrt.KType.MIN, Bar(bar, close, close, close, close, 1e4, 1e4 * close)))
        self.bus.publish(CycleEnded(CycleInfo(1, next(_cycles), 1, 1, 1, 1, True, False, when, 0.0, 0.0)))
        assert self.bus.wait_idle()


def scripted(name: str, plan: dict[tuple[str, dt.datetime], tuple[Any, ...]]) -> hkrt.Strategy:
    """A source whose on_bar signals what ``plan`` says for (its name, the bar's label)."""
    source = hkrt.Strategy([SYMBOL, OTHER], name=name)

    @source.on_bar
    def on_bar(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
        said = plan.get((name, bar.datetime))
        if said is not None and symbol == SYMBOL:
            source.signal(symbol, *said)

    return source


@pytest.fixture
def bus() -> Iterator[EventBus]:
    with EventBus() as running:
        yield running


def setup(bus: EventBus, plan: dict, **options: Any) -> tuple[hkrt.Strategy, SignalAggregator, Market]:
    account = hkrt.Strategy([SYMBOL, OTHER], name="account", cash=1_000_000)
    options.setdefault("target_value", 100_000)
    aggregator = SignalAggregator(account, [scripted("a", plan), scripted("b", plan)], **options)
    account.attach(bus)
    market = Market(bus)
    market.cycle(at("10:00:57"))
    return account, aggregator, market


def sums_to_the_account(aggregator: SignalAggregator) -> Any:
    table = aggregator.attribution()
    totals = aggregator.account_totals()
    for column in COLUMNS[1:]:
        assert table[column].sum() == pytest.approx(totals[column], abs=1e-6), column
    return table


# ------------------------------------------------------------------------------ the vote
def test_two_sources_vote_an_order_its_fills_are_split_and_the_table_sums_to_the_account(bus: EventBus) -> None:
    plan = {("a", at("10:01")): ("buy", 1.0, "macd up"), ("b", at("10:01")): ("buy", 0.5)}
    account, aggregator, market = setup(bus, plan)
    a, b = aggregator.sources
    assert a.bus is bus and b.bus is bus  # the sources followed the account onto its bus
    market.cycle(at("10:01:03"), bar=at("10:01"))  # both buy: (1 + 0.5) / 2 = 0.75 >= 0.5
    [order] = account.orders.itertuples()
    want = affordable(SYMBOL, 10.0, 100_000)  # 100,000 at 10.00, fees included: 9,900 shares
    assert (order.side, order.shares, want) == ("buy", 9900, 9900)
    assert order.remark == "signals vote +0.75: a 0.67, b 0.33" and order.created == at("10:01:03")
    # the paper broker filled it at once at the ask 10.01: 99,099 yuan, commission 24.77, transfer fee 0.99
    fill = account.trades.iloc[0]
    assert (fill.shares, fill.price, fill.fees) == (9900, 10.01, pytest.approx(25.76))
    market.cycle(at("10:01:09"), 10.2)
    table = sums_to_the_account(aggregator)
    # a decided 2/3 of it, b 1/3: shares, fees and P&L alike
    assert table.loc["a", "bought"] == pytest.approx(6600) and table.loc["b", "bought"] == pytest.approx(3300)
    assert table.loc["a", "fees"] == pytest.approx(25.76 * 2 / 3)
    unrealized = 9900 * 10.2 - 9900 * 10.01 - 25.76
    assert table.loc["a", "pnl"] == pytest.approx(unrealized * 2 / 3)
    assert table.loc["b", "unrealized_pnl"] == pytest.approx(unrealized / 3)
    assert table.loc[ACCOUNT].abs().max() == pytest.approx(0, abs=1e-6)  # nothing the account did alone
    assert list(table["signals"]) == [1, 1, 0] and table.loc["a", "orders"] == pytest.approx(2 / 3)
    decision = aggregator.decisions.iloc[0]
    assert (decision.value, decision.target, decision.side, decision.sources) == (0.75, 1.0, "buy", "a 0.67, b 0.33")


def test_a_vote_under_the_threshold_or_repeated_places_nothing(bus: EventBus) -> None:
    plan = {("a", at("10:01")): ("buy", 0.8), ("b", at("10:01")): ("sell", 0.4),  # (0.8 - 0.4) / 2 = 0.2
            ("b", at("10:02")): ("buy", 0.2),  # (0.8 + 0.2) / 2 = 0.5: in
            ("a", at("10:03")): ("buy", 0.9)}  # fmt: skip
    account, aggregator, market = setup(bus, plan)
    market.cycle(at("10:01:03"), bar=at("10:01"))
    assert account.orders.empty and aggregator.stats["unchanged"] == 1
    market.cycle(at("10:02:03"), bar=at("10:02"))
    assert len(account.orders) == 1
    market.cycle(at("10:03:03"), bar=at("10:03"))  # still in: the same decision, no new order
    assert len(account.orders) == 1 and aggregator.stats["unchanged"] == 2


def test_out_sells_the_holding_the_next_day_and_the_round_trip_is_split(bus: EventBus) -> None:
    plan = {("a", at("10:01")): ("buy", 1.0), ("b", at("10:01")): ("buy", 1.0),
            ("a", at("10:01", MONDAY)): ("sell", 1.0), ("b", at("10:01", MONDAY)): ("flat", 1.0)}  # fmt: skip
    account, aggregator, market = setup(bus, plan)
    market.cycle(at("10:01:03"), bar=at("10:01"))
    assert account.position(SYMBOL) == 9900
    market.cycle(at("10:00:57", MONDAY), 10.5)
    market.cycle(at("10:01:03", MONDAY), 10.5, bar=at("10:01", MONDAY))  # -1 / 2 = -0.5: out, sold at the bid
    sell = account.orders.iloc[1]
    assert (sell.side, sell.shares, sell.remark) == ("sell", 9900, "signals vote -0.50: a 1.00")
    assert account.position(SYMBOL) == 0
    table = sums_to_the_account(aggregator)
    buy, sold = account.trades.iloc[0], account.trades.iloc[1]
    round_trip = sold.amount - sold.fees - buy.amount - buy.fees
    assert table.loc["a", "realized_pnl"] == pytest.approx(round_trip / 2)  # each bought half; a's sell sold both
    assert table.loc["b", "realized_pnl"] == pytest.approx(round_trip / 2)
    assert table.loc["a", "orders"] == pytest.approx(1.5) and table.loc["b", "orders"] == pytest.approx(0.5)
    assert table["market_value"].abs().max() == pytest.approx(0, abs=1e-6)


def test_a_decision_waits_while_the_symbol_has_a_working_order(bus: EventBus) -> None:
    plan = {("a", at("10:01")): ("buy", 1.0)}
    account, aggregator, market = setup(bus, plan)
    own = account.order(SYMBOL, 1000, 9.5, order_type="limit")  # the account's own, far under the market
    market.cycle(at("10:01:03"), bar=at("10:01"))  # 1 / 2 = 0.5: in, but an order of SYMBOL works
    assert aggregator.stats["deferred"] == 1 and len(account.orders) == 1
    market.cycle(at("10:01:06"))
    assert aggregator.stats["deferred"] == 2  # tried again at each cycle's end
    account.cancel(own)
    market.cycle(at("10:01:09"))
    assert account.orders.status.tolist() == ["cancelled", "filled"]
    market.cycle(at("10:01:12"), symbols=(SYMBOL, OTHER))
    own_buy = account.order(OTHER, 100)  # the account's own trade on another symbol: the (account) row
    market.cycle(at("10:01:15"), symbols=(SYMBOL, OTHER))
    assert own_buy.status == "filled"
    table = sums_to_the_account(aggregator)
    own_fill = account.trades[account.trades.symbol == OTHER].iloc[0]
    assert table.loc[ACCOUNT, "bought"] == 100 and table.loc[ACCOUNT, "fees"] == pytest.approx(own_fill.fees)
    assert table.loc[ACCOUNT, "orders"] == 2 and table.loc["a", "orders"] == 1.0


# ------------------------------------------------------------------------------ fixed weights
def test_fixed_weights_move_the_holding_to_the_weighted_target(bus: EventBus) -> None:
    plan = {("a", at("10:01")): ("buy", 1.0), ("b", at("10:02")): ("buy", 1.0), ("a", at("10:03")): ("flat",)}
    account, aggregator, market = setup(bus, plan, method="weights", weights={"a": 3, "b": 1})
    market.cycle(at("10:01:03"), bar=at("10:01"))  # 3/4 of 100,000
    assert account.orders.shares.tolist() == [affordable(SYMBOL, 10.0, 75_000)] == [7400]
    market.cycle(at("10:02:03"), bar=at("10:02"))  # all of it: up to affordable(100,000) = 9,900
    more = account.orders.iloc[1]
    assert (more.shares, more.remark) == (2500, "signals weights +1.00: b 1.00")
    market.cycle(at("10:03:03"), bar=at("10:03"))  # a leaves: down to b's 1/4, but nothing is sellable (T+1)
    assert len(account.orders) == 2 and aggregator.stats["waiting_sellable"] == 1
    market.cycle(at("10:03:06"))
    assert aggregator.stats["waiting_sellable"] == 2  # decided again at every cycle's end
    market.cycle(at("09:30:03", MONDAY))  # sellable now: down to affordable(25,000) = 2,400 shares
    last = account.orders.iloc[2]
    assert (last.side, last.shares, last.status) == ("sell", 7500, "filled")
    assert last.remark == "signals weights +0.25: a 1.00"
    table = sums_to_the_account(aggregator)
    # the sell came out of a's 7,400 first (its decision), the other 100 out of b's 2,500
    assert table.loc["a", "bought"] == pytest.approx(7400) and table.loc["b", "bought"] == pytest.approx(2500)
    assert table.loc["a", "sold"] == pytest.approx(7400) and table.loc["b", "sold"] == pytest.approx(100)
    assert table.loc["b", "market_value"] == pytest.approx(2400 * 10.0)


def test_a_signal_from_a_sources_timer_is_decided_in_the_same_cycle(bus: EventBus) -> None:
    account = hkrt.Strategy([SYMBOL], name="account")
    timed = hkrt.Strategy([SYMBOL], name="timed")
    timed.run_daily(lambda: timed.signal(SYMBOL, "buy", reason="timer"), interval="5min")
    aggregator = SignalAggregator(account, [timed], target_value=50_000)
    account.attach(bus)
    market = Market(bus)
    market.cycle(at("10:04:57"))
    assert account.orders.empty
    market.cycle(at("10:05:00"))  # the source's timer fires on this cycle, its signal decided right after
    [order] = account.orders.itertuples()
    assert order.created == at("10:05:00") and order.remark == "signals vote +1.00: timed 1.00"
    assert aggregator.stats["signals"] == 1


def test_max_age_drops_old_signals_from_a_vote(bus: EventBus) -> None:
    plan = {("a", at("10:01")): ("buy", 1.0), ("b", at("10:03")): ("buy", 1.0)}
    account, aggregator, market = setup(bus, plan, max_age=90, threshold=0.75)
    market.cycle(at("10:01:03"), bar=at("10:01"))  # 0.5 < 0.75
    market.cycle(at("10:03:03"), bar=at("10:03"))  # a's signal (10:01) is 123 s old: b alone, 0.5 again
    assert account.orders.empty and aggregator.stats["decisions"] == 2
    plan[("a", at("10:04"))] = ("buy", 1.0)
    market.cycle(at("10:04:03"), bar=at("10:04"))  # b's (10:03) is 63 s old: both count, 1.0
    assert len(account.orders) == 1


# ------------------------------------------------------------------------------ what is refused
def test_a_sources_orders_are_refused_with_a_reason_and_never_sent(bus: EventBus) -> None:
    account, aggregator, _ = setup(bus, {})
    a = aggregator.sources[0]
    for order in (a.order(SYMBOL, 100), a.order_value(SYMBOL, 10_000), a.order_target(SYMBOL, 200)):
        assert order is not None and order.status == "rejected"
        assert order.reason == ("'a' is a signal source of 'account': it places no orders, it calls signal() "
                                "(the aggregator orders for the account)")  # fmt: skip
    assert aggregator.stats["source_orders_refused"] == 3 and a.brokers == [] and account.orders.empty


def test_signals_of_strangers_and_symbols_the_account_does_not_trade_are_counted_and_ignored(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    account, aggregator, market = setup(bus, {})
    with caplog.at_level("WARNING", logger="hkrt.strategy"):
        bus.publish(SignalEvent("stranger", SYMBOL, "buy", 1.0, "", at("10:01")))
        aggregator.sources[0].signal("SH600001", "buy")
        market.cycle(at("10:01:03"))
    assert (aggregator.stats["unknown_source"], aggregator.stats["outside_codes"]) == (1, 1)
    assert "signal of 'stranger' ignored" in caplog.text and "signal on SH600001 ignored" in caplog.text
    assert account.orders.empty


def test_bad_signals_and_an_unattached_source_say_what_is_wrong() -> None:
    lone = hkrt.Strategy([SYMBOL], name="lone")
    with pytest.raises(ValueError, match=r"^signal action 'short' is not one of buy, sell, flat$"):
        lone.signal(SYMBOL, "short")
    with pytest.raises(ValueError, match="confidence"):
        lone.signal(SYMBOL, "buy", 2.0)
    with pytest.raises(RuntimeError, match="attached to no bus"):
        lone.signal(SYMBOL, "buy")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "median"}, "method 'median' is not one of vote, weights"),
        ({"weights": {"a": 1, "c": 1}}, "weights name 'c', which is not a source"),
        ({"weights": {"a": 1}}, "weights miss source 'b'"),
        ({"weights": {"a": 0, "b": 0}}, "weights are all 0"),
        ({"threshold": 1.5}, r"threshold must be within \(0, 1\], not 1.5"),
        ({"max_age": -1}, "max_age must be market seconds >= 0"),
        ({"target_value": 0}, "target_value must be yuan > 0"),
        ({"fraction": 2}, r"fraction must be within \(0, 1\], not 2"),
    ],
)
def test_bad_aggregator_options_are_one_value_error(options: dict, message: str) -> None:
    account = hkrt.Strategy([SYMBOL], name="account")
    sources = [hkrt.Strategy([SYMBOL], name="a"), hkrt.Strategy([SYMBOL], name="b")]
    with pytest.raises(ValueError, match=message):
        SignalAggregator(account, sources, **options)


def test_sources_that_cannot_serve_are_refused() -> None:
    account = hkrt.Strategy([SYMBOL], name="account")
    with pytest.raises(ValueError, match="its own source"):
        SignalAggregator(account, [account])
    with pytest.raises(ValueError, match="name 'x' is used twice"):
        SignalAggregator(account, [hkrt.Strategy([SYMBOL], name="x"), hkrt.Strategy([SYMBOL], name="x")])
    with pytest.raises(ValueError, match=r"wants ktypes \['MIN5'\] the account does not make"):
        SignalAggregator(account, [hkrt.Strategy([SYMBOL], ktypes=["MIN5"], name="five")])
    taken = hkrt.Strategy([SYMBOL], name="taken")
    SignalAggregator(account, [taken])
    with pytest.raises(ValueError, match="has a SignalAggregator already"):
        SignalAggregator(account, [hkrt.Strategy([SYMBOL], name="y")])
    with pytest.raises(ValueError, match="serves another SignalAggregator"):
        SignalAggregator(hkrt.Strategy([SYMBOL], name="other"), [taken])


def test_detaching_the_account_detaches_its_sources(bus: EventBus) -> None:
    account, aggregator, _ = setup(bus, {})
    account.detach()
    assert all(s.bus is None for s in aggregator.sources)
    assert not [s for s in bus.subscriptions() if "SignalAggregator" in s.name]


def test_load_strategy_picks_the_account_of_a_script_with_module_level_sources(tmp_path: Path) -> None:
    script = tmp_path / "two.py"
    script.write_text(
        "import hkrt\nfrom hkrt.strategy import SignalAggregator\n"
        "account = hkrt.Strategy(['SH600000'], name='account')\n"
        "a = hkrt.Strategy(['SH600000'], name='a')\nb = hkrt.Strategy(['SH600000'], name='b')\n"
        "aggregator = SignalAggregator(account, [a, b])\n"
    )
    loaded = load_strategy(script)
    assert loaded.name == "account" and not is_signal_source(loaded)


def test_the_vote_is_deterministic(bus: EventBus) -> None:
    """The same events give the same orders (their ids aside)."""

    def run() -> list[tuple[Any, ...]]:
        plan = {("a", at("10:01")): ("buy", 0.7), ("b", at("10:01")): ("buy", 0.6), ("b", at("10:02")): ("sell", 1.0),
                ("a", at("10:02")): ("sell", 0.1)}  # fmt: skip
        with EventBus() as own:
            account, aggregator, market = setup(own, plan)
            for minute in ("10:01", "10:02"):
                market.cycle(at(minute + ":03"), bar=at(minute))
                market.cycle(at(minute + ":06"), 10.1)
            market.cycle(at("09:30:03", MONDAY), 10.3)  # the out decided Friday sells Monday
            rows = account.orders.drop(columns=["client_order_id"]).itertuples(index=False)
            return [tuple(r) for r in rows] + [tuple(aggregator.attribution().round(9).itertuples())]

    first = run()
    assert len(first) == 3 and first == run()  # a buy, a sell, the table


def test_after_the_accounts_run_stopped_nothing_more_is_placed(bus: EventBus) -> None:
    plan = {("a", at("10:01")): ("buy", 1.0), ("b", at("10:01")): ("buy", 1.0)}
    account, aggregator, market = setup(bus, plan)
    account.stop()
    market.cycle(at("10:01:03"), bar=at("10:01"))  # the sources still signal; the account places nothing
    assert aggregator.stats["signals"] == 2 and aggregator.stats["inactive"] == 1 and account.orders.empty


def test_an_account_and_its_sources_are_freed_with_their_aggregator() -> None:
    import gc
    import weakref

    account = hkrt.Strategy([SYMBOL], name="account")
    source = hkrt.Strategy([SYMBOL], name="a")
    SignalAggregator(account, [source])
    gone = [weakref.ref(account), weakref.ref(source)]
    del account, source
    gc.collect()
    assert [r() for r in gone] == [None, None]
