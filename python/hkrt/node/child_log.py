"""A child's output (stdout and stderr together) copied line by line into its own log file, bounded by rotation.

One thread per child reads the pipe in chunks, never a whole line at once: a child that redraws a status line
with carriage returns and no newline (``hkrt spot-server`` on a pipe) cannot grow a buffer; a carriage return
ends a line like a newline does, and a line longer than ``MAX_LINE`` is cut into pieces of that size.  The
file is rotated at ``max_bytes`` keeping ``backups`` older ones (``spot-server.log.1`` ...), so a node
running for months holds at most ``(backups + 1) * max_bytes`` per child.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

MAX_LINE = 64 * 1024  # bytes of a line at most: a longer one is written in pieces
CHUNK = 64 * 1024
_URL_PASSWORD = re.compile(r"(\w+://[^/\s:@]*:)[^@\s]*(@)")  # scheme://user:PASSWORD@
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)


def shown_command(argv: Sequence[str]) -> str:
    """A child's command line as its log shows it: any URL's password (``scheme://user:pw@``,
    ``?password=``) masked as ``***``."""
    text = " ".join(argv)
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\2", text))


class ChildLog:
    """The rotating log file of one child, written by the pump threads of its successive processes."""

    def __init__(self, path: Path, *, max_bytes: int = 10 << 20, backups: int = 3) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", errors="replace"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._lock = threading.Lock()
        self.lines = 0
        self.cut_lines = 0  # cuts made in lines longer than MAX_LINE

    def write(self, line: str) -> None:
        with self._lock:
            self.lines += 1
            self._handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def note(self, text: str) -> None:
        """A line of the supervisor's own (a start, an exit), dated."""
        self.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} node: {text} ----")

    def pump(self, stream: IO[bytes], name: str) -> threading.Thread:
        """Start copying ``stream`` (a child's stdout) here until it closes."""
        thread = threading.Thread(target=self._copy, args=(stream,), name=f"hkrt-node-log-{name}", daemon=True)
        thread.start()
        return thread

    def _copy(self, stream: IO[bytes]) -> None:
        pending = b""
        read = getattr(stream, "read1", stream.read)
        try:
            while True:
                chunk = read(CHUNK)
                if not chunk:
                    break
                pending += chunk
                lines = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
                pending = lines.pop()
                while len(pending) > MAX_LINE:  # a line without an end: written in MAX_LINE pieces
                    lines.append(pending[:MAX_LINE])
                    pending = pending[MAX_LINE:]
                    self.cut_lines += 1
                for raw in lines:
                    if raw.strip():
                        self.write(raw.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass  # the pipe closed under us: the process is gone
        finally:
            if pending.strip():
                self.write(pending.decode("utf-8", "replace"))
            stream.close()

    def close(self) -> None:
        with self._lock:
            self._handler.close()
