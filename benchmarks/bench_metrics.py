"""The cost of one Prometheus scrape of a whole-market agent (hkrt.ops, docs/metrics.md).

An agent in this process receives whole-market cycles of the simulated market (5,000 symbols, all 13
periods) from a publisher on an ``inproc://`` socket; then ``/metrics`` and ``/health`` are requested over
loopback HTTP.  The baseline, in the same run, is ``agent.stats()`` alone: what every scrape reads.  A
scrape reads dicts the agent already keeps, so its cost does not grow with the symbols (nothing is
labelled per symbol).

    python benchmarks/bench_metrics.py            # 5,000 symbols, 30 cycles, median of 30 scrapes
    python benchmarks/bench_metrics.py --quick    # 500 symbols, 5 cycles, median of 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
import urllib.request
from collections.abc import Callable

DAY = dt.date(2026, 11, 20)


def fed_agent(symbols: int, cycles: int) -> tuple[object, object]:
    """An agent that has aggregated ``cycles`` whole-market cycles (the publisher kept open)."""
    from hkrt.adapters.sim.config import SimConfig
    from hkrt.adapters.sim.data import SimMarket
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.feed.transport import SpotPublisher

    address = "inproc://hkrt-bench-metrics"
    publisher = SpotPublisher(address, simulated_time=True, max_part_spots=6000)
    agent = SpotAgent()
    agent.start(address)
    publisher.wait_for_subscribers(1)
    market = SimMarket(DAY, SimConfig(symbols=symbols))
    for i, t in enumerate(market.times()):
        if i == cycles:
            break
        publisher.publish(market.snapshot(t), market_time=t)
    deadline = time.monotonic() + 120
    while agent.stats()["transport"]["cycles"] < cycles and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.wait_idle(30)
    return agent, publisher


def median_ms(func: Callable[[], object], repeat: int) -> float:
    func()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    from prometheus_client.exposition import generate_latest

    from hkrt.ops import serve_metrics

    agent, publisher = fed_agent(ARGS.symbols, ARGS.cycles)
    stats = agent.stats()  # type: ignore[attr-defined]
    server = serve_metrics("127.0.0.1:0", agent=agent, process_metrics=False)  # type: ignore[arg-type]
    try:
        text = generate_latest(server.registry)
        samples = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))

        def get(path: str) -> bytes:
            try:
                with urllib.request.urlopen(server.url + path, timeout=10) as answer:
                    return answer.read()  # type: ignore[no-any-return]
            except urllib.error.HTTPError as err:  # /health may answer 503: still a full answer
                return err.read()  # type: ignore[no-any-return]

        rows = [
            ("agent.stats() (the baseline)", lambda: agent.stats()),  # type: ignore[attr-defined]
            ("collectors to text (generate_latest)", lambda: generate_latest(server.registry)),
            ("GET /metrics over loopback HTTP", lambda: get("/metrics")),
            ("GET /health over loopback HTTP", lambda: get("/health")),
        ]
        measured = [(name, median_ms(func, ARGS.repeat)) for name, func in rows]
    finally:
        server.stop()
        agent.stop()  # type: ignore[attr-defined]
        publisher.close()  # type: ignore[attr-defined]
    print(f"{stats['symbols']:,} symbols, {stats['transport']['cycles']} cycles aggregated; {samples} samples, "
          f"{len(text):,} bytes a scrape; median of {ARGS.repeat}; Python {platform.python_version()}, "
          f"{platform.machine()}")  # fmt: skip
    print()
    print("| path | ms per scrape | × agent.stats() |")
    print("|---|---:|---:|")
    baseline = measured[0][1]
    for name, ms in measured:
        print(f"| {name} | {ms:.2f} | {ms / baseline:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 500 symbols, 5 cycles, 5 scrapes")
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=30)
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.symbols, ARGS.cycles, ARGS.repeat = 500, 5, 5
    main()
