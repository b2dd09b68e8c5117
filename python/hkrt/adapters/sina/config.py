"""Sina's settings: an HTTP quote source (``hkrt.fetcher.base.HttpConfig``) with Sina's host and Referer.

From a TOML table, ``HKRT_SINA_*`` or CLI flags through ``hkrt.adapters.registry.data_config("sina", ...)``:
``base_url``, ``batch_size``, ``timeout``, ``retries``, ``rate_limit``, ``referer`` ...
"""

from __future__ import annotations

from dataclasses import dataclass

from hkrt.fetcher.base import HttpConfig

SINA_URL = "https://hq.sinajs.cn"
SINA_REFERER = "https://finance.sina.com.cn/"


@dataclass(frozen=True)
class SinaConfig(HttpConfig):
    """Sina settings.  Without a Referer from a ``*.sina.com.cn`` page Sina answers HTTP 403."""

    base_url: str = SINA_URL
    batch_size: int = 500  # the note's advice: <= 500 leaves room under the ~8 KB request line
    referer: str | None = SINA_REFERER

    def request_headers(self) -> dict[str, str]:
        headers = super().request_headers()
        if self.referer:
            headers.setdefault("Referer", self.referer)
        return headers
