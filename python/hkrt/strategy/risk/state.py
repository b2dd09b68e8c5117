"""The trading state of a strategy's account: ACTIVE, REDUCING or HALTED, and why.

- ACTIVE: every order the checks pass goes out.
- REDUCING: only orders that reduce a position go out (a sell of at most what is held less what open
  sells already take); every buy is refused.  A breached daily-loss limit moves here by default.
- HALTED: no order goes out; the kill switch (``Strategy.halt``), a breached drawdown or daily order
  count, and a risk check's own failure (fail closed) move here.

Only :meth:`TradingState.resume` (a person, or the strategy's own code) moves back to ACTIVE: no limit
lifts itself.  Each change is kept in ``history`` (bounded) with its market time and reason.
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass

from hkrt.bus.trading import TRADING_STATES

ACTIVE, REDUCING, HALTED = TRADING_STATES
MAX_HISTORY = 1_000  # state changes kept (the oldest dropped first)


@dataclass(frozen=True)
class StateChange:
    when: dt.datetime | None
    previous: str
    state: str
    reason: str


class TradingState:
    """The state machine; the engine owns one.  ``change`` answers whether the state moved."""

    def __init__(self) -> None:
        self.state = ACTIVE
        self.reason = ""
        self.since: dt.datetime | None = None
        self.history: collections.deque[StateChange] = collections.deque(maxlen=MAX_HISTORY)

    def change(self, state: str, reason: str, when: dt.datetime | None) -> bool:
        if state not in TRADING_STATES:
            raise ValueError(f"trading state {state!r} is not one of {', '.join(TRADING_STATES)}")
        if state == self.state and reason == self.reason:
            return False
        # a breach never softens a stricter state: REDUCING while HALTED stays HALTED
        if state == REDUCING and self.state == HALTED:
            return False
        self.history.append(StateChange(when, self.state, state, reason))
        self.state, self.reason, self.since = state, reason, when
        return True

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    def __repr__(self) -> str:
        return f"TradingState({self.state}{': ' + self.reason if self.reason else ''})"
