"""Benchmark: orders through a trader process (hkrt.trader) next to the same broker in-process.

Run ``python benchmarks/bench_trader.py`` (``--quick`` for a smoke test); it prints a Markdown table.
The hosted broker answers ``Sent`` at once (``Instant``) or after ``--hang`` seconds per call (``Hanging``).
Rows: the broker's own ``submit`` in-process (what the strategy's thread pays today); ``RemoteBroker.submit``
(what it pays with the broker in a trader: the outbox); the same while the trader's broker hangs on every
call; and the round trip, submit to the ``accepted`` report on the strategy's bus, over ipc with the trader
served in this process (its threads; a child process adds no hop).  Median of the repeats; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hkrt import OrderBrokerBase, OrderResult, OrderStatus
from hkrt.broker import OrderRequest, OrderSide
from hkrt.bus import EventBus, ExecutionReport
from hkrt.trader.remote_broker import RemoteBroker
from hkrt.trader.server import TraderServer

T0 = dt.datetime(2026, 11, 20, 10, 0, 3)


class Instant(OrderBrokerBase):
    def __init__(self, hang: float = 0.0) -> None:
        super().__init__("bench")
        self.hang = hang

    def _buy(self, request: OrderRequest) -> OrderResult:
        if self.hang:
            time.sleep(self.hang)
        return OrderResult(OrderStatus.Sent, order_id=request.client_order_id)

    _sell = _buy

    def _get_asset_info(self) -> str:
        return ""


def requests(tag: str) -> list[OrderRequest]:
    return [OrderRequest(T0, "SH", "600000", 10.0, 100.0, client_order_id=f"{tag}{i}") for i in range(ARGS.orders)]


def median(run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(ARGS.repeat))


def bare() -> float:
    broker, todo = Instant(), requests("b")
    start = time.perf_counter()
    for r in todo:
        broker.submit(OrderSide.Buy, r)
    return time.perf_counter() - start


class Remote:
    """A trader served here on ipc, a RemoteBroker to it and a bus its reports land on."""

    def __init__(self, hang: float) -> None:
        self.folder = tempfile.mkdtemp()
        self.server = TraderServer(Instant(hang), f"ipc://{Path(self.folder) / 'bench.ipc'}", guard=None,
                                   journal=Path(self.folder) / "journal").start()  # fmt: skip
        room = ARGS.orders * (ARGS.repeat + 1)  # the hanging trader's worker takes none: nothing refused here
        self.broker = RemoteBroker(self.server.address, name="bench", max_outbox=room)
        self.bus = EventBus(max_events=ARGS.orders * 4).start()
        self.accepted = 0
        self.done = threading.Event()
        self.bus.subscribe(ExecutionReport, self._count)
        self.broker.attach(self.bus)
        self.runs = 0

    def _count(self, report: ExecutionReport) -> None:
        self.accepted += 1
        if self.accepted >= ARGS.orders:
            self.done.set()

    def submit_only(self) -> float:
        self.runs += 1
        todo = requests(f"s{self.runs}-")
        start = time.perf_counter()
        for r in todo:
            self.broker.submit(OrderSide.Buy, r)
        return time.perf_counter() - start

    def round_trip(self) -> float:
        self.runs += 1
        self.accepted = 0
        self.done.clear()
        todo = requests(f"r{self.runs}-")
        start = time.perf_counter()
        for r in todo:
            self.broker.submit(OrderSide.Buy, r)
        self.done.wait(120)
        return time.perf_counter() - start

    def one(self) -> float:
        """Seconds from one submit to its accepted report (the outbox empty, the trader idle)."""
        self.runs += 1
        self.accepted = ARGS.orders - 1
        self.done.clear()
        start = time.perf_counter()
        self.broker.submit(
            OrderSide.Buy, OrderRequest(T0, "SH", "600000", 10.0, 100.0, client_order_id=f"o{self.runs}")
        )
        self.done.wait(60)
        return time.perf_counter() - start

    def close(self) -> None:
        self.broker.close()
        self.server.stop()
        self.bus.stop()


def main() -> None:
    rows: list[tuple[str, float]] = [("in-process broker submit (the strategy thread waits for it)", median(bare))]
    remote = Remote(0.0)
    try:
        rows.append(("RemoteBroker.submit: into the outbox, returns", median(remote.submit_only)))
        remote.broker.flush(60)
        rows.append(("round trip: submit to the accepted report on the bus (ipc)", median(remote.round_trip)))
        one = statistics.median(remote.one() for _ in range(20)) * ARGS.orders  # shown per order like the rest
        rows.append(("one order alone: submit to its accepted report (latency)", one))
    finally:
        remote.close()
    hanging = Remote(ARGS.hang)
    try:
        rows.append((f"RemoteBroker.submit while the trader's broker hangs {ARGS.hang:g} s per call",
                     median(hanging.submit_only)))  # fmt: skip
    finally:
        hanging.close()
    print(f"\n{ARGS.orders} orders per run, median of {ARGS.repeat}; Python {platform.python_version()}\n")
    print("| path | µs per order | orders per second |")
    print("|---|---:|---:|")
    base = rows[0][1]
    for name, seconds in rows:
        print(f"| {name} | {seconds / ARGS.orders * 1e6:,.1f} | {ARGS.orders / seconds:,.0f} |")
    print(f"\nRemoteBroker.submit / in-process submit: {rows[1][1] / base:.2f}x")


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("orders", 2000), ("repeat", 5), ("hang", 1.0)):
        parser.add_argument(f"--{name}", type=type(default), default=default)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 100 orders, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.repeat, args.hang = 100, 1, 0.2
    return args


if __name__ == "__main__":
    ARGS = options()
    main()
