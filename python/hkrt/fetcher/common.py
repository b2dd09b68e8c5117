"""What every quote source shares, HTTP or not: reports, failure reasons, symbol checks, batching,
statement parsing, the rate limiter.

Nothing here imports an HTTP library, so the QMT source (``qmt.py``, on Windows) and the QMT broker
use it without loading httpx; :mod:`hkrt.fetcher.base` re-exports every name for the HTTP sources.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hkrt._hkrt import Spot, normalize_symbol

Codes = str | Iterable[str]
BatchFunc = Callable[[list[Spot]], Any]
T = TypeVar("T")


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


# Why a batch (or part of one) gave no quote: a short stable name, for counters, logs and tests.
# No answer at all:
CONNECT = "connect"  # could not connect (refused, unreachable, name not resolved, connect timeout)
TIMEOUT = "timeout"  # one read or write waited longer than ``timeout``
DEADLINE = "deadline"  # the whole request (connect + every read) ran past ``deadline``: a trickling answer
DROPPED = "dropped"  # the connection closed or was reset before the answer was complete
TOO_LARGE = "too_large"  # the answer was (or announced itself) larger than ``max_body_bytes``
DECODE = "decode"  # the body could not be decoded (a corrupt gzip stream, an unknown Content-Encoding)
VOID = "void_answer"  # an answer with no quote in it at all: an HTML page, 访问过于频繁, sys_auth="FAILED"
REQUEST = "request"  # the request could not be made (a bad proxy URL, ...)
INTERNAL = "internal"  # a bug in hkrt: logged with its traceback
# An answer came, but some codes of it did not give a quote (these are worth asking again at once):
TRUNCATED = "truncated"  # the body ends inside a statement: that code and the ones after it are cut off
MISSING = "missing"  # a source that echoes every code left this one out
MALFORMED = "malformed"  # the code's line could not be read
ANSWER_REASONS = frozenset({TRUNCATED, MISSING, MALFORMED})


def http_reason(status: int) -> str:
    return f"http_{status}"


def failure_reason(error: str, status: int | None = None) -> str:
    """The reason name of an error text, for failures made without one (the QMT client)."""
    text = error.lower()
    for prefix, reason in (
        ("cut off", TRUNCATED),
        ("missing", MISSING),
        ("malformed", MALFORMED),
        ("timeout", TIMEOUT),
        ("deadline", DEADLINE),
        ("connection error", CONNECT),
        ("answer too large", TOO_LARGE),
    ):
        if text.startswith(prefix):
            return reason
    if status is not None and status != 200:
        return http_reason(status)
    return "source_error"


@dataclass(frozen=True)
class FailedBatch:
    """Symbols of one batch that got no quote, and why (``reason``: one of the names above)."""

    batch: int  # index of the batch in its fetch
    codes: tuple[str, ...]  # normalised symbols
    error: str  # what happened, in words
    attempts: int  # HTTP requests made for the batch
    status: int | None = None  # the last HTTP status, if an answer came
    reason: str = ""  # "deadline", "too_large", "http_503", "connect", ...; derived from error when not given

    def __post_init__(self) -> None:
        if not self.reason:
            object.__setattr__(self, "reason", failure_reason(self.error, self.status))


class BatchFailures:
    """What a report with ``failed_batches`` says about them (fetch and pull reports alike)."""

    failed_batches: list[FailedBatch]

    @property
    def ok(self) -> bool:
        """True when no batch (or part of one) failed; unknown and invalid codes are not failures."""
        return not self.failed_batches

    @property
    def failed_codes(self) -> list[str]:
        return [code for batch in self.failed_batches for code in batch.codes]

    @property
    def failures(self) -> dict[str, int]:
        """Failed batches (or parts of batches) per reason, e.g. ``{"deadline": 1, "http_503": 2}``."""
        counts: dict[str, int] = {}
        for failed in self.failed_batches:
            counts[failed.reason] = counts.get(failed.reason, 0) + 1
        return counts


@dataclass
class FetchReport(BatchFailures):
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

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.failures.items()))
        return (
            f"{self.source}: {len(self.spots)}/{self.requested} spots in {self.batches} batches, "
            f"{self.requests} requests, {len(self.failed_codes)} failed{f' ({reasons})' if reasons else ''}, "
            f"{len(self.unknown)} unknown, {len(self.invalid)} invalid, {self.elapsed:.3f}s"
        )


class FetchError(Exception):
    """A request that gave no usable answer; ``retryable`` says whether trying again may help, ``reason``
    names the failure (see :class:`FailedBatch`)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.reason = reason or failure_reason(message, status)


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
    cut = None
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
    # void: not one statement, not even a cut one (a body cut inside its first statement is truncated)
    if result.error is None and result.statements == 0 and cut is None and (wanted is None or wanted):
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
