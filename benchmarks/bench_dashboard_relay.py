"""What a node's dashboard costs a strategy, and how fast its reader follows (docs/dashboard.md, "A node's
dashboard").

A strategy attached to a running EventBus in this process gets ``--events`` closed bars of ``--symbols`` symbols
(MIN); the time until the bus is idle is measured with nothing following the strategy (the baseline), with a
single strategy's ``DashboardState`` (no browser), and with a ``RelayServer`` (the state plus its ring).  Then
a ``RelayReader`` on an ipc socket follows the relay from nothing: the changes per second it applies through
nng and JSON, and the cost of one snapshot of that state (what a reader that fell behind the ring gets).

    python benchmarks/bench_dashboard_relay.py            # 200 symbols, 50,000 bars, medians of 5 runs
    python benchmarks/bench_dashboard_relay.py --quick    # 20 symbols, 2,000 bars
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = dt.datetime(2026, 11, 20, 9, 31)


def strategy_on_a_bus(symbols: list[str]) -> tuple[Any, Any]:
    import hkrt
    from hkrt.bus import EventBus

    strategy = hkrt.Strategy(symbols, ktypes=["MIN"], name="bench")
    bus = EventBus(max_events=1 << 17, max_items=1 << 20)
    strategy.attach(bus)
    bus.start()
    return strategy, bus


def bars(symbols: list[str], count: int) -> list[Any]:
    from hkrt.bus import Bar, BarClosed
    from hkrt.core.ktype import KType

    out = []
    for i in range(count):
        close = 10.0 + (i % 97) / 100
        when = T0 + dt.timedelta(minutes=i // len(symbols))
        bar = Bar(when, close, close + 0.1, close - 0.1, close, 1000.0, 10_000.0)
        out.append(BarClosed(symbols[i % len(symbols)], KType.MIN, bar))
    return out


def play(follow: str, symbols: list[str], events: list[Any], address: str) -> tuple[float, Any, Any, Any]:
    """Seconds until the bus is idle after ``events``; the strategy, its bus and what follows it."""
    from hkrt.dashboard.relay import RelayServer
    from hkrt.dashboard.state import DashboardState

    strategy, bus = strategy_on_a_bus(symbols)
    follower: Any = None
    if follow == "state":
        follower = DashboardState(strategy, ktypes=["MIN"], max_series=len(symbols))
    elif follow == "relay":
        follower = RelayServer(strategy, address, ktypes=["MIN"], max_series=len(symbols)).start()
    started = time.perf_counter()
    for event in events:
        bus.publish(event)
    bus.wait_idle(120)
    return time.perf_counter() - started, strategy, bus, follower


def main() -> None:
    from hkrt.dashboard.mirror import RelayReader, StrategyMirror
    from hkrt.dashboard.wire import dumps
    from hkrt.fetcher.sim import universe

    symbols = universe(ARGS.symbols)
    events = bars(symbols, ARGS.events)
    folder = Path(tempfile.mkdtemp(prefix="hkrt-bench-relay-"))
    address = f"ipc://{folder / 'relay.ipc'}"
    paths = (("none", "the strategy's bus alone (the baseline)"),
             ("state", "+ a strategy's DashboardState (hkrt run --dashboard)"),
             ("relay", "+ a RelayServer (hkrt run --dashboard-relay)"))  # fmt: skip
    times: dict[str, list[float]] = {follow: [] for follow, _ in paths}
    relay = bus = None
    for round_ in range(ARGS.repeat):  # the paths interleaved, round after round: a drift of the machine hits all
        for follow, _name in paths:
            gc.collect()
            seconds, _strategy, run_bus, follower = play(follow, symbols, events, address)
            times[follow].append(seconds)
            if follow == "relay" and round_ == ARGS.repeat - 1:
                relay, bus = follower, run_bus  # the last relay: the reader below follows it
            else:
                if follower is not None:
                    (follower.stop if follow == "relay" else follower.close)()
                run_bus.stop()
    rows = [(name, statistics.median(times[follow])) for follow, name in paths]
    assert relay is not None and bus is not None
    try:
        mirror = StrategyMirror("bench", max_series=len(symbols))
        reader = RelayReader({"bench": mirror}, {"bench": address}, poll=0.001)
        # a reader's first ask is for a snapshot; to measure the changes, this one starts at the ring's oldest
        mirror.epoch, mirror.seq = relay.epoch, max(0, relay.state.seq - len(relay._ring))
        started = time.perf_counter()
        reader.start()
        deadline = time.monotonic() + 300
        while mirror.seq < relay.state.seq and time.monotonic() < deadline:
            time.sleep(0.001)
        follow_s = time.perf_counter() - started
        reader.stop()
        changes = len(relay._ring)
        snap_started = time.perf_counter()
        text = dumps(relay.state.snapshot())
        snap_ms = (time.perf_counter() - snap_started) * 1000
        applied = mirror.stats["deltas"]
        kept = sum(len(s["bars"]) for s in json.loads(text)["data"]["bars"])
    finally:
        relay.stop()
        bus.stop()
    print(f"{len(symbols)} symbols, {len(events):,} MIN bars, medians of {ARGS.repeat} interleaved runs; "
          f"Python {platform.python_version()}, {platform.machine()}")  # fmt: skip
    print()
    print("| path | bars/s on the strategy's bus | × the bus alone |")
    print("|---|---:|---:|")
    base = rows[0][1]
    for name, seconds in rows:
        print(f"| {name} | {len(events) / seconds:,.0f} | {seconds / base:.2f} |")
    print()
    print("| reader | changes | changes/s applied |")
    print("|---|---:|---:|")
    print(f"| RelayReader over ipc (nng + JSON) into a StrategyMirror | {applied:,} of {changes:,} | "
          f"{applied / follow_s:,.0f} |")  # fmt: skip
    print()
    print("| snapshot | bars kept | bytes | ms to take and write |")
    print("|---|---:|---:|---:|")
    print(f"| RelayServer's state | {kept:,} | {len(text):,} | {snap_ms:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 20 symbols, 2,000 bars")
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each path (the median is shown)")
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.symbols, ARGS.events, ARGS.repeat = 20, 2000, 1
    main()
