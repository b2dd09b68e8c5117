"""A broker's poll thread: calls ``poll()`` every ``interval`` seconds until stopped, for venues that push
nothing and must be asked (easytrader's today's entrusts and trades; docs/brokers.md, "Order lifecycle
reports").

A failed poll (``poll()`` raised) is counted in ``stats["poll_failures"]``, logged at WARNING (rate-limited:
one line a minute whose ``suppressed=`` field counts the rest) and tried again next interval; the first poll
that works again says so at INFO.  The thread never dies of a failure.  One poll runs at a time, and
:meth:`Poller.poll_now` runs one in the caller's thread, in turn with the thread's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hkrt.core.logs import log_limited

__all__ = ["Poller"]

log = logging.getLogger("hkrt.broker.poll")


class Poller:
    """``poll()`` every ``interval`` seconds on a daemon thread between :meth:`start` and :meth:`stop`.
    ``scrub`` hides secrets in the error texts kept and logged."""

    def __init__(
        self, name: str, poll: Callable[[], None], *, interval: float = 5.0, scrub: Callable[[str], str] = str
    ) -> None:
        if not interval > 0:
            raise ValueError(f"poll interval must be > 0 seconds, not {interval!r}")
        self.name = name
        self.interval = interval
        self._poll = poll
        self._scrub = scrub
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._one_at_a_time = threading.Lock()
        self._failing = 0  # failures in a row
        self.last_error = ""
        self.stats: dict[str, int] = {"polls": 0, "poll_failures": 0}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"hkrt-poll-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling; waits up to ``timeout`` seconds for a poll under way."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_now()
            if self._stop.wait(self.interval):
                return

    def poll_now(self) -> bool:
        """One poll now, in this thread; True when it worked."""
        with self._one_at_a_time:
            try:
                self._poll()
            except Exception as exc:
                self._failed(exc)
                return False
            finally:
                self.stats["polls"] += 1  # polls done (a waiter on it sees a finished poll)
        if self._failing:
            log.info("%s: polling works again after %d failures", self.name, self._failing,
                     extra={"broker": self.name, "failures": self._failing})  # fmt: skip
            self._failing = 0
        return True

    def _failed(self, exc: BaseException) -> None:
        self.stats["poll_failures"] += 1
        self._failing += 1
        text = self._scrub(f"{type(exc).__name__}: {exc}")[:300]
        self.last_error = text
        log_limited(log, logging.WARNING, ("poll", self.name),
                    f"{self.name}: poll failed ({self._failing} in a row, {self.stats['poll_failures']} in all); "
                    f"trying again in {self.interval:g} s: {text}",
                    {"broker": self.name, "failures": self.stats["poll_failures"]})  # fmt: skip
