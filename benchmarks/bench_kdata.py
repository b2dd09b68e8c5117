"""Benchmark: a synthetic whole market day through the K-line engine, next to pandas.

Run ``python benchmarks/bench_kdata.py`` (``--quick`` for a smoke test); it prints a
Markdown report.  benchmarks/README.md explains every row.  Nothing here asserts on
timings: the numbers are reported, never judged pass/fail.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import io
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
import pandas as pd

import hkrt
from hkrt import KType, Spot, SpotAgent
from hkrt.core.synthetic import Push, synthetic_day

DAY = dt.date(2026, 11, 20)  # a Friday and a trading day
MIB = 1024 * 1024
ROOT = pathlib.Path(__file__).resolve().parent.parent
T = TypeVar("T")


# ------------------------------------------------------------------ options and machine
@dataclass(frozen=True)
class Options:
    symbols: int  # the whole market of the batch rows
    subset: int  # symbols of the per-spot and pandas rows (the first ones of the market)
    repeat: int  # runs per engine row; the median is reported
    large: int  # the larger market of the scaling rows (0: none)
    cpp: bool  # build and run the C++ baselines (benchmarks/cpp)
    cpp_build: pathlib.Path  # their CMake build directory


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, help="symbols of the whole market (default 5000; 300 with --quick)")
    parser.add_argument(
        "--subset", type=int, help="symbols of the per-spot and pandas rows (default 500; 100 with --quick)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine row, median reported (default 3)")
    parser.add_argument(
        "--large", type=int, help="symbols of the scaling rows, 0 for none (default 10000; 600 with --quick)"
    )
    parser.add_argument(
        "--cpp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="build (CMake) and run the C++ baselines of benchmarks/cpp (default on; off with --quick)",
    )
    parser.add_argument(
        "--cpp-build",
        type=pathlib.Path,
        default=ROOT / "build" / "bench",
        help="CMake build directory of the C++ baselines (default build/bench)",
    )
    parser.add_argument("--quick", action="store_true", help="a small market, for a smoke test")
    args = parser.parse_args(argv)
    symbols = args.symbols if args.symbols is not None else (300 if args.quick else 5000)
    subset = args.subset if args.subset is not None else (100 if args.quick else 500)
    large = args.large if args.large is not None else (600 if args.quick else 10000)
    if symbols < 1 or subset < 1 or args.repeat < 1 or large < 0:
        parser.error("--symbols, --subset and --repeat must be at least 1, --large at least 0")
    return Options(
        symbols=symbols,
        subset=min(subset, symbols),
        repeat=args.repeat,
        large=large,
        cpp=not args.quick if args.cpp is None else args.cpp,
        cpp_build=args.cpp_build,
    )


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> list[str]:
    # Affinity, not cpu_count: a container may see more CPUs than it may use.
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable); every row runs on one core",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"hkrt {hkrt.__version__}",
    ]


# ------------------------------------------------------------------------------- memory
def rss_bytes() -> int | None:
    """Resident set size now (Linux); None where /proc is not available."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


def mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / MIB:,.1f} MiB"


def distinct_nbytes(pushes: Sequence[Push]) -> int:
    """Bytes of the pushes' arrays, each shared array (symbol, open) counted once."""
    arrays = {id(a): a for p in pushes for a in p.columns().values()}
    return sum(a.nbytes for a in arrays.values())


# --------------------------------------------------------------------------------- data
def generate_day(n_symbols: int) -> list[Push]:
    """All pushes of the synthetic day, made before any timing starts."""
    return list(synthetic_day(n_symbols, DAY))


def first_symbols(pushes: Sequence[Push], k: int) -> list[Push]:
    """The same day restricted to its first k symbols.

    Slices (views) of the market's own pushes, not a new synthetic_day(k): the subset rows
    then see exactly the spots the batch rows saw, so their volumes can be cross-checked.
    """
    return [Push(**{name: column[:k] for name, column in p.columns().items()}) for p in pushes]


def spot_count(pushes: Sequence[Push]) -> int:
    return sum(len(p.symbol) for p in pushes)


