"""Benchmark: the PostgreSQL bar recorder (hkrt.pgstore) next to the Parquet store's writer, in the same process.

Run ``python benchmarks/bench_pgstore.py`` (``--quick`` for a smoke test); it starts a private PostgreSQL
(hkrt.testing.postgres: initdb as the ``postgres`` user, ``fsync=off``) and prints Markdown tables.  Each
write row times ``add`` of completed-bar records plus the ``flush`` that returns once they are committed
(PostgreSQL: COPY into the staging table and one ``INSERT … ON CONFLICT DO UPDATE`` per batch; Parquet: one part
file per day, ``fsync`` off on both sides).  The outage rows stop the server with ``pg_ctl stop``, keep a producer
adding a whole-market minute of bars every ``--every`` seconds for ``--outage`` seconds, then start it again and
time the catch-up; they report what the recorder held in memory (its bounded queue) and what it spilled.
The spots rows (the optional ``hkrt.spots`` table, ``SpotAgent(store_spots=True)``) time
``PgSpotWriter.add_message`` of whole-market wire messages (5,500 spots with a five-level book and names) plus the
``flush`` that returns once they are committed -- the decoding into records on the writer thread included --
for one 3-second cycle, a whole-market minute (20 cycles) and the same cycle sent again (every row an update),
then ``load_spots`` of that minute.
Timings are medians of ``--repeat`` runs after a warm-up; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import hkrt
from hkrt.feed.wire import encode_spots
from hkrt.pgstore import PgBarWriter, PgSpotWriter, load_spots
from hkrt.store import KDataStore, StoreWriter, load_kdata
from hkrt.testing.postgres import PostgresServer

DAY = dt.date(2026, 11, 20)


def trading_minutes() -> list[np.datetime64]:
    """The 240 MIN labels of a China trading day: 09:31..11:30 and 13:01..15:00."""
    morning = [dt.datetime.combine(DAY, dt.time(9, 30)) + dt.timedelta(minutes=i + 1) for i in range(120)]
    afternoon = [dt.datetime.combine(DAY, dt.time(13, 0)) + dt.timedelta(minutes=i + 1) for i in range(120)]
    return [np.datetime64(t, "ms") for t in morning + afternoon]


def minute_bars(n_symbols: int, label: np.datetime64, day_shift: int = 0, price: float = 10.0) -> np.ndarray:
    """One whole-market minute: a MIN bar of every symbol labelled ``label`` (shifted by days)."""
    out = np.zeros(n_symbols, dtype=hkrt._hkrt.COMPLETED_DTYPE)
    out["symbol"] = [f"SH{600000 + i:06d}".encode() if i % 2 == 0 else f"SZ{i:06d}".encode() for i in range(n_symbols)]
    out["ktype"] = hkrt.KType.MIN.record_code
    out["datetime"] = label + np.timedelta64(day_shift, "D")
    base = price + np.arange(n_symbols) * 0.01
    out["open"], out["high"], out["low"], out["close"] = base, base + 0.05, base - 0.05, base + 0.01
    out["volume"], out["amount"] = 12_300.0, 12_300.0 * base
    return out


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def median_of(prepare: Callable[[int], Callable[[], None]]) -> float:
    """Median seconds of ``prepare(i)()`` over the repeats, after one warm-up (i = 0)."""
    times = [timed(prepare(i)) for i in range(ARGS.repeat + 1)]
    return statistics.median(times[1:])


def rss_mb() -> float | None:
    """Resident memory of this process now (Linux), else None."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        return None


def reader(store: str | Path, symbol: str | None = None) -> Callable[[], None]:
    """A run that reads the backfilled day's MIN bars back: of one symbol, or of every symbol."""

    def run() -> None:
        load_kdata(symbol, "MIN", DAY, DAY, store=store)

    return run


def pg_writer(url: str, spill: Path, **options: object) -> PgBarWriter:
    return PgBarWriter(url, spill_dir=spill, fsync=False, **options)  # type: ignore[arg-type]


