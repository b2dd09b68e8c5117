"""The typed event bus (hkrt.bus): routing by event class and filter, unsubscribing mid-dispatch,
the order of a message's events, guarded handlers, the bound under a slow handler, one callback
thread, and components (a Strategy) attached to a bus fed by hand.

Real parts: a real agent ingesting real wire messages, real threads; faults are injected with
handlers that raise or block on a gate.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

import hkrt
from conftest import FRIDAY, SYMBOL, at, spot
from hkrt.bus import (
    BarBatch,
    BarClosed,
    CycleEnded,
    CycleInfo,
    DayClosed,
    Event,
    EventBus,
    FeedGap,
    GapInfo,
    Heartbeat,
    MarketFilter,
    OrderEvent,
    RiskEvent,
    SignalEvent,
    SpotBatch,
    TradeEvent,
)
from hkrt.feed.wire import encode_heartbeat

OTHER = "SZ000001"
KTYPES = list(hkrt.KType)


def records(rows: list[tuple[str, str, str, float]]) -> np.ndarray:
    """Completed-bar records: (symbol, ktype, HH:MM label, close)."""
    out = np.zeros(len(rows), dtype=hkrt._hkrt.COMPLETED_DTYPE)
    for i, (symbol, ktype, hhmm, close) in enumerate(rows):
        out[i]["symbol"] = symbol.encode()
        out[i]["ktype"] = KTYPES.index(hkrt.KType.parse(ktype))
        out[i]["datetime"] = np.datetime64(at(hhmm + ":00"), "ms")
        out[i]["open"] = out[i]["high"] = out[i]["low"] = out[i]["close"] = close
        out[i]["volume"], out[i]["amount"] = 100.0, 100.0 * close
    return out


def cycle(cycle_id: int, market_time: dt.datetime | None) -> CycleEnded:
    return CycleEnded(CycleInfo(1, cycle_id, 1, 1, 1, 1, True, False, market_time, 0.0, 0.0))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture
def bus():
    with EventBus() as running:
        yield running


# ------------------------------------------------------------------ routing
def test_subscribers_get_their_event_class_and_what_their_filter_lets_through(bus: EventBus) -> None:
    got: dict[str, list] = {k: [] for k in ("min", "all_bars", "batch", "narrowed", "any", "gap", "odd")}
    bus.subscribe(BarClosed, lambda e: got["min"].append((e.symbol, e.ktype, e.bar.close)),
                  filter=MarketFilter(symbols=["600000.SH"], ktypes=["min"]))  # fmt: skip
    bus.subscribe(BarClosed, lambda e: got["all_bars"].append(e.symbol))
    bus.subscribe(BarBatch, lambda e: got["batch"].append(len(e)))
    bus.subscribe(BarBatch, lambda e: got["narrowed"].append(e.records["close"].tolist()),
                  filter=MarketFilter(symbols=[OTHER]))  # fmt: skip
    bus.subscribe(Event, lambda e: got["any"].append(type(e).__name__))
    bus.subscribe(FeedGap, lambda e: got["gap"].append(e.info.missing), filter=lambda e: e.info.kind == "gap")
    bus.subscribe(int, lambda n: got["odd"].append(n), filter=lambda n: n % 2 == 1)  # any class is a topic

    batch = BarBatch(records([(SYMBOL, "MIN", "10:01", 1.0), (OTHER, "MIN", "10:01", 2.0),
                              (SYMBOL, "MIN5", "10:05", 3.0)]))  # fmt: skip
    assert bus.publish(batch)
    bus.publish(BarBatch(records([(SYMBOL, "DAY", "15:00", 4.0)])))  # no OTHER row: the narrowed one gets nothing
    bus.publish(FeedGap(GapInfo(1, 5, 9, 4)))
    bus.publish(FeedGap(GapInfo(1, 1, 3, 2, kind="late_join")))
    for n in range(4):
        bus.publish(n)
    assert bus.wait_idle()

    assert got["min"] == [(SYMBOL, hkrt.KType.MIN, 1.0)]
    assert got["all_bars"] == [SYMBOL, OTHER, SYMBOL, SYMBOL]  # split from the batches, none lost
    assert got["batch"] == [3, 1]
    assert got["narrowed"] == [[2.0]]
    assert got["any"] == ["BarBatch", "BarBatch", "FeedGap", "FeedGap"]  # batches whole, ints are not Events
    assert got["gap"] == [4] and got["odd"] == [1, 3]


def test_a_spot_batch_is_decoded_once_and_only_for_the_subscribers_that_read_it(bus: EventBus) -> None:
    message = hkrt.wire.encode_spots(
        [spot("10:00:00", 10.0, 100, 1000), spot("10:00:00", 20.0, 200, 4000, symbol=OTHER)]
    )
    closes: list[list[float]] = []
    bus.subscribe(SpotBatch, lambda e: closes.append(e.columns["close"].tolist()), filter=MarketFilter([OTHER]))
    batch = SpotBatch.from_message(message, 2)
    bus.publish(batch)
    assert bus.wait_idle()
    assert closes == [[20.0]]
    assert batch.source.spots is None  # nobody asked for Spot objects: none were built

    spots: list[hkrt.Spot] = []
    bus.subscribe(hkrt.Spot, spots.append, filter=MarketFilter([SYMBOL]))
    bus.publish(batch)
    assert bus.wait_idle()
    assert [(s.symbol, s.close) for s in spots] == [(SYMBOL, 10.0)]
    with pytest.raises(ValueError, match="read-only"):
        batch.columns["close"][0] = 0.0  # one subscriber cannot change what the next one reads
    decoded = hkrt.wire.decode_columns(message)  # a message path that decoded the columns already shares them
    assert np.shares_memory(SpotBatch.from_message(message, 2, columns=decoded).columns["close"], decoded["close"])


def test_unsubscribing_during_a_dispatch_takes_effect_at_once(bus: EventBus) -> None:
    calls: list[str] = []
    subs: dict[str, hkrt.bus.Subscription] = {}

    def first(e: BarClosed) -> None:
        calls.append(f"first {e.bar.close:g}")
        if e.bar.close == 2.0:
            bus.unsubscribe(subs["second"])  # the second is not called for this very bar
            bus.unsubscribe(subs["first"])  # nor the first for the rest of the batch

    subs["first"] = bus.subscribe(BarClosed, first)
    subs["second"] = bus.subscribe(BarClosed, lambda e: calls.append(f"second {e.bar.close:g}"))
    subs["third"] = bus.subscribe(BarBatch, lambda e: calls.append(f"third {len(e)}"))
    bus.publish(BarBatch(records([(SYMBOL, "MIN", f"10:0{i}", float(i)) for i in range(1, 4)])))
    bus.publish(BarBatch(records([(SYMBOL, "MIN", "10:05", 5.0)])))
    assert bus.wait_idle()
    # each subscription gets the whole batch in turn, in subscription order
    # (the second's turn for that batch came after the first had unsubscribed it: it got nothing)
    assert calls == ["first 1", "first 2", "third 3", "third 1"]
    assert not subs["first"].active and bus.unsubscribe(subs["first"]) is False
    assert bus.subscriptions() == [subs["third"]]


def test_a_raising_handler_is_counted_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="hkrt.bus")
    seen: list[float] = []

    def fragile(e: BarClosed) -> None:
        if e.bar.close == 2.0:
            raise RuntimeError("strategy bug")
        seen.append(e.bar.close)

    with EventBus() as bus:
        bus.subscribe(BarClosed, fragile)
        bus.subscribe(BarClosed, lambda e: seen.append(-e.bar.close))
        bus.subscribe(CycleEnded, lambda e: 1 / 0, filter=lambda e: e.info.cycle_id == 1)
        bus.publish(BarBatch(records([(SYMBOL, "MIN", f"10:0{i}", float(i)) for i in range(1, 4)])))
        bus.publish(cycle(1, None))
        bus.publish(BarBatch(records([(SYMBOL, "MIN", "10:04", 4.0)])))
        assert bus.wait_idle()
    # the failing bar costs its handler that bar only; the other handler and later events run
    assert seen == [1.0, 3.0, -1.0, -2.0, -3.0, 4.0, -4.0]
    assert bus.errors == 2 and bus.stats()["errors"] == 2
    raised = [r for r in caplog.records if "raised" in r.getMessage()]
    assert raised and "strategy bug" in (raised[0].exc_text or "")


# ------------------------------------------------------------------ bounds
def test_a_slow_handler_with_a_full_queue_blocks_the_producer_then_stop_refuses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The documented policy: a full queue makes the producer wait (nothing dropped, counted,
    WARNING); after stop() a publish is refused (False, counted, WARNING)."""
    caplog.set_level(logging.WARNING, logger="hkrt.bus")
    gate = threading.Event()
    delivered: list[int] = []

    def slow(e: CycleEnded) -> None:
        gate.wait(10)
        delivered.append(e.info.cycle_id)

    bus = EventBus(max_events=4).start()
    bus.subscribe(CycleEnded, slow)
    published: list[int] = []
    bus.publish(cycle(0, None))
    published.append(0)
    wait_until(lambda: bus.depth == 0)  # taken by the handler, which is stuck on it

    def produce() -> None:
        for i in range(1, 10):
            assert bus.publish(cycle(i, None))
            published.append(i)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: bus.blocked == 1)  # 1 taken by the stuck handler, 4 queued: the 6th waits
    assert len(published) == 5 and bus.depth == 4 and producer.is_alive()
    gate.set()
    producer.join(10)
    assert bus.wait_idle()
    assert delivered == list(range(10))  # every event, in order
    stats = bus.stats()
    assert stats["high_water"] == 4 and stats["blocked"] >= 1 and stats["blocked_seconds"] > 0
    assert stats["slowest_hook"].endswith("slow") and stats["refused"] == stats["abandoned"] == 0
    assert any("callback queue full" in r.getMessage() for r in caplog.records)
    bus.stop()
    assert bus.publish(cycle(99, None)) is False and bus.refused == 1
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_every_handler_runs_on_the_one_callback_thread() -> None:
    threads: dict[str, set[int]] = {"bars": set(), "cycles": set(), "spots": set(), "posted": set()}
    with EventBus(name="hkrt-test-callbacks") as bus:
        bus.subscribe(BarClosed, lambda e: threads["bars"].add(threading.get_ident()))
        bus.subscribe(CycleEnded, lambda e: threads["cycles"].add(threading.get_ident()))
        bus.subscribe(hkrt.Spot, lambda s: threads["spots"].add(threading.get_ident()))
        message = hkrt.wire.encode_spots([spot("10:00:00", 10.0, 100, 1000)])

        def produce(k: int) -> None:
            for i in range(20):
                bus.publish(BarBatch(records([(SYMBOL, "MIN", "10:01", float(i))])))
                bus.publish(cycle(k * 100 + i, None))
                bus.publish(SpotBatch.from_message(message, 1))
                bus.post(lambda: threads["posted"].add(threading.get_ident()))

        producers = [threading.Thread(target=produce, args=(k,)) for k in range(3)]
        for p in producers:
            p.start()
        for p in producers:
            p.join(10)
        assert bus.wait_idle()
        callback_thread = bus._thread
    ran_on = set().union(*threads.values())
    assert len(ran_on) == 1 and all(threads.values())
    assert callback_thread is not None and ran_on == {callback_thread.ident}
    assert not ran_on & {p.ident for p in producers} and threading.get_ident() not in ran_on


