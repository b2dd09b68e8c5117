"""Each benchmark still runs (in its quick mode) and prints its table; no timing is asserted."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    ("script", "args", "header"),
    [
        ("bench_kdata.py", ["--quick", "--repeat", "1"], "| Path | Symbols | Spots |"),
        ("bench_wire.py", ["--quick"], "| path | spots/message | spots/s |"),
        ("bench_agent.py", ["--symbols", "200", "--cycles", "30"], "| run | cycles | p50 ms |"),
        ("fuzz_feed.py", ["--quick"], "| buffers tried | crashes |"),
        ("bench_bus.py", ["--quick"], "| path | items | per second |"),
        ("bench_indicators.py", ["--quick"], "| path | ms per whole-market minute |"),
        ("bench_orders.py", ["--quick"], "| path | per second |"),
        ("bench_emulator.py", ["--quick"], "| market | held orders |"),
        ("bench_paper.py", ["--quick"], "| path | open orders | ms per batch |"),
        ("bench_ledger.py", ["--quick"], "| path | µs per fill |"),
        ("bench_metrics.py", ["--quick"], "| path | ms per scrape |"),
        ("bench_redis.py", ["--quick"], "| run | cycles | p50 ms | p90 ms |"),
        ("bench_trader.py", ["--quick"], "| path | µs per order |"),
        ("bench_dashboard_relay.py", ["--quick"], "| reader | changes | changes/s applied |"),
    ],
)
def test_benchmark_prints_its_table(script: str, args: list[str], header: str) -> None:
    if script == "bench_redis.py" and shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert header in run.stdout


def test_pgstore_benchmark_prints_its_tables() -> None:
    """bench_pgstore.py starts a PostgreSQL of its own: skipped where there is none."""
    from hkrt.testing.postgres import PG_PACKAGE, find_pg_bindir

    pytest.importorskip("psycopg", reason="bench_pgstore.py needs psycopg: pip install 'hkrt[postgres]'")
    if find_pg_bindir() is None:
        pytest.skip(f"PostgreSQL is not installed: install the {PG_PACKAGE} package")
    script = str(BENCHMARKS / "bench_pgstore.py")
    run = subprocess.run([sys.executable, script, "--quick"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| path | rows | PostgreSQL s |" in run.stdout and "| rows added while down |" in run.stdout
    assert "| spots path | spots | s | spots/s |" in run.stdout and "| record a whole-market cycle (" in run.stdout
