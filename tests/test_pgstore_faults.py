"""The PostgreSQL recorder when the database is away, against real servers: stopped mid-day (``pg_ctl stop``,
then ``start``), bars spill to disk and catch up with nothing lost; a spill file left by an earlier run is
written first (so the newest write still wins); an unreadable spill file is quarantined, never deleted; at the
queue's bound the documented policy holds (block, or drop and count)."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import hkrt
from feed_process import publish_day_slice
from hkrt.core.synthetic import synthetic_day
from hkrt.pgstore import PgBarWriter
from hkrt.store import load_kdata
from hkrt.testing.postgres import PostgresServer, _free_port
from test_pgstore import records

pytest.importorskip("psycopg", reason="the PostgreSQL recorder needs psycopg: pip install 'hkrt[postgres]'")
FRIDAY = dt.date(2026, 11, 20)
SPAWN = multiprocessing.get_context("spawn")  # nng is not fork-safe


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def nowhere() -> str:
    """A database URL nothing listens on."""
    return f"postgresql://postgres@127.0.0.1:{_free_port()}/postgres"


def test_database_stopped_mid_day_spills_then_catches_up_with_nothing_lost(
    pg_private: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = pg_private.url
    pushes = list(synthetic_day(5, FRIDAY))
    agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"], store=url, store_spill_dir=tmp_path, store_flush_interval=0)
    recorder = agent._store
    assert isinstance(recorder, PgBarWriter)
    recorder.retry_interval = 0.2
    for push in pushes[:1000]:
        agent.ingest_columns(**push.columns())
    before = recorder.stats["written"]
    assert before > 0 and not recorder.stats["failing"]
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        pg_private.stop()
        for push in pushes[1000:2000]:  # about 50 minutes of bars complete while the database is away
            agent.ingest_columns(**push.columns())
        wait_for(lambda: recorder.stats["pending_memory"] == 0)  # the next failed round spilled them all
        stats = dict(recorder.stats)
        assert stats["failing"] and stats["outages"] == 1 and stats["written"] == before
        assert stats["spilled_rows"] == stats["pending_spilled"] == stats["pending"] > 0
        assert len(list(tmp_path.glob("spill-*.npy"))) == stats["spill_files"] > 0
        assert "connection" in stats["last_error"].lower()
        pg_private.start()
        for push in pushes[2000:]:
            agent.ingest_columns(**push.columns())
        agent.advance_to("2026-11-20 15:05")
        agent.stop()
        assert recorder.flush(timeout=30)
    stats = recorder.stats
    assert not stats["failing"] and not stats["spilling"] and stats["pending"] == stats["spill_files"] == 0
    assert stats["lost"] == stats["refused"] == stats["spill_unreadable"] == 0
    assert stats["last_outage_seconds"] > 0 and stats["connects"] >= 2
    assert not list(tmp_path.glob("spill-*"))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot write to PostgreSQL" in m for m in messages) == 1  # once per outage
    assert any("caught up" in m for m in messages) and any("spilling" in m for m in messages)
    total = 0
    for ktype in ("MIN", "MIN5", "DAY"):
        stored = load_kdata(None, ktype, store=url)
        total += len(stored)
        for symbol in agent.symbols:  # nothing lost, nothing out of order: the agent's own bars
            pd.testing.assert_frame_equal(load_kdata(symbol, ktype, store=url), agent.kdata(symbol, ktype))
    assert stats["written"] == total
    recorder.close()


def test_running_agents_over_nng_record_through_an_outage_what_the_parquet_store_holds(
    pg_private: PostgresServer, tmp_path: Path
) -> None:
    """Two running agents on one live feed, one recording to PostgreSQL (stopped and started while the feed
    runs), one to Parquet: the same bars in both."""
    address = f"ipc://{tmp_path}/feed.ipc"
    cycles = 600
    recorded = hkrt.SpotAgent(["MIN", "MIN5"], store=pg_private.url, store_spill_dir=tmp_path / "spill",
                              store_flush_interval=0.2)  # fmt: skip
    parquet = hkrt.SpotAgent(["MIN", "MIN5"], store=tmp_path / "store", store_flush_interval=0.2)
    recorder = recorded._store
    assert isinstance(recorder, PgBarWriter)
    recorder.retry_interval = 0.2
    recorded.start(address)
    parquet.start(address)
    publisher = SPAWN.Process(target=publish_day_slice, args=(address, 2, 5, cycles, 10_000, None, None, 0.005))
    publisher.start()
    try:
        wait_for(lambda: recorder.stats["written"] > 0, 60)
        pg_private.stop()
        wait_for(lambda: recorder.stats["spilled_rows"] > 0, 60)
        pg_private.start()
        publisher.join(120)
        assert publisher.exitcode == 0
        for agent in (recorded, parquet):
            wait_for(lambda agent=agent: agent.stats()["transport"]["messages"] >= cycles, 30)
    finally:
        recorded.stop()
        parquet.stop()
        if publisher.is_alive():
            publisher.kill()
    assert recorder.flush(timeout=30)
    stats = recorder.stats
    assert stats["outages"] >= 1 and stats["spilled_rows"] > 0 and stats["pending"] == stats["lost"] == 0
    for ktype in ("MIN", "MIN5"):
        stored = load_kdata(None, ktype, store=pg_private.url)
        assert len(stored) >= 5 * 5  # 30 market minutes of 5 symbols
        pd.testing.assert_frame_equal(stored, load_kdata(None, ktype, store=tmp_path / "store"), check_exact=True)
    recorder.close()


def test_bars_spilled_by_an_earlier_run_land_first_and_the_newest_still_wins(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = PgBarWriter(nowhere(), spill_dir=tmp_path, fsync=False, retry_interval=0.1)
    down.add(records([("SH600000", "MIN", "2026-11-20T09:31", 1.0), ("SH600000", "MIN", "2026-11-20T09:32", 2.0)]))
    assert not down.flush()
    assert down.close() and down.stats["lost"] == 0  # everything went to the spill
    assert len(list(tmp_path.glob("spill-*-2.npy"))) == 1
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        later = PgBarWriter(pg_url, spill_dir=tmp_path, fsync=False)
    assert any("earlier recorder run" in r.getMessage() for r in caplog.records)
    assert later.stats["pending_spilled"] == 2
    later.add(records([("SH600000", "MIN", "2026-11-20T09:32", 20.0)]))  # newer than the spilled 09:32
    assert later.flush(timeout=30)
    later.close()
    assert list(load_kdata("SH600000", "MIN", store=pg_url)["close"]) == [1.0, 20.0]
    assert later.stats["written"] == 3 and not list(tmp_path.glob("spill-*"))


def record_while_the_database_is_away(url: str, spill_dir: str, spilled) -> None:
    """Child process: queue bars for a database nobody serves, say so once they are spilled, wait to be killed."""
    rec = PgBarWriter(url, spill_dir=spill_dir, retry_interval=0.05)
    rec.add(records([("SH600000", "MIN", "2026-11-20T09:31", 1.0), ("SH600001", "MIN", "2026-11-20T09:31", 2.0)]))
    wait_for(lambda: rec.stats["spill_files"] == 1)
    spilled.set()
    while True:
        time.sleep(1)


def test_a_killed_recorder_s_spill_lands_with_the_next_one(pg_url: str, tmp_path: Path) -> None:
    spilled = SPAWN.Event()
    child = SPAWN.Process(target=record_while_the_database_is_away, args=(nowhere(), str(tmp_path), spilled))
    child.start()
    try:
        assert spilled.wait(60)
    finally:
        child.kill()  # SIGKILL: no close(), no flush, the lock dies with the process
        child.join(10)
    later = PgBarWriter(pg_url, spill_dir=tmp_path, fsync=False)
    assert later.stats["pending_spilled"] == 2
    assert later.flush(timeout=30)
    later.close()
    assert list(load_kdata(None, "MIN", store=pg_url)["close"]) == [1.0, 2.0]


def check_an_unreadable_spill_file_is_quarantined(
    writer: Callable[..., Any], three: np.ndarray, one: np.ndarray, pg_url: str, tmp_path: Path, caplog: Any
) -> Any:
    """Spill ``three`` rows, then ``one``, for a database nobody serves; tear the first file; a recorder of the real
    database quarantines it (never deletes it), counts its rows and writes the other.  Returns that recorder."""
    down = writer(nowhere(), spill_dir=tmp_path, fsync=False, retry_interval=0.05)
    down.add(three)
    wait_for(lambda: down.stats["spill_files"] == 1)
    down.add(one)
    wait_for(lambda: down.stats["spill_files"] == 2)
    assert down.close() and down.stats["lost"] == 0
    first, second = sorted(tmp_path.glob("spill-*.npy"))
    torn = first.read_bytes()[:70]  # a torn write: the header and part of the rows
    first.write_bytes(torn)
    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        later = writer(pg_url, spill_dir=tmp_path, fsync=False)
        assert later.stats["pending_spilled"] == 4
        assert later.flush(timeout=30)
        later.close()
    kept = tmp_path / "_quarantine" / f"{first.name}.unreadable"
    assert kept.read_bytes() == torn and not first.exists() and not second.exists()
    assert later.stats["spill_unreadable"] == 1 and later.stats["spill_unreadable_rows"] == 3
    assert later.stats["written"] == 1 and later.stats["pending"] == 0
    assert any(
        f"cannot be read: its {later.KIND}" in r.getMessage() and r.rows == 3  # type: ignore[attr-defined]
        for r in caplog.records
    )
    return later


def test_an_unreadable_spill_file_is_quarantined_not_deleted(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    three = records([("SH600000", "MIN", "2026-11-20T09:31", 1.0)] * 3)
    one = records([("SH600001", "MIN", "2026-11-20T09:31", 5.0)])
    check_an_unreadable_spill_file_is_quarantined(PgBarWriter, three, one, pg_url, tmp_path, caplog)
    assert list(load_kdata(None, "MIN", store=pg_url)["symbol"]) == ["SH600001"]


def test_a_spill_file_deleted_by_hand_is_counted_lost_and_nothing_waits_for_it(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = PgBarWriter(nowhere(), spill_dir=tmp_path, fsync=False, retry_interval=0.05)
    down.add(records([("SH600000", "MIN", "2026-11-20T09:31", 1.0)] * 4))
    assert not down.flush()
    down.close()
    later = PgBarWriter(pg_url, spill_dir=tmp_path, fsync=False)
    assert later.stats["pending_spilled"] == 4
    for path in tmp_path.glob("spill-*.npy"):
        path.unlink()  # an operator "cleans up"
    later.add(records([("SH600001", "MIN", "2026-11-20T09:31", 2.0)]))
    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        assert later.flush(timeout=30)
    later.close()
    assert later.stats["lost"] == 4 and later.stats["pending"] == 0 and later.stats["written"] == 1
    assert any("vanished" in r.getMessage() and r.rows == 4 for r in caplog.records)  # type: ignore[attr-defined]


def one_minute(n: int, minute: int = 31) -> np.ndarray:
    return records([(f"SH6{i:05d}", "MIN", f"2026-11-20T09:{minute:02d}", 10.0 + i) for i in range(n)])


def test_past_the_bound_drop_counts_every_lost_row(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rec = PgBarWriter(
        nowhere(), spill_dir=tmp_path, fsync=False, retry_interval=0.05, max_pending=10, hard_limit=20,
        max_spill_rows=0, when_full="drop",
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        rec.add(one_minute(10, 31))
        rec.add(one_minute(10, 32))
        wait_for(lambda: rec.stats["spill_errors"] > 0)  # the spill's bound refuses them: they stay in memory
        rec.add(one_minute(10, 33))  # over hard_limit: dropped, counted
        assert rec.stats["lost"] == 10 and rec.stats["pending_memory"] == 20
        assert not rec.close(timeout=5)  # nowhere to put the 20 still held: lost too, said so
    assert rec.stats["lost"] == 30 and rec.stats["spilled_rows"] == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("new bars dropped" in m for m in messages) and any("they are lost" in m for m in messages)
    assert any("could not spill" in m for m in messages)


def test_past_the_bound_block_waits_for_the_database(pg_private: PostgresServer, tmp_path: Path) -> None:
    pg_private.stop()
    rec = PgBarWriter(
        pg_private.url, spill_dir=tmp_path, fsync=False, retry_interval=0.05, max_pending=10, hard_limit=20,
        max_spill_rows=0, block_log_every=0.1,
    )  # fmt: skip
    rec.add(one_minute(10, 31))
    rec.add(one_minute(10, 32))
    producer = threading.Thread(target=rec.add, args=(one_minute(10, 33),))
    producer.start()
    wait_for(lambda: rec.stats["blocked"])
    producer.join(0.3)
    assert producer.is_alive()  # held, not dropped
    pg_private.start()
    producer.join(30)
    assert not producer.is_alive()
    assert rec.flush(timeout=30)
    rec.close()
    assert rec.stats["written"] == 30 and rec.stats["lost"] == 0 and rec.stats["blocks"] == 1
    assert len(load_kdata(None, "MIN", store=pg_private.url)) == 30
