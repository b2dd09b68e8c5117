"""Redis Streams against nng: a whole-market cycle from publish to the agent's last callback.

A publisher process (spawned) sends whole-market cycles of 5,500 spots; the agent in this process
reads them either from the publisher's nng socket (ipc) or from a Redis stream the publisher's sink
appends to (``RedisStreamSink``; the agent one consumer of a consumer group, ``start_redis``), and
aggregates all 13 periods.  Latency per cycle: from the publisher's send time (in the message header)
to the end of that cycle's ``on_cycle`` callback.  Baselines in the same run: a bare pynng transfer
and a bare ``XADD`` → ``XREADGROUP BLOCK`` of the same message, stamped with its send time.  The
redis-server is started by the benchmark on a private unix socket, without persistence.

    python benchmarks/bench_redis.py            # 5,500 symbols, 300 cycles
    python benchmarks/bench_redis.py --quick    # 500 symbols, 60 cycles
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_agent import DAY, SPAWN, Result, percentile, run_baseline, universe

STREAM = "bench:spots"


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    sock = os.path.join(directory, "redis.sock")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
         "--dir", directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            if os.path.exists(sock) and redis.Redis(unix_socket_path=sock).ping():
                break
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("redis-server did not start")
        time.sleep(0.01)
    return proc, f"unix://{sock}"


def publish_to_redis(url: str, address: str, n_symbols: int, cycles: int, pause: float) -> None:
    """Publisher process: whole-market cycles through a spot publisher whose sink appends to Redis."""
    from hkrt.core.synthetic import synthetic_day
    from hkrt.feed.redis_sink import RedisStreamSink
    from hkrt.feed.transport import SpotPublisher

    sink = RedisStreamSink(url, stream=STREAM, maxlen=max(1000, cycles + 100))
    with SpotPublisher(address, max_part_spots=n_symbols, heartbeat_interval=0) as pub:
        pub.add_sink(sink)
        time.sleep(0.2)  # the agent's group exists already: nothing is missed
        pushes = itertools.islice(synthetic_day(n_symbols, DAY), cycles)
        for push in pushes:
            pub.publish(push.columns())
            time.sleep(pause)
        sink.flush(30)
    sink.close()


def publish_nng(address: str, n_symbols: int, cycles: int, pause: float) -> None:
    from bench_agent import publish_cycles

    publish_cycles(address, n_symbols, cycles, pause)


def raw_xadd(url: str, message: bytes, count: int, pause: float) -> None:
    """Baseline publisher process: the same bytes, stamped with the send time (ns) in front, XADDed."""
    import redis

    client = redis.Redis.from_url(url)
    time.sleep(0.2)
    for _ in range(count):
        client.xadd(STREAM + ":raw", {b"m": time.time_ns().to_bytes(8, "little") + message}, maxlen=count + 10)
        time.sleep(pause)


def run_redis_baseline(url: str, n_symbols: int, cycles: int, pause: float) -> Result:
    import redis

    import hkrt
    from hkrt.core.synthetic import synthetic_day

    push = next(p for i, p in enumerate(synthetic_day(n_symbols, DAY)) if i == 1)
    message = hkrt.wire.encode_spots(push.columns(), publisher_id=1, sequence=1)
    client = redis.Redis.from_url(url)
    client.xgroup_create(STREAM + ":raw", "raw", id="$", mkstream=True)
    proc = SPAWN.Process(target=raw_xadd, args=(url, message, cycles, pause))
    proc.start()
    latencies: list[float] = []
    t0 = time.perf_counter()
    while len(latencies) < cycles:
        reply = client.xreadgroup("raw", "c", {STREAM + ":raw": ">"}, count=16, block=5000)
        if not reply:
            break
        ids = []
        for entry_id, fields in reply[0][1]:
            latencies.append((time.time_ns() - int.from_bytes(fields[b"m"][:8], "little")) / 1e6)
            ids.append(entry_id)
        client.xack(STREAM + ":raw", "raw", *ids)
    elapsed = time.perf_counter() - t0
    proc.join(10)
    return Result(f"baseline: bare XADD → XREADGROUP BLOCK of the {len(message) / 1e6:.2f} MB message", latencies,
                  len(latencies), elapsed, float("nan"), cycles - len(latencies))  # fmt: skip


def run_agent(n_symbols: int, cycles: int, pause: float, url: str | None) -> Result:
    """The agent over nng (``url`` None) or over Redis as one consumer of a fresh group."""
    import hkrt

    address = f"ipc://{tempfile.mkdtemp()}/bench.ipc"
    agent = hkrt.SpotAgent(bar_close_delay=0, universe=universe(n_symbols))
    latencies: list[float] = []
    finished = threading.Event()
    agent.on_bars(lambda records: None)

    @agent.on_cycle
    def measure(info) -> None:
        latencies.append(time.time() * 1000 - info.sent_at_ms)
        if len(latencies) == cycles:
            finished.set()

    if url is None:
        agent.start(address)
        proc = SPAWN.Process(target=publish_nng, args=(address, n_symbols, cycles, pause))
    else:
        agent.start_redis(url, f"bench-{time.monotonic_ns()}", stream=STREAM)
        proc = SPAWN.Process(target=publish_to_redis, args=(url, address, n_symbols, cycles, pause))
    t0 = time.perf_counter()
    proc.start()
    finished.wait(60 + cycles * (pause + 0.05))
    agent.wait_idle(30)
    elapsed = time.perf_counter() - t0
    proc.join(30)
    gaps = agent.stats()["transport"]["missing_messages"]
    agent.stop()
    name = "agent over nng (ipc)" if url is None else "agent over Redis (consumer group, unix socket)"
    return Result(name, latencies, len(latencies), elapsed, float("nan"), gaps)


def table(results: list[Result]) -> str:
    rows = [
        "| run | cycles | p50 ms | p90 ms | p99 ms | max ms | messages lost |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lat = r.latencies_ms
        rows.append(
            f"| {r.name} | {r.cycles} | {percentile(lat, 50):.2f} | {percentile(lat, 90):.2f} | "
            f"{percentile(lat, 99):.2f} | {max(lat) if lat else float('nan'):.2f} | {r.gaps} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 500 symbols, 60 cycles")
    for flag, kind, default, text in (("--symbols", int, 5500, "spots a cycle"), ("--cycles", int, 300, "cycles a run"),
                                      ("--pause", float, 0.02, "seconds between cycles")):  # fmt: skip
        parser.add_argument(flag, type=kind, default=default, help=text)
    args = parser.parse_args(argv)
    if args.quick:
        args.symbols, args.cycles = 500, 60
    import hkrt

    directory = tempfile.mkdtemp(prefix="hkrt-bench-redis-")
    server, url = start_redis(directory)
    try:
        version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
        print("# hkrt Redis Streams benchmark\n")
        machine = platform.processor() or platform.machine()
        print(f"- {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}, hkrt {hkrt.__version__}, "
              f"redis-server {version.removeprefix('v=')}")  # fmt: skip
        print(
            f"- {args.symbols} symbols a cycle (one message), {args.cycles} cycles {args.pause * 1000:.0f} ms apart, "
            "all 13 periods, publisher in another process, Redis on a local unix socket\n"
        )
        run_agent(args.symbols, min(50, args.cycles), args.pause, None)  # warm-up, not reported
        results = [
            run_baseline(args.symbols, args.cycles, args.pause),
            run_redis_baseline(url, args.symbols, args.cycles, args.pause),
            run_agent(args.symbols, args.cycles, args.pause, None),
            run_agent(args.symbols, args.cycles, args.pause, url),
        ]
        print(table(results))
        nng, over_redis = (percentile(r.latencies_ms, 50) for r in results[2:])
        print(f"\nRedis over nng, agent p50: {over_redis / nng:.1f}× ({over_redis - nng:+.2f} ms)")
    finally:
        server.kill()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
