"""Benchmark: what alerts cost the bus's callback thread, next to a handler that does nothing, same process.

Run ``python benchmarks/bench_alerts.py`` (``--quick`` for a smoke test); it prints a Markdown table.
Each row publishes N ``RiskEvent`` refusals onto a running ``EventBus`` and waits until the bus has handled
them all; the rate is events per second of wall time (producer and callback thread together, median of the
repeats).  Baseline: one subscriber that does nothing.  The router rows add ``AlertRouter`` with one
notifier whose send never returns (a hung webhook): its queue fills, the oldest are dropped (counted), and
the bus must keep its pace; with the per-kind limit on (5 at once) most events stop at the limit's count.
Nothing is asserted: the numbers are reported, never judged.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from hkrt.bus import EventBus, RiskEvent
from hkrt.notify import Alert, AlertRouter, Delivery, Notifier, NotifierSettings


class HungNotifier(Notifier):
    """A notifier whose first send blocks until released: a webhook that never answers."""

    TYPE = "hung"

    def __init__(self) -> None:
        super().__init__(NotifierSettings(name="hung"))
        self.release = threading.Event()

    def send(self, alert: Alert) -> Delivery:
        self.release.wait()
        return Delivery(True)


def events(n: int) -> list[RiskEvent]:
    return [RiskEvent("refused", "ACTIVE", f"risk: over the limit #{i}", symbol="SH600000") for i in range(n)]


def run_once(n: int, attach: Callable[[EventBus], Callable[[], None]]) -> float:
    bus = EventBus(name="bench-alerts").start()
    done = attach(bus)
    batch = events(n)
    start = time.perf_counter()
    for event in batch:
        bus.publish(event)
    assert bus.wait_idle(120)
    seconds = time.perf_counter() - start
    done()
    bus.stop()
    return seconds


def noop(bus: EventBus) -> Callable[[], None]:
    bus.subscribe(RiskEvent, lambda e: None)
    return lambda: None


def router(limit: bool) -> Callable[[EventBus], Callable[[], None]]:
    def attach(bus: EventBus) -> Callable[[], None]:
        hung = HungNotifier()
        burst = 5.0 if limit else 1e9
        r = AlertRouter([hung], per_kind_burst=burst, per_kind_per_minute=burst, queue=1000).attach(bus)

        def done() -> None:
            hung.release.set()
            r.stop(timeout=5)

        return done

    return attach


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 events, 1 repeat")
    args = parser.parse_args()
    n, repeat = (20_000, 1) if args.quick else (args.events, args.repeat)
    rows = [("a handler doing nothing (baseline)", noop), ("AlertRouter, hung webhook, no kind limit", router(False)),
            ("AlertRouter, hung webhook, kind limit 5", router(True))]  # fmt: skip
    print(f"{n:,} RiskEvent refusals per run, median of {repeat}\n")
    print("| path | events/s | µs per event | × baseline |")
    print("|---|---:|---:|---:|")
    base = None
    for name, attach in rows:
        seconds = statistics.median(run_once(n, attach) for _ in range(repeat))
        base = base or seconds
        print(f"| {name} | {n / seconds:,.0f} | {seconds / n * 1e6:.1f} | {seconds / base:.2f} |")


if __name__ == "__main__":
    main()
