"""The main job: `hkrt demo` aggregates a simulated day offline and prints bars."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from hkrt.cli import main


def test_demo_runs_a_whole_simulated_day() -> None:
    result = CliRunner().invoke(main, ["demo", "--symbols", "6", "--date", "2026-11-20", "--show", "SZ000001"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "6 simulated symbols on 2026-11-20" in out
    assert "28,806 spots" in out  # 6 symbols x (1 auction + 4800) pushes
    assert "rejected 0" in out
    # Every symbol traded the whole day: 240 MIN bars, 4 MIN60, 2 HOUR2, 1 of each longer period.
    assert "MIN 1,440, MIN3 480, MIN5 288, MIN15 96, MIN30 48, MIN60 24, HOUR2 12, DAY 6, WEEK 6" in out
    for label in ("2026-11-20 10:30:00", "2026-11-20 11:30:00", "2026-11-20 14:00:00", "2026-11-20 15:00:00"):
        assert label in out
    assert "SZ000001 DAY" in out


def test_demo_refuses_a_non_trading_day() -> None:
    result = CliRunner().invoke(main, ["demo", "--date", "2026-10-01"])
    assert result.exit_code != 0
    assert "2026-10-01 is not a trading day" in result.output


def test_console_entry_point_and_module_run() -> None:
    run = subprocess.run([sys.executable, "-m", "hkrt", "demo", "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    assert "--symbols" in run.stdout and "--date" in run.stdout
