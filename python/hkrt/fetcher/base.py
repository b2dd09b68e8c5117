"""What the HTTP quote fetchers share: the bounded HTTP client, retries, the batch runner; and, re-exported
from :mod:`hkrt.fetcher.common` (which imports no HTTP library), the reports, symbol checks, batching and
rate limit every source shares.

Each source (``sina.py``, ``qq.py``) is one small module of the same shape: a frozen ``*Config``,
a ``*Client`` built on :class:`HttpFetcher`, and pure ``parse_*`` / ``*_code`` mapping functions.
Units are converted only in those mapping functions; everything here is unit-free.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx

from hkrt.core.logs import LogLimiter

# the source-independent half lives in common.py (no HTTP import there); every name is re-exported here
from hkrt.fetcher.common import (  # noqa: F401
    ANSWER_REASONS,
    CONNECT,
    DEADLINE,
    DECODE,
    DROPPED,
    INTERNAL,
    MALFORMED,
    MISSING,
    REQUEST,
    TIMEOUT,
    TOO_LARGE,
    TRUNCATED,
    VOID,
    BatchFailures,
    BatchFunc,
    Codes,
    FailedBatch,
    FetchError,
    FetchReport,
    ParseResult,
    RateLimiter,
    T,
    batched,
    decode_body,
    failure_reason,
    http_reason,
    parse_number,
    parse_statements,
    requested_symbols,
    shared_rate_limiter,
    symbol_or_none,
    validate_codes,
    wire_code,
)

log = logging.getLogger("hkrt.fetcher")

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

R = TypeVar("R")


# ------------------------------------------------------------------ bounded requests
class DeadlineExceeded(Exception):
    """The whole request ran past its deadline (raised from inside the network stream)."""


class _DeadlineClock(threading.local):
    """The deadline of the request this thread is making (sync httpcore reads in the caller's thread)."""

    at: float | None = None
    capped: bool = False  # a read or connect was given less than ``timeout`` because the deadline was near


class DeadlineBackend(httpcore.NetworkBackend):
    """An httpcore network backend whose every connect, read and write waits at most until the deadline
    of the request the calling thread is making.

    httpx's ``timeout`` bounds each read separately, so an answer that trickles one byte a second never
    times out.  Here each blocking call gets ``min(timeout, time left)``, so a request ends at its
    deadline whether it is stuck connecting, in the headers or in the body.  Outside
    :meth:`deadline` the streams behave as the plain backend's.
    """

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore.SyncBackend()
        self._clock = _DeadlineClock()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[_DeadlineClock]:
        clock = self._clock
        clock.at, clock.capped = time.monotonic() + seconds, False
        try:
            yield clock
        finally:
            clock.at = None

    def cap(self, timeout: float | None) -> float | None:
        at = self._clock.at
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            self._clock.capped = True
            raise DeadlineExceeded()
        if timeout is None or left < timeout:
            self._clock.capped = True
            return left
        return timeout

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, self.cap(timeout), local_address, socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, self.cap(timeout), socket_options), self)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, backend: DeadlineBackend) -> None:
        self._stream = stream
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._backend.cap(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._backend.cap(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, self._backend.cap(timeout))
        return _DeadlineStream(stream, self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport with the pool's network backend wrapped in a :class:`DeadlineBackend`.

    httpx does not take a network backend, so the wrap goes through the pool's attribute; should a
    later httpx or httpcore move it, ``enforced`` is False, a WARNING says so, and the deadline is
    then checked between body reads only (each read still bounded by ``timeout``).
    """

    def __init__(self, backend: DeadlineBackend, **options: Any) -> None:
        super().__init__(**options)
        pool = getattr(self, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        self.enforced = isinstance(inner, httpcore.NetworkBackend)
        if self.enforced:
            backend._inner = inner
            pool._network_backend = backend  # type: ignore[union-attr]
        else:
            log.warning(
                "this httpx/httpcore version hides its network backend: the request deadline is checked "
                "between reads only",
                extra={"httpx": httpx.__version__, "httpcore": httpcore.__version__},
            )


def _proxy_for(base_url: str, trust_env: bool) -> str | None:
    """The proxy the environment names for ``base_url`` (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``).

    A client given its own transport no longer reads the environment, and every request of a client
    goes to one host, so the choice is made once, here.
    """
    if not trust_env:
        return None
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class _Inflate:
    """gzip / zlib decoding whose output per call is bounded (a small compressed body can inflate a
    thousandfold: the size cap applies to what is decoded, not only to what is read)."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(32 + zlib.MAX_WBITS)  # either header, detected

    def decode(self, data: bytes, limit: int) -> bytes:
        return self._z.decompress(data, limit)  # at most ``limit`` bytes; the rest stays in unconsumed_tail

    def finish(self) -> None:
        if not self._z.eof:
            raise zlib.error("compressed stream ends early")


def read_body(response: httpx.Response, max_bytes: int, on_bytes: Callable[[int], None] | None = None) -> bytes:
    """The body of a streamed response, decoded (gzip/deflate), refused past ``max_bytes``.

    An announced ``Content-Length`` over the cap is refused before any of the body is read; otherwise
    the body is read as it arrives and reading stops at the first chunk that takes the wire bytes or
    the decoded bytes past the cap, so at most one network read (64 KiB) more than the cap is ever
    held.  ``on_bytes(n)`` is told every wire chunk's size.  Raises :class:`FetchError` ``too_large``
    or ``decode``.
    """
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise FetchError(
            f"answer too large (Content-Length {int(length):,} bytes > cap {max_bytes:,}): not read",
            retryable=False,
            status=response.status_code,
            reason=TOO_LARGE,
        )
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise FetchError(
            f"cannot decode Content-Encoding {encoding!r}", retryable=False, status=response.status_code, reason=DECODE
        )
    inflate = _Inflate() if encoding in ("gzip", "x-gzip", "deflate") else None
    body = bytearray()
    received = 0

    def too_large() -> FetchError:
        return FetchError(
            f"answer too large (over the cap of {max_bytes:,} bytes): stopped reading after {received:,} bytes",
            retryable=False,
            status=response.status_code,
            reason=TOO_LARGE,
        )

    try:
        for chunk in response.iter_raw():
            received += len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
            if received > max_bytes:
                raise too_large()
            body += inflate.decode(chunk, max_bytes - len(body) + 1) if inflate else chunk
            if len(body) > max_bytes:
                raise too_large()
        if inflate is not None:
            inflate.finish()
    except zlib.error as e:
        raise FetchError(
            f"cannot decode the {encoding} body ({e})", retryable=True, status=response.status_code, reason=DECODE
        ) from e
    return bytes(body)


# ------------------------------------------------------------------ retries
@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more attempts after the first, the n-th after ``backoff * 2**n`` seconds (capped at
    ``backoff_max``) less a random share of up to ``jitter`` of it, so clients do not retry in step."""

    retries: int = 2
    backoff: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.5

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        base = min(self.backoff_max, self.backoff * (2**retry))
        return base * (1.0 - self.jitter * (rng or random).random())


def call_with_retries(
    func: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    what: str = "request",
) -> T:
    """Call ``func`` until it succeeds, raises a non-retryable :class:`FetchError`, or retries run out."""
    retry = 0
    while True:
        try:
            return func()
        except FetchError as e:
            if not e.retryable or retry >= policy.retries:
                raise
            delay = policy.delay(retry, rng)
            if e.retry_after is not None:
                delay = max(delay, min(e.retry_after, policy.backoff_max))
            log.debug("%s failed, retrying", what, extra={"error": str(e), "retry": retry + 1, "delay": delay})
            sleep(delay)
            retry += 1


# ------------------------------------------------------------------ batch runner
def run_batches(
    batches: Sequence[T],
    work: Callable[[int, T], R],
    on_done: Callable[[int, R], None],
    *,
    max_workers: int,
) -> None:
    """Run ``work(i, batch)`` for every batch, ``max_workers`` at a time, and call ``on_done(i, result)``
    in the calling thread as each one finishes (in completion order).

    Threads, not asyncio: ``get_spot`` is a blocking call used from scripts, CLIs and notebooks, and a
    notebook already runs an event loop, where ``asyncio.run`` fails.  A whole-market cycle is a
    handful of batches, so a few threads sharing one pooled ``httpx.Client`` cost nothing next to the
    network, and the callback runs in the caller's thread, never concurrently with itself.

    If ``on_done`` raises, batches not yet started are cancelled and the exception propagates.
    """
    if not batches:
        return
    if max_workers <= 1 or len(batches) == 1:
        for i, batch in enumerate(batches):
            on_done(i, work(i, batch))
        return
    with ThreadPoolExecutor(max_workers=min(max_workers, len(batches)), thread_name_prefix="hkrt-fetch") as pool:
        pending: dict[Future[R], int] = {pool.submit(work, i, b): i for i, b in enumerate(batches)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=pending.__getitem__):
                    on_done(pending.pop(future), future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise


# ------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class HttpConfig:
    """Settings every HTTP source has.  Sources subclass it with their own defaults."""

    base_url: str = ""
    batch_size: int = 500  # codes per request
    timeout: float = 5.0  # seconds, for each of connect / read / write of one request
    deadline: float = 10.0  # seconds of wall time for a whole request: connect, headers and every body read
    max_body_bytes: int = 4 * 1024 * 1024  # an answer above this (read or decoded) is refused: "too_large"
    retries: int = 2  # more attempts after the first, on connection errors, timeouts, 5xx, 429
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    backoff_max: float = 8.0
    jitter: float = 0.5  # share of each delay taken off at random
    rate_limit: float = 10.0  # requests per second to this source and host, process-wide; 0 = no limit
    burst: int = 4  # requests that may go back to back before the rate applies
    concurrency: int = 4  # batches in flight
    user_agent: str = BROWSER_USER_AGENT
    headers: Mapping[str, str] | tuple[tuple[str, str], ...] = ()  # extra request headers
    trust_env: bool = True  # honour HTTP(S)_PROXY / NO_PROXY and the like
    log_every: float = 60.0  # seconds between two WARNING lines of one failure reason (the others are counted)

    max_batch_size: ClassVar[int] = 800  # the request line of either host fails near 8 KB (~850-900 codes)

    def __post_init__(self) -> None:
        headers = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        object.__setattr__(self, "headers", tuple((str(k), str(v)) for k, v in headers))
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if not 1 <= self.batch_size <= self.max_batch_size:
            raise ValueError(f"batch_size must be in 1..{self.max_batch_size}, got {self.batch_size}")
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("timeout must be > 0, retries >= 0, backoff >= 0 and jitter in [0, 1]")
        if not self.deadline > 0 or self.max_body_bytes < 1024 or self.log_every < 0:
            raise ValueError(
                f"deadline must be > 0, max_body_bytes >= 1024 and log_every >= 0, got deadline={self.deadline} "
                f"max_body_bytes={self.max_body_bytes} log_every={self.log_every}"
            )
        if self.rate_limit < 0 or self.burst < 1 or self.concurrency < 1:
            raise ValueError("rate_limit must be >= 0, burst >= 1 and concurrency >= 1")

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retries, self.backoff, self.backoff_max, self.jitter)

    def request_headers(self) -> dict[str, str]:
        # gzip only: it is what read_body can decode with a bounded output
        return {"User-Agent": self.user_agent, "Accept": "*/*", "Accept-Encoding": "gzip", **dict(self.headers)}


C = TypeVar("C", bound=HttpConfig)


def make_config(cls: type[C], config: C | None, options: Mapping[str, Any]) -> C:
    """``config`` with ``options`` replaced, or a new ``cls(**options)``."""
    if config is None:
        return cls(**options)
    return replace(config, **options) if options else config


# ------------------------------------------------------------------ the client
@dataclass
class _Outcome:
    result: ParseResult | None
    failures: list[FailedBatch]
    attempts: int


class HttpFetcher:
    """One source's client: a pooled ``httpx.Client`` reused for every request, a rate limiter shared
    per source and host, retries, and concurrent batches.  Subclasses say how to build a URL and how to
    read an answer.  Use it as a context manager, or call :meth:`close`.

    Every request is bounded: ``deadline`` seconds of wall time from connect to the last body byte,
    and ``max_body_bytes`` of answer (streamed, refused past the cap).  Every failed batch is in the
    :class:`FetchReport` with its reason and logged at WARNING (one line per reason every
    ``log_every`` seconds, the others counted); :meth:`stats` keeps the totals.
    """

    source: ClassVar[str] = ""

    def __init__(
        self,
        config: HttpConfig,
        *,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.rate_limiter = rate_limiter or shared_rate_limiter(
            self.source, config.base_url, config.rate_limit, config.burst
        )
        self._sleep = sleep
        self._backend = DeadlineBackend()
        limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
        transport = _DeadlineTransport(
            self._backend,
            limits=limits,
            trust_env=config.trust_env,
            proxy=_proxy_for(config.base_url, config.trust_env),
        )
        self._deadline_enforced = transport.enforced
        self._http = httpx.Client(
            headers=config.request_headers(),
            timeout=httpx.Timeout(config.timeout),
            transport=transport,
            trust_env=config.trust_env,
            follow_redirects=False,
        )
        self._log_limiter = LogLimiter(config.log_every, max_keys=64)  # keys: failure reasons
        self._stats_lock = threading.Lock()
        self._stats: dict[str, Any] = {
            "fetches": 0,
            "requests": 0,  # HTTP requests sent, retries included
            "bytes_received": 0,  # body bytes off the wire
            "failed_batches": 0,
            "failures": {},  # reason -> failed batches (or parts of batches)
            "log_lines_held_back": 0,  # WARNING lines the rate limit held back (counted in the next one)
        }

    # -- what a source defines
    def url(self, codes: Sequence[str]) -> str:
        """The URL asking for these wire codes ("sh600000")."""
        raise NotImplementedError

    def parse(self, body: str, requested: Sequence[str]) -> ParseResult:
        raise NotImplementedError

    def status_hint(self, status: int) -> str:
        if status in (414, 431):
            return " (request line too long: lower batch_size)"
        return ""

    # -- public
    def fetch(self, codes: Codes, batch_func: BatchFunc | None = None, *, batch_size: int | None = None) -> FetchReport:
        """Quotes of ``codes``: invalid codes are reported and never sent; the valid ones go out in
        batches of ``batch_size`` (default: the config's), ``concurrency`` at a time.  ``batch_func(spots)``
        is called in the calling thread as soon as each batch is parsed.  A failed batch is logged and
        reported; the other batches still go out.
        """
        start = time.perf_counter()
        symbols, invalid = validate_codes(codes)
        if invalid:
            log.warning(
                "invalid codes not sent: %s",
                ", ".join(map(repr, invalid[:10])) + (" ..." if len(invalid) > 10 else ""),
                extra={"source": self.source, "codes": invalid},
            )
        size = self.config.batch_size if batch_size is None else min(batch_size, self.config.max_batch_size)
        batches = batched(symbols, size)
        report = FetchReport(self.source, invalid=invalid, requested=len(symbols), batches=len(batches))

        def done(_: int, outcome: _Outcome) -> None:
            report.requests += outcome.attempts
            report.failed_batches.extend(outcome.failures)
            if outcome.result is not None:
                report.spots.extend(outcome.result.spots)
                report.unknown.extend(outcome.result.unknown)
                if batch_func is not None:
                    batch_func(outcome.result.spots)

        try:
            run_batches(batches, self._fetch_batch, done, max_workers=self.config.concurrency)
        finally:
            with self._stats_lock:
                self._stats["fetches"] += 1
                self._stats["failed_batches"] += len(report.failed_batches)
                failures = self._stats["failures"]
                for failed in report.failed_batches:
                    failures[failed.reason] = failures.get(failed.reason, 0) + 1
        order = {s: i for i, s in enumerate(symbols)}
        report.spots.sort(key=lambda s: order.get(s.symbol, len(order)))
        report.unknown.sort(key=lambda s: order.get(s, len(order)))
        report.failed_batches.sort(key=lambda f: (f.batch, order.get(f.codes[0], 0) if f.codes else 0))
        report.elapsed = time.perf_counter() - start
        log.debug("fetched", extra={"source": self.source, "summary": report.summary()})
        return report

    def stats(self) -> dict[str, Any]:
        """Totals since the client was made: fetches, requests, bytes_received, failed_batches, failures
        (per reason), log_lines_held_back, and whether the deadline is enforced inside each read."""
        with self._stats_lock:
            return {
                **self._stats,
                "failures": dict(self._stats["failures"]),
                "deadline_enforced": self._deadline_enforced,
            }

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals
    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += n

    def _request(self, symbols: Sequence[str]) -> ParseResult:
        """One attempt: wait for the rate limiter, GET within the deadline, check the status, read the
        body within the size cap, decode and parse."""
        codes = [wire_code(s) for s in symbols]
        self.rate_limiter.acquire()  # before the deadline starts: our own pacing is not the server's delay
        self._count("requests")
        cfg = self.config
        started = time.monotonic()

        def on_bytes(n: int) -> None:
            self._count("bytes_received", n)
            if not self._deadline_enforced and time.monotonic() - started > cfg.deadline:
                raise DeadlineExceeded()  # the fallback: checked between reads

        with self._backend.deadline(cfg.deadline) as clock:
            try:
                with self._http.stream("GET", self.url(codes)) as response:
                    status = response.status_code
                    if status == 429 or status >= 500:
                        raise FetchError(
                            f"HTTP {status}",
                            retryable=True,
                            status=status,
                            retry_after=_retry_after(response.headers),
                            reason=http_reason(status),
                        )
                    if status != 200:
                        raise FetchError(
                            f"HTTP {status}{self.status_hint(status)}",
                            retryable=False,
                            status=status,
                            reason=http_reason(status),
                        )
                    content = read_body(response, cfg.max_body_bytes, on_bytes)
            except FetchError:
                raise
            except DeadlineExceeded as e:
                raise self._deadline_error(started) from e
            except httpx.TimeoutException as e:
                if clock.capped:  # the wait was cut short by the deadline, not by ``timeout``
                    raise self._deadline_error(started) from e
                reason = CONNECT if isinstance(e, httpx.ConnectTimeout) else TIMEOUT
                raise FetchError(f"timeout ({type(e).__name__})", retryable=True, reason=reason) from e
            except httpx.ConnectError as e:
                raise FetchError(f"connection error ({type(e).__name__}: {e})", retryable=True, reason=CONNECT) from e
            except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
                raise FetchError(f"connection error ({type(e).__name__}: {e})", retryable=True, reason=DROPPED) from e
            except httpx.HTTPError as e:
                raise FetchError(f"request failed ({type(e).__name__}: {e})", retryable=False, reason=REQUEST) from e
        result = self.parse(decode_body(content, response.headers.get("content-type")), symbols)
        if result.error is not None:
            raise FetchError(result.error, retryable=True, status=status, reason=VOID)
        return result

    def _deadline_error(self, started: float) -> FetchError:
        return FetchError(
            f"deadline exceeded: no complete answer within {self.config.deadline:g} s "
            f"(cut after {time.monotonic() - started:.2f} s)",
            retryable=True,
            reason=DEADLINE,
        )

    def _fetch_batch(self, index: int, symbols: list[str]) -> _Outcome:
        attempts = 0

        def attempt() -> ParseResult:
            nonlocal attempts
            attempts += 1
            return self._request(symbols)

        what = f"{self.source} batch {index}"
        try:
            result = call_with_retries(attempt, self.config.retry_policy, sleep=self._sleep, what=what)
        except FetchError as e:
            failed = FailedBatch(index, tuple(symbols), str(e), attempts, e.status, e.reason)
            self._log_failure(failed)
            return _Outcome(None, [failed], attempts)
        except Exception as e:  # a bug in one batch must not stop the others
            log.exception("quote batch crashed", extra={"source": self.source, "batch": index})
            error = f"internal error ({type(e).__name__}: {e})"
            return _Outcome(None, [FailedBatch(index, tuple(symbols), error, attempts, reason=INTERNAL)], attempts)
        by_error: dict[str, list[str]] = {}
        for symbol, error in result.errors.items():
            by_error.setdefault(error, []).append(symbol)
        failures = [FailedBatch(index, tuple(codes), error, attempts, 200) for error, codes in by_error.items()]
        for failure in failures:
            self._log_failure(failure)
        return _Outcome(result, failures, attempts)

    def _log_failure(self, failed: FailedBatch) -> None:
        """WARNING naming the reason, the source and the codes count (in the message itself, so even
        Python's last-resort handler, the one a script without logging setup gets, prints why)."""
        allowed, held = self._log_limiter.allow(failed.reason)
        if not allowed:
            self._count("log_lines_held_back")
            return
        more = f" ({held} more {failed.reason} failures since the last such line)" if held else ""
        fields = {
            "source": self.source,
            "reason": failed.reason,
            "batch": failed.batch,
            "codes": len(failed.codes),
            "error": failed.error,
            "attempts": failed.attempts,
        }
        if held:
            fields["suppressed"] = held
        log.warning(
            "quote batch failed: %s from %s, %d code%s, %d attempt%s: %s%s",
            failed.reason,
            self.source,
            len(failed.codes),
            "" if len(failed.codes) == 1 else "s",
            failed.attempts,
            "" if failed.attempts == 1 else "s",
            failed.error,
            more,
            extra=fields,
        )


def _retry_after(headers: httpx.Headers) -> float | None:
    try:
        value = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value >= 0 else None
