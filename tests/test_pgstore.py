"""The PostgreSQL bar recorder against a real PostgreSQL 15 (tests/pg_server.py): the schema is created and
migrated once, a simulated day through an agent lands exactly as the Parquet store keeps it, re-written bars
upsert (latest wins), refused rows are kept and counted, ``load_kdata`` and ``hkrt export`` read it back, and
no password ever reaches a log line, a stats dict or an error."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import hkrt
from hkrt import _hkrt
from hkrt.cli import main as cli_main
from hkrt.core.synthetic import synthetic_day
from hkrt.pgstore import DatabaseUnavailable, PgBarStore, PgBarWriter, redact_url
from hkrt.pgstore.schema import LATEST, SchemaTooNew, migrate
from hkrt.store import empty_bars, load_kdata
from hkrt.testing.postgres import _free_port

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL recorder needs psycopg: pip install 'hkrt[postgres]'")

FRIDAY = dt.date(2026, 11, 20)
KTYPES = ["MIN", "MIN5", "MIN60", "DAY", "WEEK", "MONTH"]


def records(rows: list[tuple[str, str, str, float]]) -> np.ndarray:
    """Completed-bar records (symbol, ktype, label, close); the other prices follow close."""
    out = np.zeros(len(rows), dtype=_hkrt.COMPLETED_DTYPE)
    for i, (symbol, ktype, label, close) in enumerate(rows):
        code = hkrt.KType.parse(ktype).record_code
        values = (close, close + 1, close - 1, close, 100.0, 1e3)
        out[i] = (symbol.encode(), code, np.datetime64(label, "ms"), *values, False, False)
    return out


def writer(url: str, tmp_path: Path, **options: object) -> PgBarWriter:
    return PgBarWriter(url, spill_dir=tmp_path / "spill", fsync=False, **options)  # type: ignore[arg-type]


def columns_of(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'hkrt' AND table_name = %s "
            "ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [r[0] for r in rows]


def test_schema_is_created_and_migrated_once(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrate(conn, up_to=1) == (1, [1])
        assert "written_at" not in columns_of(pg_url, "bars")
        conn.execute(
            "CREATE TABLE hkrt.bars_202611 PARTITION OF hkrt.bars FOR VALUES FROM ('2026-11-01') TO ('2026-12-01')"
        )
        conn.execute("INSERT INTO hkrt.bars VALUES ('SH600000', 'MIN', '2026-11-20 09:31', 1, 2, 0.5, 1.5, 10, 15)")
        assert migrate(conn) == (LATEST, list(range(2, LATEST + 1)))  # an old schema, with rows, moves up
        assert migrate(conn) == (LATEST, [])  # and again changes nothing
        assert conn.execute("SELECT count(*), min(close) FROM hkrt.bars").fetchone() == (1, 1.5)
        assert [v for (v,) in conn.execute("SELECT version FROM hkrt.schema_version ORDER BY 1")] == [1, 2, 3]
    assert columns_of(pg_url, "bars")[-1] == "written_at"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO hkrt.schema_version (version, description) VALUES (99, 'from the future')")
        with pytest.raises(SchemaTooNew, match="version 99"):
            migrate(conn)


def test_two_recorders_starting_together_migrate_once(pg_url: str, tmp_path: Path) -> None:
    first, second = writer(pg_url, tmp_path / "a"), writer(pg_url, tmp_path / "b")
    first.add(records([("SH600000", "MIN", "2026-11-20T09:31", 10.0)]))
    second.add(records([("SH600001", "MIN", "2026-11-20T09:31", 11.0)]))
    assert first.flush(timeout=30) and second.flush(timeout=30)
    first.close(), second.close()
    assert first.stats["schema_version"] == second.stats["schema_version"] == LATEST
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM hkrt.schema_version").fetchone() == (LATEST,)
    assert len(load_kdata(None, "MIN", store=pg_url)) == 2


def run_day(agent: hkrt.SpotAgent, symbols: int = 6) -> None:
    for push in synthetic_day(symbols, FRIDAY):
        agent.ingest_columns(**push.columns())
    agent.advance_to("2026-11-20 15:05")


def test_a_simulated_day_through_an_agent_equals_the_parquet_store(pg_url: str, tmp_path: Path) -> None:
    recorded = hkrt.SpotAgent(KTYPES, store=pg_url, store_spill_dir=tmp_path / "spill")
    parquet = hkrt.SpotAgent(KTYPES, store=tmp_path / "store")
    run_day(recorded)
    run_day(parquet)
    recorded.stop()
    parquet.stop()
    stats = recorded.stats()["store"]
    assert stats["pending"] == 0 and stats["written"] == parquet.stats()["store"]["written"] > 0
    assert stats["lost"] == stats["refused"] == stats["spilled_rows"] == 0
    assert "postgresql://postgres@127.0.0.1" in stats["url"]
    assert isinstance(recorded.store, PgBarStore)
    for ktype in KTYPES:
        from_db = load_kdata(None, ktype, store=pg_url)
        assert len(from_db) > 0 or ktype == "MONTH"  # November is not over
        pd.testing.assert_frame_equal(from_db, load_kdata(None, ktype, store=tmp_path / "store"), check_exact=True)
        symbol = recorded.symbols[0]
        if ktype != "MONTH":  # the agent's MONTH bar is still forming
            pd.testing.assert_frame_equal(load_kdata(symbol, ktype, store=pg_url), recorded.kdata(symbol, ktype))
    with psycopg.connect(pg_url) as conn:  # one monthly partition holds the day
        assert [r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM hkrt.bars GROUP BY 1")] == [
            "hkrt.bars_202611"
        ]


def test_a_new_agent_loads_its_history_from_the_database(pg_url: str, tmp_path: Path) -> None:
    first = hkrt.SpotAgent(["MIN", "DAY"], store=pg_url, store_spill_dir=tmp_path / "spill")
    run_day(first, symbols=3)
    first.stop()
    first._store.close()  # type: ignore[union-attr]  # frees the spill directory for the next agent
    second = hkrt.SpotAgent(["MIN", "DAY"], store=pg_url, store_spill_dir=tmp_path / "spill")
    loaded = second.load_history(before="2026-11-23")
    assert loaded["MIN"] == len(load_kdata(None, "MIN", store=pg_url)) and loaded["DAY"] == 3
    pd.testing.assert_frame_equal(second.kdata(first.symbols[0], "DAY"), first.kdata(first.symbols[0], "DAY"))


def test_rewritten_bars_upsert_and_the_latest_write_wins(pg_url: str, tmp_path: Path) -> None:
    rec = writer(pg_url, tmp_path)
    rec.add(records([("SH600000", "MIN", "2026-11-20T09:31", 10.0), ("SH600000", "MIN", "2026-11-20T09:32", 10.5)]))
    assert rec.flush(timeout=30)
    with psycopg.connect(pg_url) as conn:
        (first_write,) = conn.execute("SELECT written_at FROM hkrt.bars WHERE close = 10.5").fetchone()
    # a recovery re-emits 09:32 with another close, twice in one batch (the last wins), and adds 09:33
    rec.add(
        records(
            [
                ("SH600000", "MIN", "2026-11-20T09:32", 11.0),
                ("SH600000", "MIN", "2026-11-20T09:32", 12.0),
                ("SH600000", "MIN", "2026-11-20T09:33", 13.0),
            ]
        )
    )
    rec.add(records([("SH600000", "MIN", "2026-11-20T09:33", 14.0)]))  # a later batch wins over an earlier one
    assert rec.flush(timeout=30)
    rec.close()
    got = load_kdata("SH600000", "MIN", store=pg_url)
    assert list(got["close"]) == [10.0, 12.0, 14.0]
    assert list(got["high"]) == [11.0, 13.0, 15.0]  # every column of the row is replaced, not just close
    assert rec.stats["written"] == 6
    with psycopg.connect(pg_url) as conn:
        (later,) = conn.execute("SELECT written_at FROM hkrt.bars WHERE datetime = '2026-11-20 09:32'").fetchone()
        assert later > first_write


def test_each_month_gets_its_partition_on_demand(pg_url: str, tmp_path: Path) -> None:
    rec = writer(pg_url, tmp_path)
    rec.add(
        records(
            [
                ("SH600000", "DAY", "2026-11-30", 10.0),
                ("SH600000", "DAY", "2026-12-31", 11.0),
                ("SH600000", "DAY", "2027-01-04", 12.0),
                ("SH600000", "YEAR", "2026-12-31", 13.0),
            ]
        )
    )
    assert rec.flush(timeout=30)
    assert rec.stats["partitions_created"] == 3
    rec.add(records([("SH600001", "DAY", "2026-12-01", 9.0)]))  # an existing month: nothing new
    assert rec.flush(timeout=30)
    rec.close()
    assert rec.stats["partitions_created"] == 3
    with psycopg.connect(pg_url) as conn:
        placed = dict(conn.execute("SELECT datetime::date::text, tableoid::regclass::text FROM hkrt.bars").fetchall())
    assert placed == {
        "2026-11-30": "hkrt.bars_202611",
        "2026-12-31": "hkrt.bars_202612",
        "2026-12-01": "hkrt.bars_202612",
        "2027-01-04": "hkrt.bars_202701",
    }
    assert list(load_kdata("SH600000", "DAY", store=pg_url, start="2026-12-01")["close"]) == [11.0, 12.0]


def test_refused_rows_are_kept_counted_and_the_rest_written(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = writer(pg_url, tmp_path)
    batch = records([("SH600000", "MIN", "2026-11-20T09:31", 10.0), ("SH600001", "MIN", "2026-11-20T09:31", 11.0)])
    bad = records([("SH600002", "MIN", "2026-11-20T09:31", 12.0)])
    bad["datetime"] = np.datetime64("2400-01-01", "ms")  # a corrupt label no partition should be made for
    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        rec.add(np.concatenate([batch, bad]))
        assert rec.flush(timeout=30)
    rec.close()
    assert rec.stats["refused"] == 1 and rec.stats["written"] == 2 and rec.stats["refused_files"] == 1
    kept = list((tmp_path / "spill" / "_refused").glob("refused-*-1.npy"))
    assert len(kept) == 1 and np.load(kept[0])["symbol"][0] == b"SH600002"
    assert any("refused" in r.message and r.rows == 1 for r in caplog.records)  # type: ignore[attr-defined]
    assert list(load_kdata(None, "MIN", store=pg_url)["symbol"]) == ["SH600000", "SH600001"]


def test_load_kdata_shapes_and_an_empty_database(pg_url: str, tmp_path: Path) -> None:
    empty = load_kdata(None, "MIN", store=pg_url)  # the recorder never ran here: no bars, not an error
    pd.testing.assert_frame_equal(empty, empty_bars())
    rec = writer(pg_url, tmp_path)
    odd = [0.1 + 0.2, 1e-300, 123456.78901234567, np.inf, np.nan]  # every double arrives bit for bit
    bars = records([("SZ000001", "MIN", f"2026-11-20T10:3{i}", 1.0) for i in range(len(odd))])
    bars["close"], bars["filled"] = odd, [True, False, True, False, True]
    bars["datetime"][0] += np.timedelta64(1500, "ms")  # a label with milliseconds
    rec.add(records([("SZ000001", "MIN", "2026-11-20T09:31", 10.0)]))
    rec.add(bars)
    assert rec.flush(timeout=30)
    rec.close()
    one = load_kdata("000001.SZ", "MIN", "2026-11-20 10:00", "2026-11-20", store=pg_url)
    assert list(one.columns) == ["open", "high", "low", "close", "volume", "amount", "filled"]
    assert one.index.name == "datetime" and one.index[0] == pd.Timestamp("2026-11-20 10:30:01.500")
    np.testing.assert_array_equal(one["close"].to_numpy(), np.array(odd))
    assert list(one["filled"]) == [True, False, True, False, True]
    long = load_kdata(symbols=["sz000001"], ktype="MIN", store=PgBarStore(pg_url))
    assert list(long.columns) == list(empty_bars().columns) and dict(long.dtypes) == dict(empty_bars().dtypes)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_reads_the_database(pg_url: str, tmp_path: Path, fmt: str) -> None:
    rec = writer(pg_url, tmp_path)
    rec.add(records([("SH600000", "MIN", "2026-11-20T09:31", 10.25), ("SH600001", "MIN", "2026-11-20T09:31", 7.5)]))
    assert rec.flush(timeout=30)
    rec.close()
    out = tmp_path / f"bars.{fmt}"
    run = CliRunner().invoke(cli_main, ["export", "--store", pg_url, "--ktype", "min", "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "2 MIN bars of 2 symbols" in run.output
    back = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert list(back["symbol"]) == ["SH600000", "SH600001"] and list(back["close"]) == [10.25, 7.5]


def test_no_password_in_logs_stats_or_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql://trader:s3cr%3Ft-pw@127.0.0.1:{_free_port()}/bars?sslmode=disable"  # nobody listens
    assert redact_url(url) == url.replace("s3cr%3Ft-pw", "***")
    assert redact_url("postgresql://u@h/db?password=s3cr%3Ft-pw") == "postgresql://u@h/db?password=***"
    with caplog.at_level(logging.DEBUG):
        rec = writer(url, tmp_path, retry_interval=0.05, connect_timeout=1)
        rec.add(records([("SH600000", "MIN", "2026-11-20T09:31", 10.0)]))
        assert not rec.flush()  # the first failed round answers
        rec.close()
        with pytest.raises(DatabaseUnavailable) as raised:
            load_kdata(None, "MIN", store=url)
        run = CliRunner().invoke(cli_main, ["export", "--store", url, "--out", str(tmp_path / "x.csv")])
    assert run.exit_code == 1 and "cannot read bars from postgresql://trader:***@127.0.0.1" in run.output
    assert "Traceback" not in run.output
    texts = [run.output, str(raised.value), repr(rec), str(rec.stats)]
    texts += [r.getMessage() + str(r.__dict__) for r in caplog.records]
    for text in texts:
        assert "s3cr" not in text, text
    assert rec.stats["failing"] and rec.stats["spill_files"] == 1 and rec.stats["lost"] == 0


def test_a_table_made_by_hand_without_native_partitions_is_written_as_it_is(pg_url: str, tmp_path: Path) -> None:
    """What a TimescaleDB hypertable looks like to the recorder: a plain hkrt.bars made before its first start,
    the migrations marked done; the recorder upserts into it and makes no partitions."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate(conn, up_to=0)  # the schema and hkrt.schema_version only
        conn.execute(
            "CREATE TABLE hkrt.bars (symbol text, ktype text, datetime timestamp(3), open float8, high float8, "
            "low float8, close float8, volume float8, amount float8, filled boolean NOT NULL DEFAULT false, "
            "written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (symbol, ktype, datetime))"
        )
        conn.execute("INSERT INTO hkrt.schema_version (version, description) VALUES (1, 'by hand'), (2, 'by hand')")
    rec = writer(pg_url, tmp_path)
    rec.add(records([("SH600000", "DAY", "2026-11-20", 10.0), ("SH600000", "DAY", "2027-01-04", 11.0)]))
    rec.add(records([("SH600000", "DAY", "2026-11-20", 12.0)]))
    assert rec.flush(timeout=30)
    rec.close()
    assert rec.stats["partitions_created"] == 0 and rec.stats["schema_version"] == LATEST
    assert list(load_kdata("SH600000", "DAY", store=pg_url)["close"]) == [12.0, 11.0]


