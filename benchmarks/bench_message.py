"""Benchmark: encoded wire messages into all 13 periods, next to the numpy columns path and pandas.

The agent's live input is a wire message (FlatBuffers, schemas/spot.fbs): the C++ core verifies
it, decodes it and aggregates it in one call.  This prints, for one synthetic whole-market day
(5,000 symbols, 24 M spots by default, as bench_kdata.py), side by side in one run:

- the columns path (the engine fed numpy columns: what aggregation itself costs),
- the message path with the messages hkrt's publisher sends for that day (8 fields a spot),
- the message path with wide messages (a name, yesterday's close and a 5-level book a side:
  what a vendor's full quote carries), and
- verify + decode alone for both message kinds,

so that the message path's own cost (verify + decode, on top of aggregation) reads as ns a
spot and as a ratio to the columns path, whatever the engine's speed; and pandas (8
representative rules on the first symbols, as bench_kdata.py) as the outside baseline.

    python benchmarks/bench_message.py                 # 5,000 symbols, the whole day
    python benchmarks/bench_message.py --symbols 10000 # the same at 10,000 symbols
    python benchmarks/bench_message.py --quick         # 300 symbols, 400 pushes

Messages are encoded ahead, untimed, 64 at a time (so that encoding does not evict the engine's
state between calls and each path's inputs come from memory alike).  Each path gets a fresh
agent with all 13 periods.  Nothing is asserted: the numbers are reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

import hkrt
from hkrt import _hkrt
from hkrt.core.synthetic import Push, synthetic_day

DAY = dt.date(2026, 11, 20)
CHUNK = 64  # pushes prepared (encoded) ahead of their timed calls
NAMES = np.array(["浦发银行", "平安银行", "贵州茅台", "宁德时代", "中国平安", "招商银行"], dtype=object)


class Row(NamedTuple):
    path: str
    spots: int
    seconds: float  # summed over the timed calls

    @property
    def rate(self) -> float:
        return self.spots / self.seconds

    @property
    def ns(self) -> float:
        return self.seconds / self.spots * 1e9


def wide(push: Push) -> dict[str, Any]:
    """The push with what a vendor's full quote adds: a name, yesterday's close, 5 book levels a side."""
    n = len(push.symbol)
    tick = np.round(push.close * 0.001, 3)[:, None] + 0.01
    levels = np.arange(1, 6)[None, :]
    depth = np.full((n, 5), 500.0) + levels * 100
    return {
        **push.columns(),
        "name": NAMES[np.arange(n) % len(NAMES)],
        "yesterday_close": push.open,
        "bid": push.close[:, None] - tick * (levels - 1),
        "bid_volume": depth,
        "ask": push.close[:, None] + tick * levels,
        "ask_volume": depth,
    }


def encoder(kind: str) -> Callable[[int, Push], bytes]:
    def encode(i: int, push: Push) -> bytes:
        columns = wide(push) if kind == "wide" else push.columns()
        return hkrt.wire.encode_spots(columns, publisher_id=7, session_epoch=1, sequence=i + 1, cycle_id=i + 1)

    return encode


def timed(pushes: Sequence[Push], prepare: Callable[[int, Push], Any], call: Callable[[Any], Any]) -> float:
    """Seconds spent in call(prepare(i, push)) over the day, prepare untimed.  Inputs are prepared
    CHUNK pushes at a time, so that preparing (encoding) does not evict the engine's state from the
    cache before every call: each path sees its inputs come from memory and its state as warm as
    back-to-back calls leave it."""
    gc.collect()
    total = 0.0
    for first in range(0, len(pushes), CHUNK):
        args = [prepare(i, pushes[i]) for i in range(first, min(first + CHUNK, len(pushes)))]
        for arg in args:
            start = time.perf_counter()
            call(arg)
            total += time.perf_counter() - start
    return total


def columns_path(pushes: Sequence[Push]) -> float:
    engine = hkrt.SpotAgent()._engine

    def raw(i: int, push: Push) -> tuple[Any, ...]:
        return (push.symbol, push.datetime.view("int64"), push.close, push.volume, push.amount, push.open,
                push.high, push.low)  # fmt: skip

    return timed(pushes, raw, lambda args: engine.ingest_columns(*args))


def message_path(pushes: Sequence[Push], kind: str) -> tuple[float, dict[str, Any]]:
    agent = hkrt.SpotAgent()
    seconds = timed(pushes, encoder(kind), agent._engine.ingest_message)
    return seconds, agent.stats()


def decode_only(pushes: Sequence[Push], kind: str, every: int) -> tuple[float, float, int]:
    """(verify s, verify + decode to shared columns s, spots) over every `every`-th push."""
    sample = pushes[::every]
    verify = timed(sample, encoder(kind), _hkrt._wire_decode_header)
    decode = timed(sample, encoder(kind), _hkrt._wire_decode_columns)
    return verify, decode, sum(len(p.symbol) for p in sample)


def pandas_row(pushes: Sequence[Push], subset: int) -> Row | None:
    try:
        from bench_kdata import REPRESENTATIVE, first_symbols, spot_count, time_pandas
    except ImportError as err:  # run from elsewhere than benchmarks/
        print(f"(pandas baseline skipped: {err})")
        return None
    small = first_symbols(pushes, subset)
    return Row(f"pandas: groupby/resample, 8 rules ({subset:,} symbols)", spot_count(small),
               time_pandas(small).seconds(REPRESENTATIVE))  # fmt: skip


def table(rows: list[Row], columns: Row, pandas: Row | None) -> str:
    lines = [
        "| path (all 13 periods unless said) | spots | M spots/s | ns/spot | ns/spot over the columns path "
        "| × columns path rate | × pandas 8 rules |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        aggregates = "verify" not in r.path and r is not pandas
        over = f"{r.ns - columns.ns:+.1f}" if aggregates and r is not columns else "–"
        ratio = f"{r.rate / columns.rate:.2f}×" if aggregates else "–"
        vs_pandas = f"{r.rate / pandas.rate:.0f}×" if pandas is not None and r is not pandas else "–"
        lines.append(f"| {r.path} | {r.spots:,} | {r.rate / 1e6:.2f} | {r.ns:.1f} | {over} | {ratio} | {vs_pandas} |")
    return "\n".join(lines)


QUICK = {"symbols": 300, "pushes": 400, "subset": 100}  # --quick: a smoke test of a few seconds


def main(argv: Sequence[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, default, text in (
        ("--symbols", 5000, "symbols in the market"),
        ("--pushes", 0, "the day's first N pushes (default: all 4,801)"),
        ("--subset", 500, "symbols of the pandas row"),
        ("--decode-every", 10, "the verify/decode rows time every N-th push"),
    ):
        options.add_argument(flag, type=int, default=default, help=text)
    options.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK}")
    args = options.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    started = time.perf_counter()
    pushes = list(synthetic_day(args.symbols, DAY))
    if args.pushes:
        pushes = pushes[: args.pushes]
    spots = sum(len(p.symbol) for p in pushes)
    generated = time.perf_counter() - started

    columns = Row("columns: engine.ingest_columns(numpy columns)", spots, columns_path(pushes))
    narrow_s, narrow_stats = message_path(pushes, "narrow")
    wide_s, wide_stats = message_path(pushes, "wide")
    narrow = Row("message, 8 fields a spot (hkrt's publisher): engine.ingest_message", spots, narrow_s)
    wide_row = Row("message, wide (name, 5-level book): engine.ingest_message", spots, wide_s)
    nv, nd, ns = decode_only(pushes, "narrow", args.decode_every)
    wv, wd, ws = decode_only(pushes, "wide", args.decode_every)
    pandas = pandas_row(pushes, args.subset)
    rows = [
        columns,
        narrow,
        wide_row,
        Row("verify only, 8-field message (decode_header verifies it all)", ns, nv),
        Row("verify + decode to columns, 8-field message", ns, nd),
        Row("verify only, wide message", ws, wv),
        Row("verify + decode to columns, wide message", ws, wd),
    ]
    if pandas is not None:
        rows.append(pandas)

    print("# Message path benchmark\n")
    print(f"- {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, hkrt {hkrt.__version__}")
    print(f"- synthetic day {DAY}: {args.symbols:,} symbols × {len(pushes):,} pushes = {spots:,} spots "
          f"(generated in {generated:.0f} s, untimed); one message per push; a fresh agent per path\n")  # fmt: skip
    print(table(rows, columns, pandas))
    for label, stats in (("8-field", narrow_stats), ("wide", wide_stats)):
        t = stats["transport"]
        print(f"\ncross-check, {label} messages: {stats['accepted']:,} of {stats['received']:,} spots accepted, "
              f"{t['messages']:,} messages, rejected {sum(t['rejected'].values())}, symbol cache "
              f"{t['symbol_cache_hits']:,} hits / {t['symbol_cache_misses']:,} misses")  # fmt: skip
    over = narrow.ns - columns.ns
    print(f"\nMessage path overhead (verify + decode on top of aggregation): {over:+.1f} ns/spot for hkrt's "
          f"messages ({over / columns.ns:+.0%} of the columns path), {wide_row.ns - columns.ns:+.1f} ns/spot for "
          f"wide ones ({(wide_row.ns - columns.ns) / columns.ns:+.0%}).")  # fmt: skip
    goal = 15e6
    print(f"Goal (issue 13): encoded messages into all 13 periods ≥ 15 M spots/s: {narrow.rate / 1e6:.2f} M "
          f"({'met' if narrow.rate >= goal else 'NOT met'}).")  # fmt: skip


if __name__ == "__main__":
    main()
