"""Sina (``hq.sinajs.cn``): public HTTP quotes; a data venue only.

Clients: ``data.make_data_client`` (pull cycles over :class:`~hkrt.adapters.sina.data.SinaClient`);
``execution.make_execution_client`` is None.  Built by name through :mod:`hkrt.adapters.registry`.
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.sina.config import SinaConfig

VENUE = Venue(
    name="sina",
    summary="Sina public HTTP quotes (hq.sinajs.cn)",
    data_config=SinaConfig,
    no_execution="Sina publishes quotes and takes no orders",
    takes_codes=True,
)

__all__ = ["VENUE"]
