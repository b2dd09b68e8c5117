"""Backfill: an agent that starts late gets the morning from a journal (exactly, every ktype)
or from minute history (the simulated market's own past, the store's MIN bars), continues
from live spots with nothing counted twice and no carry-in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hkrt
from hkrt.adapters.sim.data import SimMinuteHistory
from hkrt.agent.history_sources import BACKFILL_PUBLISHER_ID, minute_messages
from hkrt.feed.journal import JournalWriter
from hkrt.fetcher.sim import SimConfig, SimMarket
from test_recovery import assert_same_bars, day_messages, fed

DAY = dt.date(2026, 11, 20)  # the day test_recovery.day_messages publishes
SPOT_COLUMNS = ("symbol", "datetime", "open", "high", "low", "close", "volume", "amount")


def write_journal(path: Path, messages: list[bytes]) -> Path:
    with JournalWriter(path, fsync="never") as writer:
        for message in messages:
            writer.append(message)
    return path


def assert_close_bars(got: hkrt.SpotAgent, want: hkrt.SpotAgent) -> None:
    """Every ktype's bars equal, amounts to a relative 1e-12 (re-summed minute totals)."""
    for symbol in want.symbols:
        for ktype in hkrt.KType:
            pd.testing.assert_frame_equal(got.kdata(symbol, ktype), want.kdata(symbol, ktype), rtol=1e-12)


def test_journal_backfill_equals_an_uninterrupted_agent_bit_for_bit(tmp_path: Path) -> None:
    messages = day_messages(tmp_path, n_symbols=12, cycles=400)  # to 09:35:00, three parts a cycle
    served = write_journal(tmp_path / "server.hkj", messages[:700])  # the server's --record so far
    late = hkrt.SpotAgent()
    report = late.backfill(served)
    assert (report["messages"], report["skipped"]) == (700, 0)
    for message in messages[650:]:  # the live feed, overlapping what the journal already had
        late.ingest(message)
    assert_same_bars(late, fed(messages))
    t = late.stats()["transport"]
    assert (t["gaps"], t["duplicate_messages"], t["publisher_restarts"], t["publishers"]) == (0, 50, 0, 1)
    assert late.stats()["carry_in"] == 0 and late.stats()["backfill"]["messages"] == 700

    # without the backfill the same late start is a carry-in and a hole: the test can fail
    bare = fed(messages[650:])
    assert bare.stats()["carry_in"] == 12
    assert len(bare.kdata(bare.symbols[0], "MIN")) < len(late.kdata(late.symbols[0], "MIN"))


def test_journal_backfill_until_and_then_a_gap(tmp_path: Path) -> None:
    messages = day_messages(tmp_path, n_symbols=12, cycles=200)  # two parts a cycle
    served = write_journal(tmp_path / "server.hkj", messages)
    until = hkrt.wire.decode_header(messages[299]).market_time
    late = hkrt.SpotAgent()
    assert late.backfill(served, until=until)["messages"] == 300  # a cycle's parts share their market time
    for message in messages[330:]:
        late.ingest(message)
    t = late.stats()["transport"]
    assert (t["gaps"], t["missing_messages"]) == (1, 30)  # what neither the journal nor the feed gave
    assert late.stats()["carry_in"] == 0
    for symbol in late.symbols:  # the lost messages' volume is not lost: totals are cumulative
        day = late.kdata(symbol, "DAY").iloc[0]
        assert late.kdata(symbol, "MIN")["volume"].sum() == day.volume


def test_backfill_on_start_is_journaled_so_a_crash_recovers_it(tmp_path: Path) -> None:
    messages = day_messages(tmp_path, n_symbols=6, cycles=120)
    served = write_journal(tmp_path / "server.hkj", messages)
    journal_dir = tmp_path / "journal"
    agent = hkrt.SpotAgent(journal_dir=journal_dir, backfill=served)
    agent.start(f"ipc://{tmp_path / 'feed.ipc'}")
    agent.stop()
    assert agent.stats()["backfill"]["messages"] == len(messages)
    recovered = hkrt.SpotAgent(journal_dir=journal_dir)
    assert recovered.recover() == len(messages)
    assert_same_bars(recovered, fed(messages))
    with pytest.raises(RuntimeError, match="before start"):
        running = hkrt.SpotAgent().start(f"ipc://{tmp_path / 'feed2.ipc'}")
        try:
            running.backfill(served)
        finally:
            running.stop()


def sim_columns(snapshot: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in snapshot.items() if k in SPOT_COLUMNS}


@pytest.mark.parametrize("until", [dt.datetime(2026, 11, 20, 10, 30), dt.datetime(2026, 11, 20, 13, 17)])
def test_sim_minute_history_backfill(until: dt.datetime) -> None:
    config = SimConfig(symbols=40, seed=11)
    full, late, bare = hkrt.SpotAgent(), hkrt.SpotAgent(), hkrt.SpotAgent()
    report = late.backfill(SimMinuteHistory(config), until=until)
    assert report["messages"] > 0 and report["skipped"] == 0
    market = SimMarket(DAY, config)
    for t in market.times():
        push = sim_columns(market.snapshot(t))
        full.ingest_columns(**push)
        if t >= until:
            late.ingest_columns(**push)
            bare.ingest_columns(**push)
    assert late.stats()["carry_in"] == 0 and bare.stats()["carry_in"] > 0
    assert late.stats()["rejected_total"] == 0
    traded = [s for s in full.symbols if len(full.kdata(s, "MIN"))]
    assert len(traded) > 30
    for symbol in traded:
        assert late.carry_in(symbol) == hkrt.CarryIn(DAY, 0.0, 0.0)
        got, want = late.kdata(symbol, "MIN"), full.kdata(symbol, "MIN")
        # prices and volumes exact; amounts are differences of re-summed totals (last-place units)
        pd.testing.assert_frame_equal(got.drop(columns="amount"), want.drop(columns="amount"), check_exact=True)
        np.testing.assert_allclose(got["amount"], want["amount"], rtol=1e-12)
        assert late.kdata(symbol, "DAY")["volume"].iloc[0] == want["volume"].sum() == full.kdata(symbol, "DAY")[
            "volume"].iloc[0]  # fmt: skip
    assert late.symbols == full.symbols
    assert_close_bars(late, full)  # every ktype, from MIN to YEAR
    assert late.stats()["transport"]["publishers"] == 1  # the backfill publisher, apart from any feed


