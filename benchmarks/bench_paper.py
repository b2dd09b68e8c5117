"""Benchmark: what the paper broker costs per whole-market SpotBatch, next to building the batch's Spots.

Run ``python benchmarks/bench_paper.py`` (``--quick`` for a smoke test); it prints a Markdown table.
The simulated market (5,000 symbols with five-level books, the spot server's own data) is played
for a stretch of the morning; each row hands every snapshot, as one ``SpotBatch``, to
``PaperBroker.on_spots`` while it holds ``open`` resting limit buys (priced far below the market, so
they never fill: the steady state of a day with working orders).  The baseline, run in the same
process over the same batches, is building the batch's ``Spot`` objects alone (``batch.spots``),
which every subscriber that reads spots one by one pays.  Times are the median milliseconds per
batch.  Nothing is asserted: the numbers are reported, never judged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time

from hkrt.adapters.paper.execution import PaperBroker
from hkrt.adapters.sim.config import SimConfig
from hkrt.adapters.sim.data import SimMarket
from hkrt.broker import OrderRequest, OrderSide
from hkrt.bus import SpotBatch

DAY = dt.date(2026, 11, 20)


def batches(symbols: int, count: int) -> list[SpotBatch]:
    market = SimMarket(DAY, SimConfig(symbols=symbols))
    out: list[SpotBatch] = []
    for t in market.times(auction=False):
        out.append(SpotBatch.from_columns(market.snapshot(t)))
        if len(out) == count:
            break
    return out


def paper_ms(played: list[SpotBatch], open_orders: int) -> float:
    broker = PaperBroker(1e12, max_open_orders=max(open_orders, 1))
    broker.on_spots(played[0])  # the day's first quotes: orders need a quote to be taken
    names = [s.decode() for s in played[0].columns["symbol"]]
    when = played[0].spots[0].datetime + dt.timedelta(seconds=1)
    placed = 0
    for i in range(len(names) * 3):
        if placed == open_orders:
            break
        symbol, price = names[i % len(names)], float(played[0].columns["close"][i % len(names)])
        if not price > 0:
            continue
        limit = max(round(price * 0.91, 2), 0.01)  # just inside the day's limit down: rests all day
        request = OrderRequest(when, symbol[:2], symbol[2:], limit, 100, client_order_id=f"b{i}", order_type="limit")
        placed += broker.submit(OrderSide.Buy, request).ok  # a suspended symbol refuses it: the next one
    if placed < open_orders:
        raise SystemExit(f"only {placed} of {open_orders} benchmark orders were taken")
    times = []
    for batch in played[1:]:
        fresh = SpotBatch.from_columns(batch.columns)  # no Spot objects cached from an earlier row
        start = time.perf_counter()
        broker.on_spots(fresh)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def spots_ms(played: list[SpotBatch]) -> float:
    times = []
    for batch in played[1:]:
        fresh = SpotBatch.from_columns(batch.columns)
        start = time.perf_counter()
        fresh.spots  # noqa: B018 - the cost measured is building them
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 300 symbols, 5 batches")
    args = parser.parse_args()
    symbols, count = (300, 6) if args.quick else (args.symbols, args.batches + 1)
    played = batches(symbols, count)
    baseline = spots_ms(played)
    print(f"{platform.python_implementation()} {platform.python_version()}, {symbols:,} symbols, "
          f"median of {len(played) - 1} batches")  # fmt: skip
    print()
    print("| path | open orders | ms per batch | × building the Spots |")
    print("|---|---:|---:|---:|")
    print(f"| building the batch's `Spot` objects (baseline) | - | {baseline:.2f} | 1.00× |")
    for n in (0, 100, 1000):
        ms = paper_ms(played, min(n, symbols))
        print(f"| `PaperBroker.on_spots` | {min(n, symbols):,} | {ms:.2f} | {ms / baseline:.2f}× |")


if __name__ == "__main__":
    main()
