"""Benchmark: what the order emulator costs per whole-market SpotBatch, next to reading every row.

Run ``python benchmarks/bench_emulator.py`` (``--quick`` for a smoke test); it prints a Markdown
table.  Each row hands one 5,000-symbol SpotBatch (its columns decoded once, as the bus shares them
between subscribers) to ``OrderEmulator.on_spots`` while it holds stop and trailing-stop orders on
``held`` symbols, none of them firing: with the prices still (the steady state of a trading day) and
rising a cent every batch (every trailing stop ratchets: the most work short of firing).  The baseline, run in the
same process over the same batch, is the plain way: every row's symbol and last price to Python and
a dict lookup per row.  Times are the median microseconds per batch over the repeats.  Nothing is
asserted: the numbers are reported, never judged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from hkrt.bus import SpotBatch
from hkrt.strategy.emulator import OrderEmulator
from hkrt.strategy.order import Order

T0 = dt.datetime(2026, 11, 20, 10, 0, 3)


class IdleManager:
    """An order manager nothing is asked of (no order fires in the benchmark)."""

    def release(self, order: Order, wire_type: str, limit_price: float | None) -> None:
        raise AssertionError("nothing fires in this benchmark")

    def create_child(self, parent: Order, **kwargs: object) -> Order:
        raise AssertionError("no brackets in this benchmark")

    def cancel(self, order: Order) -> bool:
        return False

    def get(self, client_order_id: str) -> Order | None:
        return None

    def now(self) -> dt.datetime | None:
        return T0


def market(n_symbols: int, close: float = 10.0) -> SpotBatch:
    names = np.array([f"SH{600000 + i:06d}".encode() for i in range(n_symbols)], dtype="S8")
    columns = {
        "symbol": names,
        "datetime": np.full(n_symbols, np.datetime64(T0, "ms")),
        "open": np.full(n_symbols, 10.0),
        "high": np.full(n_symbols, 10.0),
        "low": np.full(n_symbols, 10.0),
        "close": np.full(n_symbols, close),
        "volume": np.full(n_symbols, 1000.0),
        "amount": np.full(n_symbols, 10_000.0),
    }
    return SpotBatch.from_columns(columns)


def median_us(run: Callable[[], object], repeat: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def emulator_holding(held: int, n_symbols: int) -> OrderEmulator:
    emulator = OrderEmulator(IdleManager())
    for i in range(held):
        symbol = f"SH{600000 + (i * 7) % n_symbols:06d}"
        if i % 2:
            order = Order(f"S{i}", symbol, "sell", 100, order_type="stop", stop_price=5.0, emulated=True)
        else:
            order = Order(f"T{i}", symbol, "sell", 100, order_type="trailing_stop", trail="30%", emulated=True)
        emulator.hold(order)
    return emulator


def every_row(batch: SpotBatch, wanted: dict[str, float]) -> Callable[[], object]:
    def run() -> object:
        columns = batch.columns
        hits = 0
        for symbol, last in zip(columns["symbol"].tolist(), columns["close"].tolist(), strict=True):
            stop = wanted.get(symbol.decode())
            if stop is not None and last <= stop:
                hits += 1
        return hits

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: fewer repeats")
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    repeat = 5 if args.quick else args.repeat
    batch = market(args.symbols)
    rising = [market(args.symbols, round(10.0 + 0.01 * k, 2)) for k in range(1, repeat + 2)]
    print(f"python {platform.python_version()}, {platform.machine()}, {args.symbols} symbols per batch\n")
    print("| market | held orders | symbols held | emulator µs/batch | every row µs/batch | every row / emulator |")
    print("|---|---:|---:|---:|---:|---:|")
    for moving in (False, True):
        for held in (0, 10, 100, 1000):
            emulator = emulator_holding(held, args.symbols)
            emulator.on_spots(batch)
            wanted = {o.symbol: 5.0 for o in emulator.held}
            if moving:  # every price up a cent each batch: every trailing stop (half the orders) ratchets
                batches = iter(rising)
                ours = median_us(lambda emulator=emulator, batches=batches: emulator.on_spots(next(batches)), repeat)
            else:
                ours = median_us(lambda emulator=emulator: emulator.on_spots(batch), repeat)
            plain = median_us(every_row(batch, wanted), repeat)
            name = "rising" if moving else "still"
            print(f"| {name} | {held} | {len(wanted)} | {ours:.1f} | {plain:.1f} | {plain / ours:.1f}× |")


if __name__ == "__main__":
    main()
