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


def test_pull_source_keeps_one_client_and_drops_codes_the_source_does_not_know(tmp_path) -> None:
    import datetime as dt

    import hkrt
    from hkrt.cli import _codes, _pull_fetcher
    from hkrt.testing import QuoteServer

    when = dt.datetime(2026, 11, 20, 10, 0)
    known = [
        hkrt.Spot(s, when, open=10, high=10, low=10, close=10, volume=100, amount=1000)
        for s in ("SH600000", "SZ000001")
    ]
    codes_file = tmp_path / "codes.txt"
    codes_file.write_text("SH600000, sz000001\n600001.SH  SH600002\n", encoding="utf-8")
    codes = _codes(f"@{codes_file}", "sina")
    assert codes == ["SH600000", "SZ000001", "SH600001", "SH600002"]
    with QuoteServer(known) as quotes:
        fetch = _pull_fetcher("sina", quotes.base_url("sina"))
        first = fetch(codes)
        assert sorted(s.symbol for s in first.spots) == ["SH600000", "SZ000001"] and first.failed_batches == 0
        quotes.requests.clear()
        second = fetch(codes)
        assert len(second.spots) == 2
        assert sorted(quotes.tokens("sina")) == ["sh600000", "sz000001"]  # the unknown two are no longer asked
