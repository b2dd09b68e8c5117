"""QMT's settings: how to reach miniQMT's quote service and pace it (:class:`QmtConfig`, the data client),
and which account trades through xttrader (:class:`QmtTradingConfig`, the execution client).

From a TOML table ``[qmt]``, ``HKRT_QMT_*`` or CLI flags through ``hkrt.adapters.registry.data_config("qmt",
...)`` / ``execution_config("qmt", ...)``.  Importing this module imports no xtquant and no HTTP library.
"""

from __future__ import annotations

from dataclasses import dataclass

QMT_MODES = ("push", "pull")
ACCOUNT_TYPES = ("STOCK", "CREDIT")


@dataclass(frozen=True)
class QmtConfig:
    """How to reach QMT and how to pace it."""

    ip: str = ""  # miniQMT's xtdata service; "" finds the local one (127.0.0.1:58610 or the running client)
    port: int | None = None  # required with a remote ip (xtquant's rule)
    pull_chunk_size: int = 1000  # codes per get_full_tick call (and per batch_func call)
    subscribe_chunk_size: int = 500  # codes per subscribe_whole_quote call
    subscribe_pause: float = 0.5  # seconds between two subscribe calls: QMT drops bursts
    watchdog_timeout: float = 60.0  # seconds without any push during trading hours before resubscribing
    index_volume_in_lots: bool = True  # an index tick whose pvolume == volume counts lots (see volume_in_shares)
    hello: bool = False  # xtdata's "xtdata连接成功" banner on stdout
    mode: str = "push"  # the spot server's: push (whole-quote subscription) or pull (get_full_tick per interval)

    def __post_init__(self) -> None:
        if self.pull_chunk_size < 1 or self.subscribe_chunk_size < 1:
            raise ValueError("chunk sizes must be at least 1")
        if self.subscribe_pause < 0:
            raise ValueError("subscribe_pause must be >= 0")
        if self.watchdog_timeout <= 0:
            raise ValueError("watchdog_timeout must be > 0")
        if self.mode not in QMT_MODES:
            raise ValueError(f"mode must be push or pull, not {self.mode!r}")
        if self.ip not in ("", "127.0.0.1", "localhost") and not self.port:
            raise ValueError("a remote QMT ip needs a port (xtdata's default is 58610)")


@dataclass(frozen=True)
class QmtTradingConfig:
    """An xttrader session: miniQMT's ``userdata_mini`` folder (``path``), the fund ``account`` and its type,
    the price type of orders (``FIX_PRICE``, or a market price type), a session id (None: one is chosen)."""

    path: str
    account: str
    session_id: int | None = None
    account_type: str = "STOCK"
    price_type: str = "FIX_PRICE"
    strategy_name: str = "hkrt"

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("path (miniQMT's userdata_mini folder) is required")
        if not self.account:
            raise ValueError("account (the fund account id) is required")
        object.__setattr__(self, "account_type", self.account_type.strip().upper())
        if self.account_type not in ACCOUNT_TYPES:
            raise ValueError(f"account_type must be one of {', '.join(ACCOUNT_TYPES)}, not {self.account_type!r}")
