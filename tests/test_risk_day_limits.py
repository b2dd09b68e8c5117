"""The risk engine's day-limits check over a simulated day: a stop-limit placed before the day's first
quote (no previous close known, so ``Strategy.order`` cannot check its limit price) is checked against
the day's limits when the emulator releases it, on the day's first batch with a trade.

The simulated market of 2026-11-20 (seed 7, 20 symbols) opens SH600000 from a previous close of 69.28:
its limits are [62.35, 76.21] (±10 %, to the tick).  A stop-limit sell of the 1,000 shares held, stop
999.00 (it triggers on the first trade), limit 1.00, goes out as a limit sell at 1.00: the engine
refuses it, so nothing is sold at a price the exchange would refuse anyway.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import hkrt
from hkrt.adapters.sim.data import SimConfig, SimMarket
from hkrt.bus import RiskEvent
from hkrt.core.price_limits import price_limits
from hkrt.strategy import run_sim

DAY, SYMBOL = dt.date(2026, 11, 20), "SH600000"


def test_the_hand_computed_limits_are_the_simulated_markets() -> None:
    market = SimMarket(DAY, SimConfig(symbols=20, seed=7))
    assert float(market._state.previous_close[0]) == 69.28
    assert price_limits(SYMBOL, 69.28) == (62.35, 76.21)


def test_a_stop_limit_placed_before_any_quote_meets_the_days_limits_when_released() -> None:
    broker = hkrt.TestOrderBroker(cash=1_000_000)
    broker.buy(dt.datetime(2026, 11, 19, 15, 0), "SH", "600000", 69.0, 1000)  # held since yesterday
    # price_band off: the fat-finger band (10 % of the last price) would refuse the release first
    strategy = hkrt.Strategy([SYMBOL], ["MIN"], brokers=[broker], cash=0, fees=0, risk={"price_band": None})
    strategy.sync_from_broker()
    events: list[RiskEvent] = []
    placed: list[Any] = []

    @strategy.on_start
    def protect() -> None:
        strategy.bus.subscribe(RiskEvent, events.append)  # type: ignore[union-attr]
        assert strategy.last_price(SYMBOL) is None  # no quote yet: the limit price is not checked here
        placed.append(strategy.order(SYMBOL, -1000, 1.00, order_type="stop_limit", stop_price=999.00))

    run_sim(strategy, DAY, symbols=20, speed=8000, handle_signals=False, until="09:40")
    (stop,) = placed
    assert stop.emulated and stop.triggered  # released by the emulator on the first trade
    assert stop.status == "rejected"
    assert stop.reason == (
        "risk: limit price 1 is outside SH600000's limits today [62.35, 76.21] (previous close 69.28, ±10%)"
    )
    assert stop.updated is not None and stop.updated.time() <= dt.time(9, 30)  # the day's first trades
    assert [e.client_order_id for e in events if e.kind == "refused"] == [stop.client_order_id]
    assert strategy.risk.stats["refused_day_limits"] == 1
    assert strategy.position(SYMBOL) == 1000 and strategy.trades.empty  # nothing went to the broker
    assert strategy.trading_state == "ACTIVE"  # a refused order moves no state
