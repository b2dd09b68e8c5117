"""Tencent has no execution client: ``qt.gtimg.cn`` publishes quotes and takes no orders.

The venue's record says so (``VENUE.execution_config is None``, ``VENUE.no_execution``), and
``hkrt.adapters.registry.execution_client("qq")`` is a one-line error naming the venues that trade.
"""

from __future__ import annotations

make_execution_client = None
