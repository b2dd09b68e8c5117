"""When the exchange takes orders: the opening call auction and the continuous sessions.

The Shanghai and Shenzhen trading hosts take orders from the opening call auction (09:15) to the
morning close, and through the afternoon session to the close; over the lunch break and outside
those hours they take none.  The times come from the C++ schedule (``hkrt.core.china_time``), never
restated here.  A time on the lunch break or after the close is refused; 09:25-09:30 (orders taken,
matched from 09:30) is allowed.
"""

from __future__ import annotations

import datetime as dt

from hkrt.core.china_time import AUCTION_OPEN, MARKET_OPEN, SESSIONS, in_session


def takes_orders(clock: dt.time) -> bool:
    """Whether the exchange takes an order at this time of day (China local time)."""
    return AUCTION_OPEN <= clock < MARKET_OPEN or in_session(clock)


def hours_text() -> str:
    """The order hours from the schedule, for a refusal's reason: auction open to noon, the afternoon."""
    spans = [(AUCTION_OPEN, SESSIONS[0][1]), *SESSIONS[1:]]
    return ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in spans)
