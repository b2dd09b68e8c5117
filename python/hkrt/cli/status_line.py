"""The status line of a long-running command (``hkrt demo``, ``spot-server``, ``agent``).

On a terminal it is one line redrawn in place (``\\r``), never wider than the terminal (one column less, so it
never wraps: a wrapped line redrawn with ``\\r`` scrolls a line per redraw), at most every ``refresh`` seconds;
whole parts are left out from the end to fit, and a first part wider than the screen is cut with "...".
Elsewhere (a pipe, a log file, CI) it is a plain line at a bounded rate: when the caller says the state
changed, else at most every ``every`` seconds.

The standard library, not rich: the line is a few counters joined by two spaces, which ``shutil`` (the width,
re-read at each redraw, so a resized window is followed) and ``unicodedata`` (columns of wide characters, e.g. a
Chinese path in an address) cover, and ``import hkrt`` / ``hkrt --help`` stay lean.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import TextIO

TTY_REFRESH_S = 0.25  # seconds between redraws on a terminal
LOG_EVERY_S = 10.0  # seconds between plain lines when nothing changed (a pipe, a log)
MIN_WIDTH = 20  # a status line is cut to no fewer columns, however narrow the terminal says it is


def columns(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide and full-width characters take two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, ending in "..." when it had to be cut."""
    if columns(text) <= width:
        return text
    room, out = max(0, width - 3), []
    for c in text:
        room -= columns(c)
        if room < 0:
            break
        out.append(c)
    return "".join(out) + "..."[: max(0, width)]


def fit(parts: Sequence[str], width: int | None, sep: str = "  ") -> str:
    """Join ``parts`` leaving out the last ones that do not fit in ``width`` columns; the first part alone is
    cut short with "..." if it is wider.  Empty parts are skipped; ``width`` None: all of them."""
    kept = [p for p in parts if p]
    if width is None or not kept:
        return sep.join(kept)
    line = cut(kept[0], width)
    used = columns(line)
    for part in kept[1:]:
        more = columns(sep) + columns(part)
        if used + more > width:
            break
        line += sep + part
        used += more
    return line


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed
        return False


def terminal_width(stream: TextIO | None = None) -> int | None:
    """Columns a status line may use on ``stream`` (default stdout): the terminal's less one, so it never wraps
    (``COLUMNS`` wins when set, as the shell sets it); None when ``stream`` is not a terminal."""
    stream = sys.stdout if stream is None else stream
    if not is_terminal(stream):
        return None
    return max(MIN_WIDTH, shutil.get_terminal_size().columns - 1)


class StatusLine:
    """A command's status line on ``out`` (default stdout); thread-safe (bars printed from a callback thread
    share the terminal with the redraws)."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        refresh: float = TTY_REFRESH_S,
        every: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = sys.stdout if out is None else out
        self.tty = is_terminal(self.out)
        self.refresh = refresh
        self.every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._drawn = 0  # columns of the status now on the screen (a terminal), 0: none
        self._last: float | None = None  # when it was last drawn or printed
        self._log_gap: _LogGap | None = None
        self.last_text = ""

    def width(self) -> int | None:
        """Columns the line may take (None: not a terminal, no limit)."""
        return terminal_width(self.out) if self.tty else None

    def show(self, parts: Sequence[str] | str, *, changed: bool = False, force: bool = False) -> bool:
        """Show the status (``parts`` joined by two spaces, or one text): redrawn on a terminal when ``refresh``
        has passed; printed as a line elsewhere when ``changed``, or ``every`` seconds have passed.  ``force``:
        now, whatever the rate.  True if it was written."""
        now = self._clock()
        with self._lock:
            wait = self.refresh if self.tty else (0.0 if changed else self.every)
            if not force and self._last is not None and now - self._last < wait:
                return False
            self._last = now
            pieces = [parts] if isinstance(parts, str) else list(parts)
            self.last_text = fit(pieces, self.width())
            if self.tty:
                self._redraw(self.last_text)
            else:
                self._write(self.last_text + "\n")
            return True

    def print(self, text: str) -> None:
        """A line of its own above the status (a bar, a notice); the status comes back at its next redraw."""
        with self._lock:
            self._clear()
            self._write(text + "\n")

    def clear(self) -> None:
        """Blank the status on the terminal (a log line is about to be written there); it comes back at its
        next redraw."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self._write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def hold_logs(self) -> StatusLine:
        """Until :meth:`finish`: a log line of hkrt's to a terminal (stderr) blanks the status first, instead of
        being glued to its end."""
        if self.tty and self._log_gap is None:
            self._log_gap = _LogGap(self)
            for handler in _terminal_handlers():
                handler.addFilter(self._log_gap)
        return self

    def __enter__(self) -> StatusLine:
        return self.hold_logs()

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self, parts: Sequence[str] | str | None = None) -> None:
        """End the status: the last state shown once more (if given), and the terminal's line ended."""
        if parts is not None:
            self.show(parts, force=True)
        with self._lock:
            if self.tty and self._drawn:
                self._write("\n")
                self._drawn = 0
        if self._log_gap is not None:
            for handler in _terminal_handlers():
                handler.removeFilter(self._log_gap)
            self._log_gap = None

    def _redraw(self, text: str) -> None:
        shown = columns(text)
        pad = " " * max(0, self._drawn - shown)  # blank what a longer previous line leaves
        self._write("\r" + text + pad)
        self._drawn = shown

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


class _LogGap(logging.Filter):
    """Blanks the status line before a log record is written to the terminal it is drawn on."""

    def __init__(self, status: StatusLine) -> None:
        super().__init__()
        self.status = status

    def filter(self, record: logging.LogRecord) -> bool:
        self.status.clear()
        return True


def _terminal_handlers() -> list[logging.Handler]:
    """The stream handlers of hkrt's logger (and the root's) that write to a terminal."""
    found: list[logging.Handler] = []
    for logger in (logging.getLogger("hkrt"), logging.getLogger()):
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and is_terminal(getattr(handler, "stream", None)):
                found.append(handler)
    return found
