"""The K-data store: completed bars persisted by the agent, read back by another process after
a kill, loaded as history by a new agent; duplicates resolve to the latest write; a torn temp
file is never read; a failing disk never stops aggregation; ``hkrt export``."""

from __future__ import annotations

import datetime as dt
import errno
import logging
import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
import hkrt.store
from conftest import spot
from hkrt.cli import main as cli_main
from hkrt.core.synthetic import synthetic_day
from hkrt.store import KDataStore, load_kdata

SPAWN = multiprocessing.get_context("spawn")  # nng is not fork-safe
THURSDAY, FRIDAY = dt.date(2026, 11, 19), dt.date(2026, 11, 20)
COLUMNS = ["open", "high", "low", "close", "volume", "amount"]


def ingest_days(agent: hkrt.SpotAgent, friday_pushes: int, n_symbols: int = 6) -> None:
    """A whole synthetic Thursday, then Friday's first pushes."""
    for push in synthetic_day(n_symbols, THURSDAY):
        agent.ingest_columns(**push.columns())
    for i, push in enumerate(synthetic_day(n_symbols, FRIDAY)):
        if i == friday_pushes:
            break
        agent.ingest_columns(**push.columns())


def run_storing_agent(
    root: str,
    friday_pushes: int,
    flushed,
) -> None:
    """Child process: aggregate with a store, flush, report, then wait to be killed."""
    import time

    agent = hkrt.SpotAgent(store=root, store_flush_interval=3600)
    ingest_days(agent, friday_pushes)
    assert agent.flush_store()
    flushed.set()
    while True:
        time.sleep(1)


def test_round_trip_of_hand_computed_bars(tmp_path: Path) -> None:
    agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"], store=tmp_path)
    agent.ingest(
        [
            spot("09:25:00", 10.0, 1000, 10000),
            spot("09:30:20", 10.2, 1500, 15100),
            spot("09:31:05", 10.1, 1800, 18130),
            spot("09:36:10", 10.3, 2000, 20190),
        ]
    )
    agent.stop()  # flushes and compacts; the forming bars (09:37, MIN5 09:40, DAY) are not complete
    got = load_kdata("600000.SH", "min", store=tmp_path)
    want = pd.DataFrame(
        [[10.0, 10.2, 10.0, 10.2, 1500, 15100], [10.1, 10.1, 10.1, 10.1, 300, 3030]]
        + [[10.1] * 4 + [0, 0]] * 4,  # 09:33 .. 09:36 flat at the last price
        columns=COLUMNS,
        index=pd.date_range("2026-11-20 09:31", periods=6, freq="min", name="datetime").as_unit("ns"),
        dtype=float,
    ).assign(filled=[False, False, True, True, True, True])  # the flat bars no spot landed in
    pd.testing.assert_frame_equal(got, want, check_freq=False)
    min5 = load_kdata("SH600000", "MIN5", store=tmp_path)
    assert min5.index.tolist() == [pd.Timestamp("2026-11-20 09:35")]
    assert min5.iloc[0].tolist() == [10.0, 10.2, 10.0, 10.1, 1800, 18130, False]
    assert load_kdata("SH600000", "DAY", store=tmp_path).empty  # the day is not over
    assert [p.name for p in (tmp_path / "ktype=MIN" / "date=2026-11-20").iterdir()] == ["data.parquet"]
    # the store is plain hive-partitioned Parquet: pandas reads it without hkrt
    raw = pd.read_parquet(tmp_path / "ktype=MIN")
    assert len(raw) == 6 and set(raw.columns) >= {"symbol", "datetime", *COLUMNS}


