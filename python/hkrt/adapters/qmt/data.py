"""QMT / miniQMT quotes through xtquant: pull (``get_full_tick``) and push (``subscribe_whole_quote``).

xtquant's native modules are Windows-only, so this source runs where QMT runs.  Importing this
module works anywhere (xtquant is imported lazily and is not a dependency of hkrt); creating a
client or calling :func:`get_spot` without a working xtquant raises :class:`QmtUnavailableError`,
an ``ImportError`` that says what to do instead.  See docs/qmt.md.

Units are converted here and only here (docs/units.md): a tick's ``time`` (UTC epoch ms) becomes
naive China local time, ``pvolume`` (shares) the spot volume, ``amount`` stays in yuan, and the
book volumes ``bidVol`` / ``askVol`` (lots) are multiplied by 100.  ``volume`` is in lots for
stocks, and for some ETFs and indices ``pvolume`` equals ``volume`` (lots as well), so the unit
is checked per tick, see :func:`volume_in_shares`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from hkrt._hkrt import Spot
from hkrt.adapters.base import PullDataClient
from hkrt.adapters.qmt.config import QmtConfig
from hkrt.adapters.qmt.mapping import (
    _NOT_A_SHARE,
    MARKETS,
    parse_ticks,
    qmt_code,
    tick_to_spot,
    volume_in_shares,
)
from hkrt.core.calendar import CalendarCoverageError, TradingCalendar
from hkrt.core.china_time import SESSIONS, china_now
from hkrt.core.logs import log_limited
from hkrt.fetcher.common import (  # not .base: QMT must not load httpx
    BatchFunc,
    Codes,
    FailedBatch,
    FetchReport,
    ParseResult,
    batched,
    symbol_or_none,
    validate_codes,
)

__all__ = [
    "MARKETS",
    "QmtClient",
    "QmtConfig",
    "QmtConnectionError",
    "QmtDataClient",
    "QmtError",
    "QmtPushClient",
    "QmtUnavailableError",
    "china_trading_time",
    "fetch",
    "get_spot",
    "load_xtdata",
    "make_data_client",
    "parse_ticks",
    "qmt_code",
    "tick_to_spot",
    "volume_in_shares",
]

log = logging.getLogger("hkrt.fetcher.qmt")

if TYPE_CHECKING:
    from hkrt.adapters.base import ServePlan
    from hkrt.feed.server import SpotServer


class QmtError(RuntimeError):
    """xtquant answered something unusable, or a call into it failed."""


class QmtConnectionError(QmtError, ConnectionError):
    """xtdata could not connect to a running QMT / miniQMT."""


class QmtUnavailableError(ImportError):
    """xtquant is not installed here, or its native (Windows-only) part cannot load."""


def _unavailable_message(cause: BaseException) -> str:
    return (
        f"the QMT source needs xtquant, which cannot be used here ({type(cause).__name__}: {cause}). "
        "xtquant's native modules (datacenter, xtpythonclient) are Windows-only: the PyPI wheel ships "
        "only win_amd64 .pyd files, so on Linux or macOS `import xtquant.xtdata` fails even when "
        "`pip install xtquant` succeeds. Either run QMT / miniQMT (logged in, 极简模式) and hkrt on "
        "Windows (`pip install xtquant` there), or publish from Windows over TCP to hkrt on Linux: "
        "on Windows `hkrt spot-server --source qmt --tcp 0.0.0.0:9200`, "
        "on Linux `hkrt agent --tcp <windows-host>:9200`. See docs/qmt.md."
    )


def load_xtdata() -> ModuleType:
    """Import ``xtquant.xtdata``, or raise :class:`QmtUnavailableError` saying why it cannot work here."""
    try:
        from xtquant import xtdata
    except Exception as exc:  # ImportError on Linux; on Windows xtdatacenter may raise a plain Exception
        raise QmtUnavailableError(_unavailable_message(exc)) from exc
    return xtdata


def _config(config: QmtConfig | None, options: Mapping[str, Any]) -> QmtConfig:
    config = config if config is not None else QmtConfig()
    if not options:
        return config
    known = {f.name for f in fields(QmtConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown QMT option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return replace(config, **options)


# ---------------------------------------------------------------------------- clients
class _Xt:
    """The xtdata module, connected once; counters and once-per-code reporting shared by both clients."""

    def __init__(self, config: QmtConfig, xtdata: ModuleType | None) -> None:
        self.config = config
        self.xtdata = xtdata if xtdata is not None else load_xtdata()
        self._connected = False
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self.counters: Counter[str] = Counter()
        self.errors: dict[str, str] = {}  # code -> the last reason its tick gave no spot
        self.unknown: set[str] = set()

    def connect(self) -> None:
        if self._connected:
            return
        xtdata = self.xtdata
        xtdata.enable_hello = self.config.hello
        try:
            xtdata.connect(self.config.ip, self.config.port)
        except Exception as exc:
            where = f"{self.config.ip}:{self.config.port}" if self.config.ip else "the local QMT"
            raise QmtConnectionError(
                f"cannot connect xtdata to {where}: {exc}. Is QMT / miniQMT running and logged in "
                "(with 极简模式 / independent trading ticked)?"
            ) from exc
        self._connected = True

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    def parse(self, ticks: Any, requested: Iterable[str] | None = None) -> ParseResult:
        """parse_ticks, counted; each code whose tick gives no spot is logged the first time only."""
        result = parse_ticks(ticks, requested, index_volume_in_lots=self.config.index_volume_in_lots)
        first: list[tuple[str, str]] = []
        with self._lock:
            self.counters["ticks"] += result.statements
            self.counters["spots"] += len(result.spots)
            self.counters["errors"] += len(result.errors) + (result.error is not None)
            self.unknown.update(result.unknown)
            for code, reason in result.errors.items():
                self.errors[code] = reason
                if code not in self._reported:
                    self._reported.add(code)
                    first.append((code, reason))
        for code, reason in first:  # pushes repeat every 3 s: say it once
            log.warning("QMT tick gives no spot", extra={"code": code, "reason": reason})
        if result.error is not None:
            log.warning("QMT answer unusable", extra={"error": result.error})
        return result

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counters, "unknown": sorted(self.unknown), "errors": dict(self.errors)}


def _split_codes(codes: Codes) -> tuple[list[str], list[str], list[str]]:
    """(symbols, market codes, invalid inputs) of the codes given."""
    if isinstance(codes, str):
        codes = [codes]
    codes = list(codes)
    markets = [m for m in dict.fromkeys(str(c).strip().upper() for c in codes) if m in MARKETS]
    symbols, invalid = validate_codes([c for c in codes if str(c).strip().upper() not in MARKETS])
    return symbols, markets, invalid


class QmtClient:
    """Snapshots on demand: ``xtdata.get_full_tick`` in chunks of ``pull_chunk_size`` codes.

    ``QmtClient(ip=..., port=..., pull_chunk_size=...)`` or ``QmtClient(QmtConfig(...))``.  Keep
    one for a polling loop: it connects once (xtdata reconnects by itself after a lost connection).
    """

    source: ClassVar[str] = "qmt"

    def __init__(self, config: QmtConfig | None = None, *, xtdata: ModuleType | None = None, **options: Any) -> None:
        self._xt = _Xt(_config(config, options), xtdata)
        self.config = self._xt.config

    def fetch(self, codes: Codes, batch_func: BatchFunc | None = None) -> FetchReport:
        """Quotes of ``codes`` (hkrt symbols in any spelling, or 'SH' / 'SZ' / 'BJ' for a whole market).

        Invalid codes are reported and never sent; ``batch_func(spots)`` is called per chunk as soon
        as it is mapped.  A chunk whose ``get_full_tick`` fails is reported in ``failed_batches`` and
        the other chunks still go out; only the first connection raises (:class:`QmtConnectionError`).
        """
        started = time.perf_counter()
        symbols, markets, invalid = _split_codes(codes)
        if invalid:
            log.warning("invalid codes not sent", extra={"source": self.source, "codes": invalid})
        self._xt.connect()
        # (codes to ask for, the symbols expected back: None for a whole market)
        chunks: list[tuple[list[str], list[str] | None]] = [
            ([qmt_code(s) for s in chunk], chunk) for chunk in batched(symbols, self.config.pull_chunk_size)
        ]
        if markets:
            chunks.append((markets, None))
        report = FetchReport(self.source, invalid=invalid, requested=len(symbols), batches=len(chunks))
        for index, (chunk, expected) in enumerate(chunks):
            report.requests += 1
            try:
                answer = self._xt.xtdata.get_full_tick(chunk)
            except Exception as exc:
                self._failed(report, index, chunk, f"get_full_tick failed ({type(exc).__name__}: {exc})")
                continue
            result = self._xt.parse(answer, expected)
            if result.error is not None:
                self._failed(report, index, chunk, result.error)
                continue
            by_reason: dict[str, list[str]] = {}
            for code, reason in result.errors.items():
                if reason != _NOT_A_SHARE:  # another market's code in a whole-market answer: not asked for
                    by_reason.setdefault(reason, []).append(code)
            for reason, failed in by_reason.items():
                report.failed_batches.append(FailedBatch(index, tuple(failed), reason, 1))
            report.spots.extend(result.spots)
            report.unknown.extend(result.unknown)
            if batch_func is not None and result.spots:
                batch_func(result.spots)
        if report.unknown:
            log.info("QMT does not know some codes", extra={"count": len(report.unknown), "codes": report.unknown[:10]})
        report.elapsed = time.perf_counter() - started
        return report

    def get_spot(self, codes: Codes, *, batch_func: BatchFunc | None = None) -> list[Spot]:
        """The spots of :meth:`fetch`; failures are logged and left out."""
        return self.fetch(codes, batch_func).spots

    def stats(self) -> dict[str, Any]:
        """Counters since creation (ticks, spots, errors), the unknown codes and the last error per code."""
        return self._xt.stats()

    def close(self) -> None:
        """Nothing to free: xtdata keeps one process-wide connection."""

    def __enter__(self) -> QmtClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _failed(self, report: FetchReport, index: int, chunk: list[str], error: str) -> None:
        codes = tuple(symbol_or_none(c) or c for c in chunk)
        report.failed_batches.append(FailedBatch(index, codes, error, 1))
        self._xt.count("failed_batches")
        log.warning(
            "quote batch failed", extra={"source": self.source, "batch": index, "codes": len(codes), "error": error}
        )


def fetch(
    codes: Codes,
    *,
    batch_func: BatchFunc | None = None,
    config: QmtConfig | None = None,
    xtdata: ModuleType | None = None,
    **options: Any,
) -> FetchReport:
    """Like :meth:`QmtClient.fetch` with a new client; ``options`` are :class:`QmtConfig` fields."""
    return QmtClient(config, xtdata=xtdata, **options).fetch(codes, batch_func)


def get_spot(
    codes: Codes,
    *,
    batch_func: BatchFunc | None = None,
    config: QmtConfig | None = None,
    xtdata: ModuleType | None = None,
    **options: Any,
) -> list[Spot]:
    """Spots of ``codes`` from QMT's full tick, ``batch_func(spots)`` per chunk of ``pull_chunk_size`` codes.

    What ``hkrt.fetcher.get_spot(codes, source="qmt", ...)`` calls.  ``options`` are :class:`QmtConfig`
    fields (``ip``, ``port``, ``pull_chunk_size`` ...).  Unknown codes and failed chunks are logged and
    left out (:func:`fetch` reports them).  Raises :class:`QmtUnavailableError` (an ``ImportError``)
    where xtquant cannot run, :class:`QmtConnectionError` when QMT cannot be reached.
    """
    return fetch(codes, batch_func=batch_func, config=config, xtdata=xtdata, **options).spots


# ---------------------------------------------------------------------------- push
_SESSIONS = SESSIONS  # continuous trading, from the core
_CALENDAR: TradingCalendar | None = None


def china_trading_time(now: dt.datetime | None = None) -> bool:
    """Continuous trading (09:30-11:30, 13:00-15:00 Beijing time) on a trading day: when pushes must flow.

    The auction (09:15-09:25) is left out: few quotes change before the match, and 09:25-09:30 is quiet.
    """
    global _CALENDAR
    now = now if now is not None else china_now()
    if _CALENDAR is None:
        _CALENDAR = TradingCalendar.china()
    if not _CALENDAR.is_trading_day(now.date()):
        return False
    return any(start <= now.time() < end for start, end in _SESSIONS)


class QmtPushClient:
    """Whole-quote push: ``subscribe_whole_quote`` in chunks, each push mapped and handed to ``on_spots``.

    ``on_spots(spots)`` runs on xtquant's callback thread, once per push with the codes that
    changed (the first push of a subscription has all of its codes); keep it short (enqueue, then
    return).  Its exceptions are logged and counted, never
    raised into xtquant (whose wrapper would print them to stdout and carry on).

    A watchdog thread resubscribes everything when no push arrived for ``watchdog_timeout``
    seconds while ``is_trading_time()`` holds (default :func:`china_trading_time`): after miniQMT
    switches quote servers, subscriptions stop silently, and after a lost connection xtdata
    reconnects only when called.  ``stop()`` unsubscribes every subscription.  The clock
    (``monotonic``) and the trading-hours predicate are injectable; with ``watchdog=False`` there
    is no thread and the owner calls :meth:`check_silence` on its own schedule.
    """

    def __init__(
        self,
        config: QmtConfig | None,
        on_spots: Callable[[list[Spot]], Any],
        *,
        xtdata: ModuleType | None = None,
        is_trading_time: Callable[[], bool] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        watchdog: bool = True,
        **options: Any,
    ) -> None:
        self._xt = _Xt(_config(config, options), xtdata)
        self._use_watchdog = watchdog  # False: no thread, the owner calls check_silence() itself
        self.config = self._xt.config
        self._on_spots = on_spots
        self._is_trading_time = is_trading_time if is_trading_time is not None else china_trading_time
        self._monotonic = monotonic
        self._lock = threading.RLock()  # the subscriptions
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._codes: list[str] = []
        self._seqs: list[int] = []
        self._running = False
        self._last_push = monotonic()
        self.invalid: list[str] = []  # codes given to start() that are not symbols: never subscribed
        self.resubscriptions = 0

    # -- lifecycle
    def start(self, codes: Codes) -> None:
        """Connect, subscribe ``codes`` (hkrt symbols in any spelling, or 'SH' / 'SZ' / 'BJ' for a whole
        market) in chunks, and start the watchdog.  Raises :class:`QmtError` if no subscription took."""
        symbols, markets, invalid = _split_codes(codes)
        if invalid:
            log.warning("invalid codes not subscribed", extra={"source": "qmt", "codes": invalid})
        if not symbols and not markets:
            raise ValueError(f"no valid code to subscribe in {invalid!r}")
        with self._lock:
            if self._running:
                raise RuntimeError("QmtPushClient is already started")
            self._xt.connect()
            self.invalid = invalid
            self._codes = markets + [qmt_code(s) for s in symbols]
            self._stop.clear()
            self._running = True
            self._last_push = self._monotonic()
            try:
                ok = self._subscribe()
            except BaseException:
                self._running = False
                self._unsubscribe()
                raise
            if not ok:
                self._running = False
                raise QmtError(f"subscribe_whole_quote failed for all {len(self._codes)} codes")
            if self._use_watchdog:
                self._watchdog = threading.Thread(target=self._watch, name="hkrt-qmt-watchdog", daemon=True)
                self._watchdog.start()

    def stop(self) -> None:
        """Stop the watchdog and unsubscribe every subscription; idempotent."""
        self._stop.set()  # also cuts short a subscribe pause in progress
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(10)
        with self._lock:
            self._running = False
            self._unsubscribe()

    def __enter__(self) -> QmtPushClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def subscriptions(self) -> list[int]:
        """The sequence numbers xtquant gave the current subscriptions."""
        with self._lock:
            return list(self._seqs)

    def stats(self) -> dict[str, Any]:
        """Counters (pushes, ticks, spots, errors, callback_errors, subscribe_failures), resubscriptions,
        current subscriptions, seconds since the last push, the codes that gave no spot and why."""
        return {
            **self._xt.stats(),
            "resubscriptions": self.resubscriptions,
            "subscriptions": len(self._seqs),
            "silent_s": round(self._monotonic() - self._last_push, 3),
        }

    def resubscribe(self) -> bool:
        """Unsubscribe and subscribe everything again (what the watchdog does); True if any subscription took."""
        with self._lock:
            if not self._running:
                return False
            self._unsubscribe()  # first: miniQMT keeps forgotten subscriptions alive and growing
            self.resubscriptions += 1
            self._last_push = self._monotonic()
            return self._subscribe()

    # -- subscriptions (under self._lock)
    def _subscribe(self) -> bool:
        xtdata = self._xt.xtdata
        for i, chunk in enumerate(batched(self._codes, self.config.subscribe_chunk_size)):
            if i and self._stop.wait(self.config.subscribe_pause):
                break  # stopping
            try:
                seq = xtdata.subscribe_whole_quote(chunk, self._on_data)
            except Exception as exc:  # e.g. no connection: xtdata reconnects on the next call
                seq = -1
                log.error("QMT subscribe_whole_quote raised", extra={"codes": len(chunk), "error": str(exc)})
            if isinstance(seq, int) and seq > 0:
                self._seqs.append(seq)
            else:
                self._xt.count("subscribe_failures")
                log.error("QMT subscribe_whole_quote failed", extra={"codes": len(chunk), "first": chunk[0]})
        log.info("QMT subscribed", extra={"codes": len(self._codes), "subscriptions": len(self._seqs)})
        return bool(self._seqs)

    def _unsubscribe(self) -> None:
        seqs, self._seqs = self._seqs, []
        for seq in seqs:
            try:
                self._xt.xtdata.unsubscribe_quote(seq)
            except Exception as exc:  # a dead connection: nothing left to free
                log.warning("QMT unsubscribe_quote failed", extra={"seq": seq, "error": str(exc)})

    # -- threads
    def _on_data(self, datas: Any) -> None:
        """On xtquant's callback thread: ``{code: tick}`` of the codes that changed."""
        if not self._running:
            return
        self._last_push = self._monotonic()
        self._xt.count("pushes")
        spots = self._xt.parse(datas).spots
        if not spots:
            return
        try:
            self._on_spots(spots)
        except Exception:
            self._xt.count("callback_errors")
            log.exception("QMT on_spots callback failed", extra={"spots": len(spots)})

    def check_silence(self) -> bool:
        """One watchdog step: resubscribe if the push has been silent too long in trading hours.

        The watchdog thread calls it every ``min(1 s, watchdog_timeout / 4)``; returns True when it
        resubscribed.  Outside trading hours the silence clock restarts, so it counts from the open.
        """
        if not self._running:
            return False
        now = self._monotonic()
        try:
            trading = self._is_trading_time()
        except CalendarCoverageError as err:  # the holiday table ran out: say so hourly, keep watching
            log_limited(log, logging.WARNING, "calendar", str(err), interval=3600.0)
            trading = True
        except Exception:
            log.exception("QMT is_trading_time failed")
            trading = True
        if not trading:
            self._last_push = now
            return False
        silent = now - self._last_push
        if silent < self.config.watchdog_timeout:
            return False
        log.warning("QMT push silent, resubscribing", extra={"silent_s": round(silent, 1)})
        try:
            self.resubscribe()
        except Exception:
            log.exception("QMT resubscribe failed")
        return True

    def _watch(self) -> None:
        period = min(1.0, self.config.watchdog_timeout / 4)
        while not self._stop.wait(period):
            self.check_silence()


class QmtDataClient:
    """The spot server's QMT source: push (``config.mode``, the default: every whole-quote push a cycle,
    with the watchdog) or pull (``get_full_tick`` on the pull schedule)."""

    def __init__(self, config: QmtConfig) -> None:
        self.config = config

    def serve(self, server: SpotServer, plan: ServePlan) -> None:
        if self.config.mode == "push":
            server.run_push(lambda on_spots: QmtPushClient(self.config, on_spots), plan.codes)
        else:
            PullDataClient(QmtClient(self.config)).serve(server, plan)


def make_data_client(config: QmtConfig) -> QmtDataClient:
    """The spot server's QMT source (``hkrt spot-server --source qmt``); xtquant is loaded when it serves."""
    return QmtDataClient(config)
