"""The agent's receiver over a Redis stream (:meth:`hkrt.SpotAgent.start_redis`): a function that takes
the agent and uses its private parts, like :mod:`hkrt.agent.recovery`.

Every message read goes through the same steps as one received on nng (verification, sequence and
cycle tracking, gap reports, retransmission, journal, hooks); it is acknowledged to the group only
after that, so a crash between reading and taking leaves it pending for the restarted (or another)
consumer.  Between reads the agent's idle duties run as on nng (silence, the wall-clock close).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.feed.redis_reader import RedisGroupReader

log = logging.getLogger("hkrt.agent")

BLOCK_SECONDS = 0.1  # a read waits this long for new entries, then the idle duties run


def receive(agent: SpotAgent, reader: RedisGroupReader) -> None:
    """The receiver thread's loop: read, take, acknowledge, until the agent stops."""
    while not agent._stopping.is_set():
        entries = reader.read(BLOCK_SECONDS)
        if not entries:
            agent._idle()
            continue
        taken: list[bytes] = []
        for entry_id, message in entries:
            if message is not None:  # None: trimmed before it was acknowledged (the sequence gap tells)
                try:
                    agent._handle_message(message, live=True)
                except Exception:  # a bug must not kill the feed: log it and go on
                    log.exception("failed to handle a message of %d bytes", len(message))
            taken.append(entry_id)
        reader.ack(taken)
        now = time.monotonic()
        if now >= agent._next_clock_close_check:  # the wall-clock close needs no more than 1/s
            agent._next_clock_close_check = now + 1.0
            agent._close_by_clock()
