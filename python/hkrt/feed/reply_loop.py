"""The loop of an nng reply (REP) socket, shared by every request/reply server of hkrt (the trader process,
the dashboard relay): receive a request, answer it, send the answer, until told to stop.

An answer that cannot be sent (the asker went away, the socket closed meanwhile) is dropped here on purpose:
both protocols' askers re-ask from where they are, so a lost reply loses nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any


def serve_replies(
    sock: Any, stop: threading.Event, answer: Callable[[bytes], bytes], turned: Callable[[], None] | None = None
) -> None:
    """Answer each request on ``sock`` (a pynng ``Rep0`` with a receive timeout, so ``stop`` is seen) with
    ``answer(request)`` until ``stop`` is set or the socket is closed.  ``answer`` turns every failure of
    its own into a reply: nothing it raises is caught here.  ``turned``: called at each turn of the loop (at
    least once per receive timeout), e.g. a heartbeat that tells a live loop from a frozen one."""
    import pynng

    while not stop.is_set():
        if turned is not None:
            turned()
        try:
            data = sock.recv()
        except pynng.Timeout:
            continue
        except pynng.Closed:
            return
        reply = answer(data)
        with contextlib.suppress(pynng.Timeout, pynng.Closed):
            sock.send(reply)
