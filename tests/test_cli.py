"""The hkrt command: entry points, demo argument checks, the pull source (the demo itself: test_demo.py)."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from hkrt.cli import main


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