def make_spots(pushes: Sequence[Push]) -> list[list[Spot]]:
    """One list of hkrt.Spot per push, built as a feed handler would.

    A push has one time and the synthetic market the same symbols in every push, so one
    datetime object per push and one str per symbol are shared by the spots: what is
    measured is building the Spot objects, not formatting their fields.
    """
    names = pushes[0].symbol.astype(str).tolist()
    lists: list[list[Spot]] = []
    for p in pushes:
        when = p.datetime[0].astype(dt.datetime)
        rows = zip(
            names,
            p.open.tolist(),
            p.high.tolist(),
            p.low.tolist(),
            p.close.tolist(),
            p.volume.tolist(),
            p.amount.tolist(),
            strict=True,
        )
        lists.append(
            [Spot(s, when, open=o, high=h, low=lo, close=c, volume=v, amount=a) for s, o, h, lo, c, v, a in rows]
        )
    return lists


# ------------------------------------------------------------------------ engine paths
def replay_columns(pushes: Sequence[Push], ktypes: Iterable[str] | None = None) -> SpotAgent:
    """The public batch path: one SpotAgent.ingest_columns call per push."""
    agent = SpotAgent(ktypes)
    for push in pushes:
        agent.ingest_columns(**push.columns())
    return agent


RawPush = tuple[np.ndarray, ...]


def raw_columns(pushes: Sequence[Push]) -> list[RawPush]:
    """Pushes as the engine's own argument order, datetime as int64 milliseconds.

    datetime64[ms] is already int64 milliseconds, so a view converts it for free; the raw
    row then measures the C++ call alone, without SpotAgent's per-push conversions.
    """
    return [(p.symbol, p.datetime.view(np.int64), p.close, p.volume, p.amount, p.open, p.high, p.low) for p in pushes]


def replay_raw(raw: Sequence[RawPush]) -> SpotAgent:
    agent = SpotAgent()
    ingest_columns = agent._engine.ingest_columns
    for columns in raw:
        ingest_columns(*columns)
    return agent


def replay_keys(pushes: Sequence[Push], raw: Sequence[RawPush]) -> SpotAgent:
    """Symbols resolved once (``Engine.symbol_keys``), then engine keys as the symbol column.

    What a feed that sends the same symbols every push can do: the symbol strings of the
    other batch rows are parsed again in every push.
    """
    agent = SpotAgent()
    ingest_columns = agent._engine.ingest_columns
    keys = agent._engine.symbol_keys(pushes[0].symbol)
    for push, columns in zip(pushes, raw, strict=True):
        ingest_columns(keys if push.symbol is pushes[0].symbol else push.symbol, *columns[1:])
    return agent


def replay_spot_lists(spot_lists: Sequence[list[Spot]]) -> SpotAgent:
    """The per-spot path in lists: one SpotAgent.ingest call per push."""
    agent = SpotAgent()
    for spots in spot_lists:
        agent.ingest(spots)
    return agent


def replay_spot_by_spot(spot_lists: Sequence[list[Spot]]) -> SpotAgent:
    """One engine call per spot: the cost of crossing into C++ for every quote."""
    agent = SpotAgent()
    ingest_one = agent._engine.ingest_one  # bound once: the loop measures the call, not the lookup
    for spots in spot_lists:
        for spot in spots:
            ingest_one(spot)
    return agent


