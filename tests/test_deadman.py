"""The dead-man switch: a stuck callback and a silent feed cancel the working orders and alert, once per outage;
a simulated day that merely runs fast, nights and the lunch break never fire it."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import hkrt
from hkrt.bus import CycleEnded, EventBus, RiskEvent
from hkrt.hooks import CycleInfo
from hkrt.strategy import Strategy, run_sim
from hkrt.strategy.deadman import DeadManAlert, DeadManSwitch, session_seconds

DAY = dt.date(2026, 11, 20)  # a Friday, a trading day
CODES = ["SH600000", "SH600001", "SH600002"]
SYMBOLS = 20


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def away(strategy: Strategy, code: str) -> float:
    last = strategy.last_price(code)
    assert last is not None
    return round(last * 0.95, 2)  # a limit buy under the market: working


# ------------------------------------------------------------------ the strategy's heartbeat
def test_a_stuck_callback_cancels_the_working_orders_halts_and_alerts_once(caplog) -> None:
    caplog.set_level(logging.INFO, "hkrt.deadman")
    alerts: list[DeadManAlert] = []
    switch = DeadManSwitch(strategy_timeout=1.0, feed_timeout=None, on_alert=alerts.append, check_interval=0.05)
    strategy = Strategy(CODES, name="dm", deadman=switch)
    assert strategy.deadman is switch
    events: list[RiskEvent] = []
    placed: dict[str, Any] = {}
    strategy.on_start(lambda: strategy.bus.subscribe(RiskEvent, events.append) if strategy.bus else None)

    @strategy.run_daily_at(time="09:35")
    def open_orders() -> None:
        placed["first"] = [strategy.order(c, 100, away(strategy, c), order_type="limit") for c in CODES]

    @strategy.run_daily_at(time="10:00")
    def stuck() -> None:
        time.sleep(2.5)  # a callback in a loop: the watchdog acts while it runs
        placed["open_after_stuck"] = len(strategy.open_orders())

    @strategy.run_daily_at(time="10:15")
    def after() -> None:
        placed["after"] = strategy.order(CODES[0], 100, away(strategy, CODES[0]), order_type="limit")

    run_sim(strategy, DAY, symbols=SYMBOLS, speed=2000, handle_signals=False, until="10:30")
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert (alert.heartbeat, alert.cancelled, alert.halted) == ("strategy", 3, True)
    assert alert.seconds >= 1.0 and "callback thread is stuck" in alert.detail
    assert ".<locals>.stuck' (in Strategy.market_clock) has run" in alert.detail  # the user's timer, by name
    assert alert.market is not None and alert.market.time() >= dt.time(10, 0)
    assert all(o.status == "cancelled" for o in placed["first"]), [(o.status, o.reason) for o in placed["first"]]
    assert strategy.brokers[0].open_orders() == []  # the paper broker cancelled them
    assert strategy.trading_state == "HALTED" and strategy.risk.reason == alert.detail
    assert placed["after"].status == "rejected" and placed["after"].reason.startswith("risk: trading halted: dead-man")
    assert [e.kind for e in events if e.reason == alert.detail] == ["state"]
    assert switch.stats["fired_strategy"] == 1 and switch.stats["rearmed_strategy"] == 1
    assert switch.stats["cancelled"] == 3 and switch.armed["strategy"]
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "dead-man switch" in r.getMessage()]
    assert len(errors) == 1 and "cancelling every working order and halting" in errors[0].getMessage()
    assert any("re-armed" in r.getMessage() for r in caplog.records)


def test_a_fast_simulated_day_never_fires_it() -> None:
    alerts: list[DeadManAlert] = []
    strategy = Strategy(CODES, name="dm", deadman={"strategy_timeout": 2.0, "feed_timeout": 30.0,
                                                   "on_alert": alerts.append, "check_interval": 0.05})  # fmt: skip
    strategy.on_bar(lambda *a: None)
    report = run_sim(strategy, DAY, symbols=SYMBOLS, speed=50_000, handle_signals=False)
    assert report.day_closed and alerts == []
    assert strategy.deadman is not None and strategy.deadman.stats["checks"] > 0
    assert strategy.deadman.stats["fired"] == 0


def test_bad_deadman_options_are_one_line() -> None:
    with pytest.raises(ValueError, match="strategy_timeout must be a number of seconds > 0"):
        Strategy(CODES, deadman={"strategy_timeout": 0})
    with pytest.raises(ValueError, match=r"dead-man switch: .*unexpected keyword argument 'timeout'"):
        Strategy(CODES, deadman={"timeout": 5})
    with pytest.raises(TypeError, match="deadman= takes a DeadManSwitch"):
        Strategy(CODES, deadman=30)
    assert Strategy(CODES, deadman=True).deadman is not None and Strategy(CODES).deadman is None


# ------------------------------------------------------------------ the feed's heartbeat, live
class Wall:
    """The China wall clock the switch reads (trading hours or not); everything else is real."""

    def __init__(self, when: dt.datetime) -> None:
        self.now = when

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_live_feed_that_stops_publishing_alerts_once_per_outage_and_never_at_lunch(caplog) -> None:
    from hkrt.feed.transport import SpotPublisher

    caplog.set_level(logging.INFO, "hkrt.deadman")
    wall = Wall(dt.datetime.combine(DAY, dt.time(10, 0)))
    alerts: list[DeadManAlert] = []
    switch = DeadManSwitch(strategy_timeout=None, feed_timeout=1.0, on_alert=alerts.append, check_interval=0.05,
                           wall=wall)  # fmt: skip
    strategy = Strategy(["SH600000"], name="dm-live", deadman=switch)
    address = "inproc://hkrt-deadman-live-test"
    with SpotPublisher(address, heartbeat_interval=0.1) as publisher:  # heartbeats go on throughout
        runner = threading.Thread(target=lambda: strategy.run(address, live=True, handle_signals=False), daemon=True)
        runner.start()
        try:
            assert publisher.wait_for_subscribers(1, timeout=10)
            minute = [0]

            def flow(seconds: float) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    minute[0] += 1
                    when = dt.datetime.combine(DAY, dt.time(10, 0)) + dt.timedelta(seconds=minute[0])
                    publisher.publish([hkrt.Spot("SH600000", when, close=10.0, volume=100.0 * minute[0],
                                                 amount=1000.0 * minute[0])])  # fmt: skip
                    time.sleep(0.05)

            flow(1.0)
            assert alerts == []
            assert wait_for(lambda: len(alerts) == 1, 5)  # silent (heartbeats only) for feed_timeout
            time.sleep(1.0)
            assert len(alerts) == 1  # once per outage
            assert alerts[0].heartbeat == "feed" and "no spot message" in alerts[0].detail
            flow(0.5)
            assert wait_for(lambda: switch.armed["feed"], 2)  # the heartbeat is back: re-armed
            assert wait_for(lambda: len(alerts) == 2, 5)  # the next outage fires again
            wall.now = dt.datetime.combine(DAY, dt.time(12, 0))  # lunch: silence is no outage
            flow(0.3)
            assert wait_for(lambda: switch.armed["feed"], 2)
            time.sleep(1.5)
            assert len(alerts) == 2
            wall.now = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(10, 0))  # a Saturday
            time.sleep(1.5)
            assert len(alerts) == 2
            wall.now = dt.datetime.combine(DAY, dt.time(13, 0))  # the afternoon opens: counted from now
            time.sleep(0.3)
            assert len(alerts) == 2
            assert wait_for(lambda: len(alerts) == 3, 5)
        finally:
            strategy.stop()
            runner.join(30)
    assert not runner.is_alive()
    assert switch.stats["fired_feed"] == 3 and switch.stats["rearmed_feed"] == 2
    assert strategy.trading_state == "HALTED" and strategy.risk.reason.startswith("dead-man switch: the feed is silent")


# ------------------------------------------------------------- the feed's heartbeat, played days
def test_session_seconds_skip_the_lunch_break_and_the_night() -> None:
    at = lambda h, m: dt.datetime.combine(DAY, dt.time(h, m))  # noqa: E731
    assert session_seconds(at(11, 29), at(13, 1)) == 120.0
    assert session_seconds(at(9, 0), at(9, 31)) == 60.0
    assert session_seconds(at(14, 59), at(15, 30)) == 60.0
    assert session_seconds(at(11, 30), at(13, 0)) == 0.0


def cycle(when: dt.datetime, n: int) -> CycleEnded:
    return CycleEnded(CycleInfo(1, n, 1, 1, 1, 1, True, False, when, 0.0, 0.0))


def test_a_replayed_outage_fires_by_market_time_and_the_lunch_break_does_not() -> None:
    """On a played day the feed's clock is its market time: a 5-minute hole in the afternoon fires (at the
    cycle that shows it, then re-armed), the lunch break and a paused replayer do not."""
    alerts: list[DeadManAlert] = []
    switch = DeadManSwitch(strategy_timeout=None, feed_timeout=60.0, on_alert=alerts.append, halt=False)
    strategy = Strategy(CODES, name="dm-replay", deadman=switch)
    with EventBus() as bus:
        strategy.attach(bus)
        switch.start(strategy, None, live=False)
        try:
            times = [(11, 29, 54), (11, 29, 57), (13, 0, 0), (13, 0, 3), (13, 5, 3), (13, 5, 6)]
            for n, (h, m, s) in enumerate(times):
                bus.publish(cycle(dt.datetime.combine(DAY, dt.time(h, m, s)), n))
                if n == 1:
                    time.sleep(0.5)  # a paused replayer: wall time, not market time
            assert bus.wait_idle()
        finally:
            switch.stop()
            strategy.detach()
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert alert.heartbeat == "feed" and alert.seconds == 300.0 and "13:00:03 to 13:05:03" in alert.detail
    assert not alert.halted and strategy.trading_state == "ACTIVE"  # halt=False: cancel and alert only
    assert switch.armed["feed"] and switch.stats["rearmed_feed"] == 1


def test_the_watchdog_cancels_while_the_callback_is_stuck_and_its_queue_full() -> None:
    from stuck_strategy import stuck_strategy

    alerts: list[DeadManAlert] = []
    switch = DeadManSwitch(strategy_timeout=1.0, feed_timeout=None, on_alert=alerts.append, check_interval=0.05,
                           action_wait=1.0)  # fmt: skip
    with stuck_strategy(deadman=switch) as stuck:
        assert wait_for(lambda: len(alerts) == 1, 10)
        (alert,) = alerts
        assert alert.heartbeat == "strategy" and alert.halted
        assert stuck.strategy.brokers[0].open_orders() == []  # at the broker, while the callback is still stuck
        assert alert.cancelled + switch.stats["cancels_pending"] == 3
        assert stuck.strategy.bus is not None and stuck.strategy.bus.depth >= 10  # the queue was full meanwhile
        stuck.release.set()  # the callback returns: the heartbeat is back
        assert wait_for(lambda: switch.armed["strategy"], 10)
    assert [o.status for o in stuck.placed] == ["cancelled"] * 3
    assert switch.stats["rearmed_strategy"] == 1
