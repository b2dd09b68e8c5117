"""The optional spots table of the PostgreSQL recorder, against a real PostgreSQL 15 (tests/pg_server.py): the
migration adds ``hkrt.spots`` and keeps the bars; a simulated day's spots fed to an agent with
``store_spots=True`` read back with ``load_spots`` exactly as fed; any order and duplication of writes ends
with the latest row per (symbol, datetime); the database stopped mid-day loses nothing; poisoned rows and an
unreadable spill file are kept aside and counted while the rest is written."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hkrt
from hkrt.cli import main as cli_main
from hkrt.core.synthetic import synthetic_day
from hkrt.feed.wire import encode_spots
from hkrt.pgstore import migrate
from hkrt.pgstore.schema import BOOK_COLUMNS, LATEST
from hkrt.pgstore.spot_reader import PgSpotStore, empty_spots, load_spots
from hkrt.pgstore.spot_records import SPOT_RECORD_DTYPE
from hkrt.pgstore.spot_writer import PgSpotWriter
from hkrt.testing.postgres import PostgresServer
from test_pgstore_faults import check_an_unreadable_spill_file_is_quarantined, wait_for

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL recorder needs psycopg: pip install 'hkrt[postgres]'")

FRIDAY = dt.date(2026, 11, 20)
PUBLISHER = 4242


def spot_records(rows: list[tuple[str, str, float]]) -> np.ndarray:
    """Spot records (symbol, time, close); the book and the other prices follow close."""
    out = np.zeros(len(rows), dtype=SPOT_RECORD_DTYPE)
    for i, (symbol, when, close) in enumerate(rows):
        out[i]["symbol"], out[i]["datetime"] = symbol.encode(), np.datetime64(when, "ms")
        out[i]["name"] = "浦发银行".encode()
        for field in ("yesterday_close", "open", "high", "low", "close"):
            out[i][field] = close
        out[i]["volume"], out[i]["amount"] = 1000.0, 1000.0 * close
        out[i]["bid"] = close - 0.01 * np.arange(1, 6)
        out[i]["ask"] = close + 0.01 * np.arange(1, 6)
        out[i]["bid_volume"] = out[i]["ask_volume"] = 100.0 * np.arange(1, 6)
    return out


def spot_writer(url: str, tmp_path: Path, **options: object) -> PgSpotWriter:
    return PgSpotWriter(url, spill_dir=tmp_path / "spill", fsync=False, **options)  # type: ignore[arg-type]


def day_messages(symbols: int = 4, every: int = 40) -> list[tuple[bytes, pd.DataFrame]]:
    """Every ``every``-th push of a synthetic day as a numbered wire message with a book, names and yesterday's
    close, and the frame of what it carries (in load_spots's columns)."""
    out = []
    for sequence, push in enumerate(list(synthetic_day(symbols, FRIDAY))[::every], start=1):
        columns = push.columns()
        n = len(columns["symbol"])
        close = columns["close"]
        levels = np.arange(1, 6)
        book = {
            "bid": np.round(close[:, None] - 0.01 * levels, 2),
            "ask": np.round(close[:, None] + 0.01 * levels, 2),
            "bid_volume": np.tile(100.0 * levels, (n, 1)) + sequence,
            "ask_volume": np.tile(200.0 * levels, (n, 1)) + sequence,
        }
        names = np.array([f"股票{i}" if i % 2 else f"*ST长名字的公司{i}" for i in range(n)], dtype=object)
        message = encode_spots({**columns, **book, "name": names, "yesterday_close": close * 0.99},
                               publisher_id=PUBLISHER, sequence=sequence)  # fmt: skip
        frame = pd.DataFrame(
            {
                "symbol": np.char.decode(columns["symbol"], "ascii"),
                "datetime": columns["datetime"].astype("datetime64[ns]"),
                "name": names,
                "yesterday_close": close * 0.99,
                **{c: columns[c] for c in ("open", "high", "low", "close", "volume", "amount")},
                **{f"{side}{lv}": book[side][:, lv - 1] for side in ("bid", "bid_volume", "ask", "ask_volume")
                   for lv in levels},
                "publisher_id": PUBLISHER,
                "sequence": sequence,
            }
        )  # fmt: skip
        out.append((message, frame))
    return out


def expected(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """What the table holds after these writes: the last row of each (symbol, datetime), sorted."""
    frame = pd.concat(frames, ignore_index=True).drop_duplicates(["symbol", "datetime"], keep="last")
    return frame.sort_values(["symbol", "datetime"], kind="stable").reset_index(drop=True)


def test_migration_adds_the_spots_table_and_keeps_the_bars(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrate(conn, up_to=LATEST - 1) == (LATEST - 1, list(range(1, LATEST)))
        conn.execute(
            "CREATE TABLE hkrt.bars_202611 PARTITION OF hkrt.bars FOR VALUES FROM ('2026-11-01') TO ('2026-12-01')"
        )
        conn.execute(
            "INSERT INTO hkrt.bars (symbol, ktype, datetime, open, high, low, close, volume, amount) VALUES "
            "('SH600000', 'MIN', '2026-11-20 09:31', 1, 2, 0.5, 1.5, 10, 15), "
            "('SZ000001', 'DAY', '2026-11-20', 3, 4, 2.5, 3.5, 20, 70)"
        )
        before = conn.execute("SELECT * FROM hkrt.bars ORDER BY symbol").fetchall()
        assert conn.execute("SELECT to_regclass('hkrt.spots')").fetchone() == (None,)
        assert migrate(conn) == (LATEST, [LATEST])
        assert conn.execute("SELECT * FROM hkrt.bars ORDER BY symbol").fetchall() == before  # every bar intact
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'hkrt.spots'::regclass").fetchone() == ("p",)
        key = conn.execute(
            "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY "
            "k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = 'hkrt.spots'::regclass AND i.indisprimary"
        ).fetchone()[0]
        assert key == ["symbol", "datetime"]
        assert migrate(conn) == (LATEST, [])
    assert len(hkrt.load_kdata(None, "MIN", store=pg_url)) == 1


def test_a_simulated_day_of_spots_reads_back_as_fed(pg_url: str, tmp_path: Path) -> None:
    fed = day_messages()
    agent = hkrt.SpotAgent(["MIN"], store=pg_url, store_spill_dir=tmp_path / "spill", store_spots=True)
    for message, _ in fed:
        assert agent.ingest(message) > 0
    agent.ingest(fed[3][0])  # the same message again (a replay): skipped as a duplicate, no new row
    agent.stop()
    recorder = agent._spot_store
    assert recorder is not None and recorder.flush(timeout=30)
    stats = agent.stats()["store_spots"]
    rows = sum(len(frame) for _, frame in fed)
    assert stats["written"] == rows and stats["pending"] == stats["lost"] == stats["refused"] == 0
    got = load_spots(store=pg_url)
    want = expected([frame for _, frame in fed])
    assert len(got) == len(want) == rows  # every push of the day has its own time: one row per spot
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False)
    assert got["publisher_id"].dtype == got["sequence"].dtype == np.int64
    # hand-checked: the first symbol's first spot, as the feed carried it
    symbol = got["symbol"].iloc[0]
    one = load_spots(symbol.lower(), FRIDAY, FRIDAY, store=pg_url)
    first = one.iloc[0]
    columns = fed[0][1].set_index("symbol").loc[symbol]
    assert one.index[0] == columns["datetime"] and first["close"] == columns["close"]
    assert first["volume"] == columns["volume"] and first["amount"] == columns["amount"]  # shares, yuan
    assert [first[f"bid{i}"] for i in range(1, 6)] == [round(columns["close"] - 0.01 * i, 2) for i in range(1, 6)]
    assert first["ask_volume5"] == 1000.0 + 1 and first["sequence"] == 1 and first["publisher_id"] == PUBLISHER
    assert first["name"] == columns["name"]
    with psycopg.connect(pg_url) as conn:  # one monthly partition holds the day
        assert conn.execute("SELECT DISTINCT tableoid::regclass::text FROM hkrt.spots").fetchall() == [
            ("hkrt.spots_202611",)
        ]
    agent._store.close()  # type: ignore[union-attr]
    recorder.close()


def test_columns_and_spot_objects_are_recorded_too(pg_url: str, tmp_path: Path) -> None:
    agent = hkrt.SpotAgent(["MIN"], store=pg_url, store_spill_dir=tmp_path / "spill", store_spots=True)
    agent.ingest_columns(["600000.SH", "sz000001"], np.array(["2026-11-20T09:30:03"] * 2, "datetime64[ms]"),
                         [10.5, 7.25], [1e4, 2e4], [1.05e5, 1.45e5])  # fmt: skip
    spot = hkrt.Spot(symbol="SH600000", datetime=dt.datetime(2026, 11, 20, 9, 30, 6), close=10.6,
                     volume=2e4, amount=2.1e5)  # fmt: skip
    spot.bid = [10.59, 10.58]
    agent.ingest(spot)
    assert agent._spot_store is not None and agent._spot_store.flush(timeout=30)
    got = load_spots(symbols=["SH600000"], store=pg_url)
    assert list(got["close"]) == [10.5, 10.6] and list(got["bid1"]) == [0.0, 10.59] and got["bid3"].iloc[1] == 0
    assert list(load_spots("SZ000001", store=pg_url)["amount"]) == [1.45e5]
    agent._spot_store.close()
    agent._store.close()  # type: ignore[union-attr]


def test_spots_need_a_database_and_are_off_by_default(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="store_spots=True records spots in PostgreSQL only"):
        hkrt.SpotAgent(store=tmp_path / "store", store_spots=True)
    plain = hkrt.SpotAgent(["MIN"], store=pg_url, store_spill_dir=tmp_path / "spill")
    assert plain._spot_store is None and plain.stats()["store_spots"] is None
    plain._store.close()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="spots are recorded only in PostgreSQL"):
        load_spots(store=str(tmp_path))
    pd.testing.assert_frame_equal(load_spots(store=pg_url), empty_spots())  # never written: none, not an error


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.lists(
        st.tuples(st.sampled_from(["SH600000", "SZ000001"]), st.integers(0, 2), st.integers(100, 999)),
        min_size=1,
        max_size=25,
    ),
    cuts=st.lists(st.integers(0, 25), max_size=4),
)
def test_any_order_and_duplication_of_writes_ends_with_the_latest_per_key(
    writes: list[tuple[str, int, int]],
    cuts: list[int],
    pg_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    url = _hypothesis_database(pg_server)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE hkrt.spots")
    rec = spot_writer(url, tmp_path_factory.mktemp("spill"))
    records = spot_records([(s, f"2026-11-20T10:00:0{t}", price / 100) for s, t, price in writes])
    records["sequence"] = np.arange(len(records))
    bounds = sorted({0, len(records), *(c for c in cuts if c < len(records))})
    for lo, hi in itertools.pairwise(bounds):  # the writes cut into batches (transactions) anyhow
        rec.add(records[lo:hi])
        if hi % 2:
            assert rec.flush(timeout=30)
    assert rec.flush(timeout=30)
    rec.close()
    latest: dict[tuple[str, int], int] = {}
    for i, (symbol, t, _) in enumerate(writes):
        latest[(symbol, t)] = i
    got = load_spots(store=url)
    assert len(got) == len(latest)
    for row in got.itertuples():
        i = latest[(row.symbol, row.datetime.second)]
        assert row.sequence == i and row.close == writes[i][2] / 100
    assert rec.stats["written"] == len(writes)


_HYPOTHESIS_DB: dict[str, str] = {}


def _hypothesis_database(server: PostgresServer) -> str:
    """One database for every example of the property (made and migrated once)."""
    if server.url not in _HYPOTHESIS_DB:
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS spots_property")
            admin.execute("CREATE DATABASE spots_property")
        url = server.url.rsplit("/", 1)[0] + "/spots_property"
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        _HYPOTHESIS_DB[server.url] = url
    return _HYPOTHESIS_DB[server.url]


def test_poisoned_spots_are_kept_aside_and_counted_and_the_rest_written(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = spot_writer(pg_url, tmp_path)
    good = spot_records([("SH600000", "2026-11-20T10:00:00", 10.0), ("SH600001", "2026-11-20T10:00:00", 11.0)])
    bad = spot_records([("SH600002", "2026-11-20T10:00:00", 12.0)] * 4)
    bad["close"][0] = np.nan
    bad["volume"][1] = -5.0
    bad["ask"][2, 3] = np.inf
    bad["datetime"][3] = np.datetime64("2400-01-01", "ms")
    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        rec.add(np.concatenate([good[:1], bad, good[1:]]))
        assert rec.flush(timeout=30)
    rec.close()
    assert rec.stats["refused"] == 4 and rec.stats["written"] == 2 and rec.stats["refused_files"] == 1
    assert rec.stats["lost"] == rec.stats["pending"] == 0
    (kept,) = (tmp_path / "spill" / "_refused").glob("refused-*-4.npy")
    assert np.isnan(np.load(kept)["close"][0]) and set(np.load(kept)["symbol"]) == {b"SH600002"}
    assert any("refused spots" in r.getMessage() and r.rows == 4 for r in caplog.records)  # type: ignore[attr-defined]
    assert list(load_spots(store=pg_url)["symbol"]) == ["SH600000", "SH600001"]


def test_database_stopped_mid_day_spots_spill_then_catch_up_with_nothing_lost(
    pg_private: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = pg_private.url
    fed = day_messages(symbols=5, every=20)
    agent = hkrt.SpotAgent(["MIN"], store=url, store_spill_dir=tmp_path, store_spots=True, store_flush_interval=0)
    recorder = agent._spot_store
    assert recorder is not None
    recorder.retry_interval = 0.2
    third = len(fed) // 3
    for message, _ in fed[:third]:
        agent.ingest(message)
    assert recorder.flush(timeout=30)
    before = recorder.stats["written"]
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        pg_private.stop()
        for message, _ in fed[third : 2 * third]:
            agent.ingest(message)
        wait_for(lambda: recorder.stats["pending_memory"] == 0 and recorder.stats["spill_files"] > 0)
        stats = dict(recorder.stats)
        assert stats["failing"] and stats["outages"] == 1 and stats["written"] == before
        assert stats["spilled_rows"] == stats["pending_spilled"] == stats["pending"] > 0
        assert len(list((tmp_path / "spots").glob("spill-*.npy"))) == stats["spill_files"]
        pg_private.start()
        for message, _ in fed[2 * third :]:
            agent.ingest(message)
        assert recorder.flush(timeout=30)
    stats = recorder.stats
    assert not stats["failing"] and not stats["spilling"] and stats["pending"] == stats["spill_files"] == 0
    assert stats["lost"] == stats["refused"] == stats["spill_unreadable"] == 0
    assert stats["last_outage_seconds"] > 0 and stats["connects"] >= 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot write to PostgreSQL: spots" in m for m in messages) == 1
    assert any("caught up: all spilled spots" in m for m in messages)
    want = expected([frame for _, frame in fed])
    pd.testing.assert_frame_equal(load_spots(store=url), want, check_exact=True, check_dtype=False)
    assert stats["written"] == len(want)
    agent.stop()
    recorder.close()
    agent._store.close()  # type: ignore[union-attr]


def test_an_unreadable_spots_spill_file_is_quarantined_not_deleted(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    three = spot_records([("SH600000", "2026-11-20T10:00:00", 1.0)] * 3)
    one = spot_records([("SH600001", "2026-11-20T10:00:00", 5.0)])
    check_an_unreadable_spill_file_is_quarantined(PgSpotWriter, three, one, pg_url, tmp_path, caplog)
    assert list(load_spots(store=pg_url)["symbol"]) == ["SH600001"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_of_spots(pg_url: str, tmp_path: Path, fmt: str) -> None:
    rec = spot_writer(pg_url, tmp_path)
    rec.add(spot_records([("SH600000", "2026-11-20T10:00:03", 10.25), ("SH600001", "2026-11-20T10:00:03", 7.5)]))
    assert rec.flush(timeout=30)
    rec.close()
    out = tmp_path / f"spots.{fmt}"
    run = CliRunner().invoke(cli_main, ["export", "--store", pg_url, "--kind", "spots", "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "2 spots of 2 symbols" in run.output
    back = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert list(back["symbol"]) == ["SH600000", "SH600001"] and list(back["close"]) == [10.25, 7.5]
    assert list(back.columns[-len(BOOK_COLUMNS) - 2 : -2]) == list(BOOK_COLUMNS)
    refused = CliRunner().invoke(cli_main, ["export", "--store", str(tmp_path), "--kind", "spots", "--out", str(out)])
    assert refused.exit_code != 0 and "spots are recorded only in PostgreSQL" in refused.output
    assert "Traceback" not in refused.output
    assert isinstance(PgSpotStore(pg_url).load_spots(None), pd.DataFrame)


def test_agent_command_store_spots_needs_a_database(tmp_path: Path) -> None:
    run = CliRunner().invoke(cli_main, ["agent", "--store", str(tmp_path), "--store-spots", "--seconds", "1"])
    assert run.exit_code == 2 and "records spots in PostgreSQL only" in run.output and "Traceback" not in run.output


def test_a_running_agent_records_every_spot_of_its_live_feed(pg_url: str, tmp_path: Path) -> None:
    """A live nng feed (several messages a cycle) to a running agent with a journal: the spots table holds exactly
    the spots of the messages the agent accepted (its journal), each with its message's publisher and sequence."""
    import multiprocessing

    from feed_process import publish_day_slice
    from hkrt.feed.journal import read_journal
    from hkrt.feed.wire import decode_header
    from hkrt.pgstore.spot_records import from_message

    address = f"ipc://{tmp_path}/feed.ipc"
    cycles = 40
    agent = hkrt.SpotAgent(["MIN"], store=pg_url, store_spill_dir=tmp_path / "spill", store_spots=True,
                           journal_dir=tmp_path / "journal", store_flush_interval=0.2)  # fmt: skip
    agent.start(address)
    publisher = multiprocessing.get_context("spawn").Process(
        target=publish_day_slice, args=(address, 1, 5, cycles, 2, None, None, 0.002)
    )
    publisher.start()
    try:
        publisher.join(120)
        assert publisher.exitcode == 0
        wait_for(lambda: agent.stats()["transport"]["messages"] >= 3 * cycles, 30)  # 5 spots in parts of 2
    finally:
        agent.stop()
        if publisher.is_alive():
            publisher.kill()
    recorder = agent._spot_store
    assert recorder is not None and recorder.flush(timeout=30)
    journaled = []
    for path in sorted((tmp_path / "journal").glob("spots-*.hkj")):
        for record in read_journal(path):
            header = decode_header(record.payload)
            if not header.heartbeat:
                journaled.append(from_message(record.payload, header.publisher_id, header.sequence))
    fed = np.concatenate(journaled)
    assert len(fed) == 5 * cycles and recorder.stats["written"] == len(fed) and recorder.stats["lost"] == 0
    got = load_spots(store=pg_url)
    want = pd.DataFrame({"symbol": np.char.decode(fed["symbol"], "ascii"), "datetime": fed["datetime"],
                         "close": fed["close"], "volume": fed["volume"], "sequence": fed["sequence"]})  # fmt: skip
    want = expected([want])
    pd.testing.assert_frame_equal(got[list(want.columns)], want, check_dtype=False)
    assert set(got["publisher_id"]) == {decode_header(record.payload).publisher_id}  # one publisher sent all
    assert sorted(set(got["sequence"])) == list(range(1, 3 * cycles + 1))
    recorder.close()
    agent._store.close()  # type: ignore[union-attr]


def test_a_message_that_cannot_be_decoded_is_counted_lost_and_the_rest_written(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = spot_writer(pg_url, tmp_path)
    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        rec.add_message(b"not a wire message", 3, publisher_id=9, sequence=17)  # the agent verified it: never so
        rec.add(spot_records([("SH600000", "2026-11-20T10:00:00", 10.0)]))
        assert rec.flush(timeout=30)
    rec.close()
    assert rec.stats["lost"] == 3 and rec.stats["written"] == 1 and rec.stats["pending"] == 0
    assert any("could not be decoded" in r.getMessage() and r.sequence == 17 for r in caplog.records)  # type: ignore[attr-defined]
    assert list(load_spots(store=pg_url)["symbol"]) == ["SH600000"]
