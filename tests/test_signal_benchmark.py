"""benchmarks/bench_signals.py still runs (in its quick mode) and prints its table; no timing is asserted
(the pattern of tests/test_benchmarks_run.py)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

BENCHMARK = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_signals.py"


def test_the_signal_benchmark_prints_its_table() -> None:
    run = subprocess.run([sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| path | per second | µs each | vs baseline |" in run.stdout
    assert "collected, voted per symbol at each cycle's end" in run.stdout
