"""A consumer process for tests/test_redis_feed.py (started with the ``spawn`` method): an agent that
reads a batch from its consumer group and then hangs in its hook, so that the batch stays pending,
unacknowledged, until the test kills the process."""

from __future__ import annotations

import threading


def run_stuck_agent(url: str, group: str, consumer: str) -> None:
    import hkrt

    agent = hkrt.SpotAgent(callback_queue=1)  # a full callback queue makes the receiver wait for the hook
    never = threading.Event()
    agent.on_cycle(lambda info: never.wait())
    agent.start_redis(url, group, consumer=consumer)
    never.wait()