# ------------------------------------------------------------- the agent's events
def test_a_messages_events_come_spots_then_bars_then_cycle_and_the_day_close_after_its_bars() -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"], bar_close_delay=0)
    order: list[str] = []
    agent.bus.subscribe(Event, lambda e: order.append(type(e).__name__))
    agent.bus.start()  # the agent's events, without a socket: in-process ingest publishes them
    try:
        for i, hhmm in enumerate(["09:31:10", "09:32:10", "09:33:10"], start=1):
            message = hkrt.wire.encode_spots([spot(hhmm, 10.0 + i, 100 * i, 1000 * i)], publisher_id=1,
                                        session_epoch=1, sequence=i, cycle_id=i, simulated_time=True)  # fmt: skip
            agent.ingest(message)
        agent.ingest(encode_heartbeat(publisher_id=1, session_epoch=1, sequence=3, market_time=at("15:00:00"),
                                      simulated_time=True, day_end=True))  # fmt: skip
        assert agent.wait_idle()
        closes: list[DayClosed] = []
        agent.bus.subscribe(DayClosed, closes.append)
    finally:
        agent.stop()
    first, messages, close = order[:2], order[2:8], order[8:]
    assert first == ["SpotBatch", "CycleEnded"]  # the first minute is still open
    assert messages == ["SpotBatch", "BarBatch", "CycleEnded"] * 2
    assert close[0] == "Heartbeat" and close[-1] == "DayClosed" and set(close[1:-1]) == {"BarBatch"}
    assert agent.closed_day == FRIDAY and not closes  # subscribed after: nothing replayed