def time_median(run: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Median wall time of ``repeat`` runs, and the last run's result."""

    def once() -> tuple[float, T]:
        gc.collect()  # the previous run's garbage must not be collected inside this one
        start = time.perf_counter()
        result = run()
        return time.perf_counter() - start, result

    seconds, result = once()
    timings = [seconds]
    for _ in range(repeat - 1):
        # The previous result is released here, after the run: freeing an agent is not timed.
        seconds, result = once()
        timings.append(seconds)
    return statistics.median(timings), result


# ------------------------------------------------------------------------------ pandas
class PandasRule(NamedTuple):
    rule: str
    offset: str | None = None


# pandas equivalents of the 13 periods.  Bins are left-closed and labelled by their end,
# like the engine's intraday bars.  pandas knows no trading sessions: the 60/120-minute
# bins are aligned by an offset (10:30, 11:30, ...) and straddle the lunch break, and
# pandas has no half-year rule, so two quarters stand in.  Labels of DAY and longer differ
# from the engine's too; the rows measure the work, and only volume totals are compared.
PANDAS_RULES: dict[KType, PandasRule] = {
    KType.MIN: PandasRule("1min"),
    KType.MIN3: PandasRule("3min"),
    KType.MIN5: PandasRule("5min"),
    KType.MIN15: PandasRule("15min"),
    KType.MIN30: PandasRule("30min"),
    KType.MIN60: PandasRule("60min", offset="30min"),
    KType.HOUR2: PandasRule("120min", offset="90min"),
    KType.DAY: PandasRule("1D"),
    KType.WEEK: PandasRule("W-FRI"),
    KType.MONTH: PandasRule("ME"),
    KType.QUARTER: PandasRule("QE-DEC"),
    KType.HALFYEAR: PandasRule("2QE-DEC"),
    KType.YEAR: PandasRule("YE-DEC"),
}
REPRESENTATIVE = (
    KType.MIN,
    KType.MIN5,
    KType.MIN15,
    KType.MIN30,
    KType.MIN60,
    KType.DAY,
    KType.WEEK,
    KType.MONTH,
)


def pandas_ticks(pushes: Sequence[Push]) -> pd.DataFrame:
    """The pushes as one long frame with per-spot volume and amount.

    Cumulative day totals become per-spot differences within each symbol; a symbol's first
    spot keeps its total, which is right because the day starts with the 09:25 auction.
    """
    frame = pd.DataFrame(
        {
            "symbol": np.concatenate([p.symbol for p in pushes]).astype(str),
            "datetime": np.concatenate([p.datetime for p in pushes]),
            "close": np.concatenate([p.close for p in pushes]),
            "volume": np.concatenate([p.volume for p in pushes]),
            "amount": np.concatenate([p.amount for p in pushes]),
        }
    )
    totals = frame[["volume", "amount"]]
    per_spot = frame.groupby("symbol")[["volume", "amount"]].diff().fillna(totals)
    return frame.assign(volume=per_spot["volume"], amount=per_spot["amount"])


def pandas_bars(ticks: pd.DataFrame, rule: PandasRule) -> pd.DataFrame:
    """Per-symbol OHLC of close, and summed volume and amount, for one rule."""
    kwargs = {} if rule.offset is None else {"offset": rule.offset}
    resampler = ticks.groupby("symbol").resample(rule.rule, closed="left", label="right", on="datetime", **kwargs)
    return resampler["close"].ohlc().join(resampler[["volume", "amount"]].sum())


@dataclass(frozen=True)
class PandasTimings:
    prepare: float  # building the frame and the per-spot differences, shared by every rule
    per_rule: dict[KType, float]
    minute_volume: float  # volume summed over all 1-minute bars, for the cross-check

    def seconds(self, ktypes: Iterable[KType]) -> float:
        return self.prepare + sum(self.per_rule[k] for k in ktypes)


def time_pandas(pushes: Sequence[Push]) -> PandasTimings:
    """One pass: prepare once, then every rule, each timed on its own.

    The 13-rule, 8-rule and 1-minute rows are sums of these timings, so pandas runs once
    (it is by far the slowest part of the benchmark).
    """
    gc.collect()
    start = time.perf_counter()
    ticks = pandas_ticks(pushes)
    prepare = time.perf_counter() - start
    per_rule: dict[KType, float] = {}
    minute_volume = float("nan")
    for ktype, rule in PANDAS_RULES.items():
        start = time.perf_counter()
        bars = pandas_bars(ticks, rule)
        per_rule[ktype] = time.perf_counter() - start
        if ktype is KType.MIN:
            minute_volume = float(bars["volume"].sum())
    return PandasTimings(prepare=prepare, per_rule=per_rule, minute_volume=minute_volume)


# ------------------------------------------------------------------------ cross-checks
def volume_sum(agent: SpotAgent, symbols: Iterable[str], ktype: str) -> float:
    """Volume of all bars of one period over the given symbols (reading flushes the engine)."""
    return float(sum(agent._engine.bars(s, ktype)["volume"].sum() for s in symbols))


def check_line(label: str, values: dict[str, float]) -> str:
    # Volumes are whole shares in doubles, far below 2**53: sums are exact, so compare exactly.
    shown = ", ".join(f"{name} {value:,.0f}" for name, value in values.items())
    verdict = "cross-check OK" if len(set(values.values())) == 1 else "cross-check MISMATCH"
    return f"- {verdict}: {label}: {shown}"


def stats_line(label: str, agent: SpotAgent, expected: int) -> str:
    s = agent.stats()
    verdict = "OK" if s["accepted"] == expected and s["rejected_total"] == 0 else "UNEXPECTED"
    return (
        f"- counters {verdict}: {label}: accepted {s['accepted']:,} of {expected:,} spots, "
        f"rejected {s['rejected_total']:,}, duplicates {s['duplicates']:,}, carry-in {s['carry_in']:,}, "
        f"filled bars {s['filled_bars']:,}, symbols {s['symbols']:,}"
    )


# ---------------------------------------------------------------------------- the table
ALL_13 = "all 13 (MIN..YEAR)"


@dataclass(frozen=True)
class Row:
    path: str
    symbols: int
    spots: int
    produces: str
    seconds: float
    compare: bool = True  # False for rows that build no bars (the ratio would mean nothing)

    @property
    def rate(self) -> float:
        return self.spots / self.seconds


def markdown_table(rows: Sequence[Row], baseline: Row, baseline_8: Row) -> str:
    header = (
        "| Path | Symbols | Spots | KTypes produced | Seconds | Spots/s "
        "| × pandas 13-period-equivalent baseline | × pandas 8 rules |\n"
        "|---|---:|---:|---|---:|---:|---:|---:|"
    )
    lines = [header]
    for r in rows:
        ratio = f"{r.rate / baseline.rate:,.1f}×" if r.compare else "—"
        ratio_8 = f"{r.rate / baseline_8.rate:,.1f}×" if r.compare else "—"
        lines.append(
            f"| {r.path} | {r.symbols:,} | {r.spots:,} | {r.produces} | {r.seconds:,.3f} "
            f"| {r.rate / 1e6:,.2f} M | {ratio} | {ratio_8} |"
        )
    return "\n".join(lines)


def goal_line(goal: str, measured: str, met: bool) -> str:
    return f"- {goal}: {measured} — {'met' if met else 'NOT met'}"


# ------------------------------------------------------------------------ measurements
@dataclass(frozen=True)
class Reference:
    """The market's first replay, untimed: what it leaves is measured and cross-checked."""

    agent: SpotAgent
    rss_before: int | None
    rss_after: int | None
    min_volume: float
    day_volume: float
    memory_bytes: int


def replay_reference(market: Sequence[Push]) -> Reference:
    # It also warms caches and the allocator for the timed runs, and it is measured for
    # memory before other agents churn the heap (freed bar buffers are not all returned
    # to the OS, which would blur later RSS deltas).
    gc.collect()
    rss_before = rss_bytes()
    agent = replay_columns(market)
    rss_after = rss_bytes()
    min_volume = volume_sum(agent, agent.symbols, "MIN")
    day_volume = volume_sum(agent, agent.symbols, "DAY")
    # After the reads above, which wrote every forming bar, DAY..YEAR included, to its series.
    memory = agent._engine.memory_bytes()
    return Reference(agent, rss_before, rss_after, min_volume, day_volume, memory)


class BatchRows(NamedTuple):
    columns: Row
    raw: Row
    keys: Row
    min_only: Row


def measure_batch(market: Sequence[Push], repeat: int) -> BatchRows:
    n_symbols, spots = len(market[0].symbol), spot_count(market)
    raw = raw_columns(market)
    return BatchRows(
        columns=Row(
            "batch: `agent.ingest_columns(**push.columns())` per push",
            n_symbols,
            spots,
            ALL_13,
            time_median(lambda: replay_columns(market), repeat)[0],
        ),
        raw=Row(
            "batch raw: `agent._engine.ingest_columns(...)`, int64 ms",
            n_symbols,
            spots,
            ALL_13,
            time_median(lambda: replay_raw(raw), repeat)[0],
        ),
        keys=Row(
            "batch raw, symbols resolved once: `engine.symbol_keys` once, keys as the symbol column",
            n_symbols,
            spots,
            ALL_13,
            time_median(lambda: replay_keys(market, raw), repeat)[0],
        ),
        min_only=Row(
            "batch, MIN only: `SpotAgent(['MIN']).ingest_columns`",
            n_symbols,
            spots,
            "MIN",
            time_median(lambda: replay_columns(market, ["MIN"]), repeat)[0],
        ),
    )


class PerSpotRows(NamedTuple):
    creation: Row
    lists: Row
    one_by_one: Row


def measure_per_spot(subset: Sequence[Push], repeat: int) -> tuple[PerSpotRows, SpotAgent]:
    """The Spot-object paths, and the agent of the list path for the cross-check."""
    n_symbols, spots = len(subset[0].symbol), spot_count(subset)
    creation_seconds, spot_lists = time_median(lambda: make_spots(subset), 1)  # slow, and not the engine
    lists_seconds, list_agent = time_median(lambda: replay_spot_lists(spot_lists), repeat)
    one_seconds, _ = time_median(lambda: replay_spot_by_spot(spot_lists), repeat)
    rows = PerSpotRows(
        creation=Row(
            "creating the `hkrt.Spot` objects (input only)", n_symbols, spots, "—", creation_seconds, compare=False
        ),
        lists=Row("per-spot: `agent.ingest(list_of_spots)` per push", n_symbols, spots, ALL_13, lists_seconds),
        one_by_one=Row("per-spot: `agent._engine.ingest_one(spot)` per spot", n_symbols, spots, ALL_13, one_seconds),
    )
    return rows, list_agent


class PandasRows(NamedTuple):
    all_periods: Row  # the baseline of the ratio column
    representative: Row
    minute: Row


def pandas_rows(timings: PandasTimings, subset: Sequence[Push]) -> PandasRows:
    n_symbols, spots = len(subset[0].symbol), spot_count(subset)
    return PandasRows(
        all_periods=Row(
            "pandas: groupby/resample, 13 period equivalents",
            n_symbols,
            spots,
            "13 equivalents (1min..YE)",
            timings.seconds(PANDAS_RULES),
        ),
        representative=Row(
            "pandas: groupby/resample, 8 representative rules",
            n_symbols,
            spots,
            " ".join(k.value for k in REPRESENTATIVE),
            timings.seconds(REPRESENTATIVE),
        ),
        minute=Row("pandas: groupby/resample, 1 min only", n_symbols, spots, "MIN", timings.seconds([KType.MIN])),
    )


# ------------------------------------------------------------------------------ report
def print_workload(opts: Options, market: Sequence[Push], subset: Sequence[Push], generation_seconds: float) -> None:
    print("# hkrt K-line benchmark\n")
    print("\n".join(machine_facts()))
    print(
        f"\nWorkload: synthetic market day {DAY} (a Friday): the 09:25 auction, then a push every 3 s "
        f"= {len(market):,} spots per symbol. Batch rows: {opts.symbols:,} symbols = {spot_count(market):,} "
        f"spots. Per-spot and pandas rows: the first {opts.subset:,} of those symbols = {spot_count(subset):,} "
        f"spots (rates are per spot, so they compare). Engine rows: median of {opts.repeat} run(s), each with "
        f"a fresh SpotAgent; Spot creation and pandas: one run. Pushes pre-generated in "
        f"{generation_seconds:.1f} s (untimed). C++ rows: the same pushes written to a file and read by "
        f"benchmarks/cpp/bench_wide_record (its own timer around the loop, median of {opts.repeat}). Scaling rows: "
        f"a {opts.large:,}-symbol day generated after the other rows, with the same seed.\n"
    )


def print_replay(batch: BatchRows, repeat: int) -> None:
    print("\n## Whole-day replay\n")
    print(
        f"- {batch.columns.symbols:,} symbols, {batch.columns.spots:,} spots through all 13 ktypes: "
        f"{batch.columns.seconds:.2f} s with `agent.ingest_columns`, {batch.raw.seconds:.2f} s with the raw "
        f"engine call (median of {repeat})"
    )


def print_cross_checks(
    market: Sequence[Push],
    subset: Sequence[Push],
    reference: Reference,
    list_agent: SpotAgent,
    pandas: PandasTimings,
) -> None:
    n_market, n_subset = len(market[0].symbol), len(subset[0].symbol)
    names = subset[0].symbol.astype(str).tolist()
    print("\n## Cross-checks\n")
    print(stats_line(f"market agent ({n_market:,} symbols)", reference.agent, spot_count(market)))
    print(stats_line(f"per-spot list agent ({n_subset:,} symbols)", list_agent, spot_count(subset)))
    # The day opens with the 09:25 auction, so there is no carry-in and the intraday bars
    # hold the day's whole volume.
    market_totals = {
        "engine MIN bars": reference.min_volume,
        "engine DAY bars": reference.day_volume,
        "last push's cumulative volume": float(market[-1].volume.sum()),
    }
    print(check_line(f"volume over {n_market:,} symbols", market_totals))
    subset_totals = {
        "engine MIN bars (batch)": volume_sum(reference.agent, names, "MIN"),
        "engine MIN bars (per-spot)": volume_sum(list_agent, names, "MIN"),
        "pandas 1-min bars": pandas.minute_volume,
    }
    print(check_line(f"volume over the first {n_subset:,} symbols", subset_totals))


def print_memory(market: Sequence[Push], reference: Reference, rss_start: int | None) -> None:
    growth = (
        None
        if reference.rss_before is None or reference.rss_after is None
        else (reference.rss_after - reference.rss_before)
    )
    print("\n## Memory\n")
    print(f"- engine `memory_bytes()` after the {len(market[0].symbol):,}-symbol day: {mib(reference.memory_bytes)}")
    print(
        f"- process RSS around that replay: {mib(reference.rss_before)} before, {mib(reference.rss_after)} after "
        f"(+{mib(growth)})"
    )
    print(
        f"- process RSS at start: {mib(rss_start)}; the pre-generated pushes hold {mib(distinct_nbytes(market))}; "
        f"peak RSS of the whole run: {mib(peak_rss_bytes())}"
    )


def print_scaling(batch: BatchRows, cpp: CppRows | None, large: LargeRows) -> None:
    print(f"\n## From {batch.columns.symbols:,} to {large.columns.symbols:,} symbols\n")
    pairs = [
        ("`agent.ingest_columns`, all 13", batch.columns, large.columns),
        ("symbols resolved once, all 13", batch.keys, large.keys),
        ("MIN only", batch.min_only, large.min_only),
    ]
    if cpp is not None and large.engine is not None:
        pairs.append(("C++ engine alone, all 13", cpp.engine, large.engine))
    for label, small, big in pairs:
        print(f"- {label}: {small.rate / 1e6:.2f} M → {big.rate / 1e6:.2f} M spots/s ({big.rate / small.rate:.2f}×)")
    print(f"- engine `memory_bytes()` after the {large.columns.symbols:,}-symbol day: {mib(large.memory_bytes)}")


def print_goals(
    batch: BatchRows,
    per_spot: PerSpotRows,
    reference: Reference,
    pandas_8: Row,
    cpp: CppRows | None,
    large: LargeRows | None,
) -> None:
    print("\n## Goals (reported, not asserted)\n")
    print(
        goal_line(
            "numpy columns (`agent.ingest_columns`) ≥ 25 M spots/s into all 13 ktypes",
            f"{batch.columns.rate / 1e6:.2f} M (symbols resolved once: {batch.keys.rate / 1e6:.2f} M)",
            batch.columns.rate >= 25e6,
        )
    )
    if large is not None:
        print(
            goal_line(
                f"no drop from {batch.columns.symbols:,} to {large.columns.symbols:,} symbols (≥ 0.9×)",
                f"{large.columns.rate / batch.columns.rate:.2f}×",
                large.columns.rate >= 0.9 * batch.columns.rate,
            )
        )
    if cpp is not None and cpp.wide is not None:
        print(
            goal_line(
                "numpy columns into 13 periods at least the hand-written wide-record loop into 8",
                f"{batch.columns.rate / cpp.wide.rate:.2f}×",
                batch.columns.rate >= cpp.wide.rate,
            )
        )
    print(
        goal_line(
            "numpy columns ≥ 30× pandas (8 rules)",
            f"{batch.columns.rate / pandas_8.rate:,.1f}×",
            batch.columns.rate >= 30 * pandas_8.rate,
        )
    )
    print(
        goal_line(
            "per-spot path (`agent.ingest`) ≥ 1 M spots/s",
            f"{per_spot.lists.rate / 1e6:.2f} M",
            per_spot.lists.rate >= 1e6,
        )
    )
    print(
        goal_line(
            f"engine memory < 256 MiB for 5,000 symbols (this run: {batch.columns.symbols:,})",
            mib(reference.memory_bytes),
            reference.memory_bytes < 256 * MIB,
        )
    )


# --------------------------------------------------------------------------- C++ rows
CPP_TARGET = "bench_wide_record"  # benchmarks/cpp/bench_wide_record.cpp
WIDE_PERIODS = "MIN MIN5 MIN15 MIN30 MIN60 DAY WEEK MONTH"


def build_cpp(build_dir: pathlib.Path) -> pathlib.Path | str:
    """Configures and builds the C++ baselines; the executable, or why there is none."""
    commands = [
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DHKRT_BUILD_BENCHMARKS=ON",
            "-DHKRT_BUILD_PYTHON=OFF",
            f"-DPython_EXECUTABLE={sys.executable}",
        ],
        ["cmake", "--build", str(build_dir), "--target", CPP_TARGET, "--config", "Release"],
    ]
    for command in commands:
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"`{' '.join(command[:2])}` failed: {error}"
        if run.returncode != 0:
            last = (run.stderr or run.stdout).strip().splitlines()[-1:]
            return f"`{' '.join(command[:2])}` failed: {' '.join(last)}"
    found = sorted(p for p in build_dir.rglob(CPP_TARGET + "*") if p.is_file() and p.suffix in ("", ".exe"))
    return found[0] if found else f"{CPP_TARGET} not found under {build_dir}"


