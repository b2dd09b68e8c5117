"""Fuzz the agent's message path with mutated wire buffers and print what happened.

    python benchmarks/fuzz_feed.py [--buffers 100000] [--seed 1] [--quick]

Each batch of buffers runs in a child process (a crash there is counted, not fatal); every
buffer goes through ``SpotAgent.ingest`` (verify, sequence, sanity windows, aggregation).
Afterwards the child feeds a clean day slice and checks its bars against a fresh agent's.
"Silent losses" adds up everything unaccounted for: buffers the agent did not count,
spots neither accepted, duplicate nor rejected by a reason, and clean spots not accepted
afterwards.  It must be 0.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import struct
import sys
import time
from typing import Any

BATCH = 5_000
HANG_SECONDS = 1.0


def _base_messages(rng: random.Random) -> list[bytes]:
    import datetime as dt

    from hkrt.core.synthetic import synthetic_day
    from hkrt.feed.wire import encode_spots

    day = dt.date(2026, 11, 20)
    out = []
    for i, push in zip(range(40), synthetic_day(20, day), strict=False):
        out.append(encode_spots(push.columns(), publisher_id=11, session_epoch=5, sequence=i + 1, cycle_id=i + 1))
    return out


def _header_mutant(rng: random.Random, base: bytes) -> bytes:
    """Valid FlatBuffers with hostile header values and spot values."""
    from hkrt.feed.wire import decode_columns, encode_spots

    cols = decode_columns(base)
    n = len(cols["symbol"])
    extreme = [0, 1, 2**63, 2**64 - 1, rng.getrandbits(64), rng.randrange(1, 100)]
    for name in ("close", "volume", "amount", "high", "low", "open"):
        if rng.random() < 0.2:
            i = rng.randrange(n)
            cols[name][i] = rng.choice([float("nan"), float("inf"), -1.0, 2.0**63, 1e300, 0.0])
    if rng.random() < 0.3:
        i = rng.randrange(n)
        cols["datetime"][i] = rng.choice(
            [cols["datetime"][i] + 86_400_000 * rng.randrange(1, 40_000), cols["datetime"][i] - 86_400_000 * 9_000]
        )
    market_time = rng.choice([0, 2**63 - 1, -(2**63), rng.getrandbits(62), None])
    return encode_spots(
        cols,
        publisher_id=rng.choice([11, rng.getrandbits(64)]),
        session_epoch=rng.choice([5, 0, rng.getrandbits(64)]),
        sequence=rng.choice(extreme),
        cycle_id=rng.choice(extreme),
        market_time=market_time,
        send_time=rng.choice([None, 2**63 - 1, -(2**63), 0]),
        simulated_time=rng.random() < 0.5,
    )


def _byte_mutant(rng: random.Random, base: bytes) -> bytes:
    data = bytearray(base)
    kind = rng.randrange(6)
    if kind == 0:  # bit flips
        for _ in range(rng.randrange(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # random bytes overwritten
        i = rng.randrange(len(data))
        data[i : i + 8] = rng.randbytes(8)
    elif kind == 2:  # truncated
        del data[rng.randrange(len(data)) :]
    elif kind == 3:  # extended
        data += rng.randbytes(rng.randrange(1, 64))
    elif kind == 4:  # an offset field pointed somewhere else
        i = rng.randrange(0, max(1, len(data) - 4))
        data[i : i + 4] = struct.pack("<I", rng.getrandbits(32))
    else:  # noise
        return rng.randbytes(rng.randrange(0, 256))
    return bytes(data)


def _batch(seed: int, count: int, queue: Any) -> None:
    import logging

    import numpy as np

    import hkrt

    logging.getLogger("hkrt").setLevel(logging.CRITICAL)  # a WARNING per hostile buffer is the point, not output
    rng = random.Random(seed)
    bases = _base_messages(rng)
    agent = hkrt.SpotAgent()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    escaped = hangs = 0
    for _ in range(count):
        base = rng.choice(bases)
        buf = _header_mutant(rng, base) if rng.random() < 0.3 else _byte_mutant(rng, base)
        started = time.perf_counter()
        try:
            agent.ingest(buf)
        except Exception:
            escaped += 1
        if time.perf_counter() - started > HANG_SECONDS:
            hangs += 1
    stats = agent.stats()
    t = stats["transport"]
    uncounted_messages = count - t["messages"]
    unaccounted_spots = stats["received"] - stats["accepted"] - stats["duplicates"] - stats["rejected_total"]
    # afterwards a clean feed of a new publisher is aggregated exactly as by a fresh agent
    clean = _clean_messages()
    fresh = hkrt.SpotAgent()
    accepted_before = stats["accepted"]
    for m in clean:
        agent.ingest(m)
        fresh.ingest(m)
    clean_accepted = agent.stats()["accepted"] - accepted_before
    clean_lost = fresh.stats()["accepted"] - clean_accepted
    for symbol in fresh.symbols:
        for ktype in ("MIN", "DAY"):
            b = fresh.kdata(symbol, ktype)
            a = agent.kdata(symbol, ktype, start=b.index[0])  # the fuzzed day's bars stay before it
            if not np.array_equal(a.to_numpy(), b.to_numpy()) or not a.index.equals(b.index):
                clean_lost += 1
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(
        {
            "buffers": count,
            "escaped": escaped,
            "hangs": hangs,
            "rss_kb": rss_after - rss_before,
            "rejected": sum(t["rejected"].values()),
            "clean_accepted": clean_accepted,
            "silent": max(0, uncounted_messages) + unaccounted_spots + clean_lost,
            "detail": (uncounted_messages, unaccounted_spots, clean_lost),
        }
    )


def _clean_messages() -> list[bytes]:
    import datetime as dt

    from hkrt.core.synthetic import synthetic_day
    from hkrt.feed.wire import encode_spots

    # another trading day, so nothing the fuzz left in a symbol's day can be in the way
    day = dt.date(2026, 11, 24)
    return [
        encode_spots(push.columns(), publisher_id=99, session_epoch=7, sequence=i + 1, cycle_id=i + 1)
        for i, push in zip(range(30), synthetic_day(20, day), strict=False)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5,000 buffers (the test suite's smoke run)")
    args = parser.parse_args(argv)
    total = 5_000 if args.quick else args.buffers
    spawn = multiprocessing.get_context("spawn")
    totals = {"buffers": 0, "crashes": 0, "escaped": 0, "hangs": 0, "rss_kb": 0, "rejected": 0,
              "clean_accepted": 0, "silent": 0}  # fmt: skip
    started = time.perf_counter()
    seed = args.seed
    done = 0
    while done < total:
        count = min(BATCH, total - done)
        queue = spawn.Queue()
        proc = spawn.Process(target=_batch, args=(seed, count, queue))
        proc.start()
        proc.join(600)
        if proc.exitcode != 0 or queue.empty():
            totals["crashes"] += 1
            totals["buffers"] += count
            print(f"batch seed={seed}: child exit code {proc.exitcode}", file=sys.stderr)
        else:
            result = queue.get()
            if result["silent"]:
                print(
                    f"batch seed={seed}: silent losses (messages, spots, clean) = {result['detail']}", file=sys.stderr
                )
            for key in ("buffers", "escaped", "hangs", "rejected", "clean_accepted", "silent"):
                totals[key] += result[key]
            totals["rss_kb"] = max(totals["rss_kb"], result["rss_kb"])
        done += count
        seed += 1
    seconds = time.perf_counter() - started
    print("| buffers tried | crashes | hangs (>1 s) | exceptions escaping | max RSS growth per batch | "
          "messages rejected | valid spots accepted afterwards | silent losses | seconds |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {totals['buffers']:,} | {totals['crashes']} | {totals['hangs']} | {totals['escaped']} | "
        f"{totals['rss_kb'] / 1024:.1f} MiB | {totals['rejected']:,} | {totals['clean_accepted']:,} | "
        f"{totals['silent']} | {seconds:.1f} |"
    )
    bad = totals["crashes"] or totals["escaped"] or totals["hangs"] or totals["silent"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
