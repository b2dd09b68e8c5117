"""Replay of a recorded feed: the cycles of a journal, played back at any speed.

A journal (hkrt.feed.journal) holds the wire messages a spot server published.  Replay groups
consecutive messages of one publisher cycle back into that cycle, decodes them (bad
records are counted and skipped), and paces the cycles by their recorded times divided by
``speed`` (``speed=0`` plays as fast as possible).  A damaged journal plays every intact
record: the reader skips the damage, logs it at WARNING and reports it in ``stats.scan``; a
file with nothing recognisable as a journal raises ValueError.  Heartbeats (an agent's journal
holds the end-of-day markers it closed a day on) are no cycles: they are counted and skipped;
the spot server sends its own end-of-day markers while replaying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hkrt._hkrt import Spot
from hkrt.adapters.replay.config import ReplayConfig
from hkrt.feed.journal import ScanResult, read_journal
from hkrt.feed.wire import WireError, decode_header, decode_spots

log = logging.getLogger("hkrt.fetcher.replay")

if TYPE_CHECKING:
    from hkrt.adapters.base import ServePlan
    from hkrt.feed.server import SpotServer

__all__ = ["ReplayConfig", "ReplayCycle", "ReplaySource", "ReplayStats", "make_data_client"]


@dataclass
class ReplayCycle:
    spots: list[Spot]
    market_time_ms: int  # as the original publisher sent it (UTC epoch ms; 0 unknown)
    recorded_us: int
    messages: int
    changes_only: bool = False  # recorded from a source that sends a symbol only when it changed


@dataclass
class ReplayStats:
    records: int = 0
    bad_records: int = 0
    heartbeats: int = 0  # heartbeat records (end-of-day markers): skipped, they carry no spots
    cycles: int = 0
    scan: ScanResult = field(default_factory=ScanResult)


class ReplaySource:
    """Cycles of a journal, in order and paced."""

    def __init__(self, config: ReplayConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        if config.speed < 0:  # a config made with object.__setattr__ or an older pickle
            raise ValueError("speed must be 0 (as fast as possible) or positive")
        self.config = config
        self.stats = ReplayStats()
        self._sleep = sleep

    def serve(self, server: SpotServer, plan: ServePlan) -> None:
        """Publish the journal's cycles through ``server`` (the spot server's data-client call)."""
        server.run_replay(self)

    def cycles(self) -> Iterator[ReplayCycle]:
        first_recorded: int | None = None
        started = time.monotonic()
        for cycle in self._grouped():
            if first_recorded is None:
                first_recorded = cycle.recorded_us
            if self.config.speed > 0:
                due = (cycle.recorded_us - first_recorded) / 1e6 / self.config.speed
                wait = due - (time.monotonic() - started)
                if wait > 0:
                    self._sleep(wait)
            self.stats.cycles += 1
            yield cycle

    def _grouped(self) -> Iterator[ReplayCycle]:
        current: ReplayCycle | None = None
        key: tuple[int, int] | None = None
        for record in read_journal(self.config.path, self.stats.scan):
            self.stats.records += 1
            try:
                header = decode_header(record.payload)
                spots = decode_spots(record.payload)
            except WireError as err:
                self.stats.bad_records += 1
                log.warning("skipped a bad journal record", extra={"offset": record.offset, "reason": err.reason})
                continue
            if header.heartbeat:
                self.stats.heartbeats += 1
                continue
            this = (header.publisher_id, header.cycle_id)
            if current is not None and this == key:
                current.spots.extend(spots)
                current.market_time_ms = max(current.market_time_ms, header.market_time_ms)
                current.messages += 1
                continue
            if current is not None:
                yield current
            current = ReplayCycle(spots, header.market_time_ms, record.recorded_us, 1, header.changes_only)
            key = this
        if current is not None:
            yield current
        if not self.stats.scan.recognised:
            raise ValueError(f"{self.config.path} is not an hkrt journal (no magic and no intact record)")


def make_data_client(config: ReplayConfig) -> ReplaySource:
    """The spot server's replay of a journal (``hkrt spot-server --source replay --replay FILE``)."""
    return ReplaySource(config)
