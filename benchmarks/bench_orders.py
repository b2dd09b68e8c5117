"""Benchmark: placing orders and applying broker reports (hkrt.strategy.order_manager), next to their
bare parts in the same process.

Run ``python benchmarks/bench_orders.py`` (``--quick`` for a smoke test); it prints a Markdown table.
Placing: ``Strategy.order`` (argument checks, pre-trade checks, sizing, the manager's bookkeeping, the
send) against a broker that answers ``Sent``, next to the broker's own ``submit`` of the same requests
(the C++ base and the Python hook: what any send costs).  Reports: one ``fill`` ExecutionReport per
order published on a running bus and applied (the order's state machine, fees, the book, an
OrderEvent and a TradeEvent published back), next to the same reports delivered to a handler that
does nothing.  Median of the repeats; nothing is asserted.
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
from hkrt import OrderBrokerBase, OrderResult, OrderStatus
from hkrt.broker import OrderRequest, OrderSide
from hkrt.bus import EventBus, ExecutionReport

T0 = dt.datetime(2026, 11, 20, 10, 0, 3)


class SentBroker(OrderBrokerBase):
    def __init__(self) -> None:
        super().__init__("bench")

    def _buy(self, request: OrderRequest) -> OrderResult:
        return OrderResult(OrderStatus.Sent, order_id=request.client_order_id)

    _sell = _buy

    def _get_asset_info(self) -> str:
        return ""


def median(run: Callable[[], float]) -> float:
    times = [run() for _ in range(ARGS.repeat + 1)]
    return statistics.median(times[1:])


def strategy() -> hkrt.Strategy:
    s = hkrt.Strategy(["SH600000"], brokers=[SentBroker()], cash=1e12, name="bench")
    s._advance_clock(T0)
    return s


def place_bare() -> float:
    broker = SentBroker()
    requests = [OrderRequest(T0, "SH", "600000", 10.0, 100.0, client_order_id=f"c{i}") for i in range(ARGS.orders)]
    start = time.perf_counter()
    for r in requests:
        broker.submit(OrderSide.Buy, r)
    return time.perf_counter() - start


def place_orders() -> float:
    s = strategy()
    start = time.perf_counter()
    for _ in range(ARGS.orders):
        s.order("SH600000", 100, 10.0, order_type="limit")
    return time.perf_counter() - start


def reports(apply: bool) -> float:
    s = strategy()
    orders = [s.order("SH600000", 100, 10.0, order_type="limit") for _ in range(ARGS.orders)]
    fills = [ExecutionReport(broker="bench", kind="fill", client_order_id=o.client_order_id, shares=100, price=10.0,
                             trade_id=f"T{i}") for i, o in enumerate(orders)]  # fmt: skip
    with EventBus(max_events=1_000_000) as bus:
        if apply:
            s.attach(bus)
        else:
            bus.subscribe(ExecutionReport, lambda report: None)
        start = time.perf_counter()
        for f in fills:
            bus.publish(f)
        bus.wait_idle(600)
        took = time.perf_counter() - start
    if apply:
        assert all(o.status == "filled" for o in orders) and s.position("SH600000") == 100 * ARGS.orders
    return took


def main() -> None:
    logging.getLogger("hkrt").setLevel(logging.WARNING)  # the INFO line per order is not what is measured
    rows = [
        ("broker.submit (C++ base + Python hook), baseline", median(place_bare), None),
        ("Strategy.order: checks, sizing, manager, submit", median(place_orders), 0),
        ("fill reports to a no-op handler, baseline", median(lambda: reports(False)), None),
        ("fill reports applied: order, fees, book, events", median(lambda: reports(True)), 2),
    ]
    print(f"# hkrt orders — {platform.python_implementation()} {platform.python_version()}, {ARGS.orders:,} orders")
    print("| path | per second | µs per order | vs baseline |")
    print("|---|---:|---:|---:|")
    for path, secs, base in rows:
        vs = "1.00x" if base is None else f"{secs / rows[base][1]:.2f}x"
        print(f"| {path} | {ARGS.orders / secs:,.0f} | {secs / ARGS.orders * 1e6:.1f} | {vs} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke test: few orders, one repeat")
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.orders, ARGS.repeat = 500, 1
    main()
