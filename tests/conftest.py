"""Shared helpers: spots on a known trading day, built tersely."""

from __future__ import annotations

import datetime as dt

import pytest

import hkrt
from headless_chromium import browser  # noqa: F401  # fixture: headless chromium (the dashboards' browser tests)
from pg_server import pg_private, pg_server, pg_template, pg_url  # noqa: F401  # fixtures: real PostgreSQL servers

FRIDAY = dt.date(2026, 11, 20)  # a trading day
SYMBOL = "SH600000"


def at(hhmmss: str, day: dt.date = FRIDAY) -> dt.datetime:
    """'09:30:05' (or '09:30:05.250') on the given day."""
    t = dt.time.fromisoformat(hhmmss)
    return dt.datetime.combine(day, t)


def spot(
    hhmmss: str,
    close: float,
    volume: float,
    amount: float,
    *,
    day: dt.date = FRIDAY,
    symbol: str = SYMBOL,
    open: float = 10.0,
    high: float | None = None,
    low: float | None = None,
) -> hkrt.Spot:
    """A spot whose day high/low default to the envelope of open and last price."""
    return hkrt.Spot(
        symbol,
        at(hhmmss, day),
        open=open,
        high=max(open, close) if high is None else high,
        low=min(open, close) if low is None else low,
        close=close,
        volume=volume,
        amount=amount,
    )


def bars(agent: hkrt.SpotAgent, ktype: str, symbol: str = SYMBOL) -> list[tuple]:
    """Bars as (HH:MM label, open, high, low, close, volume, amount) tuples for short asserts."""
    frame = agent.kdata(symbol, ktype)
    return [
        (ts.strftime("%H:%M") if ts.hour or ts.minute else ts.strftime("%Y-%m-%d"), *row)
        for ts, row in zip(frame.index, frame.itertuples(index=False, name=None), strict=True)
    ]


@pytest.fixture
def agent() -> hkrt.SpotAgent:
    return hkrt.SpotAgent()
