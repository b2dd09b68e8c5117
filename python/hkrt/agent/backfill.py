"""Backfill and gap repair: a :class:`~hkrt.agent.SpotAgent`'s bars of today completed from a source of history.

These functions are parts of the agent, kept out of its class so that each of its jobs has one file.
They take the agent and use its private attributes as its own methods would: ``_lock``, ``_engine``,
``_journal``, ``_calendar``, ``_recovered_day`` and ``_backfill_report``, and its private steps
``_market_day``, ``_take_completed`` and ``_drained``; a backfill's messages go through
:func:`hkrt.agent.recovery.replay`, as a journal's do.  :meth:`SpotAgent.backfill` and
:meth:`SpotAgent.repair_gaps` delegate here; ``start()`` calls :func:`start_backfill`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hkrt.agent.spot_agent import BAR_COLUMNS, DatetimeLike, SpotAgent
from hkrt.core.china_time import MARKET_CLOSE, china_today
from hkrt.core.columns import datetime_ms
from hkrt.core.columns import floats as _floats
from hkrt.core.ktype import KType
from hkrt.feed.journal import ScanResult

log = logging.getLogger("hkrt.agent")


def backfill(agent: SpotAgent, source: Any, until: DatetimeLike | None = None) -> dict[str, Any]:
    """Fill today's bars up to ``until`` from ``source`` (what :meth:`SpotAgent.backfill` documents)."""
    from hkrt.agent import history_sources as bf
    from hkrt.agent.recovery import replay

    if agent.running:
        raise RuntimeError("backfill() fills a stopped agent: call it before start()")
    started = time.perf_counter()
    report: dict[str, Any] = {"source": repr(source), "messages": 0, "skipped": 0}
    scan = ScanResult()
    with agent._lock:
        for message in bf.messages(source, until, symbols=None, calendar=agent._calendar, scan=scan):
            if replay(agent, message):
                report["messages"] += 1
                if agent._journal is not None:
                    agent._journal.append(message, agent._market_day())
            else:
                report["skipped"] += 1
        agent._take_completed(to_hooks=False)
    report["seconds"] = time.perf_counter() - started
    if isinstance(source, (str, Path)):
        report["journal"] = scan.as_dict()  # damage read past (also logged at WARNING)
    agent._backfill_report = report
    log.info("backfilled", extra=report)
    return report


def start_backfill(agent: SpotAgent, source: Any) -> None:
    """``start()``'s backfill: skipped when today's journal was recovered; a failure is logged, not raised."""
    day = china_today()
    if agent._recovered_day == day:
        log.info("not backfilling: today's journal was recovered, it already holds the backfill")
        return
    try:
        agent.backfill(source)
    except Exception:  # no history is no reason not to run: carry-in stays explicit
        log.exception("backfill failed; starting without it (late-start carry-in applies)")


def repair_gaps(agent: SpotAgent, source: Any, symbols: Iterable[str] | None = None) -> dict[str, Any]:
    """Place gap volume into the minutes it traded in (what :meth:`SpotAgent.repair_gaps` documents)."""
    report: dict[str, Any] = {"symbols": 0, "repaired": 0, "mismatched": 0, "pending": 0, "volume": 0.0}
    if KType.MIN not in agent.ktypes:
        raise ValueError("repair_gaps() rebuilds MIN bars: create the agent with MIN among its ktypes")
    by_day: dict[dt.date, list[str]] = {}
    gap_counts: dict[str, int] = {}
    for symbol in agent.symbols if symbols is None else symbols:
        gap = agent.gap_volume(symbol)
        if gap is not None and gap.gaps > 0:
            by_day.setdefault(gap.day, []).append(symbol)
            gap_counts[symbol] = gap.gaps
    for day, wanted in by_day.items():
        frame = source.minute_bars(wanted, day, dt.datetime.combine(day, MARKET_CLOSE))
        if frame is None or len(frame) == 0:
            report["pending"] += sum(gap_counts[s] for s in wanted)
            continue
        for symbol, rows in frame.groupby("symbol", sort=False):
            result = agent._engine.repair_gaps(
                str(symbol), datetime_ms(rows["datetime"]), *(_floats(rows[c]) for c in BAR_COLUMNS)
            )
            report["symbols"] += 1
            for key in ("repaired", "mismatched", "pending", "volume"):
                report[key] += result[key]
    agent._drained(0)  # the rebuilt bars to the hooks and the store
    if report["mismatched"]:
        log.warning("gap volume the source's minute bars do not account for stays in DAY only", extra=report)
    elif report["repaired"]:
        log.info("gap volume placed into its minutes from minute history", extra=report)
    return report
