"""Benchmark: hkrt.TradingCalendar's questions, answered by the C++ core, next to a pure-Python walk.

Run ``python benchmarks/bench_calendar.py`` (``--quick`` for a smoke test); it prints a Markdown
table.  Each row asks the bundled China calendar one question many times; the baseline answers the
same question in pure Python over the same day set (a frozenset of holidays and ``weekday()``, the
way hkrt.core.calendar did before the rules moved to cpp/kdata/calendar.cpp), in the same process, and
the answers are checked equal.  Times are the median of the repeats, per call.  Nothing is
asserted: the numbers are reported, never judged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable

from hkrt.core.calendar import TradingCalendar

ONE_DAY = dt.timedelta(days=1)


class PythonWalk:
    """The baseline: the same day set, the rules written in Python."""

    def __init__(self, calendar: TradingCalendar) -> None:
        self.holidays = frozenset(calendar.holidays)
        assert calendar.coverage is not None
        self.first, self.last = calendar.coverage

    def is_trading_day(self, day: dt.date) -> bool:
        if not self.first <= day <= self.last:
            raise ValueError(day)
        return day.weekday() < 5 and day not in self.holidays

    def next_trading_day(self, day: dt.date) -> dt.date:
        while True:
            day += ONE_DAY
            if self.is_trading_day(day):
                return day

    def previous_trading_day(self, day: dt.date) -> dt.date:
        while True:
            day -= ONE_DAY
            if self.is_trading_day(day):
                return day

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        out, day = [], start
        while day <= end:
            if self.is_trading_day(day):
                out.append(day)
            day += ONE_DAY
        return out


def per_call(fn: Callable[[], object], calls: int, repeat: int) -> float:
    """Median seconds per call over ``repeat`` runs of ``calls`` calls."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - started) / calls)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls: a smoke test, not a measurement")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    calls = 200 if args.quick else 20_000
    repeat = 1 if args.quick else args.repeat

    core = TradingCalendar.china()
    python = PythonWalk(core)
    day, before_holiday, after_holiday = dt.date(2026, 10, 9), dt.date(2026, 9, 30), dt.date(2026, 10, 8)
    first, last = dt.date(2005, 1, 4), dt.date(2026, 12, 31)
    questions: list[tuple[str, Callable[[TradingCalendar | PythonWalk], object], int]] = [
        ("is_trading_day(2026-10-09)", lambda c: c.is_trading_day(day), calls),
        ("next_trading_day(2026-09-30): over National Day", lambda c: c.next_trading_day(before_holiday), calls),
        ("previous_trading_day(2026-10-08)", lambda c: c.previous_trading_day(after_holiday), calls),
        ("trading_days(2005-01-04, 2026-12-31)", lambda c: c.trading_days(first, last), max(calls // 1000, 2)),
    ]
    print(f"python {platform.python_version()}, {platform.machine()}; median of {repeat} run(s)\n")
    print("| question | C++ core µs/call | pure Python µs/call | Python / core |")
    print("|---|---|---|---|")
    for name, ask, n in questions:
        assert ask(core) == ask(python), name  # the same answers, or the timing means nothing
        t_core = per_call(lambda ask=ask: ask(core), n, repeat)
        t_python = per_call(lambda ask=ask: ask(python), n, repeat)
        print(f"| {name} | {t_core * 1e6:,.2f} | {t_python * 1e6:,.2f} | {t_python / t_core:,.1f}× |")
    build = per_call(TradingCalendar.china, max(calls // 100, 2), repeat)
    print(f"\nTradingCalendar.china() (bundled table into the C++ calendar): {build * 1e6:,.0f} µs")


if __name__ == "__main__":
    main()
