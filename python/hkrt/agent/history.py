"""History loading: a :class:`~hkrt.agent.spot_agent.SpotAgent`'s earlier days' bars, from its store into its engine.

These functions are parts of the agent, kept out of its class so that each of its jobs has one file.
They take the agent and use its private attributes as its own methods would: ``_store`` (the
:class:`~hkrt.store.StoreWriter`, whose ``stats["history"]`` they fill), ``_engine``, ``_calendar``,
``_history_days`` and ``_history_loaded``.  :meth:`SpotAgent.load_history` delegates here.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import pandas as pd

from hkrt.agent.spot_agent import BAR_COLUMNS, DatetimeLike, SpotAgent
from hkrt.core.china_time import china_today
from hkrt.core.columns import datetime_ms
from hkrt.core.columns import floats as _floats
from hkrt.core.ktype import KType, period_start

log = logging.getLogger("hkrt.agent")


def load_history(agent: SpotAgent, before: DatetimeLike | None = None) -> dict[str, int]:
    """Preload earlier days' bars from the agent's store (what :meth:`SpotAgent.load_history` documents)."""
    if agent._store is None:
        raise ValueError("the agent has no store")
    agent._history_loaded = True
    today = pd.Timestamp(before).date() if before is not None else china_today()
    started = time.perf_counter()
    kinds = agent.ktypes
    intraday_start = _intraday_start(agent, today)
    day_start = min([intraday_start, *(period_start(k, today) for k in kinds if k.is_multi_day)])
    loaded: dict[str, int] = {}
    end = dt.datetime.combine(today, dt.time()) - dt.timedelta(milliseconds=1)
    for k in kinds:
        start = intraday_start if k.is_intraday else day_start
        if start >= today:
            continue
        frame = agent._store.store.load(None, k, start, end)
        loaded[k.value] = preload_long(agent, k, frame)
    report = {**loaded, "seconds": round(time.perf_counter() - started, 3)}
    agent._store.stats["history"] = report
    log.info("loaded history from the store", extra={"before": str(today), **loaded})
    return loaded


def _intraday_start(agent: SpotAgent, today: dt.date) -> dt.date:
    """The first of the last ``history_days`` trading days before ``today`` (``today`` itself when none)."""
    days = agent._history_days
    # 3 calendar days per trading day and a month more cover any run of holidays
    days_back = agent._calendar.trading_days(today - dt.timedelta(days=days * 3 + 30), today)
    days_back = [d for d in days_back if d < today][-days:] if days else []
    return days_back[0] if days_back else today


def preload_long(agent: SpotAgent, ktype: KType, frame: pd.DataFrame) -> int:
    """Preload a long frame sorted by symbol then datetime, one engine call per symbol; returns its rows."""
    if frame.empty:
        return 0
    symbols = frame["symbol"].to_numpy()
    when = datetime_ms(frame["datetime"].to_numpy())
    columns = [_floats(frame[c]) for c in BAR_COLUMNS]
    bounds = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(symbols)], strict=True):
        agent._engine.preload(str(symbols[lo]), ktype.value, when[lo:hi], *(c[lo:hi] for c in columns))
    return len(frame)