def test_the_agent_shims_and_direct_subscribers_share_one_bus_and_bars_are_collected_for_either() -> None:
    agent = hkrt.SpotAgent(["MIN"], bar_close_delay=0)
    shim: list[tuple[str, str]] = []
    direct: list[tuple[str, str]] = []
    columns: list[int] = []
    agent.on_bar(lambda symbol, ktype, bar: shim.append((symbol, f"{bar.datetime:%H:%M}")), symbols=[SYMBOL])
    agent.bus.subscribe(BarClosed, lambda e: direct.append((e.symbol, f"{e.bar.datetime:%H:%M}")),
                        filter=MarketFilter([OTHER]))  # fmt: skip
    agent.on_columns(lambda cols: columns.append(len(cols["symbol"])))
    agent.bus.start()
    try:
        for i, hhmm in enumerate(["09:31:10", "09:32:10", "09:33:10"], start=1):
            agent.ingest(hkrt.wire.encode_spots([spot(hhmm, 10.0, 100 * i, 1000 * i),
                                            spot(hhmm, 20.0, 100 * i, 2000 * i, symbol=OTHER)],
                                           publisher_id=1, session_epoch=1, sequence=i, cycle_id=i))  # fmt: skip
        assert agent.wait_idle()
    finally:
        agent.stop()
    assert shim == [(SYMBOL, "09:32"), (SYMBOL, "09:33")]
    assert direct == [(OTHER, "09:32"), (OTHER, "09:33")]
    assert columns == [2, 2, 2]  # 3 SpotBatch + 2 BarBatch published; no cycle event: nobody subscribed
    callbacks = agent.stats()["callbacks"]
    assert callbacks["published"] == 5 and callbacks["errors"] == 0 and not callbacks["running"]


