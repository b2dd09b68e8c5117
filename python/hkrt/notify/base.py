"""What every notifier is made of (docs/alerts.md): its settings, one ``send`` with bounded retries, and
errors as one line with every secret hidden.

A notifier module (``hkrt/notify/<name>.py``) holds a frozen config dataclass built on
:class:`NotifierSettings` (the settings every notifier has) and a :class:`Notifier` subclass that formats
an alert for its API and makes one attempt to deliver it (``_attempt``); this base retries what may pass
on a second try (a 5xx, a 429, a timeout, the API's own "too fast" code), waiting as the API asks
(``retry_after``) or backing off, and counts and logs (once per interval) what never got through.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from hkrt.adapters.redaction import redact_secrets
from hkrt.core.logs import LogLimiter, log_limited
from hkrt.notify.alert import SEVERITIES, Alert, severity_rank
from hkrt.notify.http import Answer, JsonPoster

log = logging.getLogger("hkrt.notify")


@dataclass(frozen=True, kw_only=True)
class NotifierSettings:
    """The settings every notifier has, after its own (``[notify.<name>]`` or ``HKRT_<NAME>_*``)."""

    name: str = ""  # how logs and stats name it (default: its type)
    min_severity: str = "warning"  # alerts below it are not sent here
    kinds: tuple[str, ...] = ("*",)  # the alert kinds sent here ("*": all)
    markdown: bool = True  # markdown where the API renders it, else plain text
    timeout: float = 5.0  # seconds per HTTP phase (connect, each read) or SMTP command
    retries: int = 3  # further attempts after a failed one that may pass on a retry
    backoff: float = 1.0  # seconds before the first retry, doubled each time (capped at max_wait)
    max_wait: float = 60.0  # longest wait before a retry; an API asking more is not retried
    per_minute: float = 0.0  # messages a minute at most (0: the API's documented limit)
    failure_log_interval: float = 300.0  # seconds between two WARNINGs of persistent failure

    def __post_init__(self) -> None:
        if self.min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {', '.join(SEVERITIES)}, not {self.min_severity!r}")
        object.__setattr__(self, "kinds", tuple(self.kinds))
        for name in ("timeout", "max_wait"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, not {getattr(self, name)!r}")
        if self.retries < 0 or self.backoff < 0 or self.per_minute < 0:
            raise ValueError("retries, backoff and per_minute must be >= 0")


@dataclass(frozen=True)
class Outcome:
    """One attempt's result: ``ok``, else the one-line ``error``, whether a retry may pass, and after how
    long the API asks to wait (None: back off)."""

    ok: bool
    error: str = ""
    retry: bool = False
    retry_after: float | None = None


OK = Outcome(True)


@dataclass(frozen=True)
class Delivery:
    """``send``'s result: delivered or not, the error line, the attempts made."""

    ok: bool
    error: str = ""
    attempts: int = 1


