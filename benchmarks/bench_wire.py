"""Benchmark: the spot wire codec (C++, hkrt.wire.encode_spots / decode_*) next to pure-Python FlatBuffers.

Run ``python benchmarks/bench_wire.py`` (``--quick`` for a smoke test); it prints a Markdown
table.  A whole-market message (5,500 spots by default, every field set: a name, five book
levels a side) is encoded and decoded through each public path; the baseline builds and reads
the same schema with the flatc-generated pure-Python code (``hkrt._fbs``) on fewer spots.
Rates are spots per second of wall time on one core (median of the repeats), so rows with
different spot counts compare.  Nothing is asserted: the numbers are reported, never judged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import flatbuffers
import numpy as np
import pandas as pd

import hkrt
from hkrt import _fbs

T0 = dt.datetime(2026, 11, 20, 10, 0, 3)  # China local
CHINA_OFFSET_MS = 8 * 3600 * 1000
NAMES = ["浦发银行", "平安银行", "贵州茅台", "宁德时代", "中国平安", "招商银行"]


class Row(NamedTuple):
    path: str
    direction: str  # "encode" or "decode"
    spots: int
    seconds: float  # median per message
    size: int  # message bytes
    pure_python: bool = False

    @property
    def rate(self) -> float:
        return self.spots / self.seconds


def seconds(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up: first-touch allocations, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ------------------------------------------------------------------------------ data
def market(n: int, seed: int = 7) -> dict[str, Any]:
    """Columns of a synthetic whole-market push: n symbols across SH, SZ and BJ, every field set."""
    rng = np.random.default_rng(seed)
    prefixes = np.array(["SH6", "SZ0", "SZ3", "BJ8"])[np.arange(n) % 4]
    symbols = np.array([f"{p}{i:05d}" for i, p in enumerate(prefixes)])
    close = np.round(rng.uniform(2, 200, n), 2)
    tick = np.round(close * 0.001, 3) + 0.01
    levels = np.arange(1, 6)
    return {
        "symbol": symbols,
        "datetime": np.full(n, np.datetime64(T0, "ms")) - rng.integers(0, 3000, n).astype("timedelta64[ms]"),
        "open": np.round(close * rng.uniform(0.97, 1.03, n), 2),
        "high": np.round(close * 1.04, 2),
        "low": np.round(close * 0.96, 2),
        "close": close,
        "volume": rng.integers(1, 10_000_000, n).astype(float) * 100,
        "amount": np.round(rng.uniform(1e5, 1e9, n), 2),
        "yesterday_close": np.round(close * 0.99, 2),
        "name": np.array([NAMES[i % len(NAMES)] for i in range(n)], dtype=object),
        "bid": close[:, None] - tick[:, None] * (levels - 1),
        "bid_volume": rng.integers(1, 1000, (n, 5)).astype(float) * 100,
        "ask": close[:, None] + tick[:, None] * levels,
        "ask_volume": rng.integers(1, 1000, (n, 5)).astype(float) * 100,
    }


def spots_of(cols: dict[str, Any]) -> list[hkrt.Spot]:
    return [
        hkrt.Spot(
            str(cols["symbol"][i]),
            pd.Timestamp(cols["datetime"][i]).to_pydatetime(),
            name=cols["name"][i],
            **{c: float(cols[c][i]) for c in ("yesterday_close", "open", "high", "low", "close", "volume", "amount")},
            **{c: cols[c][i].tolist() for c in ("bid", "bid_volume", "ask", "ask_volume")},
        )
        for i in range(len(cols["symbol"]))
    ]


def plain_records(spots: list[hkrt.Spot]) -> list[tuple]:
    """The spots as plain Python values, extracted before timing (this favours the baseline)."""
    return [
        (
            s.market,
            s.code,
            s.name,
            int(pd.Timestamp(s.datetime).value // 1_000_000) - CHINA_OFFSET_MS,
            s.yesterday_close,
            s.open,
            s.high,
            s.low,
            s.close,
            s.amount,
            s.volume,
            s.bid,
            s.bid_volume,
            s.ask,
            s.ask_volume,
        )
        for s in spots
    ]


# ------------------------------------------------------------------------------ pure-Python baseline
def _vector(b: flatbuffers.Builder, start: Callable[[flatbuffers.Builder, int], None], values: list[float]) -> int:
    start(b, len(values))
    for v in reversed(values):
        b.PrependFloat64(v)
    return b.EndVector()


def py_encode(records: list[tuple]) -> bytes:
    """The generated pure-Python builder, used as its documentation shows (shared market strings)."""
    b = flatbuffers.Builder(len(records) * 330 + 1024)
    markets: dict[str, int] = {}
    offsets = []
    for mkt, code, name, epoch_ms, yc, op, hi, lo, cl, amount, volume, bid, bid_v, ask, ask_v in records:
        m = markets.get(mkt)
        if m is None:
            m = markets[mkt] = b.CreateString(mkt)
        c = b.CreateString(code)
        n = b.CreateString(name)
        vb = _vector(b, _fbs.SpotRecordStartBidVector, bid)
        vbv = _vector(b, _fbs.SpotRecordStartBidVolumeVector, bid_v)
        va = _vector(b, _fbs.SpotRecordStartAskVector, ask)
        vav = _vector(b, _fbs.SpotRecordStartAskVolumeVector, ask_v)
        _fbs.SpotRecordStart(b)
        _fbs.SpotRecordAddDatetime(b, _fbs.CreateTimestamp(b, epoch_ms))
        _fbs.SpotRecordAddYesterdayClose(b, yc)
        _fbs.SpotRecordAddOpen(b, op)
        _fbs.SpotRecordAddHigh(b, hi)
        _fbs.SpotRecordAddLow(b, lo)
        _fbs.SpotRecordAddClose(b, cl)
        _fbs.SpotRecordAddAmount(b, amount)
        _fbs.SpotRecordAddVolume(b, volume)
        _fbs.SpotRecordAddMarket(b, m)
        _fbs.SpotRecordAddCode(b, c)
        _fbs.SpotRecordAddName(b, n)
        _fbs.SpotRecordAddBid(b, vb)
        _fbs.SpotRecordAddBidVolume(b, vbv)
        _fbs.SpotRecordAddAsk(b, va)
        _fbs.SpotRecordAddAskVolume(b, vav)
        offsets.append(_fbs.SpotRecordEnd(b))
    _fbs.SpotBatchStartSpotsVector(b, len(offsets))
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    spots = b.EndVector()
    _fbs.BatchHeaderStart(b)
    _fbs.BatchHeaderAddSchemaVersion(b, hkrt.feed.wire.SCHEMA_VERSION)
    _fbs.BatchHeaderAddSequence(b, 1)
    _fbs.BatchHeaderAddPartCount(b, 1)
    _fbs.BatchHeaderAddSendTimeUs(b, time.time_ns() // 1_000)
    header = _fbs.BatchHeaderEnd(b)
    _fbs.SpotBatchStart(b)
    _fbs.SpotBatchAddHeader(b, header)
    _fbs.SpotBatchAddSpots(b, spots)
    b.Finish(_fbs.SpotBatchEnd(b), file_identifier=hkrt.feed.wire.FILE_IDENTIFIER)
    return bytes(b.Output())


def py_decode(buf: bytes) -> list[tuple]:
    """Every field through the generated pure-Python accessors (no verification: it has none)."""
    batch = _fbs.SpotBatch.GetRootAs(buf)
    out = []
    for i in range(batch.SpotsLength()):
        r = batch.Spots(i)
        out.append(
            (
                r.Market().decode(),
                r.Code().decode(),
                r.Name().decode(),
                r.Datetime().EpochMs(),
                r.YesterdayClose(),
                r.Open(),
                r.High(),
                r.Low(),
                r.Close(),
                r.Amount(),
                r.Volume(),
                [r.Bid(j) for j in range(r.BidLength())],
                [r.BidVolume(j) for j in range(r.BidVolumeLength())],
                [r.Ask(j) for j in range(r.AskLength())],
                [r.AskVolume(j) for j in range(r.AskVolumeLength())],
            )
        )
    return out


# ------------------------------------------------------------------------------ report
def table(rows: list[Row]) -> str:
    base = {r.direction: r.rate for r in rows if r.pure_python}
    lines = [
        "| path | spots/message | spots/s | ms/message | message bytes | bytes/spot | vs pure Python |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "1× (baseline)" if r.pure_python else f"{r.rate / base[r.direction]:.0f}×"
        lines.append(
            f"| {r.path} | {r.spots:,} | {r.rate / 1e6:.2f} M | {r.seconds * 1e3:.2f} | {r.size:,} | "
            f"{r.size / r.spots:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spots", type=int, default=5500, help="spots in the whole-market message (default 5500)")
    parser.add_argument("--baseline-spots", type=int, default=500, help="spots for the pure-Python rows (default 500)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per row, median reported (default 20)")
    parser.add_argument("--quick", action="store_true", help="500 spots, 100 for the baseline, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.spots, args.baseline_spots, args.repeat = 500, 100, 3

    cols = market(args.spots)
    spots = spots_of(cols)
    n = len(spots)
    msg = hkrt.wire.encode_spots(spots)
    columns_msg = hkrt.wire.encode_spots(cols)
    # A DataFrame cannot hold an (n, 5) column: each book cell is one row's levels (a numpy array).
    frame = pd.DataFrame({c: list(v) if getattr(v, "ndim", 1) == 2 else v for c, v in cols.items()})
    frame_msg = hkrt.wire.encode_spots(frame)
    records = plain_records(spots[: args.baseline_spots])
    nb = len(records)
    py_msg = py_encode(records)

    r, rb = args.repeat, max(3, args.repeat // 4)
    rows = [
        Row(
            "hkrt.wire.encode_spots(list[Spot]) → bytes",
            "encode",
            n,
            seconds(lambda: hkrt.wire.encode_spots(spots), r),
            len(msg),
        ),
        Row(
            "hkrt.wire.encode_spots(dict of numpy columns) → bytes",
            "encode",
            n,
            seconds(lambda: hkrt.wire.encode_spots(cols), r),
            len(columns_msg),
        ),
        Row(
            "hkrt.wire.encode_spots(DataFrame, book columns of per-row arrays) → bytes",
            "encode",
            n,
            seconds(lambda: hkrt.wire.encode_spots(frame), r),
            len(frame_msg),
        ),
        Row(
            "pure Python: generated builder (hkrt._fbs)",
            "encode",
            nb,
            seconds(lambda: py_encode(records), rb),
            len(py_msg),
            True,
        ),
        Row(
            "hkrt.wire.decode_spots(bytes) → list[Spot]",
            "decode",
            n,
            seconds(lambda: hkrt.wire.decode_spots(msg), r),
            len(msg),
        ),
        Row(
            "hkrt.wire.decode_columns(bytes) → dict of numpy",
            "decode",
            n,
            seconds(lambda: hkrt.wire.decode_columns(msg), r),
            len(msg),
        ),
        Row(
            "hkrt.wire.decode_header(bytes) (verifies it all)",
            "decode",
            n,
            seconds(lambda: hkrt.wire.decode_header(msg), r),
            len(msg),
        ),
        Row(
            "pure Python: generated accessors (hkrt._fbs)",
            "decode",
            nb,
            seconds(lambda: py_decode(py_msg), rb),
            len(py_msg),
            True,
        ),
    ]

    # Cross-checks: the codec and the generated Python code read each other's messages.
    same = hkrt.wire.decode_spots(msg) == spots and hkrt.wire.decode_spots(py_msg) == spots[:nb]
    same = same and py_decode(msg)[:nb] == py_decode(py_msg) and hkrt.wire.decode_spots(columns_msg) == spots
    same = same and hkrt.wire.decode_spots(frame_msg) == spots

    print("# Spot wire codec benchmark\n")
    print(
        f"- {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, hkrt {hkrt.__version__}"
    )
    print(f"- Message: {n:,} spots (SH/SZ/BJ), every field set: a 4-character Chinese name, 5 book levels a side")
    print(f"- Pure-Python rows: the first {nb:,} of those spots, plain Python values prepared before timing")
    print(
        f"- Median of {r} runs (pure Python: {rb}), one core; ratio against the pure-Python row of the same direction\n"
    )
    print(table(rows))
    print(f"\ncross-check: {'OK' if same else 'MISMATCH'} (each side decodes the other's messages to the same spots)")
    rate = {row.path: row.rate for row in rows}
    frame_rate = rate["hkrt.wire.encode_spots(DataFrame, book columns of per-row arrays) → bytes"]
    spots_rate = rate["hkrt.wire.decode_spots(bytes) → list[Spot]"]
    print(
        f"Goals (issue 13): encode from a DataFrame with book columns ≥ 5 M spots/s: {frame_rate / 1e6:.2f} M "
        f"({'met' if frame_rate >= 5e6 else 'NOT met'}); decode to Spot objects ≥ 5 M spots/s: "
        f"{spots_rate / 1e6:.2f} M ({'met' if spots_rate >= 5e6 else 'NOT met'})."
    )


if __name__ == "__main__":
    main()
