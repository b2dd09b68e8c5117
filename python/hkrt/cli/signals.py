"""How every ``hkrt`` command ends on Ctrl-C and SIGTERM (SIGBREAK on Windows): its own clean stop, one line, and
the shell's exit status 128 + the signal (130 for Ctrl-C, 143 for SIGTERM), never a traceback.

Two ways, one convention:

- :func:`install_default_handlers` (the ``hkrt`` group runs it before any command): a stop signal raises
  :class:`Stopped` in the main thread, a ``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` and
  ``finally`` on the way out runs for SIGTERM as it does for Ctrl-C; the group turns it into one line and the
  status (:func:`stopped_line`).
- :class:`StopSignals`, for a command with a stop of its own (a server's loop, a strategy's run): the first
  signal asks it to stop (``on_stop``) and is remembered; the command finishes its report, then
  :meth:`StopSignals.exit` ends it with the status.  A second signal while it is stopping raises
  :class:`Stopped` (the user insists).

``signal`` is imported here on every platform (Windows has SIGINT, SIGTERM and SIGBREAK); a handler is set only
in the main thread and only over the default one, so a signal the parent ignores (``nohup``, a background job's
SIGINT) stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGBREAK")  # SIGBREAK: Windows' Ctrl-Break (hkrt node's stop there)


def stop_signals() -> list[int]:
    """The stop signals this platform has."""
    return [int(getattr(signal, name)) for name in STOP_SIGNAL_NAMES if hasattr(signal, name)]


def exit_status(signum: int) -> int:
    """The shell's convention for a process ended by ``signum``: 128 + its number."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Stopped(KeyboardInterrupt):
    """A stop signal, raised in the main thread: a ``KeyboardInterrupt`` that knows which signal came."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = int(signum)


def signum_of(interrupt: BaseException) -> int:
    """The signal behind a ``KeyboardInterrupt`` (a plain one is Ctrl-C's SIGINT)."""
    return getattr(interrupt, "signum", int(signal.SIGINT))


def stopped_line(command: str | None, signum: int) -> str:
    """The one line a command stopped by a signal ends with."""
    return f"{'hkrt ' + command if command else 'hkrt'}: stopped by {signal_name(signum)}"


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def _is_default(handler: Any, signum: int) -> bool:
    return handler is signal.SIG_DFL or (signum == signal.SIGINT and handler is signal.default_int_handler)


def install_default_handlers() -> dict[int, Any]:
    """Make each stop signal raise :class:`Stopped` where it still has its default action (main thread only).
    Returns the handlers replaced, for :func:`restore_handlers` (a command run in-process, as by click's
    CliRunner, leaves the caller's as they were)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced = {}
    for signum in stop_signals():
        previous = signal.getsignal(signum)
        if _is_default(previous, signum):
            replaced[signum] = previous
            signal.signal(signum, _raise_stopped)
    return replaced


def restore_handlers(handlers: dict[int, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


class StopSignals:
    """A command's own clean stop on Ctrl-C, SIGTERM or SIGBREAK (use it as a context manager: the previous
    handlers come back on exit).

    The first signal sets :attr:`signum`, wakes :meth:`wait` and calls ``on_stop`` (on the main thread,
    between two bytecodes: it must only set a flag or an event); a second one raises :class:`Stopped`."""

    def __init__(self, on_stop: Callable[[], Any] | None = None) -> None:
        self.signum: int | None = None
        self._on_stop = on_stop
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in stop_signals():
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.restore()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise Stopped(signum)
        self.signum = int(signum)
        self._event.set()
        if self._on_stop is not None:
            self._on_stop()

    @property
    def stopping(self) -> bool:
        return self.signum is not None

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once on a stop signal; True if one came."""
        return self._event.wait(seconds)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def exit(self) -> None:
        """End the command with 128 + the signal when one stopped it (else return)."""
        if self.signum is not None:
            raise SystemExit(exit_status(self.signum))


def strategy_stop_signals(strategy: Any) -> StopSignals:
    """:class:`StopSignals` that stop ``strategy``'s run (``hkrt run``, ``hkrt demo``), also when the signal
    came before the run began: a run clears a stop asked before it, so the strategy's first callback asks
    again."""
    stopped_by = StopSignals(on_stop=strategy.stop)

    @strategy.on_start  # type: ignore[untyped-decorator,unused-ignore]
    def stop_if_signalled() -> None:
        if stopped_by.stopping:
            strategy.stop()

    return stopped_by