def test_minute_messages_rebuild_a_late_first_bar_without_carry_in() -> None:
    bars = pd.DataFrame({
        "symbol": ["600000.SH", "600000.SH", "600000.SH"],
        "datetime": pd.to_datetime(["2026-11-20 10:05", "2026-11-20 10:06", "2026-11-20 10:07"]),
        "open": [10.0, 10.2, 10.1], "high": [10.3, 10.2, 10.1], "low": [9.9, 10.0, 10.1],
        "close": [10.2, 10.1, 10.1], "volume": [500.0, 300.0, 0.0], "amount": [5050.0, 3030.0, 0.0],
    })  # fmt: skip
    agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"])
    for message in minute_messages(bars):
        assert hkrt.wire.decode_header(message).publisher_id == BACKFILL_PUBLISHER_ID
        agent.ingest(message)
    got = agent.kdata("SH600000", "MIN")
    # every bar was rebuilt from spots that landed in it: none is a flat fill, 10:07 included (no trades)
    assert not got.filled.any()
    pd.testing.assert_frame_equal(got.drop(columns="filled"), bars.drop(columns="symbol").set_index("datetime").astype(
        float).rename_axis("datetime").set_axis(got.index), check_names=False)  # fmt: skip
    assert agent.kdata("SH600000", "MIN5").iloc[0].tolist() == [10.0, 10.3, 9.9, 10.2, 500.0, 5050.0, False]  # 10:05
    assert agent.carry_in("SH600000") == hkrt.CarryIn(DAY, 0.0, 0.0)
    # the zero spot at 10:04:00.000 closes the 10:04 minute, the first bar's spots are in 10:05: no gap
    assert agent.gap_volume("SH600000") == hkrt.GapVolume(DAY, 0.0, 0.0, 0)
    assert agent.kdata("SH600000", "DAY").iloc[0].tolist() == [10.0, 10.3, 9.9, 10.1, 800.0, 8080.0, False]
    # the next live spot: its Δ is against the backfilled total, counted once, not as carry-in
    agent.ingest(hkrt.Spot("SH600000", dt.datetime(2026, 11, 20, 10, 7, 20), open=10.0, high=10.4, low=9.9,
                           close=10.4, volume=900, amount=9120))  # fmt: skip
    assert agent.kdata("SH600000", "MIN").iloc[-1].tolist() == [10.4, 10.4, 10.4, 10.4, 100.0, 1040.0, False]
    assert agent.stats()["carry_in"] == 0 and agent.stats()["gap_volume"] == 0


def test_store_as_minute_source_after_a_restart_without_journal(tmp_path: Path) -> None:
    config = SimConfig(symbols=10, seed=5)
    market = SimMarket(DAY, config)
    times = list(market.times())
    cut = dt.datetime(2026, 11, 20, 10, 0)
    first = hkrt.SpotAgent(["MIN", "DAY"], store=tmp_path)
    for t in times:
        if t >= dt.datetime(2026, 11, 20, 10, 0, 30):
            break
        first.ingest_columns(**sim_columns(market.snapshot(t)))
    first.stop()  # the restart: no journal, the store has the MIN bars up to 10:00
    again = hkrt.SpotAgent(["MIN", "DAY"])
    again.backfill(hkrt.store.KDataStore(tmp_path), until=cut)
    for symbol in first.symbols:
        stored = first.kdata(symbol, "MIN", end=cut)
        if len(stored):
            pd.testing.assert_frame_equal(again.kdata(symbol, "MIN"), stored, check_exact=False, rtol=1e-12)
    assert again.stats()["carry_in"] == 0


def test_a_minute_without_a_source_bar_had_no_trade_so_the_next_bar_keeps_its_volume() -> None:
    """Minute history lists only minutes with trades: 10:06 and the lunch break are absent, yet
    10:07's and 13:02's shares stay in their bars (no gap volume)."""
    bars = pd.DataFrame(
        {
            "symbol": ["SH600000"] * 3,
            "datetime": pd.to_datetime(["2026-11-20 10:05", "2026-11-20 10:07", "2026-11-20 13:02"]),
            "open": [10.0, 10.1, 10.2],
            "high": [10.1, 10.2, 10.3],
            "low": [10.0, 10.0, 10.1],
            "close": [10.1, 10.2, 10.2],
            "volume": [100.0, 300.0, 200.0],
            "amount": [1005.0, 3030.0, 2040.0],
        }
    )
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    for message in minute_messages(bars):
        agent.ingest(message)
    got = agent.kdata("SH600000", "MIN")
    assert got.loc["2026-11-20 10:07", "volume"] == 300 and got.loc["2026-11-20 13:02", "volume"] == 200
    assert got.loc["2026-11-20 10:06", "volume"] == 0 and got.loc["2026-11-20 11:30", "volume"] == 0
    assert agent.gap_volume("SH600000").volume == 0
    assert got["volume"].sum() == agent.kdata("SH600000", "DAY")["volume"].iloc[0] == 600
