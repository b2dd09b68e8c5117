"""Tencent's settings: an HTTP quote source (``hkrt.fetcher.base.HttpConfig``) with Tencent's host.

From a TOML table, ``HKRT_QQ_*`` or CLI flags through ``hkrt.adapters.registry.data_config("qq", ...)``:
``base_url``, ``batch_size``, ``timeout``, ``retries``, ``rate_limit`` ...
"""

from __future__ import annotations

from dataclasses import dataclass

from hkrt.fetcher.base import HttpConfig

QQ_URL = "https://qt.gtimg.cn"


@dataclass(frozen=True)
class QQConfig(HttpConfig):
    """Tencent settings.  No Referer or cookie is needed."""

    base_url: str = QQ_URL
    # The "60 per request" of older clients is folklore: the limit is the ~8 KB request line (900 codes
    # worked, 950 gave HTTP 414).  500 is the note's advice: 11 requests for the whole market.
    batch_size: int = 500