def test_killed_agent_store_is_read_by_another_process_and_history_continues_week(tmp_path: Path) -> None:
    root = tmp_path / "store"
    flushed = SPAWN.Event()
    child = SPAWN.Process(target=run_storing_agent, args=(str(root), 400, flushed))
    child.start()
    try:
        assert flushed.wait(120)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
    finally:
        if child.is_alive():
            child.kill()
    # the same input in this process: the bars the killed agent had completed are every bar
    # but each symbol's forming one (Friday's last MIN bar; Friday's DAY bar)
    same = hkrt.SpotAgent()
    ingest_days(same, 400)
    assert len(same.symbols) == 6
    for symbol in same.symbols:
        minutes = same.kdata(symbol, "MIN")
        pd.testing.assert_frame_equal(load_kdata(symbol, "MIN", store=root), minutes.iloc[:-1])
        assert minutes.index[-2] > pd.Timestamp("2026-11-20 09:35")  # Friday's morning was stored too
        pd.testing.assert_frame_equal(load_kdata(symbol, "DAY", store=root), same.kdata(symbol, "DAY").iloc[:1])
    assert (root / ".writer.lock").exists()

    # a new agent on Friday: Thursday comes back as history, WEEK spans both days
    agent = hkrt.SpotAgent(store=root)
    loaded = agent.load_history(before=FRIDAY)
    assert loaded["MIN"] == 240 * 6 and loaded["DAY"] == 6
    for i, push in enumerate(synthetic_day(6, FRIDAY)):
        if i == 400:
            break
        agent.ingest_columns(**push.columns())
    for symbol in same.symbols:
        days = same.kdata(symbol, "DAY")
        thursday, friday = days.iloc[0], days.iloc[1]
        week = agent.kdata(symbol, "WEEK")
        assert week.index.tolist() == [pd.Timestamp("2026-11-20")]
        assert week.iloc[0][COLUMNS].tolist() == [
            thursday.open,
            max(thursday.high, friday.high),
            min(thursday.low, friday.low),
            friday.close,
            thursday.volume + friday.volume,
            thursday.amount + friday.amount,
        ]
        pd.testing.assert_frame_equal(agent.kdata(symbol, "DAY"), days)
        # yesterday's minutes are in the agent after the restart
        pd.testing.assert_frame_equal(agent.kdata(symbol, "MIN"), same.kdata(symbol, "MIN"))
    agent.stop()
    assert agent.stats()["store"]["compactions"] >= 1
    assert all(len(list(p.iterdir())) == 1 for p in root.glob("ktype=*/date=*"))


def test_duplicates_resolve_to_the_latest_write(tmp_path: Path) -> None:
    store = KDataStore(tmp_path)
    first = pd.DataFrame({"symbol": ["SH600000", "sz000001"], "datetime": pd.to_datetime(["2026-11-20 09:31"] * 2),
                          **{c: [1.0, 2.0] for c in COLUMNS}})  # fmt: skip
    store.write(first, "MIN")
    store.write(first.assign(close=[5.0, 6.0]).iloc[:1], "MIN")  # a recovery re-emits SH600000 09:31
    for _ in range(2):  # before and after compaction
        got = store.load(None, "MIN")
        assert got["symbol"].tolist() == ["SH600000", "SZ000001"] and got["close"].tolist() == [5.0, 2.0]
        assert store.compact() in (0, 1)
    assert len(pq.read_table(tmp_path / "ktype=MIN" / "date=2026-11-20" / "data.parquet")) == 2


