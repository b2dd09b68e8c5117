"""OrderReporter's bookkeeping on its own: a real EventBus, a hand-moved clock."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from hkrt.adapters.reports import CANCELLED, FILLED, PENDING, WORKING, OrderHint, OrderReporter
from hkrt.bus import EventBus, ExecutionReport


class Clocks:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 20, 10, 0)
        self.mono = 100.0

    def wall(self) -> dt.datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono


@pytest.fixture
def bus():
    b = EventBus().start()
    yield b
    b.stop()


def collect(bus: EventBus) -> list[ExecutionReport]:
    got: list[ExecutionReport] = []
    bus.subscribe(ExecutionReport, got.append)
    return got


def test_a_report_the_bus_refused_goes_out_on_the_next_read(bus) -> None:
    got = collect(bus)
    clocks = Clocks()
    r = OrderReporter("B", clock=clocks.wall)
    r.attach(bus.publish)
    r.track("7", "c-7", "SH600000", "buy")
    bus.stop()  # the bus is down while the venue reports
    r.order_state("7", WORKING)
    r.trade("7", "t1", 100, 10.0)
    assert r.stats["refused"] == 2 and r.stats["fills"] == 0
    bus.start()
    r.order_state("7", FILLED)  # the next poll reads the same again: nothing was lost
    r.trade("7", "t1", 100, 10.0)
    assert bus.wait_idle()
    assert [(x.kind, x.trade_id, x.datetime) for x in got] == [
        ("accepted", "", clocks.now),
        ("fill", "7/t1", clocks.now),
    ]


def test_a_held_cancel_goes_out_after_the_grace_with_a_warning(bus, caplog) -> None:
    caplog.set_level(logging.WARNING, "hkrt.broker.reports")
    got = collect(bus)
    clocks = Clocks()
    r = OrderReporter("B", final_grace=10.0, clock=clocks.wall, monotonic=clocks.monotonic)
    r.attach(bus.publish)
    r.track("7", "c-7", "SH600000", "sell")
    r.order_state("7", CANCELLED, filled=300, reason="部撤")
    r.flush()
    assert bus.wait_idle() and got == []
    clocks.mono += 10.0
    r.flush()
    assert bus.wait_idle()
    assert [(x.kind, x.reason) for x in got] == [("cancelled", "部撤")]
    assert r.stats["finals_forced"] == 1 and "only 0 were reported" in caplog.records[0].getMessage()
    r.trade("7", "late", 300, 10.0)  # after the cancel: still published, the order manager judges it
    assert bus.wait_idle() and got[-1].kind == "fill"


def test_early_events_wait_for_track_then_an_untracked_order_goes_by_its_hint(bus) -> None:
    got = collect(bus)
    clocks = Clocks()
    r = OrderReporter("B", early_grace=5.0, clock=clocks.wall, monotonic=clocks.monotonic)
    r.attach(bus.publish)
    r.order_state("8", PENDING, hint=OrderHint("remark", "SH600000", "buy"))
    r.order_state("8", WORKING, hint=OrderHint("remark", "SH600000", "buy"))
    assert bus.wait_idle() and got == []
    r.track("8", "c-8", "SH600000", "buy")  # the broker's client id, not the venue's remark
    assert bus.wait_idle() and [(x.kind, x.client_order_id) for x in got] == [("accepted", "c-8")]

    r.order_state("9", WORKING, hint=OrderHint("old-9", "SZ000001", "sell"))  # never tracked: an earlier run's
    r.order_state("10", WORKING, hint=OrderHint("", "SZ000001", "sell"))  # no client id: foreign
    clocks.mono += 5.0
    r.flush()
    assert bus.wait_idle()
    assert [(x.kind, x.client_order_id, x.broker_order_id) for x in got[1:]] == [("accepted", "old-9", "9")]
    assert r.stats["foreign_orders"] == 1


def test_seen_trade_ids_are_bounded_and_forgotten_at_the_days_change(bus) -> None:
    got = collect(bus)
    clocks = Clocks()
    r = OrderReporter("B", max_trades=2, clock=clocks.wall)
    r.attach(bus.publish)
    r.track("1", "c-1", "SH600000", "buy")
    for t in ("a", "b", "c"):
        r.trade("1", t, 100, 10.0)
    assert r.stats["trade_ids_forgotten"] == 1
    r.trade("1", "c", 100, 10.0)
    assert r.stats["duplicate_trades"] == 1
    clocks.now += dt.timedelta(days=1)  # a new day: the client numbers entrusts from the start again
    r.trade("1", "a", 100, 10.0)  # not tracked today: not reported
    assert r.stats["foreign_orders"] == 1
    assert bus.wait_idle() and [x.cumulative_shares for x in got] == [100, 200, 300]
    with pytest.raises(ValueError):
        OrderReporter("B", max_orders=0)
