"""The callback queue (the event bus's, hkrt.bus) is bounded: slow hooks make the receiver wait
(backpressure), never drop an event or grow memory without bound, and say so in a rate-limited
WARNING.

Fault injection: hooks that sleep or block on a gate, producers faster than the hooks, a
``publish`` racing ``stop``, and a real agent on a real ipc socket flooded by a real publisher.
Events here are plain ints (weight 1) and lists (weight: their length): the bus routes by class.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

import hkrt
from hkrt.bus import EventBus
from hkrt.core.logs import record_fields
from hkrt.feed.transport import SpotPublisher


def warnings_of(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def slow_hook_set(delay: float, delivered: list, depths: list, bus: EventBus) -> EventBus:
    def slow(value: object) -> None:
        depths.append(bus.stats()["depth"])
        time.sleep(delay)
        delivered.append(value)

    bus.subscribe(int, slow)
    return bus.start()


def test_slow_hook_and_fast_producer_stay_within_the_bound_in_order(caplog: pytest.LogCaptureFixture) -> None:
    delivered: list[int] = []
    depths: list[int] = []
    caplog.set_level(logging.WARNING, logger="hkrt.bus")
    dispatcher = slow_hook_set(0.001, delivered, depths, EventBus(max_events=40, warn_interval=60.0))
    dispatcher.publish(0)
    wait_until(lambda: bool(depths))  # the hook runs: the warnings can name it
    started = time.perf_counter()
    for i in range(1, 400):
        assert dispatcher.publish(i)
        assert dispatcher.depth <= 40
    produced_in = time.perf_counter() - started
    dispatcher.stop(timeout=30)

    assert delivered == list(range(400))  # every event, in order: nothing dropped
    assert dispatcher.high_water <= 40 and max(depths) <= 40
    assert dispatcher.high_water >= 20  # the producer really outran the hook
    assert dispatcher.blocked > 0 and dispatcher.blocked_seconds > 0.1
    assert produced_in >= dispatcher.blocked_seconds * 0.9  # the waiting is the producer's, not hidden
    assert (dispatcher.refused, dispatcher.abandoned, dispatcher.errors) == (0, 0, 0)
    # one WARNING each per rate-limit window, however many times the queue filled up
    half, full = warnings_of(caplog, "past half its bound"), warnings_of(caplog, "callback queue full")
    assert len(half) == 1 and len(full) == 1
    fields = record_fields(full[0])
    assert fields["max_events"] == 40 and fields["depth"] >= 39
    assert fields["slowest_hook"].endswith("slow_hook_set.<locals>.slow")


def test_the_item_bound_holds_big_events_to_a_few_spots() -> None:
    """Events carry whole messages: the bound also counts the spots/bars they hold."""
    seen_items: list[int] = []
    dispatcher = EventBus(max_events=10_000, max_items=1_000)
    dispatcher.subscribe(list, lambda records: (seen_items.append(dispatcher.stats()["items"]), time.sleep(0.002)))
    dispatcher.start()
    for _ in range(60):
        dispatcher.publish(list(range(100)))  # 100 bars each: at most 10 such events wait
    dispatcher.publish(list(range(5_000)))  # bigger than the whole bound: passes alone
    dispatcher.stop(timeout=30)
    assert len(seen_items) == 61
    assert max(seen_items) <= 1_000 and dispatcher.high_water <= 10
    assert dispatcher.blocked > 0


def test_warning_once_per_window_then_again_with_the_suppressed_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hkrt.bus")
    gate = threading.Event()
    dispatcher = EventBus(max_events=10, warn_interval=0.5)
    dispatcher.subscribe(int, lambda _: gate.wait(10))
    dispatcher.start()

    def climb_past_half_and_drain() -> None:
        gate.clear()
        for i in range(8):  # the hook holds the first, 7 wait: past half of 10
            dispatcher.publish(i)
        gate.set()
        wait_until(lambda: dispatcher.depth == 0)

    started = time.monotonic()
    climb_past_half_and_drain()
    climb_past_half_and_drain()  # same window: held back
    assert time.monotonic() - started < 0.5, "the machine was too slow to stay inside one window"
    assert len(warnings_of(caplog, "past half its bound")) == 1
    time.sleep(0.55)
    climb_past_half_and_drain()  # next window: logged, with the one held back
    dispatcher.stop()
    lines = warnings_of(caplog, "past half its bound")
    assert len(lines) == 2
    assert "suppressed" not in record_fields(lines[0]) and record_fields(lines[1])["suppressed"] == 1


def test_put_racing_stop_is_run_while_the_thread_drains() -> None:
    delivered: list[int] = []
    dispatcher = EventBus(max_events=3)
    dispatcher.subscribe(int, lambda v: (time.sleep(0.01), delivered.append(v)))
    dispatcher.start()
    for i in range(3):
        dispatcher.publish(i)
    results: list[bool] = []
    producer = threading.Thread(target=lambda: results.extend(dispatcher.publish(i) for i in range(3, 8)))
    producer.start()  # blocks on the full queue while stop() below drains it
    time.sleep(0.005)
    dispatcher.stop(timeout=10)
    producer.join(5)
    assert not producer.is_alive()
    # whatever was queued before the thread finished ran, in order; the rest was refused, and said so
    assert delivered == list(range(3 + sum(results)))
    assert dispatcher.refused == results.count(False)
    assert dispatcher.publish(99) is False and dispatcher.refused == results.count(False) + 1


def test_put_during_stop_with_a_stuck_hook_never_hangs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hkrt.bus")
    gate = threading.Event()
    dispatcher = EventBus(max_events=2)
    dispatcher.subscribe(int, lambda _: gate.wait(30))
    dispatcher.start()
    dispatcher.publish(0)
    wait_until(lambda: dispatcher.depth == 0)  # taken by the hook, which is stuck on it
    dispatcher.publish(1)
    dispatcher.publish(2)  # two waiting: full
    assert dispatcher.blocked == 0
    outcome: list[bool] = []
    producer = threading.Thread(target=lambda: outcome.append(dispatcher.publish(3)))
    producer.start()
    wait_until(lambda: dispatcher.blocked == 1)
    started = time.monotonic()
    dispatcher.stop(timeout=0.3)
    producer.join(5)
    try:
        assert not producer.is_alive() and outcome == [False]
        assert time.monotonic() - started < 3
        assert (dispatcher.abandoned, dispatcher.refused) == (2, 1)
        assert warnings_of(caplog, "did not finish in time") and warnings_of(caplog, "callback event refused")
    finally:
        gate.set()


def test_a_hook_that_queues_work_never_waits_on_itself() -> None:
    delivered: list[object] = []
    dispatcher = EventBus(max_events=1)

    def fan_out(value: object) -> None:
        delivered.append(value)
        if value == "first":  # the queue is full (bound 1): waiting here would never end
            for i in range(5):
                dispatcher.publish(i)

    dispatcher.subscribe(int, fan_out)
    dispatcher.subscribe(str, fan_out)
    dispatcher.start()
    dispatcher.publish("first")
    done = threading.Event()
    dispatcher.post(done.set)
    assert done.wait(10)
    dispatcher.stop()
    assert delivered[0] == "first" and sorted(delivered[1:], key=str) == [0, 1, 2, 3, 4]


def test_a_hook_error_is_counted_and_the_thread_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="hkrt.bus")
    delivered: list[int] = []

    def fragile(value: int) -> None:
        if value == 1:
            raise RuntimeError("boom")
        delivered.append(value)

    dispatcher = EventBus(max_events=2)
    dispatcher.subscribe(int, fragile)
    dispatcher.start()
    for i in range(4):
        dispatcher.publish(i)
    dispatcher.post(lambda: 1 / 0)  # posted work that raises: counted too
    dispatcher.stop()
    assert delivered == [0, 2, 3] and dispatcher.errors == 2


def test_a_flooded_agent_with_a_slow_hook_stays_bounded_and_reports_every_loss(tmp_path: Path) -> None:
    """A real publisher floods a real agent whose hook is slow: the callback queue stays within
    its bound, the hook sees cycles in order, and whatever nng had to drop while the receiver
    waited is reported missing (nothing lost silently)."""
    bound = 20
    address = f"ipc://{tmp_path / 'flood.ipc'}"
    agent = hkrt.SpotAgent(["MIN"], callback_queue=bound)
    seen: list[int] = []
    depths: list[int] = []

    @agent.on_cycle
    def slow(info: hkrt.CycleInfo) -> None:
        depths.append(agent.stats()["transport"]["queue_depth"])
        seen.append(info.cycle_id)
        time.sleep(0.001)

    spot = hkrt.Spot("SH600000", "2026-11-20 10:00:00", open=10, high=10, low=10, close=10, volume=100, amount=1000)
    with SpotPublisher(address) as publisher:
        agent.start(address)
        try:
            assert publisher.wait_for_subscribers(1, timeout=10)
            for _ in range(1500):
                publisher.publish([spot])
            dispatcher = agent.bus
            wait_until(lambda: agent.wait_idle(1) and dispatcher.depth == 0, timeout=30)
            time.sleep(0.3)  # what nng still held has been received
            agent.wait_idle(10)
            publisher.publish([spot])  # a last message reveals a loss at the tail
            wait_until(lambda: len(seen) and seen[-1] == publisher.cycle_id, timeout=10)
            high_water, blocked = dispatcher.high_water, dispatcher.blocked
        finally:
            agent.stop()
    t = agent.stats()["transport"]
    assert high_water <= bound and max(depths) <= bound
    assert blocked > 0  # backpressure engaged
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert len(seen) + t["missing_messages"] >= publisher.sequence  # each message delivered or reported missing


def test_a_hook_that_ingests_while_the_queue_is_full_does_not_deadlock(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path / 'reentrant.ipc'}"
    agent = hkrt.SpotAgent(["MIN"], callback_queue=5)
    agent.on_bars(lambda records: None)  # bars to hooks: ingest hands them over under the agent's lock
    calls: list[int] = []
    other = hkrt.Spot("SZ000001", "2026-11-20 10:00:00", close=10.0, volume=100, amount=1000)

    @agent.on_cycle
    def reentrant(info: hkrt.CycleInfo) -> None:
        calls.append(info.cycle_id)
        time.sleep(0.002)
        agent.ingest([other])  # a hook feeding the agent itself

    finished = threading.Event()

    def scenario() -> None:
        spot = hkrt.Spot("SH600000", "2026-11-20 10:00:00", close=10.0, volume=100, amount=1000)
        with SpotPublisher(address) as publisher:
            agent.start(address)
            publisher.wait_for_subscribers(1, timeout=10)
            for _ in range(60):
                publisher.publish([spot])
            time.sleep(0.5)
            agent.stop()
        finished.set()

    threading.Thread(target=scenario, daemon=True).start()
    assert finished.wait(5), f"deadlocked after {len(calls)} hook calls"
    assert len(calls) > 5
