"""The feed layer: the wire codec (``wire``), the nng transport and publisher (``transport``),
message journals (``journal``, ``day_journal``), retransmission (``retransmit``), feed sealing
(``feed_auth``), the Redis Streams bus (``redis_sink``, ``redis_reader``, ``redis_url``) and the spot
server's loop (``server``).  It imports only the core layer
(docs/architecture.md, "Packages by layer").  Submodules load on first use."""

from __future__ import annotations

from hkrt._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {},
    (
        "day_journal",
        "feed_auth",
        "journal",
        "redis_reader",
        "redis_sink",
        "redis_url",
        "retransmit",
        "server",
        "transport",
        "wire",
    ),
)
