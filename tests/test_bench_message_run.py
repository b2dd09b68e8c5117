"""benchmarks/bench_message.py still runs in its quick mode and prints its table (no timing asserted)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_message_prints_its_table_and_cross_checks() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_message.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| path (all 13 periods unless said) | spots | M spots/s |" in run.stdout
    assert "cross-check, 8-field messages: 120,000 of 120,000 spots accepted" in run.stdout
    assert "cross-check, wide messages: 120,000 of 120,000 spots accepted" in run.stdout
