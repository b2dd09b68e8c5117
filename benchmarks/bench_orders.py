"""Benchmark: placing orders and applying broker reports (hkrt.strategy.order_manager), next to their
bare parts in the same process.

Run ``python benchmarks/bench_orders.py`` (``--quick`` for a smoke test); it prints a Markdown table.
Placing: ``Strategy.order`` (argument checks, pre-trade checks, sizing, the manager's bookkeeping, the
send) against a broker that answers ``Sent``, next to the broker's own ``submit`` of the same requests
(the C++ base and the Python hook: what any send costs); then the same with the risk engine off, and
with every limit of the engine set (all passing: the market clock steps 5 ms an order, 200 a second,
and the day's count is reset each 10,000 orders, below the per-day limit).  The orders are filled at
once (a broker that answers ``Filled``) so the open orders the engine scans stay few, as in a real
strategy.  Reports: one ``fill`` ExecutionReport per
order published on a running bus and applied (the order's state machine, fees, the book, an
OrderEvent and a TradeEvent published back), next to the same reports delivered to a handler that
does nothing.  Median of the repeats; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import platform
import statistics
import time
from collections.abc import Callable

import hkrt
from hkrt import OrderBrokerBase, OrderResult, OrderStatus
from hkrt.broker import OrderRequest, OrderSide
from hkrt.bus import EventBus, ExecutionReport
from hkrt.strategy.book import Position
from hkrt.strategy.order import Order

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


def paired(a: Callable[[], float], b: Callable[[], float]) -> tuple[float, float]:
    """Medians of ``a`` and ``b`` run alternately, each after a collection: the same process state for
    both (run one after the other, the second pays for the first's garbage)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(ARGS.repeat + 1):
        for run, out in ((a, times[0]), (b, times[1])):
            gc.collect()
            out.append(run())
    return statistics.median(times[0][1:]), statistics.median(times[1][1:])


def strategy() -> hkrt.Strategy:
    s = hkrt.Strategy(["SH600000"], brokers=[SentBroker()], cash=1e12, name="bench")
    s._advance_clock(T0)
    s.order_manager.risk = None  # thousands of orders at one market time: the engine's rate limit would refuse them
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


EVERY_LIMIT = {"max_order_value": 1e9, "max_order_shares": 10**9, "max_position_value": 1e13, "max_position_pct": 1.0,
               "max_gross_exposure": 1.0, "max_positions": 10, "max_daily_loss": 1e12, "max_drawdown_pct": 0.99,
               "max_orders_per_second": 299, "max_orders_per_day": 19_999, "price_band": 0.1}  # fmt: skip


def place_risk(risk: bool) -> float:
    """Orders filled at once (the open orders stay few), the engine off or with every limit set."""
    s = hkrt.Strategy(["SH600000", "SZ000001"], brokers=[hkrt.TestOrderBroker(cash=1e12)], cash=1e12, name="bench",
                      fees=0, risk=EVERY_LIMIT)  # fmt: skip
    s._advance_clock(T0)
    s._prices["SH600000"] = 10.0  # the latest price the band and the position limits read
    if not risk:
        s.order_manager.risk = None
    step = dt.timedelta(milliseconds=5)
    start = time.perf_counter()
    for i in range(ARGS.orders):
        s._clock = T0 + i * step  # the market clock moves: 200 orders a market second
        if i % 10_000 == 0:
            s.risk.rates.today = 0  # a new "day" for the per-day count (the bench's orders exceed it)
        order = s.order("SH600000", 100, 10.0, order_type="limit")
        assert order.status == "filled", order.reason
    return time.perf_counter() - start


def check_alone() -> float:
    """The engine's checks of one order on an account of 5 positions and 5 open buys (what each order pays)."""
    symbols = ["SH600000", "SH600004", "SH600006", "SZ000001", "SZ000002"]
    s = hkrt.Strategy(symbols, brokers=[SentBroker()], cash=1e12, name="bench", fees=0, risk=EVERY_LIMIT)
    s._advance_clock(T0)
    for sym in symbols:
        s._prices[sym] = 10.0
        s.book.positions[sym] = Position(sym, 1_000, 10.0)
        s.order(sym, 100, 10.0, order_type="limit")  # an open buy (the broker answers Sent)
    order = Order("bench-1", "SH600000", "buy", 100, order_type="limit", price=10.0, request_price=10.0)
    step, check = dt.timedelta(milliseconds=5), s.risk.check
    start = time.perf_counter()
    for i in range(ARGS.orders):
        s._clock = T0 + i * step
        if i % 10_000 == 0:
            s.risk.rates.today = 0
        assert check(order, "limit", 10.0) == ""
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
    risk_off, risk_on = paired(lambda: place_risk(False), lambda: place_risk(True))
    rows = [
        ("broker.submit (C++ base + Python hook), baseline", median(place_bare), None),
        ("Strategy.order: checks, sizing, manager, submit", median(place_orders), 0),
        ("Strategy.order filled at once, risk engine off", risk_off, None),
        ("Strategy.order filled at once, every risk limit set", risk_on, 2),
        ("RiskEngine.check alone, every limit set (5 positions, 5 open buys)", median(check_alone), None),
        ("fill reports to a no-op handler, baseline", median(lambda: reports(False)), None),
        ("fill reports applied: order, fees, book, events", median(lambda: reports(True)), 5),
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
