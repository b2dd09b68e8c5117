"""Benchmark: the event bus (hkrt.bus) next to the barest one-thread dispatch, in the same process.

Run ``python benchmarks/bench_bus.py`` (``--quick`` for a smoke test); it prints a Markdown table.
The baseline is what any one-callback-thread design costs at least: a ``queue.SimpleQueue`` and a
thread calling one function per item.  The bus rows add routing by class, filters, the bound and
its counters, guarded and timed handlers.  Whole-market rows publish one 5,000-symbol message's
worth of events: a ``BarBatch`` of every symbol's bar in 13 periods and a ``SpotBatch`` of one
encoded message, delivered whole, narrowed to 10 symbols, or split into objects.  Rates are
events (or bars, spots) per second of wall time, producer and callback thread together, median
of the repeats.  Nothing is asserted: the numbers are reported, never judged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import queue
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import hkrt
from hkrt.bus import BarBatch, BarClosed, CycleEnded, CycleInfo, EventBus, FeedGap, MarketFilter, SpotBatch

T0 = dt.datetime(2026, 11, 20, 10, 0, 3)


def median_run(prepare: Callable[[], Callable[[], None]]) -> float:
    """Median seconds of ``prepare()()`` over the repeats, after one warm-up run; what
    ``prepare`` does (making the events, a bus, its subscribers) is not timed."""
    times = []
    for _ in range(ARGS.repeat + 1):
        run = prepare()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def symbols(n: int) -> list[str]:
    return [f"SH{600000 + i:06d}" if i % 2 == 0 else f"SZ{i:06d}" for i in range(n)]


def bar_records(n_symbols: int) -> np.ndarray:
    names = np.array([s.encode() for s in symbols(n_symbols)], dtype="S8")
    k = len(hkrt.KType)
    out = np.zeros(n_symbols * k, dtype=hkrt._hkrt.COMPLETED_DTYPE)
    out["symbol"] = np.repeat(names, k)
    out["ktype"] = np.tile(np.arange(k, dtype=np.uint8), n_symbols)
    out["datetime"] = np.datetime64(T0, "ms")
    for field in ("open", "high", "low", "close"):
        out[field] = 10.0
    out["volume"], out["amount"] = 1000.0, 10_000.0
    return out


def spot_message(n_symbols: int) -> bytes:
    names = symbols(n_symbols)
    columns = {
        "symbol": names,
        "datetime": np.full(n_symbols, np.datetime64(T0, "ms")),
        "close": np.full(n_symbols, 10.0),
        "volume": np.full(n_symbols, 1000.0),
        "amount": np.full(n_symbols, 10_000.0),
    }
    return hkrt.wire.encode_spots(columns)


def baseline(n: int) -> float:
    """n items through a SimpleQueue to one thread calling one function each."""

    def prepare() -> Callable[[], None]:
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        event = cycle()

        def handler(item: Any) -> None:
            pass

        def consume() -> None:
            while (item := items.get()) is not None:
                handler(item)

        def run() -> None:
            thread = threading.Thread(target=consume)
            thread.start()
            for _ in range(n):
                items.put(event)
            items.put(None)
            thread.join()

        return run

    return median_run(prepare)


def cycle() -> CycleEnded:
    return CycleEnded(CycleInfo(1, 1, 1, 1, 1, 1, True, False, T0, 0.0, 0.0))


def through_bus(make_events: Callable[[], list[Any]], subscribe: Callable[[EventBus], Any]) -> float:
    """Seconds to publish ``make_events()`` onto a fresh bus and have them all handled.  The
    events are made new for each run, so no run finds a batch decoded by the one before; the
    bound holds them all, as the baseline's queue does: this times dispatch, not backpressure."""

    def prepare() -> Callable[[], None]:
        events = make_events()
        bus = EventBus(max_events=len(events) + 1, max_items=10**9)
        subscribe(bus)
        bus.start()

        def run() -> None:
            for event in events:
                bus.publish(event)
            bus.stop(timeout=300)

        return run

    return median_run(prepare)


