"""Tencent's data client: ``qt.gtimg.cn`` real-time quotes in batches, one ``v_<code>="f0~f1~...";``
statement a code (the format and its units: :mod:`hkrt.adapters.qq.mapping`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from hkrt.adapters.base import PullDataClient
from hkrt.adapters.qq.config import QQConfig
from hkrt.adapters.qq.mapping import parse_qq
from hkrt.fetcher.base import HttpFetcher, make_config
from hkrt.fetcher.common import ParseResult


class QQClient(HttpFetcher):
    """Quotes from Tencent.  ``QQClient(base_url=..., batch_size=...)`` or ``QQClient(QQConfig(...))``."""

    source: ClassVar[str] = "qq"
    config: QQConfig

    def __init__(self, config: QQConfig | None = None, **options: object) -> None:
        super().__init__(make_config(QQConfig, config, options))

    def url(self, codes: Sequence[str]) -> str:
        return f"{self.config.base_url}/q={','.join(codes)}"  # q= is a path segment, not a query

    def parse(self, body: str, requested: Sequence[str]) -> ParseResult:
        return parse_qq(body, requested)


def make_data_client(config: QQConfig) -> PullDataClient:
    """The spot server's Tencent client: pull cycles over one :class:`QQClient`."""
    return PullDataClient(QQClient(config))
