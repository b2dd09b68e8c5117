"""The order-and-cancel rate limiter: at most N a second (a sliding window) and M a day.

The exchanges count the orders and cancels an account sends in real seconds, so a live run measures
its window on the wall clock (``time.monotonic``); a simulated or replayed run on the market clock,
so a replay refuses exactly what the recorded run refused, however fast it plays.  Each event is
kept until it leaves the window: at most ``per_second`` timestamps (the window's bound).
"""

from __future__ import annotations

import collections
import datetime as dt


class RateLimiter:
    """Counts events (orders and cancels) in a one-second sliding window and per day."""

    def __init__(self, per_second: int, per_day: int, window: float = 1.0) -> None:
        self.per_second = per_second
        self.per_day = per_day
        self.window = window
        self._recent: collections.deque[float] = collections.deque()  # times (seconds) in the window
        self.day: dt.date | None = None
        self.today = 0  # events counted on ``day``

    def _roll(self, day: dt.date, now: float) -> None:
        if day != self.day:
            self.day, self.today = day, 0
        recent, start = self._recent, now - self.window
        while recent and recent[0] <= start:
            recent.popleft()

    def refusal(self, day: dt.date, now: float) -> str:
        """ "" when one more event may go out at ``now`` (seconds on the limiter's clock) on ``day``;
        else which limit it would break: "second" or "day"."""
        self._roll(day, now)
        if self.today >= self.per_day:
            return "day"
        if len(self._recent) >= self.per_second:
            return "second"
        return ""

    def record(self, day: dt.date, now: float) -> None:
        """An event went out at ``now``: it counts in the window and the day (even past a limit)."""
        self._roll(day, now)
        self._recent.append(now)
        self.today += 1
        if len(self._recent) > self.per_second:  # forced events past the limit: the window keeps its bound
            self._recent.popleft()

    def in_window(self, day: dt.date, now: float) -> int:
        self._roll(day, now)
        return len(self._recent)