def main() -> None:
    logging.getLogger("hkrt.bus").setLevel(logging.ERROR)  # the queue warnings are not the report
    n, market = ARGS.events, ARGS.symbols
    watched = symbols(market)[:10]
    rows: list[tuple[str, int, str, float, float | None]] = []  # path, items, unit, seconds, vs baseline
    base = baseline(n)
    rows.append(("baseline: SimpleQueue + one thread, 1 handler", n, "events", base, 1.0))

    def small() -> list[Any]:
        return [cycle()] * n

    seconds = through_bus(small, lambda bus: bus.subscribe(CycleEnded, lambda e: None))
    rows.append(("bus: CycleEnded, 1 subscriber", n, "events", seconds, seconds / base))

    def crowded(bus: EventBus) -> None:
        bus.subscribe(CycleEnded, lambda e: None)
        for _ in range(20):  # subscribers of other classes cost nothing per event
            bus.subscribe(FeedGap, lambda e: None)
            bus.subscribe(BarBatch, lambda e: None)

    seconds = through_bus(small, crowded)
    rows.append(("bus: same, 40 subscribers of other classes", n, "events", seconds, seconds / base))
    seconds = through_bus(small, lambda bus: bus.subscribe(CycleEnded, lambda e: None, filter=lambda e: True))
    rows.append(("bus: same, with a callable filter", n, "events", seconds, seconds / base))

    records = bar_records(market)

    def bars() -> list[Any]:
        return [BarBatch(records) for _ in range(ARGS.batches)]

    total_bars = len(records) * ARGS.batches
    seconds = through_bus(bars, lambda bus: bus.subscribe(BarBatch, lambda e: None))
    rows.append((f"BarBatch of {len(records):,} bars, whole", total_bars, "bars", seconds, None))
    seconds = through_bus(bars, lambda bus: bus.subscribe(BarBatch, lambda e: None, filter=MarketFilter(watched)))
    rows.append(("BarBatch narrowed to 10 symbols (MarketFilter)", total_bars, "bars", seconds, None))
    seconds = through_bus(bars, lambda bus: bus.subscribe(BarClosed, lambda e: None, filter=MarketFilter(watched)))
    rows.append(("BarClosed of 10 symbols, split from the batch", total_bars, "bars", seconds, None))
    seconds = through_bus(bars, lambda bus: bus.subscribe(BarClosed, lambda e: None))
    rows.append(("BarClosed of every bar (an object each)", total_bars, "bars", seconds, None))

    message = spot_message(market)

    def fresh() -> list[Any]:
        return [SpotBatch.from_message(message, market) for _ in range(ARGS.batches)]

    total_spots = market * ARGS.batches
    seconds = through_bus(fresh, lambda bus: bus.subscribe(SpotBatch, lambda e: e.columns))
    rows.append((f"SpotBatch of {market:,} spots, columns read", total_spots, "spots", seconds, None))

    def three_readers(bus: EventBus) -> None:
        for _ in range(3):  # decoded once, whoever reads
            bus.subscribe(SpotBatch, lambda e: e.columns)

    seconds = through_bus(fresh, three_readers)
    rows.append(("same, 3 subscribers read the columns", total_spots, "spots", seconds, None))
    seconds = through_bus(fresh, lambda bus: bus.subscribe(SpotBatch, lambda e: None, filter=MarketFilter(watched)))
    rows.append(("SpotBatch narrowed to 10 symbols", total_spots, "spots", seconds, None))
    seconds = through_bus(fresh, lambda bus: bus.subscribe(hkrt.Spot, lambda s: None))
    rows.append(("hkrt.Spot of every spot, split from the batch", total_spots, "spots", seconds, None))

    latencies = []
    with EventBus() as bus:
        arrived = threading.Event()
        bus.subscribe(CycleEnded, lambda e: arrived.set())
        for _ in range(ARGS.latency):
            arrived.clear()
            start = time.perf_counter()
            bus.publish(cycle())
            arrived.wait(5)
            latencies.append(time.perf_counter() - start)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1e6

    print(f"# hkrt event bus — {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, median of {ARGS.repeat}\n")  # fmt: skip
    print("| path | items | per second | µs per item | vs baseline |")
    print("|---|---:|---:|---:|---:|")
    for path, items, unit, secs, ratio in rows:
        vs = f"{ratio:.2f}× the time" if ratio is not None else ""
        print(f"| {path} | {items:,} {unit} | {items / secs:,.0f} | {secs / items * 1e6:.3f} | {vs} |")
    print(f"\nOne event, publish to handler on an idle bus ({ARGS.latency} tries): p50 {p50:.0f} µs, p99 {p99:.0f} µs.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="small events per row")
    parser.add_argument("--symbols", type=int, default=5000, help="symbols of the whole-market rows")
    parser.add_argument("--batches", type=int, default=20, help="whole-market batches per row")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=int, default=2000, help="single-event round trips")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.events, ARGS.symbols, ARGS.batches, ARGS.repeat, ARGS.latency = 5_000, 300, 3, 1, 100
    main()
