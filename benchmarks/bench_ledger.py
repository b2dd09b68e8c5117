"""Benchmark: what the strategy's ledger adds to each fill (hkrt.strategy.ledger_book), next to the bare book in
the same process.

Run ``python benchmarks/bench_ledger.py`` (``--quick`` for a smoke test); it prints a Markdown table.
``Book.fill`` alone (the book before the ledger) against ``LedgeredBook.fill`` (the same, then the posting of
the fill as a balanced transaction in fen and the per-fill comparison with the book), with the fees one
total and itemized by a ``FeeModel``; then one whole fill report applied by the ``OrderManager``
(``on_report``: the order's state machine, fees, the book, the events) with each book.  Fills alternate a buy
and a sell of the same 100 shares.  Median of the repeats; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench_orders import SentBroker  # run from benchmarks/: its sibling
from hkrt.bus import ExecutionReport
from hkrt.core.fees import FeeModel
from hkrt.strategy.book import Book
from hkrt.strategy.ledger_book import LedgeredBook
from hkrt.strategy.order import Order
from hkrt.strategy.order_manager import OrderManager

T0 = dt.datetime(2026, 11, 20, 10, 0, 3)
MODEL = FeeModel()


class ReportingBroker(SentBroker):
    """bench_orders' broker that answers Sent, reporting its fills (so the manager books them)."""

    def attach(self, bus: Any) -> None:
        pass


def book_fills(make: Callable[[], Book]) -> Callable[[], float]:
    def run() -> float:
        book = make()
        start = time.perf_counter()
        for i in range(ARGS.fills):
            side = "buy" if i % 2 == 0 else "sell"
            book.fill(T0, "SH600000", side, 10.0 + (i % 7) / 100, 100, f"o{i}", fees=5.1, trade_id=f"t{i}",
                      broker="bench")  # fmt: skip
        return time.perf_counter() - start

    return run


def reports(make: Callable[[], Book]) -> Callable[[], float]:
    def run() -> float:
        manager = OrderManager([ReportingBroker()], make(), strategy="bench", fees=MODEL, clock=lambda: T0)
        orders = [
            manager.submit(Order(manager.new_client_id(), "SH600000", "buy" if i % 2 == 0 else "sell", 100, "limit",
                                 price=10.0, request_price=10.0, created=T0))
            for i in range(ARGS.fills)
        ]  # fmt: skip
        fills = [ExecutionReport(broker="bench", kind="fill", client_order_id=o.client_order_id, shares=100,
                                 price=10.0, trade_id=f"t{i}", datetime=T0) for i, o in enumerate(orders)]  # fmt: skip
        start = time.perf_counter()
        for report in fills:
            manager.on_report(report)
        return time.perf_counter() - start

    return run


def main() -> None:
    rows = [
        ("Book.fill (no ledger: the baseline)", book_fills(lambda: Book(1e9))),
        ("LedgeredBook.fill, fees one total", book_fills(lambda: LedgeredBook(1e9))),
        ("LedgeredBook.fill, fees itemized by a FeeModel",
         book_fills(lambda: LedgeredBook(1e9, fee_model=lambda broker: MODEL))),
        ("OrderManager.on_report fill, Book (baseline)", reports(lambda: Book(1e9))),
        ("OrderManager.on_report fill, LedgeredBook itemized",
         reports(lambda: LedgeredBook(1e9, fee_model=lambda broker: MODEL))),
    ]  # fmt: skip
    print(f"{ARGS.fills:,} fills, median of {ARGS.repeat}; Python {platform.python_version()}, {platform.machine()}")
    print()
    print("| path | µs per fill | fills per second | × its baseline |")
    print("|---|---:|---:|---:|")
    baseline = 0.0
    for name, run in rows:
        seconds = statistics.median([run() for _ in range(ARGS.repeat + 1)][1:])  # the first warms up
        if "baseline" in name:
            baseline = seconds
        per = seconds / ARGS.fills
        print(f"| {name} | {per * 1e6:.1f} | {1 / per:,.0f} | {seconds / baseline:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: few fills, one repeat")
    parser.add_argument("--fills", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.fills, ARGS.repeat = 500, 1
    main()
