"""QMT / miniQMT through xtquant (Windows): quotes (xtdata) and orders (xttrader); data and execution.

Clients: ``data.make_data_client`` (push subscription or pull, :class:`~hkrt.adapters.qmt.data.QmtDataClient`)
and ``execution.make_execution_client`` (:class:`~hkrt.adapters.qmt.execution.XtQuantOrderBroker`).  The two
share ``mapping.py`` (xtquant codes, tick units) and import neither each other nor any HTTP library.
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.qmt.config import QmtConfig, QmtTradingConfig

VENUE = Venue(
    name="qmt",
    summary="QMT / miniQMT through xtquant (Windows): quotes and orders",
    data_config=QmtConfig,
    execution_config=QmtTradingConfig,
    takes_codes=True,
    reports_account=True,
)

__all__ = ["VENUE"]
