"""Quote fetchers: a source's raw answer in, :class:`hkrt.Spot` objects in hkrt units out.

The sources themselves are the data clients of the venue adapters (``hkrt.adapters.<venue>``,
docs/adding-a-venue.md); this package keeps what they share (``base``: the bounded HTTP client and batch
runner; ``common``: reports and symbol checks; ``pull``: the pull session) and re-exports their names
(``hkrt.fetcher.SinaClient``, ``hkrt.fetcher.qmt``, ``hkrt.fetcher.sim`` ...) for existing code.

``get_spot(codes, source="qq")`` is the call hikyuu users know; ``fetch`` gives the same with the
failure detail (:class:`FetchReport`).  A poller that calls every few seconds should keep one client
(``make_client`` or ``QQClient``/``SinaClient``) so its connections are reused, best inside a
:class:`PullSession` (``pull_session``), which re-asks codes missing from an answer and drops unknown
codes only when the source keeps saying so.  See docs/fetchers.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from hkrt._hkrt import Spot
from hkrt._lazy import lazy_exports
from hkrt.fetcher.common import (
    BatchFunc,
    Codes,
    FailedBatch,
    FetchError,
    FetchReport,
    ParseResult,
    RateLimiter,
    validate_codes,
)

if TYPE_CHECKING:  # imported on first use by __getattr__: they load httpx
    from hkrt.adapters.qq.config import QQConfig
    from hkrt.adapters.qq.data import QQClient
    from hkrt.adapters.qq.mapping import parse_qq, parse_qq_line, qq_code
    from hkrt.adapters.sina.config import SinaConfig
    from hkrt.adapters.sina.data import SinaClient
    from hkrt.adapters.sina.mapping import parse_sina, parse_sina_line, sina_code
    from hkrt.fetcher.base import HttpConfig, HttpFetcher, RetryPolicy
    from hkrt.fetcher.pull import PullConfig, PullReport, PullSession, pull_session

SOURCES = ("qq", "sina", "qmt")

# The HTTP clients and the pull session load httpx (and with it ssl and email): imported the first
# time one of these names is touched, so the QMT source, the simulated market and the replay do not.
_LAZY_NAMES: dict[str, str] = {
    **dict.fromkeys(("HttpConfig", "HttpFetcher", "RetryPolicy"), "hkrt.fetcher.base"),
    **dict.fromkeys(("PullConfig", "PullReport", "PullSession", "pull_session"), "hkrt.fetcher.pull"),
    "QQClient": "hkrt.adapters.qq.data",
    "QQConfig": "hkrt.adapters.qq.config",
    **dict.fromkeys(("parse_qq", "parse_qq_line", "qq_code"), "hkrt.adapters.qq.mapping"),
    "SinaClient": "hkrt.adapters.sina.data",
    "SinaConfig": "hkrt.adapters.sina.config",
    **dict.fromkeys(("parse_sina", "parse_sina_line", "sina_code"), "hkrt.adapters.sina.mapping"),
}
_SUBMODULES = frozenset({"base", "common", "pull", "qmt", "qq", "replay", "sim", "sina", "universe"})


def _http_sources() -> dict[str, type[HttpFetcher]]:
    """``HTTP_SOURCES``, {"qq": QQClient, "sina": SinaClient}: built once, on first use."""
    sources: dict[str, type[HttpFetcher]] | None = globals().get("HTTP_SOURCES")
    if sources is None:
        from hkrt.adapters.qq.data import QQClient
        from hkrt.adapters.sina.data import SinaClient

        sources = globals()["HTTP_SOURCES"] = {"qq": QQClient, "sina": SinaClient}
    return sources


_lazy_getattr, _lazy_dir = lazy_exports(__name__, globals(), _LAZY_NAMES, _SUBMODULES)


def __getattr__(name: str) -> Any:
    return _http_sources() if name == "HTTP_SOURCES" else _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted({*_lazy_dir(), "HTTP_SOURCES"})


def make_client(source: str = "qq", *, base_url: str | None = None, **options: Any) -> HttpFetcher:
    """A client of an HTTP source ("qq" or "sina"); ``options`` are its config fields (batch_size,
    timeout, retries, rate_limit, ...).  ``base_url`` points it at another host (a proxy, a test server)."""
    http_sources = _http_sources()
    try:
        cls = http_sources[source]
    except KeyError:
        raise ValueError(f"unknown HTTP quote source {source!r}: expected one of {sorted(http_sources)}") from None
    if base_url is not None:
        options["base_url"] = base_url
    return cls(**options)


def fetch(
    codes: Codes,
    source: str = "qq",
    *,
    base_url: str | None = None,
    batch_func: BatchFunc | None = None,
    **options: Any,
) -> FetchReport:
    """Quotes of ``codes`` from an HTTP source, with every failure, unknown and invalid code reported."""
    if source == "qmt":
        raise ValueError("fetch() serves the HTTP sources (qq, sina); for qmt use get_spot(..., source='qmt')")
    with make_client(source, base_url=base_url, **options) as client:
        return client.fetch(codes, batch_func)


SPOT_SHAPES = ("hkrt", "hikyuu")


@overload
def get_spot(
    codes: Codes,
    source: str = ...,
    *,
    base_url: str | None = ...,
    batch_func: BatchFunc | None = ...,
    shape: Literal["hkrt"] = ...,
    **options: Any,
) -> list[Spot]: ...


@overload
def get_spot(
    codes: Codes,
    source: str = ...,
    *,
    base_url: str | None = ...,
    batch_func: Callable[[list[dict[str, Any]]], Any] | None = ...,
    shape: Literal["hikyuu"],
    **options: Any,
) -> list[dict[str, Any]]: ...


def get_spot(
    codes: Codes,
    source: str = "qq",
    *,
    base_url: str | None = None,
    batch_func: Callable[[Any], Any] | None = None,
    shape: str = "hkrt",
    **options: Any,
) -> list[Spot] | list[dict[str, Any]]:
    """Spots (hkrt units) of ``codes`` from "qq", "sina" or "qmt".

    ``batch_func(spots)`` is called once per batch as soon as it is parsed.  Failed batches are logged
    (logger ``hkrt.fetcher``) and left out; use :func:`fetch` to see them.  ``options`` are the
    source's config fields; for "qmt" they go to ``hkrt.fetcher.qmt.get_spot``.

    ``shape="hikyuu"`` returns (and hands ``batch_func``) hikyuu's spot records instead: dicts with
    hikyuu's field names and units, volume in lots and amount in 万元
    (:func:`hkrt.compat.hikyuu.hikyuu_spot_records`, docs/hikyuu-migration.md).
    """
    if shape not in SPOT_SHAPES:
        raise ValueError(f"unknown spot shape {shape!r}: expected one of {', '.join(SPOT_SHAPES)}")
    if source not in SOURCES:
        raise ValueError(f"unknown quote source {source!r}: expected one of {', '.join(SOURCES)}")
    if source == "qmt" and base_url is not None:
        raise ValueError("base_url applies to the HTTP sources (qq, sina), not to qmt")
    hikyuu = shape == "hikyuu"
    on_batch = batch_func
    if hikyuu and batch_func is not None:
        user_func = batch_func

        def hikyuu_batch(spots: list[Spot]) -> Any:
            return user_func(_hikyuu_records(spots))

        on_batch = hikyuu_batch
    if source == "qmt":
        qmt = importlib.import_module("hkrt.fetcher.qmt")  # needs xtquant: imported only when asked for
        spots: list[Spot] = qmt.get_spot(codes, batch_func=on_batch, **options)
    else:
        spots = fetch(codes, source, base_url=base_url, batch_func=on_batch, **options).spots
    return _hikyuu_records(spots) if hikyuu else spots


def _hikyuu_records(spots: list[Spot]) -> list[dict[str, Any]]:
    from hkrt.compat.hikyuu import hikyuu_spot_records  # the shim, loaded only when its shape is asked for

    return hikyuu_spot_records(spots)


__all__ = [
    "HTTP_SOURCES",
    "SOURCES",
    "SPOT_SHAPES",
    "FailedBatch",
    "FetchError",
    "FetchReport",
    "HttpConfig",
    "HttpFetcher",
    "ParseResult",
    "PullConfig",
    "PullReport",
    "PullSession",
    "QQClient",
    "QQConfig",
    "RateLimiter",
    "RetryPolicy",
    "SinaClient",
    "SinaConfig",
    "fetch",
    "get_spot",
    "make_client",
    "parse_qq",
    "parse_qq_line",
    "parse_sina",
    "parse_sina_line",
    "pull_session",
    "qq_code",
    "sina_code",
    "validate_codes",
]
