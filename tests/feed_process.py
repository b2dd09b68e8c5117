"""Publisher processes for the transport tests (started with the ``spawn`` method: nng is
not fork-safe).  Each publishes cycles of a small synthetic market."""

from __future__ import annotations

import datetime as dt
import time

DAY = dt.date(2026, 11, 20)


def wait_for_subscribers(publisher, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(publisher._socket.pipes) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # let the subscriptions settle


def publish_day_slice(
    address: str,
    subscribers: int,
    n_symbols: int,
    cycles: int,
    max_part_spots: int,
    publisher_id: int | None = None,
    skip_sequences_after: int | None = None,
    pause: float = 0.0,
) -> int:
    """Publish the first ``cycles`` pushes of a synthetic day; returns the publisher id."""
    from hkrt.core.synthetic import synthetic_day
    from hkrt.feed.transport import SpotPublisher

    with SpotPublisher(address, publisher_id=publisher_id, max_part_spots=max_part_spots) as pub:
        wait_for_subscribers(pub, subscribers)
        for i, push in enumerate(synthetic_day(n_symbols, DAY)):
            if i == cycles:
                break
            if skip_sequences_after is not None and i == skip_sequences_after:
                pub.sequence += 3  # as if three messages were lost on the way
            pub.publish(push.columns())
            if pause:
                time.sleep(pause)
        time.sleep(0.2)  # let the last messages leave before the socket closes
        return pub.publisher_id


def publish_with_pause(
    address: str,
    n_symbols: int,
    cycles: int,
    pause_after: int,
    resume,
    record: str,
    max_part_spots: int,
    pause: float = 0.002,
    linger: float = 0.2,
    wait_subscriber: bool = True,
) -> None:
    """Publish ``cycles`` pushes of a synthetic day, recording every message; after
    ``pause_after`` of them wait for ``resume`` (an Event) and a subscriber, then go on.
    ``linger``: seconds to stay up afterwards (heartbeats, retransmission requests)."""
    from hkrt.core.synthetic import synthetic_day
    from hkrt.feed.transport import SpotPublisher

    with SpotPublisher(address, max_part_spots=max_part_spots, record=record) as pub:
        if wait_subscriber:
            wait_for_subscribers(pub, 1)
        for i, push in enumerate(synthetic_day(n_symbols, DAY)):
            if i == cycles:
                break
            if i == pause_after:
                resume.wait(60)
                wait_for_subscribers(pub, 1)
                time.sleep(0.3)
            pub.publish(push.columns())
            time.sleep(pause)
        time.sleep(linger)


def run_journaling_agent(address: str, journal_dir: str) -> None:
    """An agent that journals what it receives, until it is killed."""
    from hkrt.agent.spot_agent import SpotAgent

    SpotAgent(journal_dir=journal_dir).start(address)
    while True:
        time.sleep(1)
