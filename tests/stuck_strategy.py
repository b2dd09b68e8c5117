"""A running strategy whose callback thread is stuck and whose callback queue is full, on a real feed.

A ``SpotPublisher`` (in process) publishes spots of three symbols; the strategy (paper broker) places a
limit buy under the market for each on the third cycle, and on the fifth its callback waits until the
test lets it go.  The publisher goes on until the agent's callback queue (``callback_queue`` events) is
full, so that every publish from outside the callback thread has to wait for room: the state in which
a kill switch is needed most.  Used by tests/test_kill_switch.py and tests/test_deadman.py.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hkrt
from hkrt.feed.transport import SpotPublisher
from hkrt.strategy import Strategy

DAY = dt.date(2026, 11, 20)
CODES = ["SH600000", "SH600001", "SH600002"]
QUEUE = 20  # the agent's callback queue, in events


class Stuck:
    def __init__(self, strategy: Strategy, publisher: SpotPublisher) -> None:
        self.strategy = strategy
        self.publisher = publisher
        self.placed: list[Any] = []
        self.stuck = threading.Event()
        self.release = threading.Event()
        self.cycles = 0
        self._second = 0

    def publish(self, n: int = 1) -> None:
        for _ in range(n):
            self._second += 3
            when = dt.datetime.combine(DAY, dt.time(10, 0)) + dt.timedelta(seconds=self._second)
            volume, amount = 1000.0 * self._second, 10_000.0 * self._second
            spots = [hkrt.Spot(code, when, yesterday_close=10.0, open=10.0, high=10.1, low=9.9, close=10.0,
                               volume=volume, amount=amount) for code in CODES]  # fmt: skip
            self.publisher.publish(spots)

    def fill_the_queue(self, timeout: float = 20.0) -> None:
        bus = self.strategy.bus
        assert bus is not None
        deadline = time.monotonic() + timeout
        while bus.depth < QUEUE - 2:
            assert time.monotonic() < deadline, f"the callback queue never filled ({bus.depth} events)"
            self.publish()
            time.sleep(0.01)


@contextmanager
def stuck_strategy(state_dir: Path | None = None, deadman: Any = None) -> Iterator[Stuck]:
    """Yields once the orders are working and the callback thread is stuck with a full queue."""
    address = f"inproc://hkrt-stuck-{time.monotonic_ns()}"
    strategy = Strategy(CODES, state_dir=state_dir, name="stuck", deadman=deadman)
    with SpotPublisher(address, simulated_time=True, heartbeat_interval=0.2) as publisher:
        stuck = Stuck(strategy, publisher)

        @strategy.on_cycle
        def cycle(info: Any) -> None:
            stuck.cycles += 1
            if stuck.cycles == 3:
                stuck.placed = [strategy.order(c, 100, 9.6, order_type="limit") for c in CODES]
            elif stuck.cycles == 5:
                stuck.stuck.set()
                stuck.release.wait(60)  # a callback in a loop

        runner = threading.Thread(
            target=lambda: strategy.run(address, live=False, handle_signals=False,
                                        agent_options={"callback_queue": QUEUE}),
            daemon=True,
        )  # fmt: skip
        runner.start()
        try:
            assert publisher.wait_for_subscribers(1, timeout=10)
            deadline = time.monotonic() + 20
            while not stuck.stuck.is_set():
                assert time.monotonic() < deadline, "the strategy never reached its stuck callback"
                stuck.publish()
                time.sleep(0.02)
            assert len(stuck.placed) == 3 and all(o.status == "accepted" for o in stuck.placed), stuck.placed
            stuck.fill_the_queue()
            yield stuck
        finally:
            stuck.release.set()
            strategy.stop()
            runner.join(30)
            assert not runner.is_alive()
