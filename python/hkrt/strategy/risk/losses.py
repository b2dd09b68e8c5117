"""Daily loss and drawdown: the account's equity against the day's opening and the run's peak.

Equity is cash plus the positions at their latest prices (``Account.portfolio_value``).  The day's
opening equity is the first one seen on each market day; the peak, the highest seen in the run.  The
strategy reports its equity on every market cycle (and each order check refreshes it), so a breach
moves the trading state at once, not at the next order.

A limit acts when it is crossed, once: while the equity stays past it nothing more happens (a person
who resumes trading with the loss still there is not overruled every cycle); it acts again after the
equity has come back inside and crossed again, and the daily loss re-arms each market day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hkrt.strategy.risk.config import RiskConfig


@dataclass
class Breach:
    limit: str  # "daily_loss" or "drawdown"
    action: str  # the trading state it moves to
    reason: str


class EquityWatch:
    """The day's opening equity and the run's peak; ``update`` answers the limits breached."""

    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self.day: dt.date | None = None
        self.day_open: float | None = None
        self.peak: float | None = None
        self.equity: float | None = None
        self.past: set[str] = set()  # the limits the equity is past now (acted on when crossed)

    @property
    def active(self) -> bool:
        c = self.config
        return c.max_daily_loss is not None or c.max_daily_loss_pct is not None or c.max_drawdown_pct is not None

    def update(self, day: dt.date | None, equity: float) -> list[Breach]:
        """Take ``equity`` seen on ``day`` (None: the current day); the limits it has just crossed."""
        if day is not None and day != self.day:
            self.day, self.day_open = day, equity
            self.past.discard("daily_loss")
        elif self.day_open is None:
            self.day_open = equity
        self.peak = equity if self.peak is None else max(self.peak, equity)
        self.equity = equity
        assert self.day_open is not None
        c, out = self.config, []
        loss = self.day_open - equity
        if c.max_daily_loss is not None and loss > c.max_daily_loss:
            out.append(Breach("daily_loss", c.daily_loss_action,
                              f"daily loss {loss:,.2f} yuan is above max_daily_loss {c.max_daily_loss:,.2f} "
                              f"(opening equity {self.day_open:,.2f}, now {equity:,.2f})"))  # fmt: skip
        elif c.max_daily_loss_pct is not None and self.day_open > 0 and loss > c.max_daily_loss_pct * self.day_open:
            out.append(Breach("daily_loss", c.daily_loss_action,
                              f"daily loss {loss / self.day_open:.2%} is above max_daily_loss_pct "
                              f"{c.max_daily_loss_pct:.2%} (opening equity {self.day_open:,.2f}, "
                              f"now {equity:,.2f})"))  # fmt: skip
        drop = self.peak - equity
        if c.max_drawdown_pct is not None and self.peak > 0 and drop > c.max_drawdown_pct * self.peak:
            out.append(Breach("drawdown", c.drawdown_action,
                              f"drawdown {drop / self.peak:.2%} is above max_drawdown_pct {c.max_drawdown_pct:.2%} "
                              f"(peak equity {self.peak:,.2f}, now {equity:,.2f})"))  # fmt: skip
        now_past = {b.limit for b in out}
        crossed = [b for b in out if b.limit not in self.past]
        self.past = now_past
        return crossed
