"""The paper venue's edge: its ids and the time its day orders expire.

Orders arrive in hkrt's units (yuan per share, shares, ``SH``/``SZ``/``BJ`` + six digits) and the paper
account keeps them so.  The TestOrderBroker's order ids are ``T000001``..., every order Filled or Rejected at
once; the PaperBroker's are ``P00000001``... (Sent, then reported), its fills' trade ids ``PT00000001``...,
both counted per broker from 1, so the same events in the same order give the same ids.
"""

from __future__ import annotations

from hkrt.core.china_time import MARKET_CLOSE

#: the time of the exchanges' close (all three close at 15:00): an expiry's report is dated then
CLOSE_TIME = MARKET_CLOSE


def order_id_of(number: int) -> str:
    """The PaperBroker's id of its ``number``-th order."""
    return f"P{number:08d}"


def trade_id_of(number: int) -> str:
    """The PaperBroker's id of its ``number``-th fill (unique per broker)."""
    return f"PT{number:08d}"
