"""Journal recovery: a :class:`~hkrt.agent.SpotAgent` rebuilt after a crash from its journal of wire messages.

These functions are parts of the agent, kept out of its class so that each of its jobs has one file.
They take the agent and use its private attributes as its own methods would: ``_journal`` (the
:class:`~hkrt.feed.day_journal.DayJournal`, whose ``stats["recovered"]`` they fill), ``_engine``, ``_lock``,
``_recovered``, ``_recovered_day``, ``_last_accepted_at`` and ``_close_delay_ms``, and its private steps
``_track_cycle`` (cycle accounting), ``_on_day_end`` (closing a day on an end-of-day marker) and
``_take_completed``.  :meth:`SpotAgent.recover` and :meth:`SpotAgent.journal_path` delegate here;
:func:`replay` is also how :mod:`hkrt.agent.backfill` applies a backfill's messages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from hkrt.agent.spot_agent import DatetimeLike, SpotAgent, _is_day_end, _local
from hkrt.core.china_time import utc_ms_to_local_datetime
from hkrt.feed.journal import ScanResult, read_journal

log = logging.getLogger("hkrt.agent")

_LOCAL_AT_EPOCH = utc_ms_to_local_datetime(0)  # China's wall clock at the UTC epoch: + UTC µs = local time


def journal_path(agent: SpotAgent, day: dt.date) -> Path:
    """The agent's journal file of one market day."""
    if agent._journal is None:
        raise ValueError("the agent has no journal_dir")
    return agent._journal.path(day)


def recover(agent: SpotAgent, day: DatetimeLike | None = None) -> int:
    """Replay a day's journal into a fresh, stopped agent (what :meth:`SpotAgent.recover` documents)."""
    if agent.running:
        raise RuntimeError("recover() replays into a stopped agent: call it before start()")
    if agent._journal is None:
        raise ValueError("the agent has no journal_dir to recover from")
    if agent._engine.message_stats()["messages"]:
        # a replay from sequence 1 would look like a publisher restart, not like duplicates
        raise RuntimeError("recover() rebuilds a fresh agent: this one has already processed messages")
    agent._recovered = True
    path = agent._journal.path(pd.Timestamp(day).date()) if day is not None else agent._journal.latest()
    report: dict[str, Any] = {"path": str(path), "messages": 0, "skipped": 0, "torn_bytes": 0, "corrupt_regions": 0,
                              "corrupt_bytes": 0, "corrupt_copy": None, "seconds": 0.0}  # fmt: skip
    agent._journal.stats["recovered"] = report
    if not path.exists():
        log.info("no journal to recover", extra={"path": str(path)})
        return 0
    started = time.perf_counter()
    # A damaged journal is repaired first: its intact records kept (a corrupt record in the
    # middle skipped, never everything after it), the original bytes kept as .corrupt.
    try:
        salvaged = agent._journal.salvage(path)
    except OSError as err:
        log.error("cannot repair the journal; recovering what it holds as it is", extra={"path": str(path),
                  "error": str(err)})  # fmt: skip
        salvaged = None
    if salvaged is not None and salvaged.damaged:
        report.update(torn_bytes=salvaged.torn_bytes, corrupt_regions=salvaged.corrupt_regions,
                      corrupt_bytes=salvaged.corrupt_bytes, corrupt_copy=salvaged.corrupt_copy,
                      bad_magic=salvaged.bad_magic, torn_magic=salvaged.torn_magic)  # fmt: skip
    scan = ScanResult()
    with agent._lock:
        for record in read_journal(path, scan):
            if replay(agent, record.payload, received_us=record.recorded_us):
                report["messages"] += 1
            else:
                report["skipped"] += 1
        # bars completed in the past are not news to the hooks; the store gets them (a
        # crash may have cut them off before they were written; duplicates resolve there)
        agent._take_completed(to_hooks=False)
    report["seconds"] = time.perf_counter() - started
    agent._recovered_day = journal_day(path)
    log.info("recovered from the journal", extra=report)
    return int(report["messages"])


def replay(agent: SpotAgent, message: bytes, received_us: int | None = None) -> bool:
    """One journaled message through the live path's state changes, without hooks or journaling (under
    the agent's lock).  ``received_us``: when it was received (the journal's UTC epoch µs), for the live
    day's close.  True when the message changed the agent (accepted, or a marker that closed its day)."""
    result = agent._engine.ingest_message(message)
    if result["error"] != "ok" or result["sequence_status"] in ("duplicate", "anomaly"):
        return False
    # (what the feed is -- live or simulated -- is for its own messages to say, not the journal's)
    if result["accepted"] and not result["simulated_time"] and received_us is not None:
        # a live day's spots came until then: the wall-clock close waits as if it had seen them
        with contextlib.suppress(OverflowError):  # a nonsense record time: no wait
            agent._last_accepted_at = _LOCAL_AT_EPOCH + dt.timedelta(microseconds=received_us)
    if result["heartbeat"]:
        return _replay_day_end(agent, message, result)
    for _, cycle in agent._track_cycle(result):
        if cycle.market_time_ms:
            agent._engine.advance_to(_local(cycle.market_time_ms - agent._close_delay_ms))
    return True


def _replay_day_end(agent: SpotAgent, message: bytes, result: dict[str, Any]) -> bool:
    """A journaled heartbeat is an end-of-day marker (the journal keeps no other): the day it closed
    is closed again, to the store but not the hooks (bars of the past are not news)."""
    return _is_day_end(message, result) and agent._on_day_end(message, result, live=False)


def journal_day(path: Path) -> dt.date | None:
    """The market day of a journal file, from its name (``spots-YYYYMMDD.hkj``); None for another name."""
    try:
        return dt.datetime.strptime(path.stem, "spots-%Y%m%d").date()
    except ValueError:
        return None