def write_day_file(pushes: Sequence[Push], path: pathlib.Path) -> None:
    """The pushes in the file format benchmarks/cpp/bench_wide_record.cpp reads."""
    symbols = pushes[0].symbol
    with path.open("wb") as out:
        out.write(b"HKRTDAY1")
        out.write(np.array([len(symbols), len(pushes)], dtype="<u8").tobytes())
        out.write(np.asarray(symbols, dtype="S8").tobytes())
        for p in pushes:
            if p.symbol is not symbols and not np.array_equal(p.symbol, symbols):
                raise ValueError("the C++ rows need the same symbols, in the same order, in every push")
            out.write(p.datetime[:1].astype("datetime64[ms]").view("<i8").tobytes())
            for column in (p.open, p.high, p.low, p.close, p.volume, p.amount):
                out.write(np.ascontiguousarray(column, dtype="<f8").tobytes())


def time_cpp(exe: pathlib.Path, mode: str, day_file: pathlib.Path, repeat: int) -> float:
    """Median of the seconds the executable reports (its own timer, around the loop only)."""
    timings = []
    for _ in range(repeat):
        run = subprocess.run([str(exe), mode, str(day_file)], capture_output=True, text=True, timeout=3600, check=True)
        fields = dict(item.split("=", 1) for item in run.stdout.split())
        timings.append(float(fields["seconds"]))
    return statistics.median(timings)


