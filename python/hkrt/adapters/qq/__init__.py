"""Tencent/QQ (``qt.gtimg.cn``): public HTTP quotes; a data venue only.

Clients: ``data.make_data_client`` (pull cycles over :class:`~hkrt.adapters.qq.data.QQClient`);
``execution.make_execution_client`` is None.  Built by name through :mod:`hkrt.adapters.registry`.
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.qq.config import QQConfig

VENUE = Venue(
    name="qq",
    summary="Tencent public HTTP quotes (qt.gtimg.cn)",
    data_config=QQConfig,
    no_execution="Tencent publishes quotes and takes no orders",
    takes_codes=True,
)

__all__ = ["VENUE"]
