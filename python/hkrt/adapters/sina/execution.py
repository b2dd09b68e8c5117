"""Sina has no execution client: ``hq.sinajs.cn`` publishes quotes and takes no orders.

The venue's record says so (``VENUE.execution is None``, ``VENUE.no_execution``), and
``hkrt.adapters.registry.execution_client("sina")`` is a one-line error naming the venues that trade.
"""

from __future__ import annotations

make_execution_client = None
