"""The template venue's edge: the only place its codes, units and statuses are converted.

Replace these with the venue's rules and document each unit where it is converted (docs/units.md): the
rest of hkrt sees only hkrt symbols (``SH600000``), shares, yuan and naive China local time.
"""

from __future__ import annotations

from hkrt._hkrt import OrderStatus, normalize_symbol

LOT = 100  # shares per lot, if the venue counts lots

#: the venue's order states -> hkrt's (an unknown state is Failed: the order may be live, check it)
STATUS = {"accepted": OrderStatus.Sent, "filled": OrderStatus.Filled, "refused": OrderStatus.Rejected}


def venue_code(symbol: str) -> str:
    """hkrt's symbol ('SH600000', any accepted spelling) -> the venue's code (here '600000.SH')."""
    normal = normalize_symbol(symbol)
    return f"{normal[2:]}.{normal[:2]}"


def hkrt_symbol(code: str) -> str:
    """The venue's code -> hkrt's symbol; ValueError for a code that is no A-share."""
    number, _, market = code.partition(".")
    return normalize_symbol(f"{market}{number}")


def order_status(state: str) -> OrderStatus:
    return STATUS.get(state, OrderStatus.Failed)