def write_rows(url: str, tmp: Path) -> list[tuple[str, int, float, float | None]]:
    """(path, rows, seconds, baseline seconds) of the write and read rows."""
    n, minutes = ARGS.symbols, trading_minutes()[: ARGS.minutes]
    recorder = pg_writer(url, tmp / "spill")
    parquet = StoreWriter(KDataStore(tmp / "store", fsync=False))

    def pg_minute(i: int) -> Callable[[], None]:
        bars = minute_bars(n, minutes[i % len(minutes)], day_shift=-7)  # the week before: new rows

        def run() -> None:
            recorder.add(bars)
            assert recorder.flush(timeout=120)

        return run

    def pg_upsert(i: int) -> Callable[[], None]:
        bars = minute_bars(n, minutes[0], day_shift=-7, price=20.0 + i)  # the same minute again: every row updated

        def run() -> None:
            recorder.add(bars)
            assert recorder.flush(timeout=120)

        return run

    def parquet_minute(i: int) -> Callable[[], None]:
        bars = minute_bars(n, minutes[i % len(minutes)], day_shift=-7)

        def run() -> None:
            parquet.add(bars)
            assert parquet.flush()

        return run

    minute_pg = median_of(pg_minute)
    upsert_pg = median_of(pg_upsert)
    minute_parquet = median_of(parquet_minute)
    day = [minute_bars(n, m) for m in minutes]

    def backfill(writer: PgBarWriter | StoreWriter) -> None:
        for bars in day:
            writer.add(bars)
        assert writer.flush(timeout=600) if isinstance(writer, PgBarWriter) else writer.flush()

    backfill_pg = timed(lambda: backfill(recorder))
    backfill_parquet = timed(lambda: backfill(parquet))
    recorder.close()
    read_pg = median_of(lambda i: reader(url))
    read_parquet = median_of(lambda i: reader(tmp / "store"))
    one_pg = median_of(lambda i: reader(url, "SH600000"))
    one_parquet = median_of(lambda i: reader(tmp / "store", "SH600000"))
    rows = n * len(minutes)
    return [
        (f"write a whole-market minute ({n:,} new MIN bars)", n, minute_pg, minute_parquet),
        (f"re-write the same minute ({n:,} upserts, latest wins)", n, upsert_pg, minute_parquet),
        (f"a day's backfill ({len(minutes)} minutes x {n:,})", rows, backfill_pg, backfill_parquet),
        (f"read the day back: load_kdata(None, 'MIN', day, day) ({rows:,} bars)", rows, read_pg, read_parquet),
        ("read one symbol's day: load_kdata('SH600000', 'MIN', day, day)", len(minutes), one_pg, one_parquet),
    ]


def cycle_message(n_symbols: int, when: np.datetime64, sequence: int) -> bytes:
    """One whole-market cycle as the spot server sends it: every symbol's spot with a five-level book and a name."""
    symbols = np.array([f"SH{600000 + i:06d}" if i % 2 == 0 else f"SZ{i:06d}" for i in range(n_symbols)], dtype="S8")
    close = 10.0 + np.arange(n_symbols) * 0.01 + sequence * 0.001
    levels = np.arange(1, 6) * 0.01
    columns = {
        "symbol": symbols,
        "datetime": np.full(n_symbols, when),
        "open": close - 0.1,
        "high": close + 0.2,
        "low": close - 0.2,
        "close": close,
        "volume": np.full(n_symbols, 1_000_000.0 + sequence),
        "amount": close * (1_000_000.0 + sequence),
        "yesterday_close": close - 0.05,
        "name": np.array(["浦发银行"] * n_symbols, dtype=object),
        "bid": close[:, None] - levels,
        "ask": close[:, None] + levels,
        "bid_volume": np.full((n_symbols, 5), 500.0),
        "ask_volume": np.full((n_symbols, 5), 700.0),
    }
    return encode_spots(columns, publisher_id=7, sequence=sequence)


def spot_rows(url: str, tmp: Path) -> list[tuple[str, int, float]]:
    """(path, spots, seconds) of the spots recorder's rows."""
    n = ARGS.symbols
    recorder = PgSpotWriter(url, spill_dir=tmp / "spot-spill", fsync=False)
    start = np.datetime64(dt.datetime.combine(DAY, dt.time(9, 30)), "ms")
    counter = iter(range(1, 1_000_000))

    def new_cycle(i: int) -> Callable[[], None]:
        sequence = next(counter)
        message = cycle_message(n, start + np.timedelta64(3 * sequence, "s"), sequence)

        def run() -> None:
            recorder.add_message(message, n, 7, sequence)
            assert recorder.flush(timeout=120)

        return run

    again = cycle_message(n, start, 999_999)

    def same_cycle(i: int) -> Callable[[], None]:
        def run() -> None:
            recorder.add_message(again, n, 7, 999_999)
            assert recorder.flush(timeout=120)

        return run

    cycle = median_of(new_cycle)
    resend = median_of(same_cycle)
    minute_start = np.datetime64(dt.datetime.combine(DAY, dt.time(10, 0)), "ms")

    def whole_minute(i: int) -> Callable[[], None]:
        messages = [cycle_message(n, minute_start + np.timedelta64(60 * i + 3 * c, "s"), 2000 + c) for c in range(20)]

        def run() -> None:
            for c, message in enumerate(messages):
                recorder.add_message(message, n, 7, 2000 + c)
            assert recorder.flush(timeout=300)

        return run

    minute = median_of(whole_minute)
    recorder.close()
    first = dt.datetime.combine(DAY, dt.time(10, 0))
    read = median_of(lambda i: lambda: load_spots(None, first, first + dt.timedelta(seconds=59), store=url))
    read_one = median_of(lambda i: lambda: load_spots("SH600000", DAY, DAY, store=url))
    return [
        (f"record a whole-market cycle ({n:,} spots with book, from its wire message)", n, cycle),
        (f"record the same cycle again ({n:,} upserts, latest wins)", n, resend),
        (f"record a whole-market minute (20 cycles x {n:,})", 20 * n, minute),
        (f"read a minute back: load_spots(None, 10:00:00, 10:00:59) ({20 * n:,} spots)", 20 * n, read),
        ("read one symbol's day: load_spots('SH600000', day, day)", len(load_spots("SH600000", DAY, DAY, store=url)),
         read_one),
    ]  # fmt: skip