class CppRows(NamedTuple):
    wide: Row | None
    engine: Row


def measure_cpp(pushes: Sequence[Push], repeat: int, exe: pathlib.Path, *, wide: bool) -> CppRows:
    n_symbols, spots = len(pushes[0].symbol), spot_count(pushes)
    with tempfile.TemporaryDirectory(prefix="hkrt-bench-") as tmp:
        day_file = pathlib.Path(tmp) / "day.bin"
        write_day_file(pushes, day_file)
        wide_row = (
            Row(
                "C++ hand-written loop: wide record (2 strings, 5 book levels), hash map by symbol, no rules",
                n_symbols,
                spots,
                WIDE_PERIODS,
                time_cpp(exe, "wide", day_file, repeat),
            )
            if wide
            else None
        )
        engine_row = Row(
            "C++ engine alone: `KDataEngine::ingest_columns` per push",
            n_symbols,
            spots,
            ALL_13,
            time_cpp(exe, "engine", day_file, repeat),
        )
    return CppRows(wide_row, engine_row)


class LargeRows(NamedTuple):
    columns: Row
    keys: Row
    min_only: Row
    engine: Row | None  # the C++ engine alone
    memory_bytes: int


def measure_large(n_symbols: int, repeat: int, exe: pathlib.Path | str) -> LargeRows:
    """The scaling rows: the batch paths on a larger market, generated after the others are freed."""
    market = generate_day(n_symbols)
    agent = replay_columns(market)
    agent._engine.bars(agent.symbols[0], "MIN")  # flush one symbol, as the reference replay's reads do
    memory = agent._engine.memory_bytes()
    del agent
    batch = measure_batch(market, repeat)
    engine = measure_cpp(market, repeat, exe, wide=False).engine if isinstance(exe, pathlib.Path) else None
    return LargeRows(batch.columns, batch.keys, batch.min_only, engine, memory)


