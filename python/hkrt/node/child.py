"""``python -m hkrt.node.child COMMAND ARGS...``: an hkrt CLI command run as a child of ``hkrt node``.

The same as ``hkrt COMMAND ARGS...`` plus two things a supervised child needs:

- Windows: the node stops a child with CTRL_BREAK_EVENT (a console's only signal that reaches a process
  group of its own); here it becomes what Ctrl-C does to the command (its SIGINT handler, else
  KeyboardInterrupt), so the command stops cleanly (the agent flushes its store, a strategy reports).
- POSIX: the child runs in a session of its own (the terminal's Ctrl-C is the node's), so it would outlive
  a node killed with SIGKILL: a watcher thread sees the parent change and stops the command with SIGTERM,
  then ends the process after ``ORPHAN_GRACE_S`` if the command has not stopped by then.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

ORPHAN_GRACE_S = 15.0  # seconds a child whose node died has to stop cleanly before it exits regardless


def _break_as_interrupt() -> None:
    def on_break(signum: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGBREAK, on_break)  # type: ignore[attr-defined]


def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        # the node is gone, and with it the reader of our output: what the stop prints goes nowhere (instead
        # of failing with BrokenPipeError halfway), then stop as if the node had asked
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.kill(os.getpid(), signal.SIGTERM)
        # a command that does not stop within the grace (a server still waiting for subscribers that will never
        # come) ends here: with the node gone nobody else would ever stop it
        time.sleep(ORPHAN_GRACE_S)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="hkrt-node-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if os.name == "nt":
        _break_as_interrupt()
    else:
        _watch_parent(os.getppid())
    from hkrt.cli import main as cli

    cli.main(args=args, prog_name="hkrt")


if __name__ == "__main__":
    main()