def outage_rows(server: PostgresServer, tmp: Path) -> dict[str, float | int | None]:
    """A database outage of ``--outage`` seconds under a producer adding a whole-market minute every ``--every``."""
    n = ARGS.symbols
    recorder = pg_writer(server.url, tmp / "outage-spill", retry_interval=1.0)
    recorder.add(minute_bars(n, trading_minutes()[0], day_shift=-14))
    assert recorder.flush(timeout=60)
    report: dict[str, float | int | None] = {"rss_before": rss_mb()}
    peak_memory_rows, peak_rss = 0, report["rss_before"] or 0.0
    server.stop()
    stop = threading.Event()
    added = 0

    def produce() -> None:
        nonlocal added
        minute = 0
        while not stop.is_set():
            recorder.add(minute_bars(n, trading_minutes()[minute % 240], day_shift=-(15 + minute // 240)))
            added += n
            minute += 1
            stop.wait(ARGS.every)

    producer = threading.Thread(target=produce)
    started = time.monotonic()
    producer.start()
    while time.monotonic() - started < ARGS.outage:
        peak_memory_rows = max(peak_memory_rows, recorder.stats["pending_memory"])
        peak_rss = max(peak_rss, rss_mb() or 0.0)
        time.sleep(0.05)
    stop.set()
    producer.join()
    report.update(
        added=added,
        peak_memory_rows=peak_memory_rows,
        peak_queue_mb=peak_memory_rows * hkrt._hkrt.COMPLETED_DTYPE.itemsize / 2**20,
        peak_rss=peak_rss,
    )
    spilled, held = recorder.stats["pending_spilled"], recorder.stats["pending"]
    report["server_start"] = timed(server.start)
    report["catch_up"] = timed(lambda: recorder.flush(timeout=600))  # includes the wait for the next retry (<= 1 s)
    report.update(spilled=spilled, held=held, lost=recorder.stats["lost"], spill_files=recorder.stats["spilled_rows"])
    recorder.close()
    return report


def main() -> None:
    with tempfile.TemporaryDirectory() as directory, PostgresServer() as server:
        tmp = Path(directory)
        rows = write_rows(server.url, tmp)
        spots = spot_rows(server.url, tmp)
        outage = outage_rows(server, tmp)
    print(
        f"# hkrt PostgreSQL recorder — {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, PostgreSQL {server.bindir.parent.name} (fsync=off), Parquet fsync off\n"
    )
    print("| path | rows | PostgreSQL s | rows/s | Parquet StoreWriter s | rows/s | PostgreSQL / Parquet |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path, n, secs, base in rows:
        ratio = f"{secs / base:.1f}x" if base else "-"
        base_text = f"{base:.3f} | {n / base:,.0f}" if base else "- | -"
        print(f"| {path} | {n:,} | {secs:.3f} | {n / secs:,.0f} | {base_text} | {ratio} |")
    print("\nSpots (the optional hkrt.spots table), same server and process; a whole-market cycle comes every 3 s:\n")
    print("| spots path | spots | s | spots/s | share of a 3 s cycle |")
    print("|---|---:|---:|---:|---:|")
    for path, n, secs in spots:
        share = f"{secs / 3.0:.0%}" if path.startswith("record a whole-market cycle") else "-"
        print(f"| {path} | {n:,} | {secs:.3f} | {n / secs:,.0f} | {share} |")
    rss = outage["rss_before"]
    print(
        f"\nDatabase outage of {ARGS.outage:g} s (pg_ctl stop, then start), a whole-market minute "
        f"({ARGS.symbols:,} MIN bars) added every {ARGS.every:g} s:\n"
    )
    print("| rows added while down | peak rows in memory | peak queue MB | RSS before MB | peak RSS MB | "
          "spilled rows | server start s | caught up after start s | lost |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {outage['added']:,} | {outage['peak_memory_rows']:,} | {outage['peak_queue_mb']:.1f} | "
        f"{'-' if rss is None else f'{rss:.0f}'} | {outage['peak_rss']:.0f} | {outage['spilled']:,} | "
        f"{outage['server_start']:.2f} | {outage['catch_up']:.2f} | {outage['lost']} |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5500, help="symbols in a whole-market minute")
    parser.add_argument("--minutes", type=int, default=240, help="minutes of the backfill day (at most 240)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the database is down")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between whole-market minutes while down")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.symbols, ARGS.minutes, ARGS.repeat, ARGS.outage, ARGS.every = 300, 10, 1, 2.0, 0.2
    ARGS.minutes = max(1, min(ARGS.minutes, 240))
    main()
