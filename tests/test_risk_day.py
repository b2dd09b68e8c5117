"""Each risk limit and each trading state driven over a simulated day (``run_sim``): a small strategy
trips the limit, and the test checks the refused orders' ``risk:`` reasons, the engine's counters, the
``RiskEvent``s a bus subscriber saw, and the state changes.  Prices are the simulated market's, read
by the strategy when it acts; the limits are set around them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

import hkrt
from hkrt.bus import RiskEvent
from hkrt.core.price_limits import price_limits, round_to_tick
from hkrt.strategy import round_buy, run_sim
from hkrt.strategy.order import Order
from hkrt.strategy.risk import ACTIVE, HALTED, REDUCING

DAY = dt.date(2026, 11, 20)
A, B = "SH600000", "SZ000001"


class Day:
    """One simulated morning (or day) of a strategy that calls ``act(strategy)`` once, at the first cycle
    at or after ``at``; what it returns is kept in ``placed``."""

    def __init__(self, risk: dict[str, Any], *, cash: float = 1_000_000, held: int = 0) -> None:
        self.broker = hkrt.TestOrderBroker(cash=cash)  # fills at the order's price: losses made by hand
        if held:  # shares bought the day before: sellable today (T+1)
            self.broker.buy(dt.datetime(2026, 11, 19, 15, 0), "SH", "600000", 10.0, held)
        self.strategy = hkrt.Strategy([A, B], ["MIN"], brokers=[self.broker], cash=0, fees=0, risk=risk)
        self.strategy.sync_from_broker()
        self.events: list[RiskEvent] = []
        self.placed: list[Any] = []
        self.strategy.on_start(lambda: self.strategy.bus.subscribe(RiskEvent, self.events.append))  # type: ignore[union-attr]

    def run(self, act: Callable[[hkrt.Strategy], list[Any]], at: str = "09:31", until: str | None = "09:36") -> Day:
        s, when = self.strategy, dt.time.fromisoformat(at)

        @s.on_cycle
        def once(info: Any) -> None:
            if not self.placed and s.now is not None and s.now.time() >= when:
                self.placed.extend(act(s) or [None])

        run_sim(s, DAY, symbols=20, speed=8000, handle_signals=False, until=until)
        assert self.placed, "the strategy never acted"
        return self

    def refused(self) -> list[RiskEvent]:
        return [e for e in self.events if e.kind == "refused"]

    def states(self) -> list[tuple[str, str]]:
        return [(e.state, e.reason) for e in self.events if e.kind == "state"]


def limit_buy(s: hkrt.Strategy, symbol: str, shares: int, price: float | None = None) -> Order:
    px = price if price is not None else s.last_price(symbol)
    return s.order(symbol, shares, px, order_type="limit")


def lots(s: hkrt.Strategy, symbol: str, yuan: float) -> int:
    px = s.last_price(symbol)
    assert px is not None
    return round_buy(symbol, yuan / px)


def check_refusal(day: Day, order: Order, check: str, *words: str) -> None:
    """``order`` was refused by ``check``: its reason, the counters and the bus event agree."""
    assert order.status == "rejected" and order.reason.startswith("risk: "), order.reason
    assert order.broker == "(strategy)"  # never sent
    for w in words:
        assert w in order.reason, order.reason
    engine = day.strategy.risk
    assert engine.stats[f"refused_{check}"] >= 1
    assert day.strategy.order_manager.stats["risk_refused"] == engine.stats["refused"]
    assert any(e.client_order_id == order.client_order_id and e.reason == order.reason for e in day.refused())
    assert day.broker.asset_info().positions == [] or all(  # nothing of a refused order reached the broker
        r.client_order_id != order.client_order_id for r in order.results
    )


# ------------------------------------------------------------------ one order
def test_max_order_shares_and_value() -> None:
    def act(s: hkrt.Strategy) -> list[Order]:
        fits = lots(s, A, 30_000)  # SH600000 is about 70 yuan: 400 shares, and 500 worth ~35,000
        assert fits + 100 <= 500
        return [limit_buy(s, A, 600), limit_buy(s, A, fits), limit_buy(s, A, fits + 100)]

    day = Day({"max_order_shares": 500, "max_order_value": 30_000}).run(act)
    too_many, fits, too_dear = day.placed
    check_refusal(day, too_many, "order_size", "buy of 600 shares of SH600000 is above max_order_shares 500")
    assert fits.status == "filled"
    check_refusal(day, too_dear, "order_size", "above max_order_value 30,000.00", f"{too_dear.shares} SH600000")
    assert day.strategy.risk.stats["refused"] == 2 and day.strategy.trading_state == ACTIVE
    assert len(day.refused()) == 2 and day.states() == []


def test_max_position_value_and_pct_count_held_and_open_buys() -> None:
    def act(s: hkrt.Strategy) -> list[Order]:
        n = lots(s, A, 30_000)
        m = lots(s, B, 25_000)
        return [limit_buy(s, A, n), limit_buy(s, A, n), limit_buy(s, B, m), limit_buy(s, B, m)]

    day = Day({"max_position_value": 50_000, "max_position_pct": 0.04}).run(act)
    first, second, b1, b2 = day.placed
    assert first.status == "filled" and b1.status == "filled"
    check_refusal(day, second, "position_size", f"SH600000 would be {2 * first.shares} shares", "max_position_value")
    # 2 x ~25,000 yuan of SZ000001 is ~5 % of ~1,000,000 equity: above 4 %
    check_refusal(day, b2, "position_size", "of equity", "above max_position_pct 4.00%")


def test_gross_exposure_and_max_positions() -> None:
    def act(s: hkrt.Strategy) -> list[Order]:
        return [limit_buy(s, A, lots(s, A, 30_000)), limit_buy(s, B, lots(s, B, 30_000))]

    day = Day({"max_gross_exposure": 0.05}).run(act)
    check_refusal(day, day.placed[1], "gross_exposure", "above max_gross_exposure 5.00%", "open buys 0.00")
    assert day.placed[0].status == "filled"

    def act2(s: hkrt.Strategy) -> list[Order]:
        return [limit_buy(s, A, 100), limit_buy(s, B, 100), limit_buy(s, A, 100), s.order(B, -100)]

    day = Day({"max_positions": 1}).run(act2)
    a, b, again, sell = day.placed
    assert a.status == "filled" and again.status == "filled"  # more of a symbol held is no new position
    check_refusal(day, b, "max_positions", "a buy of SZ000001 would make 2 positions", "above max_positions 1")
    assert "T+1" in sell.reason  # a sell is never refused by the position limits (here: nothing to sell)


def test_price_band_against_the_latest_price() -> None:
    def act(s: hkrt.Strategy) -> list[Order]:
        last = s.last_price(A)
        assert last is not None
        return [limit_buy(s, A, 100, round_to_tick(A, last * 1.05)), limit_buy(s, A, 100, last)]

    day = Day({"price_band": 0.02}).run(act)
    far, near = day.placed
    check_refusal(day, far, "price_band", "from SH600000's latest price", "outside price_band 2.00%")
    assert near.status == "filled"


def test_trading_hours_refuse_an_order_at_the_close_but_not_a_held_stop() -> None:
    def act(s: hkrt.Strategy) -> list[Order]:
        last = s.last_price(A)
        assert last is not None
        stop = s.order(A, 100, order_type="stop", stop_price=round_to_tick(A, last * 1.05))
        return [limit_buy(s, A, 100), stop]

    day = Day({}).run(act, at="15:00", until=None)
    late, stop = day.placed
    check_refusal(day, late, "trading_hours", "15:00:00 is outside the exchange's order hours",
                  "09:15-11:30, 13:00-15:00")  # fmt: skip
    assert stop.status != "rejected" and stop.emulated  # held by the emulator: it goes out only when released


# ------------------------------------------------------------- order rates
def test_a_loop_of_orders_hits_the_per_second_then_the_per_day_limit_and_halts() -> None:
    day = Day({"max_orders_per_second": 5, "max_orders_per_day": 40})
    s = day.strategy
    loop: list[Order] = []

    @s.on_cycle
    def runaway(info: Any) -> None:  # ten orders every 3-second snapshot from 09:30: a loop gone wrong
        if s.now is not None and s.now.time() >= dt.time(9, 30):
            loop.extend(limit_buy(s, A, 100) for _ in range(10))

    day.run(lambda s: [None], until="09:33")
    sent = [o for o in loop if o.status == "filled"]
    assert len(sent) == 40  # the day's limit
    # each snapshot: 5 go out and 5 are refused by the one-second window, for 7 snapshots (35 sent); the 8th
    # sends 5 more (40), its 6th order reaches the day's limit and halts, the rest meet the HALTED state
    per_second = [o for o in loop if "orders and cancels in the last second (max_orders_per_second)" in o.reason]
    day_limit = [o for o in loop if o.reason.startswith("risk: order rate: 40 orders and cancels today reach")]
    halted = [o for o in loop if o.reason.startswith("risk: trading halted: order rate: 40 orders")]
    assert (len(per_second), len(day_limit)) == (35, 1) and day_limit[0].reason.endswith("; trading halted")
    assert len(sent) + len(per_second) + len(day_limit) + len(halted) == len(loop) and len(halted) >= 4
    assert len({o.created for o in sent}) == 8  # five a snapshot: never more than 5 in any second
    assert s.trading_state == HALTED and "max_orders_per_day 40" in s.risk.reason
    stats = s.risk.stats
    assert (stats["rate_second_hits"], stats["rate_day_hits"], stats["state_halted"]) == (35, 1, 1)
    assert stats["refused"] == len(loop) - 40 and s.risk.rates.today == 40
    assert day.states() == [(HALTED, s.risk.reason)]
    assert len(day.refused()) == len(loop) - 40


# ------------------------------------------------------------- losses and states
def _lose(s: hkrt.Strategy) -> list[Order]:
    """Buy ~600,000 yuan of SH600000 at its limit up: the fill (at that price) loses ~9 % of it at once."""
    quote = s.day_quote(A)
    assert quote is not None and quote.prev_close is not None
    up = price_limits(A, quote.prev_close)[1]
    return [s.order(A, round_buy(A, 600_000 / up), up, order_type="limit")]


@pytest.mark.parametrize(
    ("risk", "state", "words"),
    [
        ({"max_daily_loss_pct": 0.02}, REDUCING, "above max_daily_loss_pct 2.00%"),
        ({"max_daily_loss": 20_000}, REDUCING, "above max_daily_loss 20,000.00"),
        ({"max_daily_loss": 20_000, "daily_loss_action": "HALTED"}, HALTED, "above max_daily_loss 20,000.00"),
        ({"max_drawdown_pct": 0.02}, HALTED, "above max_drawdown_pct 2.00%"),
    ],
)
def test_a_forced_loss_moves_the_state_at_once_and_refuses_what_it_must(
    risk: dict[str, Any], state: str, words: str
) -> None:
    day = Day({**risk, "price_band": None}, held=1_000)
    s = day.strategy
    after: list[Any] = []

    @s.on_cycle
    def later(info: Any) -> None:  # the first cycle after the loss: the state has moved already
        if day.placed and not after and s.now is not None and s.now > day.placed[0].created:
            after.append(s.trading_state)
            after.append(limit_buy(s, A, 100))
            after.append(s.order(A, -400, s.last_price(A), order_type="limit"))

    day.run(_lose)
    assert day.placed[0].status == "filled"
    moved, buy, sell = after
    assert moved == state and s.trading_state == state and words in s.risk.reason
    assert day.states() == [(state, s.risk.reason)]  # once, when crossed: not every cycle
    assert s.risk.stats[f"state_{state.lower()}"] == 1
    if state == REDUCING:
        check_refusal(day, buy, "state", "risk: reducing only", "a buy adds to a position")
        assert sell.status == "filled" and s.position(A) == day.placed[0].shares + 600  # a sell reduces: it passes
    else:
        check_refusal(day, buy, "state", "risk: trading halted", words)
        check_refusal(day, sell, "state", "risk: trading halted")
    assert s.risk.status()["day_open_equity"] == pytest.approx(s.risk.equity.day_open)


def test_resume_after_a_breach_is_not_overruled_every_cycle() -> None:
    day = Day({"max_daily_loss_pct": 0.02, "price_band": None})
    s = day.strategy
    after: list[Any] = []

    @s.on_cycle
    def resume(info: Any) -> None:
        if day.placed and not after and s.trading_state == REDUCING:
            s.resume("a person looked at it")
            after.append(s.now)

    day.run(_lose)
    assert after and s.trading_state == ACTIVE  # still past the limit, but acted on once
    assert [st for st, _ in day.states()] == [REDUCING, ACTIVE]


def test_a_check_that_raises_halts_trading_and_names_the_error() -> None:
    day = Day({})
    calls = []

    def broken(engine: Any, order: Order, wire_type: str, limit_price: float | None) -> str:
        calls.append(order.client_order_id)
        raise ZeroDivisionError("division by zero")

    day.strategy.risk.checks.insert(2, ("exposure_model", broken))
    day.run(lambda s: [limit_buy(s, A, 100), limit_buy(s, A, 100)])
    first, second = day.placed
    assert first.status == "rejected" and first.reason == (
        "risk: the exposure_model check failed (ZeroDivisionError: division by zero); trading halted"
    )
    assert second.reason.startswith("risk: trading halted: the exposure_model check failed: ZeroDivisionError")
    assert len(calls) == 1 and day.strategy.trading_state == HALTED
    assert day.strategy.risk.stats["check_failures"] == 1
    assert day.states() == [(HALTED, "the exposure_model check failed: ZeroDivisionError: division by zero")]
    assert day.broker.asset_info().positions == []


def test_a_stop_released_by_the_emulator_passes_the_engine_again() -> None:
    """A stop taken to hold while ACTIVE, released after the account went REDUCING: refused at release."""
    day = Day({})
    s = day.strategy

    def act(s: hkrt.Strategy) -> list[Order]:
        last = s.last_price(A)
        assert last is not None
        stop = s.order(A, 100, order_type="stop", stop_price=round_to_tick(A, last * 0.99))  # triggers at once
        s.risk.reduce("by hand")  # not the kill switch: the held order stays held
        return [stop]

    day.run(act)
    (stop,) = day.placed
    assert stop.emulated and stop.triggered, stop
    check_refusal(day, stop, "state", "risk: reducing only (by hand): a buy adds to a position")
    assert s.order_manager.stats["risk_refused"] == 1 and day.broker.asset_info().positions == []