def test_psycopg_loads_only_for_a_database_and_its_absence_is_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    lean = "import sys, hkrt; hkrt.SpotAgent(store=sys.argv[1]); hkrt.load_kdata(None, 'MIN', store=sys.argv[1]); "
    lean += "assert 'psycopg' not in sys.modules and 'hkrt.pgstore' not in sys.modules"
    run = subprocess.run([sys.executable, "-c", lean, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    missing = (
        "import sys; sys.modules['psycopg'] = None; import hkrt\n"
        "from click.testing import CliRunner\nfrom hkrt.cli import main\n"
        "url = 'postgresql://u:pw@127.0.0.1:1/db'\n"
        "try:\n    hkrt.SpotAgent(store=url)\n"
        "except ImportError as err:\n    print('agent:', err)\n"
        "run = CliRunner().invoke(main, ['export', '--store', url, '--out', sys.argv[1]])\n"
        "print('export:', run.exit_code, run.output)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", missing, str(tmp_path / "x.csv")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "agent: PostgreSQL support needs psycopg: pip install 'hkrt[postgres]'" in run.stdout, run.stdout
    assert "export: 1 Error: PostgreSQL support needs psycopg: pip install 'hkrt[postgres]'" in run.stdout, run.stdout
    assert "Traceback" not in run.stdout