class Notifier:
    """Base of the notifiers.  ``send(alert)`` blocks at most about ``(retries + 1) * timeout`` plus the
    waits between attempts; run it off the bus's callback thread (the router's outboxes do)."""

    TYPE: ClassVar[str] = ""
    #: the API's documented limit, messages a minute (``per_minute=0`` takes it)
    PER_MINUTE: ClassVar[float] = 20.0

    def __init__(self, config: NotifierSettings) -> None:
        self.config = config
        self.name = config.name or self.TYPE
        self.stats: collections.Counter[str] = collections.Counter()
        self._failures = LogLimiter(config.failure_log_interval)
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ what a subclass provides
    def _attempt(self, alert: Alert) -> Outcome:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Every secret of the settings, hidden from errors and logs."""
        return []

    # ------------------------------------------------------------------ shared
    @property
    def per_minute(self) -> float:
        return self.config.per_minute or self.PER_MINUTE

    def accepts(self, alert: Alert) -> bool:
        """Whether ``alert`` goes to this notifier (its kinds and minimum severity)."""
        kinds = self.config.kinds
        if "*" not in kinds and alert.kind not in kinds:
            return False
        return severity_rank(alert.severity) >= severity_rank(self.config.min_severity)

    def redact(self, text: str) -> str:
        return redact_secrets(text, self.secrets())

    def send(self, alert: Alert) -> Delivery:
        """Deliver ``alert``, retrying what may pass on a retry; never raises."""
        attempts, outcome = 0, Outcome(False, "not attempted")
        for attempt in range(self.config.retries + 1):
            attempts += 1
            try:
                outcome = self._attempt(alert)
            except OSError as exc:  # no answer: refused, reset, timed out -- may pass on a retry
                outcome = Outcome(False, f"{type(exc).__name__}: {exc}", retry=True)
            except Exception as exc:  # a bug or an unforeseen library error: still one line, still counted
                outcome = Outcome(False, f"{type(exc).__name__}: {exc}", retry=False)
            if outcome.ok:
                self.stats["sent"] += 1
                return Delivery(True, attempts=attempts)
            self.stats["attempts_failed"] += 1
            if not outcome.retry or attempt == self.config.retries:
                break
            delay = outcome.retry_after if outcome.retry_after is not None else self.config.backoff * 2**attempt
            if delay > self.config.max_wait:
                if outcome.retry_after is not None:
                    outcome = Outcome(False, f"{outcome.error} (asked to wait {delay:g} s: not retried)")
                    break
                delay = self.config.max_wait
            self.stats["retries"] += 1
            if self._stopping.wait(delay):
                break
        error = self.redact(f"{self.name}: {outcome.error}")
        self.stats["failed"] += 1
        log_limited(
            log, logging.WARNING, ("notify-failed", self.name), f"alert not delivered: {error}",
            extra={"notifier": self.name, "kind": alert.kind, "attempts": attempts, "failed": self.stats["failed"]},
            limiter=self._failures,
        )  # fmt: skip
        return Delivery(False, error, attempts)

    def close(self) -> None:
        """Stop waiting between attempts (a send in progress ends after its current attempt)."""
        self._stopping.set()

    def __repr__(self) -> str:  # the settings' own repr leaves the secrets out
        return f"{type(self).__name__}({self.config!r})"


class WebhookNotifier(Notifier):
    """A notifier that POSTs JSON to an HTTP API (DingTalk, WeCom, Feishu, Telegram)."""

    def __init__(self, config: NotifierSettings) -> None:
        super().__init__(config)
        self._poster = JsonPoster(config.timeout)

    def _post(self, url: str, payload: dict[str, object], params: dict[str, str] | None = None) -> Answer:
        return self._poster.post(url, payload, params)

    def close(self) -> None:
        super().close()
        self._poster.close()


def http_outcome(status: int, headers: Iterable[tuple[str, str]], what: str) -> Outcome | None:
    """The outcome an HTTP status alone decides (None: 2xx, read the body): 429 and 5xx may pass on a retry
    (after ``Retry-After`` seconds when the server says), any other status will not."""
    if 200 <= status < 300:
        return None
    retry_after = None
    for key, value in headers:
        if key.lower() == "retry-after":
            try:
                retry_after = float(value)
            except ValueError:
                retry_after = None
    if status == 429:
        return Outcome(False, f"{what}: HTTP 429 too many requests", retry=True, retry_after=retry_after)
    if status >= 500:
        return Outcome(False, f"{what}: HTTP {status} server error", retry=True, retry_after=retry_after)
    return Outcome(False, f"{what}: HTTP {status}")


def errcode_outcome(
    answer: Answer, api: str, errors: Mapping[int, str], *, retry_codes: Mapping[int, float] | None = None
) -> Outcome:
    """The outcome of an answer carrying ``{"errcode": N, "errmsg": ...}`` (DingTalk, WeCom): 0 is delivered,
    another code is named (``errors``' words, else the server's); ``retry_codes``: the codes worth a retry,
    with the seconds to wait first."""
    bad = http_outcome(answer.status, answer.headers, api)
    if bad is not None:
        return bad
    if answer.body is None:
        return Outcome(False, f"{api} answered no JSON: {answer.text[:100]!r}")
    code = answer.body.get("errcode")
    if code == 0:
        return OK
    why = errors.get(code) if isinstance(code, int) else None
    wait = (retry_codes or {}).get(code) if isinstance(code, int) else None
    error = f"{api} errcode {code}: {why or answer.body.get('errmsg', '')}"
    return Outcome(False, error, retry=wait is not None, retry_after=wait)


def clock_seconds() -> float:
    """Wall-clock epoch seconds (what signed webhooks put in ``timestamp``)."""
    return time.time()
