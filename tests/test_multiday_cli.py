"""Multi-day runs from the command line: ``hkrt run --source sim --days N``, ``hkrt run --replay`` over
several journals, and ``hkrt demo`` (several days by default) showing sells, round trips and the
performance table.  Real parts: the CLI in a subprocess, its in-process spot server, agent and paper
broker; journals recorded by a spot server.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hkrt
from hkrt.fetcher.sim import SimConfig
from sim_journals import record_days

ROOT = Path(__file__).resolve().parents[1]
FIRST = dt.date(2026, 11, 20)  # a Friday: the five days run to Thursday 2026-11-26
FIVE_DAYS = "2026-11-20 to 2026-11-26"


def hkrt_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # the hkrt this test imported (the installed package in CI, the source tree in development)
    env = {**os.environ, "PYTHONPATH": str(Path(hkrt.__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "hkrt", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)  # fmt: skip


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def without_ids(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows but for their client order ids (each run tags them)."""
    return [{k: v for k, v in r.items() if k != "client_order_id"} for r in rows]


def round_trips(trades: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    """(symbol, first buy's time, a later sell's time) for each symbol bought and then sold."""
    found = []
    for symbol in sorted({t["symbol"] for t in trades}):
        buys = [t["datetime"] for t in trades if t["symbol"] == symbol and t["side"] == "buy"]
        sells = [t["datetime"] for t in trades if t["symbol"] == symbol and t["side"] == "sell"]
        later = [s for s in sells if buys and s > min(buys)]
        if later:
            found.append((symbol, min(buys), min(later)))
    return found


def test_the_macd_example_over_five_simulated_days_makes_round_trips(tmp_path: Path) -> None:
    # --interval 15: a snapshot every 15 market seconds keeps the five days to a few seconds of work
    result = hkrt_cli("run", "examples/macd_cross.py", "--source", "sim", "--broker", "paper", "--days", "5",
                      "--symbols", "20", "--date", str(FIRST), "--interval", "15", "--speed", "1e9",
                      "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert f"simulated 5 days {FIVE_DAYS}: " in out and "; 5 of 5 days closed" in out and " 0 gaps" in out
    trades = read_csv(tmp_path / "trades.csv")
    trips = round_trips(trades)
    assert trips, trades
    for _symbol, bought, sold in trips:
        assert sold[:10] > bought[:10]  # T+1: a sale comes on a later day than the buy
    assert {t["datetime"][:10] for t in trades} > {str(FIRST)}  # trading on more than the first day
    # the performance table, over the five days
    assert re.search(r"^trading days\s+5$", out, re.M), out[-2000:]
    trips_row = re.search(r"^round trips\s+(\d+)$", out, re.M)
    assert trips_row and int(trips_row.group(1)) >= len(trips)
    equity = read_csv(tmp_path / "equity.csv")
    assert {e["datetime"][:10] for e in equity} == {"2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25",
                                                    "2026-11-26"}  # fmt: skip


SCRIPT = """
import hkrt
strategy = hkrt.Strategy(codes=["SH600000"], ktypes=["MIN"], name="hold")

@strategy.on_bar
def buy_then_sell(symbol, ktype, bar):
    if bar.datetime.strftime("%H:%M") == "10:00" and strategy.position(symbol) == 0:
        strategy.order_value(symbol, 50_000)
    elif bar.datetime.strftime("%H:%M") == "14:00" and strategy.positions.get(symbol):
        if strategy.positions[symbol].sellable:
            strategy.order(symbol, -strategy.positions[symbol].sellable)
"""


def test_replay_of_a_directory_and_of_journals_in_order_with_one_line_refusals(tmp_path: Path) -> None:
    days = [dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25)]
    folder = tmp_path / "journals"
    folder.mkdir()
    config = SimConfig(symbols=10, interval=30.0)
    journals = record_days([folder / f"spots-{day:%Y%m%d}.hkj" for day in days], days, config)
    script = tmp_path / "hold.py"
    script.write_text(SCRIPT)
    result = hkrt_cli("run", str(script), "--source", "replay", "--replay", str(folder), "--out", str(tmp_path / "a"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "replayed 3 days 2026-11-23 to 2026-11-25: 1533 cycles, 0 gaps" in result.stdout
    assert "; 3 of 3 days closed" in result.stdout
    trades = read_csv(tmp_path / "a" / "trades.csv")
    # bought on the 23rd, sold on the 24th (T+1), bought again at 10:00 on the 25th
    assert [(t["datetime"][:10], t["side"]) for t in trades][:1] == [("2026-11-23", "buy")]
    assert ("2026-11-24", "sell") in {(t["datetime"][:10], t["side"]) for t in trades}
    given = hkrt_cli("run", str(script), "--source", "replay", *(a for j in journals for a in ("--replay", str(j))),
                     "--out", str(tmp_path / "b"))  # fmt: skip
    assert given.returncode == 0, given.stderr[-3000:]
    assert without_ids(read_csv(tmp_path / "b" / "trades.csv")) == without_ids(trades)

    wrong = hkrt_cli(
        "run", str(script), "--source", "replay", "--replay", str(journals[1]), "--replay", str(journals[0])
    )
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    refusal = (
        r"Error: journal \S+spots-20261123\.hkj \(2026-11-23\) comes before the day of \S+spots-20261124\.hkj "
        r"\(2026-11-24\): give journals in increasing date order, each day once\n"
    )
    assert re.fullmatch(refusal, wrong.stderr), wrong.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "examples/macd_cross.py", "--source", "sim", "--days", "0"],
         "Invalid value for --days: must be at least 1, not 0"),
        (["run", "examples/macd_cross.py", "--source", "replay", "--replay", "x.hkj", "--days", "2"],
         "Invalid value for --days: is for --source sim"),
        (["run", "examples/macd_cross.py", "--source", "sim", "--date", "2026-12-30", "--days", "3"],
         "2027-01-01 is outside the trading calendar's coverage"),
        (["demo", "--days", "0"], "Invalid value for --days: must be at least 1, not 0"),
    ],
)  # fmt: skip
def test_bad_day_counts_are_one_line_errors(args: list[str], message: str) -> None:
    result = hkrt_cli(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr


def test_the_demo_plays_several_days_and_shows_sells_round_trips_and_performance(tmp_path: Path) -> None:
    result = hkrt_cli("demo", "--date", str(FIRST), "--days", "3", "--symbols", "20", "--interval", "15",
                      "--speed", "1e9", "--out", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "on 3 trading days, 2026-11-20 to 2026-11-24" in out
    assert re.search(r"^  days\s+3: 2026-11-20 to 2026-11-24, each closed$", out, re.M), out
    progress = [line for line in out.splitlines() if line.startswith("market ")]
    assert progress[-1].startswith("market 15:00:00 100% day 3/3")
    sells = re.search(r"^  trades\s+(\d+)  \(buy (\d+), sell (\d+)\)$", out, re.M)
    assert sells and int(sells.group(3)) > 0, out
    trips = re.search(r"^  round trips\s+(\d+)", out, re.M)
    assert trips and int(trips.group(1)) > 0
    assert re.search(r"^performance \(docs/performance\.md\)\n  start equity\s+1,000,000\.00$", out, re.M)
    assert re.search(r"^  trading days\s+3$", out, re.M)
    trades = read_csv(tmp_path / "out" / "trades.csv")
    assert round_trips(trades)
    assert all(s[:10] > b[:10] for _, b, s in round_trips(trades))
