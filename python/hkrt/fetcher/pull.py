"""A pull session: one quote source asked for the same codes cycle after cycle, losing none quietly.

A single answer is weak evidence.  A body can be cut short, a host can leave a few lines out under
load, and Tencent leaves out the codes it does not know, so an incomplete answer and "no such code"
look alike there.  :class:`PullSession` wraps a client (``QQClient``, ``SinaClient``, ``QmtClient``)
and keeps, per code, what the source said over time:

* **missing** - asked for, and the answer came without it (cut off, left out of an echoing source's
  answer, an unreadable line): asked again *in the same cycle* in smaller batches, and in the next
  cycle if still missing.  Never counted as unknown.
* **unknown** - the source said it does not know the code (Sina's empty line, Tencent leaving it out
  of a complete answer, QMT not returning it).  Only after ``drop_after`` cycles *running* that say
  so is the code dropped from later cycles; a quote in between resets the count, and a cycle whose
  batch failed says nothing either way.
* **dropped** codes are asked again on the first cycle of every new trading day (a newly listed code
  then appears), and come back for good as soon as they give a quote.

``session.fetch(codes)`` returns a :class:`PullReport`; ``session.stats()`` the totals
(``missing_retried``, ``dropped``, ``reprobed`` ...).  One session is used from one thread.
State is a few entries per code of the universe asked for, so it is bounded by the code space.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hkrt._hkrt import Spot
from hkrt.core.calendar import TradingCalendar
from hkrt.core.china_time import CHINA_TZ, china_now
from hkrt.fetcher.common import (  # not .base: a QMT pull session must not load httpx
    ANSWER_REASONS,
    BatchFailures,
    BatchFunc,
    Codes,
    FailedBatch,
    FetchReport,
    validate_codes,
)

log = logging.getLogger("hkrt.fetcher.pull")
CHINA = CHINA_TZ


class QuoteClient(Protocol):
    """What a session needs of a client: ``fetch(codes, batch_func) -> FetchReport``."""

    source: str

    def fetch(self, codes: Codes, batch_func: BatchFunc | None = None) -> FetchReport: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PullConfig:
    drop_after: int = 3  # cycles running that answer "unknown" before a code is dropped
    retry_batch_size: int = 50  # codes per request when re-asking the missing ones in the same cycle
    retry_rounds: int = 1  # same-cycle passes over the codes still missing

    def __post_init__(self) -> None:
        if self.drop_after < 1 or self.retry_batch_size < 1 or self.retry_rounds < 0:
            raise ValueError(
                f"drop_after and retry_batch_size must be >= 1 and retry_rounds >= 0, got drop_after="
                f"{self.drop_after} retry_batch_size={self.retry_batch_size} retry_rounds={self.retry_rounds}"
            )


@dataclass
class PullReport(BatchFailures):
    """One cycle of a session: what came, what is still missing and why, and what changed."""

    source: str
    spots: list[Spot] = field(default_factory=list)
    failed_batches: list[FailedBatch] = field(default_factory=list)  # still without a quote after retries
    unknown: list[str] = field(default_factory=list)  # answered "no such code" in this cycle
    invalid: list[str] = field(default_factory=list)  # not a symbol: never sent
    asked: int = 0  # codes asked for (dropped ones left out, re-probed ones in)
    requests: int = 0
    missing_retried: list[str] = field(default_factory=list)  # re-asked in this cycle: an answer lacked them
    missing_recovered: int = 0  # of those, how many the retry delivered
    dropped: list[str] = field(default_factory=list)  # dropped in this cycle
    reprobed: list[str] = field(default_factory=list)  # dropped codes asked again: a new trading day
    revived: list[str] = field(default_factory=list)  # dropped codes that gave a quote again
    elapsed: float = 0.0

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.failures.items()))
        return (
            f"{self.source}: {len(self.spots)}/{self.asked} spots, {self.requests} requests, "
            f"{len(self.failed_codes)} failed{f' ({reasons})' if reasons else ''}, {len(self.unknown)} unknown, "
            f"{len(self.missing_retried)} missing re-asked ({self.missing_recovered} recovered), "
            f"{len(self.dropped)} dropped, {len(self.reprobed)} re-probed, {len(self.revived)} revived, "
            f"{self.elapsed:.3f}s"
        )


class PullSession:
    """A client asked cycle after cycle, with missing codes re-asked and unknown ones dropped only when
    the source keeps saying so.  ``PullSession(client, drop_after=3, ...)`` or with a :class:`PullConfig`.

    ``calendar`` says which days are trading days (default: the China exchanges'); ``clock`` gives the
    China wall time (tests inject one).  Closing the session closes its client.
    """

    def __init__(
        self,
        client: QuoteClient,
        config: PullConfig | None = None,
        *,
        calendar: TradingCalendar | None = None,
        clock: Callable[[], dt.datetime] = china_now,
        **options: Any,
    ) -> None:
        if config is None:
            config = PullConfig(**options)
        elif options:
            raise TypeError("give either a PullConfig or its fields as keywords, not both")
        self.client = client
        self.config = config
        self._calendar = calendar if calendar is not None else TradingCalendar.china()
        self._clock = clock
        self._unknown_streak: dict[str, int] = {}  # code -> cycles running answered unknown
        self._dropped: dict[str, dt.date] = {}  # code -> the day it was dropped
        self._reprobe: set[str] = set()  # dropped codes to ask again (until the source answers them)
        self._day: dt.date | None = None
        self._invalid_logged: set[str] = set()
        self._stats: dict[str, int] = dict.fromkeys(
            ("cycles", "requests", "spots", "failed_batches", "missing_retried", "missing_recovered", "dropped",
             "reprobed", "revived"), 0,
        )  # fmt: skip

    @property
    def source(self) -> str:
        return str(getattr(self.client, "source", type(self.client).__name__))

    @property
    def dropped(self) -> list[str]:
        """The codes left out of the cycles now, because the source said it does not know them."""
        return sorted(self._dropped)

    def stats(self) -> dict[str, int]:
        """Totals over the session (cycles, requests, spots, failed_batches, missing_retried,
        missing_recovered, dropped, reprobed, revived) and now: dropped_now, unknown_streaks (codes
        answered unknown at least once in a row, not yet dropped)."""
        streaks = sum(1 for code, n in self._unknown_streak.items() if n and code not in self._dropped)
        return {**self._stats, "dropped_now": len(self._dropped), "unknown_streaks": streaks}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PullSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- a cycle
    def fetch(self, codes: Codes, batch_func: BatchFunc | None = None) -> PullReport:
        """One cycle over ``codes`` (the whole universe each time: the session leaves the dropped ones
        out itself).  ``batch_func(spots)`` is called per answered batch, retries included."""
        started = time.perf_counter()
        self._new_day(self._clock().date())
        symbols, invalid = validate_codes(codes)
        passthrough = self._invalid(invalid)
        reprobed = [s for s in symbols if s in self._dropped and s in self._reprobe]
        ask = [s for s in symbols if s not in self._dropped or s in self._reprobe]
        first = self.client.fetch(ask + passthrough, batch_func)
        report = PullReport(
            self.source,
            spots=list(first.spots),
            unknown=list(first.unknown),
            invalid=invalid,
            asked=len(ask),
            requests=first.requests,
            reprobed=reprobed,
        )
        failures = list(first.failed_batches)
        delivered = {s.symbol for s in first.spots}
        for _ in range(self.config.retry_rounds):
            again = _unique(c for f in failures if f.reason in ANSWER_REASONS for c in f.codes if c not in delivered)
            if not again:
                break
            failures = [f for f in failures if f.reason not in ANSWER_REASONS]
            retry = self._fetch_smaller(again, batch_func)
            report.missing_retried += again
            report.requests += retry.requests
            report.spots += retry.spots
            report.unknown += [s for s in retry.unknown if s not in report.unknown]
            failures += retry.failed_batches
            got = {s.symbol for s in retry.spots}
            report.missing_recovered += sum(1 for c in again if c in got)
            delivered |= got
        report.failed_batches = failures
        report.unknown = [c for c in report.unknown if c not in delivered]
        self._verdicts(ask, delivered, set(report.unknown), report)
        order = {s: i for i, s in enumerate(symbols)}
        report.spots.sort(key=lambda s: order.get(s.symbol, len(order)))
        report.elapsed = time.perf_counter() - started
        self._count(report)
        if report.missing_retried:
            log.info(
                "re-asked %d codes missing from an answer: %d delivered",
                len(report.missing_retried),
                report.missing_recovered,
                extra={"source": self.source, "retried": len(report.missing_retried),
                       "recovered": report.missing_recovered},
            )  # fmt: skip
        return report

    def _new_day(self, today: dt.date) -> None:
        """On the first cycle of a new trading day, every dropped code is due to be asked again."""
        if self._day is None or today <= self._day:
            self._day = self._day or today
            return
        self._day = today
        # A day past the calendar's coverage cannot be judged: re-probe rather than fail the cycle.
        if self._dropped and (not self._calendar.covers(today) or self._calendar.is_trading_day(today)):
            self._reprobe.update(self._dropped)
            log.info(
                "re-probing %d dropped codes on a new trading day",
                len(self._dropped),
                extra={"source": self.source, "day": today.isoformat(), "count": len(self._dropped)},
            )

    def _invalid(self, invalid: list[str]) -> list[str]:
        """Codes that are not symbols: an HTTP client would only report them (they are reported here,
        logged once); another client (QMT takes "SH" for a whole market) gets them as given."""
        if not _is_http_client(self.client):
            return invalid
        new = [c for c in invalid if str(c) not in self._invalid_logged]
        if new:
            self._invalid_logged.update(map(str, new))
            log.warning("invalid codes never sent: %s", ", ".join(map(repr, new[:10])), extra={"source": self.source})
        return []

    def _fetch_smaller(self, codes: list[str], batch_func: BatchFunc | None) -> FetchReport:
        if _is_http_client(self.client):
            size = min(self.config.retry_batch_size, max(1, self.client.config.batch_size // 2))
            return self.client.fetch(codes, batch_func, batch_size=size)
        return self.client.fetch(codes, batch_func)

    def _verdicts(self, asked: Sequence[str], delivered: set[str], unknown: set[str], report: PullReport) -> None:
        """What this cycle says of each code asked: a quote resets its unknown count (and revives a
        dropped code), an unknown answer adds one (and drops it at ``drop_after``), no answer changes
        nothing."""
        today = self._day or self._clock().date()
        for code in asked:
            if code in delivered:
                self._unknown_streak.pop(code, None)
                self._reprobe.discard(code)
                if self._dropped.pop(code, None) is not None:
                    report.revived.append(code)
            elif code in unknown:
                streak = self._unknown_streak[code] = self._unknown_streak.get(code, 0) + 1
                self._reprobe.discard(code)
                if code not in self._dropped and streak >= self.config.drop_after:
                    self._dropped[code] = today
                    report.dropped.append(code)
        if report.dropped:
            log.info(
                "dropped %d codes the source answered unknown %d cycles running (re-probed each trading day): %s",
                len(report.dropped),
                self.config.drop_after,
                ", ".join(report.dropped[:10]) + (" ..." if len(report.dropped) > 10 else ""),
                extra={"source": self.source, "count": len(report.dropped)},
            )
        if report.revived:
            log.info(
                "%d dropped codes give quotes again (newly listed?): %s",
                len(report.revived),
                ", ".join(report.revived[:10]) + (" ..." if len(report.revived) > 10 else ""),
                extra={"source": self.source, "count": len(report.revived)},
            )

    def _count(self, report: PullReport) -> None:
        s = self._stats
        s["cycles"] += 1
        s["requests"] += report.requests
        s["spots"] += len(report.spots)
        s["failed_batches"] += len(report.failed_batches)
        s["missing_retried"] += len(report.missing_retried)
        s["missing_recovered"] += report.missing_recovered
        s["dropped"] += len(report.dropped)
        s["reprobed"] += len(report.reprobed)
        s["revived"] += len(report.revived)


def _is_http_client(client: object) -> bool:
    """Whether ``client`` is an :class:`~hkrt.fetcher.base.HttpFetcher`, without importing httpx: if
    hkrt.fetcher.base was never imported, no such client can exist in this process."""
    base = sys.modules.get("hkrt.fetcher.base")
    return base is not None and isinstance(client, base.HttpFetcher)


def _unique(codes: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(codes))


def pull_session(source: str = "qq", *, base_url: str | None = None, **options: Any) -> PullSession:
    """A session over a new HTTP client of ``source``; ``options`` are the client's config fields, and
    ``drop_after``, ``retry_batch_size``, ``retry_rounds`` the session's."""
    from hkrt.fetcher import make_client

    session_options = {k: options.pop(k) for k in ("drop_after", "retry_batch_size", "retry_rounds") if k in options}
    return PullSession(make_client(source, base_url=base_url, **options), **session_options)
