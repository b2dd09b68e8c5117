"""The issue's example strategies trade on the simulated market through ``hkrt run``, every entry
with its bracket, and their recording replayed gives the same orders and fills.

Real parts: the CLI in a subprocess (its in-process spot server, agent, paper broker, emulator),
and a journal recorded by a spot server from the same simulated day.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from hkrt.feed.server import SpotServer
from hkrt.feed.transport import SpotPublisher
from hkrt.fetcher.sim import SimConfig, SimMarket

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 20)
SYMBOLS = 20  # the examples' six codes are in it; both see their signals on this day
EXAMPLES = ["macd_cross", "boll_rsi_reversion"]
FILL_COLUMNS = ["datetime", "symbol", "side", "price", "shares", "fees"]


def hkrt_run(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "hkrt", "run", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=dict(os.environ))  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr and " raised" not in done.stderr, done.stderr[-3000:]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def without_ids(orders: list[dict[str, str]]) -> list[dict[str, str]]:
    """The orders with their client ids (which carry the run's random tag) replaced by their index."""
    index = {o["client_order_id"]: str(i) for i, o in enumerate(orders)}
    return [
        {**{k: v for k, v in o.items() if k != "client_order_id"}, "parent_id": index.get(o["parent_id"], "")}
        for o in orders
    ]


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated day as a spot server records it (``hkrt spot-server --record``)."""
    path = tmp_path_factory.mktemp("journal") / "day.hkj"
    with SpotPublisher(f"inproc://examples-{secrets.token_hex(6)}", record=path, simulated_time=True,
                       heartbeat_interval=0) as publisher:  # fmt: skip
        SpotServer(publisher).run_sim(SimMarket(DAY, SimConfig(symbols=SYMBOLS)), speed=1e9)
    return path


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_trades_with_brackets_on_a_simulated_day_and_its_replay_alike(
    example: str, journal: Path, tmp_path: Path
) -> None:
    script = f"examples/{example}.py"
    hkrt_run(script, "--source", "sim", "--broker", "paper", "--date", str(DAY), "--symbols", str(SYMBOLS),
             "--speed", "20000", "--out", str(tmp_path / "sim"))  # fmt: skip
    orders = read_csv(tmp_path / "sim" / "orders.csv")
    trades = read_csv(tmp_path / "sim" / "trades.csv")
    entries = [o for o in orders if o["side"] == "buy" and not o["parent_id"]]
    filled = [o for o in entries if int(o["filled_shares"]) > 0]
    assert filled, orders
    for entry in entries:
        legs = [o for o in orders if o["parent_id"] == entry["client_order_id"]]
        if int(entry["filled_shares"]) == 0:
            assert legs == []  # no fill, no legs
            continue
        # a take-profit (limit sell) and a stop-loss (stop sell) for the shares the entry bought, held
        # by the emulator until they become sellable on the next trading day
        assert sorted(leg["order_type"] for leg in legs) == ["limit", "stop"], legs
        take_profit = next(leg for leg in legs if leg["order_type"] == "limit")
        stop_loss = next(leg for leg in legs if leg["order_type"] == "stop")
        assert float(take_profit["price"]) > float(entry["average_price"]) > float(stop_loss["stop_price"])
        for leg in legs:
            assert leg["side"] == "sell" and leg["shares"] == entry["filled_shares"] and leg["emulated"] == "True"
            assert leg["status"] == "submitted" and leg["created"] >= entry["created"]
    bought = {o["client_order_id"] for o in filled}
    assert {t["client_order_id"] for t in trades if t["side"] == "buy"} == bought

    # the replay journals its held orders (a state dir): the bracket legs of sent entries are written whole
    hkrt_run(script, "--source", "replay", "--replay", str(journal), "--broker", "paper",
             "--out", str(tmp_path / "replay"), "--state-dir", str(tmp_path / "state"))  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "state" / "emulator.jsonl").read_text().splitlines()]
    assert any("bracket" in r for r in records), records[:3]
    replayed = read_csv(tmp_path / "replay" / "orders.csv")
    assert without_ids(replayed) == without_ids(orders)
    replayed_trades = read_csv(tmp_path / "replay" / "trades.csv")
    assert [[t[k] for k in FILL_COLUMNS] for t in replayed_trades] == [[t[k] for k in FILL_COLUMNS] for t in trades]