class CycleCosts(NamedTuple):
    first_push: list[float]  # seconds of the day's first push into a fresh agent, per try
    first_push_reserved: list[float]  # the same after `engine.reserve(symbols)`
    advance: np.ndarray  # seconds of each advance_to() that follows a push, over the day


def measure_cycles(market: Sequence[Push], tries: int = 3) -> CycleCosts:
    """What a live agent pays per message beyond ingesting it: the day's first message, and the
    end-of-cycle advance_to() a publisher's cycle ends with."""
    raw = raw_columns(market)

    def first_push(reserve: bool) -> float:
        agent = SpotAgent()
        if reserve:
            agent._engine.reserve(market[0].symbol)
        start = time.perf_counter()
        agent._engine.ingest_columns(*raw[0])
        return time.perf_counter() - start

    fresh = [first_push(False) for _ in range(tries)]
    reserved = [first_push(True) for _ in range(tries)]
    agent = SpotAgent()
    ingest_columns, advance_to = agent._engine.ingest_columns, agent._engine.advance_to
    advance = np.empty(len(market))
    for i, (push, columns) in enumerate(zip(market, raw, strict=True)):
        ingest_columns(*columns)
        now = push.datetime[0]
        start = time.perf_counter()
        advance_to(now)
        advance[i] = time.perf_counter() - start
    return CycleCosts(fresh, reserved, advance)