def test_torn_temp_file_is_ignored_and_removed(tmp_path: Path) -> None:
    store = KDataStore(tmp_path)
    bars = pd.DataFrame({"symbol": ["SH600000"], "datetime": [pd.Timestamp("2026-11-20 09:31")],
                         **{c: [1.0] for c in COLUMNS}})  # fmt: skip
    store.write(bars, "MIN")
    partition = store.partition("MIN", FRIDAY)
    whole = next(partition.glob("part-*.parquet")).read_bytes()
    (partition / ".tmp-deadbeef").write_bytes(whole[: len(whole) // 2])  # a crash in mid-write
    assert len(store.load("SH600000", "MIN")) == 1
    assert len(pd.read_parquet(tmp_path / "ktype=MIN")) == 1  # pyarrow skips dot files too
    store.compact()
    assert [p.name for p in partition.iterdir()] == ["data.parquet"]


def test_failing_store_keeps_aggregating_and_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pushes = list(synthetic_day(5, FRIDAY))
    agent = hkrt.SpotAgent(store=tmp_path, store_flush_interval=0)  # flush after every ingest
    real_write = pq.write_table

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    for push in pushes[:100]:
        agent.ingest_columns(**push.columns())
    written = agent.stats()["store"]["written"]
    assert written > 0
    monkeypatch.setattr(hkrt.store.pq, "write_table", full_disk)
    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        for push in pushes[100:2000]:
            agent.ingest_columns(**push.columns())
    stats = agent.stats()["store"]
    assert stats["failing"] and stats["write_errors"] > 10 and "No space left" in stats["last_error"]
    assert stats["written"] == written and stats["pending"] > 0
    assert len([r for r in caplog.records if "store write failed" in r.message]) == 1  # once per streak
    assert not list(tmp_path.rglob(".tmp-*"))  # nothing half-written left behind
    monkeypatch.setattr(hkrt.store.pq, "write_table", real_write)
    for push in pushes[2000:]:
        agent.ingest_columns(**push.columns())
    agent.advance_to("2026-11-20 15:05")
    agent.stop()
    stats = agent.stats()["store"]
    assert not stats["failing"] and stats["pending"] == 0 and stats["spilled_rows"] == 0
    for symbol in agent.symbols:  # aggregation never stopped, and the store caught up
        for ktype in ("MIN", "MIN30", "DAY"):
            pd.testing.assert_frame_equal(load_kdata(symbol, ktype, store=tmp_path), agent.kdata(symbol, ktype))


def test_queue_spills_while_the_store_fails_and_lands_every_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    agent = hkrt.SpotAgent(["MIN"], store=tmp_path, store_flush_interval=0, store_max_pending=50)
    refuse = PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(KDataStore, "write", lambda self, bars, ktype=None: (_ for _ in ()).throw(refuse))
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        for push in list(synthetic_day(3, FRIDAY))[:3000]:
            agent.ingest_columns(**push.columns())
    stats = agent.stats()["store"]
    assert stats["pending_memory"] <= 50 + 3 and "Permission" in stats["last_error"]
    assert stats["spilled_rows"] > 0 and stats["spill_files"] > 0 and stats["spilling"]
    assert stats["pending"] == stats["pending_memory"] + stats["pending_spilled"] and stats["written"] == 0
    assert len(list((tmp_path / "_spill").glob("spill-*.npy"))) == stats["spill_files"]
    assert [r for r in caplog.records if "spilling the oldest bars" in r.message]
    assert len(agent.kdata(agent.symbols[0], "MIN")) > 100  # memory keeps everything
    queued = stats["pending"]
    monkeypatch.undo()
    agent.stop()  # the store works again: every spilled and queued bar lands, oldest first
    stats = agent.stats()["store"]
    assert stats["pending"] == 0 and stats["spill_files"] == 0 and not stats["spilling"]
    assert stats["written"] == queued
    assert not list((tmp_path / "_spill").glob("spill-*"))
    for symbol in agent.symbols:
        pd.testing.assert_frame_equal(load_kdata(symbol, "MIN", store=tmp_path), agent.kdata(symbol, "MIN").iloc[:-1])


def test_load_kdata_filters_and_shapes(tmp_path: Path) -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"], store=tmp_path)
    ingest_days(agent, 10_000, n_symbols=3)
    agent.advance_to("2026-11-20 15:05")
    agent.stop()
    sym = agent.symbols[1]
    both = load_kdata(sym.lower(), "MIN", store=tmp_path)
    assert len(both) == 480
    friday = load_kdata(sym, "MIN", FRIDAY, FRIDAY, store=tmp_path)  # dates: whole days
    assert len(friday) == 240 and friday.index[0] == pd.Timestamp("2026-11-20 09:31")
    assert len(load_kdata(sym, "MIN", "2026-11-20", store=tmp_path)) == 240
    window = load_kdata(sym, "MIN", "2026-11-19 14:58", dt.datetime(2026, 11, 20, 9, 32), store=tmp_path)
    assert window.index.strftime("%d %H:%M").tolist() == ["19 14:58", "19 14:59", "19 15:00", "20 09:31", "20 09:32"]
    days = load_kdata(sym, "day", end=THURSDAY, store=tmp_path)
    assert days.index.tolist() == [pd.Timestamp(THURSDAY)]
    long = load_kdata(symbols=[agent.symbols[0], sym], ktype="DAY", store=tmp_path)
    assert long.columns.tolist() == ["symbol", "datetime", *COLUMNS, "filled"] and len(long) == 4
    assert long["symbol"].tolist() == sorted(long["symbol"].tolist())
    everything = load_kdata(None, "DAY", store=tmp_path)
    assert len(everything) == 6 and everything["symbol"].nunique() == 3
    assert load_kdata(sym, "MIN", "2026-11-23", store=tmp_path).empty  # no data: empty, not an error
    assert load_kdata(sym, "MIN5", store=tmp_path).empty
    with pytest.raises(ValueError, match="MIN5"):
        load_kdata(sym, "MIN7", store=tmp_path)
    with pytest.raises(ValueError, match="invalid symbol"):
        load_kdata("XX1", "MIN", store=tmp_path)
    with pytest.raises(FileNotFoundError, match="no K-data store"):
        load_kdata(sym, "MIN", store=tmp_path / "nowhere")
    monkey_env = {"HKRT_STORE": str(tmp_path)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in monkey_env.items():
            mp.setenv(k, v)
        assert len(load_kdata(sym, "DAY")) == 2  # the default location follows $HKRT_STORE


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_command(tmp_path: Path, fmt: str) -> None:
    store = tmp_path / "store"
    agent = hkrt.SpotAgent(["MIN"], store=store)
    ingest_days(agent, 0, n_symbols=3)
    agent.advance_to("2026-11-20 09:00")
    agent.stop()
    symbols = agent.symbols
    out = tmp_path / f"bars.{fmt}"
    result = CliRunner().invoke(cli_main, ["export", "--store", str(store), "--symbol", symbols[0].lower(),
                                           "--symbol", symbols[2], "--ktype", "min", "--start", "2026-11-19 10:00",
                                           "--end", "2026-11-19 10:30", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "62 MIN bars of 2 symbols" in result.output
    frame = pd.read_csv(out, parse_dates=["datetime"]) if fmt == "csv" else pd.read_parquet(out)
    want = load_kdata(symbols=[symbols[0], symbols[2]], ktype="MIN", start="2026-11-19 10:00",
                      end="2026-11-19 10:30", store=store)  # fmt: skip
    assert frame["symbol"].tolist() == want["symbol"].tolist()
    assert (frame["datetime"].to_numpy() == want["datetime"].to_numpy()).all()
    np.testing.assert_allclose(frame[COLUMNS].to_numpy(), want[COLUMNS].to_numpy(), rtol=1e-15)
    everything = CliRunner().invoke(cli_main, ["export", "--store", str(store), "--ktype", "MIN", "--format", fmt,
                                               "--out", str(tmp_path / "all.out")])  # fmt: skip
    assert everything.exit_code == 0 and "720 MIN bars of 3 symbols" in everything.output
    bad = CliRunner().invoke(cli_main, ["export", "--store", str(store), "--ktype", "MIN7", "--out", str(out)])
    assert bad.exit_code != 0 and "MIN7" in bad.output


BAR = st.tuples(st.sampled_from(["SH600000", "SZ000001", "BJ920001"]), st.integers(0, 5), st.integers(1, 1000))


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(st.lists(BAR, min_size=1, max_size=8), min_size=1, max_size=5), compact_at=st.integers(0, 5))
def test_latest_write_wins_property(tmp_path_factory: pytest.TempPathFactory, batches, compact_at: int) -> None:
    root = tmp_path_factory.mktemp("prop")
    store = KDataStore(root, fsync=False)
    latest: dict[tuple[str, int], int] = {}
    for i, batch in enumerate(batches):
        if i == compact_at:
            store.compact()
        frame = pd.DataFrame(
            {"symbol": [b[0] for b in batch],
             "datetime": [pd.Timestamp("2026-11-20 09:31") + pd.Timedelta(minutes=b[1]) for b in batch],
             **{c: [float(b[2]) for b in batch] for c in COLUMNS}})  # fmt: skip
        frame = frame.drop_duplicates(["symbol", "datetime"], keep="last")  # one write holds one row per bar
        store.write(frame, "MIN")
        latest.update({(s, m): v for s, m, v in zip(frame["symbol"], frame["datetime"].dt.minute - 31,
                                                   frame["close"].astype(int), strict=True)})  # fmt: skip
    got = store.load(None, "MIN")
    assert {(s, t.minute - 31): int(c) for s, t, c in zip(got["symbol"], got["datetime"], got["close"],
                                                         strict=True)} == latest  # fmt: skip
    assert len(got) == len(latest)
