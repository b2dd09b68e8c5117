"""What the HTTP quote fetchers share: reports, symbol checks, batching, rate limit, retries, the batch runner.

Each source (``sina.py``, ``qq.py``) is one small module of the same shape: a frozen ``*Config``,
a ``*Client`` built on :class:`HttpFetcher`, and pure ``parse_*`` / ``*_code`` mapping functions.
Units are converted only in those mapping functions; everything here is unit-free.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx

from hkrt._hkrt import Spot, normalize_symbol

log = logging.getLogger("hkrt.fetcher")

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

Codes = str | Iterable[str]
BatchFunc = Callable[[list[Spot]], Any]
T = TypeVar("T")
R = TypeVar("R")


# ------------------------------------------------------------------ results
@dataclass
class ParseResult:
    """What one answer body held, keyed by normalised symbol ("SH600000").

    ``error`` is set when the answer as a whole is a failure (Sina's ``sys_auth="FAILED"``, a page
    with no quote statement at all): the fetcher then retries or reports the whole batch.
    """

    spots: list[Spot] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # the source does not know these codes
    errors: dict[str, str] = field(default_factory=dict)  # symbol -> why its quote could not be read
    truncated: bool = False  # the body ends inside a statement
    statements: int = 0  # quote statements found, empty and "none match" ones included
    error: str | None = None


@dataclass(frozen=True)
class FailedBatch:
    """Symbols of one batch that got no quote, and why."""

    batch: int  # index of the batch in its fetch
    codes: tuple[str, ...]  # normalised symbols
    error: str
    attempts: int  # HTTP requests made for the batch
    status: int | None = None  # the last HTTP status, if an answer came


@dataclass
class FetchReport:
    """The outcome of one fetch: the spots, and every symbol that did not give one, with the reason."""

    source: str
    spots: list[Spot] = field(default_factory=list)  # in the order the codes were given
    failed_batches: list[FailedBatch] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # answered "no such code"
    invalid: list[str] = field(default_factory=list)  # not a symbol: reported, never sent
    requested: int = 0  # distinct valid symbols
    batches: int = 0
    requests: int = 0  # HTTP requests sent, retries included
    elapsed: float = 0.0  # seconds

    @property
    def ok(self) -> bool:
        """True when no batch (or part of one) failed; unknown and invalid codes are not failures."""
        return not self.failed_batches

    @property
    def failed_codes(self) -> list[str]:
        return [code for batch in self.failed_batches for code in batch.codes]

    def summary(self) -> str:
        return (
            f"{self.source}: {len(self.spots)}/{self.requested} spots in {self.batches} batches, "
            f"{self.requests} requests, {len(self.failed_codes)} failed, {len(self.unknown)} unknown, "
            f"{len(self.invalid)} invalid, {self.elapsed:.3f}s"
        )


class FetchError(Exception):
    """A request that gave no usable answer; ``retryable`` says whether trying again may help."""

    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


# ------------------------------------------------------------------ symbols and batches
def validate_codes(codes: Codes) -> tuple[list[str], list[str]]:
    """Split codes into distinct normalised symbols (first-seen order) and the invalid inputs.

    Any form :func:`hkrt.normalize_symbol` takes is accepted ("sh600000", "SH600000", "600000.SH");
    surrounding blanks are ignored.  A bare "600000" is invalid: the market is ambiguous.
    """
    if isinstance(codes, str):
        codes = [codes]
    valid: list[str] = []
    invalid: list[str] = []
    seen: set[str] = set()
    for code in codes:
        try:
            symbol = normalize_symbol(code.strip())
        except (AttributeError, TypeError, ValueError):
            invalid.append(code)
            continue
        if symbol not in seen:
            seen.add(symbol)
            valid.append(symbol)
    return valid, invalid


def wire_code(symbol: str) -> str:
    """'SH600000' (any accepted form) -> 'sh600000', the form both Sina and Tencent use."""
    s = normalize_symbol(symbol)
    return s[:2].lower() + s[2:]


def symbol_or_none(code: str) -> str | None:
    try:
        return normalize_symbol(code)
    except ValueError:
        return None


def requested_symbols(requested: Iterable[str] | None) -> dict[str, None] | None:
    """Requested symbols, normalised, in order (a dict as an ordered set); invalid ones dropped."""
    if requested is None:
        return None
    if isinstance(requested, str):
        requested = [requested]
    out: dict[str, None] = {}
    for code in requested:
        symbol = symbol_or_none(code)
        if symbol is not None:
            out[symbol] = None
    return out


def parse_statements(
    body: str,
    requested: Iterable[str] | None,
    *,
    statement: re.Pattern[str],
    cut_statement: re.Pattern[str],
    parse_line: Callable[[str, str], Spot],
    special: Callable[[str, str, ParseResult], bool],
    missing_is_unknown: bool,
) -> ParseResult:
    """Walk an answer made of ``<prefix><code>="<fields>"`` statements (both Sina and QQ are).

    ``special(key, text, result)`` handles a source's non-quote statements (returns True when it
    did).  An empty statement is an unknown code; a line ``parse_line`` refuses is an error for its
    code; a body that ends inside a statement is truncated (that code is "cut off").  With
    ``requested``, only those symbols are returned, and one the answer does not mention is unknown
    (``missing_is_unknown``: the source leaves unknown codes out) or an error.  A body without any
    statement sets ``error``: the whole answer is void.
    """
    wanted = requested_symbols(requested)
    result = ParseResult()
    seen: set[str] = set()
    end = 0
    for match in statement.finditer(body):
        result.statements += 1
        end = match.end()
        key, text = match.groups()
        if special(key, text, result):
            continue
        symbol = symbol_or_none(key)
        if symbol is None or symbol in seen or (wanted is not None and symbol not in wanted):
            continue  # another kind of line (e.g. "s_sh600000", "sh600000_i"), or a repeat
        seen.add(symbol)
        if not text:
            result.unknown.append(symbol)
            continue
        try:
            result.spots.append(parse_line(symbol, text))
        except ValueError as e:
            result.errors[symbol] = f"malformed quote ({e})"
    tail = body[end:].strip().lstrip(";").strip()
    if tail:
        result.truncated = True
        cut = cut_statement.match(tail)
        symbol = symbol_or_none(cut.group(1)) if cut else None
        if symbol is not None and symbol not in seen and (wanted is None or symbol in wanted):
            result.errors[symbol] = "cut off (truncated answer)"
    for symbol in wanted or ():
        if symbol not in seen and symbol not in result.errors:
            if result.truncated:
                result.errors[symbol] = "cut off (truncated answer)"
            elif missing_is_unknown:
                result.unknown.append(symbol)
            else:
                result.errors[symbol] = "missing from the answer"
    if result.error is None and result.statements == 0 and (wanted is None or wanted):
        result.error = f"no quote statement in the answer: {body[:80]!r}"
    return result


def parse_number(text: str) -> float:
    """A wire number; an empty field is 0 (an absent price or an empty book level)."""
    text = text.strip()
    return float(text) if text else 0.0


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.-]+)", re.IGNORECASE)


def decode_body(content: bytes, content_type: str | None = None) -> str:
    """Both sources answer in GBK; decode as GB18030 (a superset), or UTF-8 when the answer says so."""
    match = _CHARSET.search(content_type or "")
    if match and match.group(1).lower().replace("-", "") == "utf8":
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return content.decode("gb18030", errors="replace")


# ------------------------------------------------------------------ rate limit
class RateLimiter:
    """At most ``rate`` requests per second, with bursts of up to ``burst`` (GCRA, thread-safe).

    ``acquire`` blocks until the caller may send.  The clock and sleep are injectable for tests.
    A rate of 0 means no limit.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError(f"rate must be >= 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = -float("inf")  # theoretical arrival time of the next request

    def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            wait_s = max(0.0, tat - (self.burst - 1) * interval - now)
            self._tat = tat + interval
        if wait_s > 0:
            self._sleep(wait_s)
        return wait_s


_limiters: dict[tuple[str, str, float, int], RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_rate_limiter(source: str, base_url: str, rate: float, burst: int) -> RateLimiter:
    """One limiter per source and host in the process, so every client polling a host shares its budget."""
    key = (source, urlsplit(base_url).netloc.lower(), float(rate), int(burst))
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter(rate, burst)
        return limiter


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
        if self.rate_limit < 0 or self.burst < 1 or self.concurrency < 1:
            raise ValueError("rate_limit must be >= 0, burst >= 1 and concurrency >= 1")

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retries, self.backoff, self.backoff_max, self.jitter)

    def request_headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent, "Accept": "*/*", **dict(self.headers)}


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
        self._http = httpx.Client(
            headers=config.request_headers(),
            timeout=httpx.Timeout(config.timeout),
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
            trust_env=config.trust_env,
            follow_redirects=False,
        )

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
    def fetch(self, codes: Codes, batch_func: BatchFunc | None = None) -> FetchReport:
        """Quotes of ``codes``: invalid codes are reported and never sent; the valid ones go out in
        batches of ``batch_size``, ``concurrency`` at a time.  ``batch_func(spots)`` is called in the
        calling thread as soon as each batch is parsed.  A failed batch is logged and reported; the
        other batches still go out.
        """
        start = time.perf_counter()
        symbols, invalid = validate_codes(codes)
        if invalid:
            log.warning("invalid codes not sent", extra={"source": self.source, "codes": invalid})
        batches = batched(symbols, self.config.batch_size)
        report = FetchReport(self.source, invalid=invalid, requested=len(symbols), batches=len(batches))

        def done(_: int, outcome: _Outcome) -> None:
            report.requests += outcome.attempts
            report.failed_batches.extend(outcome.failures)
            if outcome.result is not None:
                report.spots.extend(outcome.result.spots)
                report.unknown.extend(outcome.result.unknown)
                if batch_func is not None:
                    batch_func(outcome.result.spots)

        run_batches(batches, self._fetch_batch, done, max_workers=self.config.concurrency)
        order = {s: i for i, s in enumerate(symbols)}
        report.spots.sort(key=lambda s: order.get(s.symbol, len(order)))
        report.unknown.sort(key=lambda s: order.get(s, len(order)))
        report.failed_batches.sort(key=lambda f: (f.batch, order.get(f.codes[0], 0) if f.codes else 0))
        report.elapsed = time.perf_counter() - start
        log.debug("fetched", extra={"source": self.source, "summary": report.summary()})
        return report

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals
    def _request(self, symbols: Sequence[str]) -> ParseResult:
        """One attempt: wait for the rate limiter, GET, check the status, decode and parse."""
        codes = [wire_code(s) for s in symbols]
        self.rate_limiter.acquire()
        try:
            response = self._http.get(self.url(codes))
        except httpx.TimeoutException as e:
            raise FetchError(f"timeout ({type(e).__name__})", retryable=True) from e
        except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
            raise FetchError(f"connection error ({type(e).__name__}: {e})", retryable=True) from e
        except httpx.HTTPError as e:
            raise FetchError(f"request failed ({type(e).__name__}: {e})", retryable=False) from e
        status = response.status_code
        if status == 429 or status >= 500:
            raise FetchError(
                f"HTTP {status}", retryable=True, status=status, retry_after=_retry_after(response.headers)
            )
        if status != 200:
            raise FetchError(f"HTTP {status}{self.status_hint(status)}", retryable=False, status=status)
        result = self.parse(decode_body(response.content, response.headers.get("content-type")), symbols)
        if result.error is not None:
            raise FetchError(result.error, retryable=True, status=status)
        return result

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
            self._log_failure(index, symbols, str(e), attempts)
            return _Outcome(None, [FailedBatch(index, tuple(symbols), str(e), attempts, e.status)], attempts)
        except Exception as e:  # a bug in one batch must not stop the others
            log.exception("quote batch crashed", extra={"source": self.source, "batch": index})
            error = f"internal error ({type(e).__name__}: {e})"
            return _Outcome(None, [FailedBatch(index, tuple(symbols), error, attempts)], attempts)
        by_reason: dict[str, list[str]] = {}
        for symbol, reason in result.errors.items():
            by_reason.setdefault(reason, []).append(symbol)
        failures = [FailedBatch(index, tuple(codes), reason, attempts, 200) for reason, codes in by_reason.items()]
        for failure in failures:
            self._log_failure(index, failure.codes, failure.error, attempts)
        return _Outcome(result, failures, attempts)

    def _log_failure(self, index: int, codes: Sequence[str], error: str, attempts: int) -> None:
        log.warning(
            "quote batch failed",
            extra={"source": self.source, "batch": index, "codes": len(codes), "error": error, "attempts": attempts},
        )


def _retry_after(headers: httpx.Headers) -> float | None:
    try:
        value = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value >= 0 else None
