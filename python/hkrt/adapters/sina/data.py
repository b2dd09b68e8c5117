"""Sina's data client: ``hq.sinajs.cn`` real-time quotes in batches, one ``var hq_str_<code>="...";``
statement a code (the format and its units: :mod:`hkrt.adapters.sina.mapping`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from hkrt.adapters.base import PullDataClient
from hkrt.adapters.sina.config import SinaConfig
from hkrt.adapters.sina.mapping import parse_sina
from hkrt.fetcher.base import HttpFetcher, make_config
from hkrt.fetcher.common import ParseResult


class SinaClient(HttpFetcher):
    """Quotes from Sina.  ``SinaClient(base_url=..., batch_size=...)`` or ``SinaClient(SinaConfig(...))``."""

    source: ClassVar[str] = "sina"
    config: SinaConfig

    def __init__(self, config: SinaConfig | None = None, **options: object) -> None:
        super().__init__(make_config(SinaConfig, config, options))

    def url(self, codes: Sequence[str]) -> str:
        return f"{self.config.base_url}/list={','.join(codes)}"

    def parse(self, body: str, requested: Sequence[str]) -> ParseResult:
        return parse_sina(body, requested)

    def status_hint(self, status: int) -> str:
        if status == 403:
            return " (Sina refuses requests without a Referer from a sina.com.cn page, or a blocked IP)"
        return super().status_hint(status)


def make_data_client(config: SinaConfig) -> PullDataClient:
    """The spot server's Sina client: pull cycles over one :class:`SinaClient`."""
    return PullDataClient(SinaClient(config))