def print_cycles(n_symbols: int, costs: CycleCosts) -> None:
    ms = ", ".join(f"{t * 1e3:.2f}" for t in costs.first_push)
    ms_reserved = ", ".join(f"{t * 1e3:.2f}" for t in costs.first_push_reserved)
    us = costs.advance * 1e6
    print(f"\n## Cycle costs ({n_symbols:,} symbols, raw engine calls)\n")
    print(f"- the day's first push into a fresh agent: {ms} ms; after `engine.reserve(symbols)`: {ms_reserved} ms")
    print(
        f"- `advance_to(push time)` after every push of the day: median {np.median(us):.1f} µs, "
        f"p99 {np.percentile(us, 99):.1f} µs, max {us.max():.1f} µs ({len(us):,} calls)"
    )


def captured(print_section: Callable[..., None], *args: object) -> str:
    """What a print_* function prints, kept to be printed later (its inputs are freed meanwhile)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_section(*args)
    return out.getvalue()


# ---------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> None:
    opts = parse_options(argv)
    rss_start = rss_bytes()
    start = time.perf_counter()
    market = generate_day(opts.symbols)
    generation_seconds = time.perf_counter() - start
    subset = first_symbols(market, opts.subset)

    reference = replay_reference(market)
    batch = measure_batch(market, opts.repeat)
    per_spot, list_agent = measure_per_spot(subset, opts.repeat)
    pandas = time_pandas(subset)
    baseline = pandas_rows(pandas, subset)
    exe = build_cpp(opts.cpp_build) if opts.cpp else "skipped (`--no-cpp`, or `--quick` without `--cpp`)"
    cpp = measure_cpp(market, opts.repeat, exe, wide=True) if isinstance(exe, pathlib.Path) else None
    cycles = captured(print_cycles, len(market[0].symbol), measure_cycles(market))

    workload = captured(print_workload, opts, market, subset, generation_seconds)
    checks = captured(print_cross_checks, market, subset, reference, list_agent, pandas)
    memory = captured(print_memory, market, reference, rss_start)
    del market, subset, list_agent  # the larger market is generated next
    large = measure_large(opts.large, opts.repeat, exe) if opts.large else None

    print(workload, end="")
    rows: list[Row] = [*batch, *per_spot, *baseline]
    if cpp is not None:
        rows += [r for r in cpp if r is not None]
    if large is not None:
        rows += [large.columns, large.keys, large.min_only] + ([large.engine] if large.engine else [])
    print(markdown_table(rows, baseline.all_periods, baseline.representative))
    if cpp is None:
        print(f"\nC++ rows: {exe}")
    print_replay(batch, opts.repeat)
    if large is not None:
        print_scaling(batch, cpp, large)
    print(cycles, end="")
    print(checks, end="")
    print(memory, end="")
    print_goals(batch, per_spot, reference, baseline.representative, cpp, large)


if __name__ == "__main__":
    main()