def test_nothing_is_built_for_nobody() -> None:
    agent = hkrt.SpotAgent(["MIN"])
    agent.bus.subscribe(CycleEnded, lambda e: None)
    agent.bus.start()
    try:
        agent.ingest(
            hkrt.wire.encode_spots([spot("09:31:10", 10.0, 100, 1000)], publisher_id=1, sequence=1, cycle_id=1)
        )
        assert agent.wait_idle()
    finally:
        agent.stop()
    assert not agent.bus.wants(SpotBatch) and not agent.bus.wants(Heartbeat)
    assert agent.stats()["callbacks"]["published"] == 1  # the cycle only: no spot or bar event was made
    assert not agent._engine.collect_completed  # no bar subscriber: the engine keeps no completed queue


# ------------------------------------------------------------------ components
def test_a_strategy_attached_to_a_bus_fed_by_hand_gets_its_bars_prices_and_timers() -> None:
    strategy = hkrt.Strategy([SYMBOL], ["MIN", "MIN5"])
    bars: list[tuple[str, str, str]] = []
    fives: list[str] = []
    ticks: list[dt.datetime | None] = []
    cycles: list[int] = []

    @strategy.on_bar
    def on_bar(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
        bars.append((symbol, ktype.value, f"{bar.datetime:%H:%M}"))

    strategy.on_bar(lambda symbol, ktype, bar: fives.append(f"{bar.datetime:%H:%M}"), ktypes=["MIN5"])
    strategy.on_cycle(lambda info: cycles.append(info.cycle_id))
    strategy.run_daily_at(lambda: ticks.append(strategy.now), "10:03")

    with EventBus() as bus:
        strategy.attach(bus)
        bus.publish(BarBatch(records([(SYMBOL, "MIN", "10:01", 10.0), (OTHER, "MIN", "10:01", 20.0),
                                      (SYMBOL, "DAY", "15:00", 10.0)])))  # fmt: skip
        bus.publish(cycle(1, at("10:01:00")))
        bus.publish(BarClosed(SYMBOL, hkrt.KType.MIN5, hkrt.Bar(at("10:05:00"), 1, 1, 1, 1, 1, 1)))
        prices = [spot("10:05:30", 10.5, 100, 1050), spot("10:05:30", 20.0, 1, 20, symbol=OTHER)]
        bus.publish(SpotBatch.from_spots(prices))
        bus.publish(cycle(2, at("10:05:30")))
        assert bus.wait_idle()
        strategy.detach()
        bus.publish(BarBatch(records([(SYMBOL, "MIN", "10:06", 10.0)])))  # detached: not delivered
        assert bus.wait_idle() and bus.stats()["subscriptions"] == 0
    assert bars == [(SYMBOL, "MIN", "10:01"), (SYMBOL, "MIN5", "10:05")]  # its codes and ktypes only
    assert fives == ["10:05"] and cycles == [1, 2]
    assert ticks == [at("10:05:30")]  # the 10:03 timer fired on the market clock of cycle 2
    assert strategy.last_price(SYMBOL) == 10.5 and strategy.last_price(OTHER) is None


def test_trading_events_are_typed_checked_and_routed(bus: EventBus) -> None:
    got: list[Event] = []
    bus.subscribe(OrderEvent, got.append)
    bus.subscribe(RiskEvent, got.append)
    order = OrderEvent("c1", SYMBOL, "buy", 100, "submitted", order_type="limit", price=10.0)
    bus.publish(order)
    bus.publish(TradeEvent("c1", "t1", SYMBOL, "buy", 100, 10.0, 1000.0))  # nobody subscribed to trades
    bus.publish(RiskEvent("refused", "ACTIVE", "risk: max order value", symbol=SYMBOL, client_order_id="c2"))
    assert bus.wait_idle()
    assert got[0] is order and isinstance(got[1], RiskEvent) and len(got) == 2
    with pytest.raises(ValueError, match="status 'done' is not one of submitted, accepted"):
        OrderEvent("c1", SYMBOL, "buy", 100, "done")
    with pytest.raises(ValueError, match="confidence"):
        SignalEvent("s", SYMBOL, "buy", confidence=1.5)
    with pytest.raises(AttributeError):
        order.status = "filled"  # type: ignore[misc]  # events are immutable


def test_bad_subscriptions_fail_in_one_line() -> None:
    bus = EventBus()
    with pytest.raises(TypeError, match=r"event class such as hkrt\.bus\.BarClosed, not 'bars'"):
        bus.subscribe("bars", print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not callable"):
        bus.subscribe(BarClosed, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue bound must be >= 1"):
        EventBus(max_events=0)
    assert bus.publish(BarBatch(records([]))) is False  # not started: refused, counted
    assert bus.refused == 1 and bus.wait_idle()


def test_what_handlers_publish_to_run_next_is_bounded_and_refusals_are_loud(caplog: pytest.LogCaptureFixture) -> None:
    """A handler publishing without end cannot exhaust memory: past max_run_next held to run next, its
    publish and post return False, counted and logged; the events held still run, in order."""
    from hkrt.bus import Event

    class Burst(Event):
        pass

    class Echo(Event):
        def __init__(self, n: int) -> None:
            self.n = n

    got: list[int] = []
    answers: list[bool] = []
    with EventBus(max_run_next=4) as bus:

        def burst(event: Burst) -> None:
            answers.extend(bus.publish(Echo(n)) for n in range(6))
            answers.append(bus.post(lambda: got.append(-1)))

        bus.subscribe(Burst, burst)
        bus.subscribe(Echo, lambda e: got.append(e.n))
        with caplog.at_level(logging.WARNING, logger="hkrt.bus"):
            assert bus.publish(Burst())
            assert bus.wait_idle()
        assert answers == [True, True, True, True, False, False, False]
        assert got == [0, 1, 2, 3]
        assert bus.stats()["own_refused"] == 3
    assert "published by a handler refused" in caplog.text
