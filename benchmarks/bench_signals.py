"""Benchmark: what a SignalAggregator costs per signal, next to the bare signals in the same process.

Run ``python benchmarks/bench_signals.py`` (``--quick`` for a smoke test); it prints a Markdown table.
Two sources signal on every symbol at every cycle (``Strategy.signal`` from an ``on_cycle`` callback, on a
running bus driven by hand-published ``CycleEnded`` events).  Baseline: the signals go to a handler that
does nothing.  Then the same signals collected by an aggregator that decides every symbol at each cycle's
end, by vote and by fixed weights (the views stay under the threshold / unchanged, so no order is placed:
what is measured is the signal layer, not the order path, which bench_orders.py measures).  The pure
``vote`` and ``weighted_target`` of five sources per call.  Median of the repeats; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import statistics
import time
from collections.abc import Callable

import hkrt
from hkrt.bus import CycleEnded, CycleInfo, EventBus, SignalEvent
from hkrt.fetcher.sim import universe
from hkrt.strategy.aggregator import SignalAggregator
from hkrt.strategy.signals import vote, weighted_target

T0 = dt.datetime(2026, 11, 20, 10, 0, 0)


def median(run: Callable[[], float]) -> float:
    times = [run() for _ in range(ARGS.repeat + 1)]
    return statistics.median(times[1:])


def source(name: str, codes: list[str], action: str, confidence: float) -> hkrt.Strategy:
    s = hkrt.Strategy(codes, name=name)

    @s.on_cycle
    def say(info: hkrt.CycleInfo) -> None:
        for code in codes:
            s.signal(code, action, confidence)

    return s


def signals_through_the_bus(method: str | None) -> float:
    """Seconds for ARGS.cycles cycles of 2 x ARGS.symbols signals; ``method`` None: no aggregator."""
    codes = universe(ARGS.symbols)
    # under the vote's threshold, and a weights target of 0 on symbols not held: decided, unchanged, no order
    sources = [source("up", codes, "flat", 0.4), source("down", codes, "sell", 0.3)]
    with EventBus(max_events=1_000_000) as bus:
        if method is None:
            for s in sources:
                s.attach(bus)
            bus.subscribe(SignalEvent, lambda event: None)
        else:
            account = hkrt.Strategy(codes, name="account")
            SignalAggregator(account, sources, method=method, target_value=100_000)
            account.attach(bus)
        cycles = [CycleEnded(CycleInfo(1, i, 1, 1, 1, 1, True, False, T0 + dt.timedelta(seconds=3 * i), 0.0, 0.0))
                  for i in range(ARGS.cycles)]  # fmt: skip
        start = time.perf_counter()
        for event in cycles:
            bus.publish(event)
        bus.wait_idle(600)
        return time.perf_counter() - start


def pure(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(ARGS.calls):
        func()
    return time.perf_counter() - start


def main() -> None:
    logging.getLogger("hkrt").setLevel(logging.ERROR)
    names = [f"s{i}" for i in range(5)]
    weights = dict(zip(names, (1.0, 2.0, 0.5, 1.0, 3.0), strict=True))
    latest = {n: SignalEvent(n, "SH600000", ("buy", "sell", "flat")[i % 3], 0.7, "", T0) for i, n in enumerate(names)}
    previous = dict.fromkeys(names, 0.5)
    n_signals = 2 * ARGS.symbols * ARGS.cycles
    bus_rows = [
        ("2 sources' signals to a no-op handler, baseline", median(lambda: signals_through_the_bus(None)), None),
        ("collected, voted per symbol at each cycle's end", median(lambda: signals_through_the_bus("vote")), 0),
        ("collected, fixed weights per symbol at each cycle's end", median(lambda: signals_through_the_bus("weights")),
         0),
    ]  # fmt: skip
    print(f"# hkrt signals — {platform.python_implementation()} {platform.python_version()}, {ARGS.symbols} symbols, "
          f"{ARGS.cycles:,} cycles, {n_signals:,} signals")  # fmt: skip
    print("| path | per second | µs each | vs baseline |")
    print("|---|---:|---:|---:|")
    for path, secs, base in bus_rows:
        vs = "1.00x" if base is None else f"{secs / bus_rows[base][1]:.2f}x"
        print(f"| {path} | {n_signals / secs:,.0f} signals | {secs / n_signals * 1e6:.1f} | {vs} |")
    for path, secs in (
        ("vote() of 5 sources", median(lambda: pure(lambda: vote(latest, weights, 0.5)))),
        ("weighted_target() of 5 sources", median(lambda: pure(lambda: weighted_target(latest, weights, previous)))),
    ):
        print(f"| {path} | {ARGS.calls / secs:,.0f} calls | {secs / ARGS.calls * 1e6:.1f} | |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke test: few symbols and cycles, one repeat")
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.symbols, ARGS.cycles, ARGS.calls, ARGS.repeat = 20, 10, 1000, 1
    main()
