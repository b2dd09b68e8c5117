"""``hkrt node`` with trader children (real processes, real nng): each strategy's paper broker runs in an
``hkrt trader`` of its own and the strategy reaches it with ``--broker remote``.  A whole day's orders are
filled through the traders and each strategy's ledger agrees with its account; a trader killed mid-day is
restarted with its account and the orders go on; a frozen trader is seen through its heartbeat file and
restarted while the strategies' callbacks keep running; two days carry the books and the T+1 holdings."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from test_node import read_json, wait_until

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 20)  # a Friday: the next trading day is Monday 2026-11-23
SYMBOLS = 20
STRATEGIES = ("macd_cross", "boll_rsi_reversion")
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="signals sent as on POSIX")


def node_process(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES") and not k.startswith("HKRT_REMOTE")}
    scripts = [a for s in STRATEGIES for a in ("--strategy", f"examples/{s}.py")]
    argv = [sys.executable, "-m", "hkrt", "node", "--run-dir", str(tmp_path / "node"),
            "--address", f"ipc://{tmp_path / 'spot.ipc'}", "--symbols", str(SYMBOLS), "--date", DAY.isoformat(),
            "--broker", "paper", *scripts, *args]  # fmt: skip
    return subprocess.Popen(argv, text=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def journal_orders(run_dir: Path, strategy: str) -> dict[str, dict[str, Any]]:
    """Client id -> the trader journal's last word on it (what the trader sent to its paper broker)."""
    path = run_dir / "traders" / f"trader-paper-{strategy}.journal"
    orders: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return orders
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line being written
        orders.setdefault(row["cid"], {}).update(row)
    return orders


def child(run_dir: Path, name: str) -> dict[str, Any]:
    return dict(read_json(run_dir / "node.json").get("processes", {}).get(name) or {})


def status(run_dir: Path, strategy: str) -> dict[str, Any]:
    return read_json(run_dir / "state" / strategy / "control" / "status.json")


def log_of(run_dir: Path, name: str) -> str:
    return (run_dir / "logs" / f"{name}.log").read_text(encoding="utf-8")


def assert_books_agree(run_dir: Path) -> None:
    for name in STRATEGIES:
        text = log_of(run_dir, f"strategy-{name}")
        assert "ledger and broker paper agree" in text, text[-3000:]
        assert "equal to the book to the fen" in text


@POSIX_ONLY
def test_a_day_through_trader_children_survives_a_killed_trader(tmp_path: Path) -> None:
    run_dir = tmp_path / "node"
    proc = node_process(tmp_path, "--speed", "2000")
    victim = "trader-paper-macd_cross"
    before = wait_until("macd_cross's orders at its trader", lambda: len(journal_orders(run_dir, "macd_cross")) >= 2
                        and journal_orders(run_dir, "macd_cross"), proc)  # fmt: skip
    pid, strategy = child(run_dir, victim)["pid"], child(run_dir, "strategy-boll_rsi_reversion")["pid"]
    assert pid and strategy
    os.kill(pid, signal.SIGKILL)
    os.kill(strategy, signal.SIGKILL)  # a fresh book when it comes back: its paper trader gets a fresh account
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    node = read_json(run_dir / "node.json")
    assert node["outcome"] == "completed"
    assert node["restarts"] == {"spot-server": 0, "agent": 0, victim: 1, "trader-paper-boll_rsi_reversion": 1,
                                "strategy-macd_cross": 0, "strategy-boll_rsi_reversion": 1}, err  # fmt: skip
    assert f"{victim} exited with status -9: restart 1" in err
    renewed = log_of(run_dir, "trader-paper-boll_rsi_reversion").split("node: started pid")[-1]
    assert "--new-account" in renewed.splitlines()[0] and "paper account restored" not in renewed
    # the orders went through the traders: each journalled, then answered by its paper broker
    after = journal_orders(run_dir, "macd_cross")
    assert set(after) > set(before), "no order reached the restarted trader"
    for name in STRATEGIES:
        orders = journal_orders(run_dir, name)
        assert orders and all(o.get("status") in ("Sent", "Rejected") for o in orders.values()), orders
        assert any(o.get("order_id", "").startswith("P") for o in orders.values())
    restarted = log_of(run_dir, victim)
    assert restarted.count("node: started pid") == 2 and "paper account restored" in restarted
    assert "--new-account" not in restarted.split("node: started pid")[-1].splitlines()[0]  # its account taken back
    # each strategy's book, ledger and account agree at the stop (the killed trader's account was kept)
    assert_books_agree(run_dir)
    assert "trader at ipc://" in log_of(run_dir, "strategy-macd_cross")  # the strategy saw the trader go
    stops = [line.split(" hkrt.node: ")[1].split(" stopped")[0] for line in err.splitlines()
             if " hkrt.node: " in line and " stopped (status" in line]  # fmt: skip
    # the node's stop (the last five; the renewed trader was stopped once before): strategies first, so their
    # last orders and cancels reach the traders
    assert stops[-5:] == ["strategy-boll_rsi_reversion", "strategy-macd_cross", "trader-paper-boll_rsi_reversion",
                          victim, "agent"], err  # fmt: skip


@POSIX_ONLY
def test_a_frozen_trader_is_restarted_while_the_strategy_runs_on(tmp_path: Path) -> None:
    """SIGSTOP freezes the trader (its heartbeat file too): the node kills it after --heartbeat-timeout and
    starts it again; meanwhile the strategy's callbacks keep running (its market clock moves on)."""
    run_dir = tmp_path / "node"
    proc = node_process(tmp_path, "--speed", "150", "--heartbeat-timeout", "3")
    victim = "trader-paper-macd_cross"
    beat = run_dir / f"{victim}.heartbeat.json"
    wait_until("the trader's heartbeat", lambda: read_json(beat).get("pid") == child(run_dir, victim).get("pid")
               and read_json(beat).get("stats", {}).get("spot_batches", 0) > 5, proc)  # fmt: skip
    first = wait_until("the strategy's market time", lambda: status(run_dir, "macd_cross").get("market_time"), proc)
    pid = child(run_dir, victim)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        seen: list[str] = []

        def restarted() -> bool:
            now = status(run_dir, "macd_cross").get("market_time")
            if now and child(run_dir, victim).get("pid") == pid:
                seen.append(now)  # sampled while the trader was still the frozen one
            return bool(child(run_dir, victim).get("hung_kills"))

        wait_until("the frozen trader's kill", restarted, proc, timeout=30)
    finally:
        if child(run_dir, victim).get("pid") == pid:
            os.kill(pid, signal.SIGCONT)
    assert seen and max(seen) > first, (first, seen)  # the callbacks went on while the trader was frozen
    new = wait_until("the new trader", lambda: child(run_dir, victim).get("pid") not in (None, pid)
                     and child(run_dir, victim)["pid"], proc)  # fmt: skip
    wait_until("the strategy's market data at the new trader", lambda: read_json(beat).get("pid") == new
               and read_json(beat).get("stats", {}).get("spot_batches", 0) > 5, proc, timeout=30)  # fmt: skip
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, out + err
    node = read_json(run_dir / "node.json")
    assert node["processes"][victim]["hung_kills"] == 1 and node["restarts"][victim] == 1
    assert node["restarts"]["strategy-macd_cross"] == 0 and f"{victim} is hung (heartbeat" in err
    assert "paper account restored" in log_of(run_dir, victim)


@POSIX_ONLY
def test_two_days_carry_each_strategy_and_its_paper_account(tmp_path: Path) -> None:
    run_dir = tmp_path / "node"
    proc = node_process(tmp_path, "--speed", "4000", "--days", "2")
    out, err = proc.communicate(timeout=150)
    assert proc.returncode == 0, out + err
    node = read_json(run_dir / "node.json")
    assert node["outcome"] == "completed" and node["processes"]["spot-server"]["runs"] == 2
    assert not any(node["restarts"].values()), node["restarts"]
    second = DAY + dt.timedelta(days=3)
    for name in STRATEGIES:
        account = read_json(run_dir / "traders" / f"trader-paper-{name}.account.json")
        assert account["closed_day"] == second.isoformat(), account  # the trader saw both closes
        orders = journal_orders(run_dir, name).values()
        bought = {o["symbol"] for o in orders if o["day"] == DAY.isoformat() and o["side"] == "buy"}
        sold = {o["symbol"] for o in orders if o["day"] == second.isoformat() and o["side"] == "sell"
                and o["status"] == "Sent"}  # fmt: skip
        # the paper broker took sells on day 2 of day-1 shares: the holdings carried and became sellable (T+1)
        assert bought & sold, (bought, sold)
        text = log_of(run_dir, f"strategy-{name}")
        assert text.count("node: started pid") == 1  # one process for both days
    # the books carried over (one ledger for both days) and agree with the accounts that carried too
    assert_books_agree(run_dir)


# ------------------------------------------------------------------ the plan, the account file, the journal
def plan(tmp_path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    from hkrt.node.config import node_config
    from hkrt.node.plan import node_specs

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return {s.name: s for s in node_specs(node_config({"run-dir": str(tmp_path), **settings}))}
    finally:
        os.chdir(cwd)


@POSIX_ONLY  # (Windows: the traders' addresses are pipe names)
def test_the_plan_puts_each_broker_but_test_in_a_trader(tmp_path: Path) -> None:
    from hkrt.node.process import Launch

    specs = plan(tmp_path, {"date": "2026-11-20", "cash": 500_000, "strategy": [
        {"script": "examples/macd_cross.py", "broker": ["paper", "test"]},
        {"script": "examples/boll_rsi_reversion.py", "broker": ["mail"]},
        {"script": "examples/ma_cross.py", "broker": ["mail"]},
        {"script": "examples/signal_vote.py", "broker": ["paper"], "trader": False},
    ]})  # fmt: skip
    # a paper account per strategy, one trader per real account; started before the strategies
    assert list(specs) == ["spot-server", "agent", "trader-paper-macd_cross", "trader-mail", "strategy-macd_cross",
                           "strategy-boll_rsi_reversion", "strategy-ma_cross", "strategy-signal_vote"]  # fmt: skip
    paper = specs["trader-paper-macd_cross"]
    first, again = paper.command(Launch(0, 0, 0)), paper.command(Launch(0, 1, 1, fresh=False))
    address = f"ipc://{tmp_path / 'trader-paper-macd_cross.ipc'}"
    assert first[first.index("--address") + 1] == address and first[first.index("--cash") + 1] == "500000.0"
    assert first[first.index("--guard") + 1] == "none"  # a simulated day: each strategy's own guard holds
    assert "--new-account" in first and "--new-account" not in again  # a restart takes its account back
    assert paper.restart.when == "always" and not paper.critical and paper.heartbeat is not None
    macd = specs["strategy-macd_cross"]
    args = macd.command(Launch(0, 0, 0))
    assert [args[i + 1] for i, a in enumerate(args) if a == "--broker"] == ["remote", "test"]  # primary stays
    assert macd.env == {"HKRT_REMOTE_ADDRESS": address, "HKRT_REMOTE_NAME": "paper",
                        "HKRT_REMOTE_FORWARD_MARKET": "true"}  # fmt: skip
    mail = f"ipc://{tmp_path / 'trader-mail.ipc'}"
    assert "--cash" not in specs["trader-mail"].command(Launch(0, 0, 0))
    for name in ("strategy-boll_rsi_reversion", "strategy-ma_cross"):  # one real account: one trader for both
        assert specs[name].env == {"HKRT_REMOTE_ADDRESS": mail, "HKRT_REMOTE_NAME": "mail",
                                   "HKRT_REMOTE_FORWARD_MARKET": "false"}  # fmt: skip
    grid = specs["strategy-signal_vote"].command(Launch(0, 0, 0))
    assert grid[grid.index("--broker") + 1] == "paper" and specs["strategy-signal_vote"].env is None  # kept in-process
    assert "trader-paper-signal_vote" not in specs
    # a real account that reports (easytrader): the strategy's book starts from it at every start, never from cash
    assert "--book" not in args and args[args.index("--cash") + 1] == "500000.0"  # paper: a fresh simulated account
    assert "--book" not in specs["strategy-ma_cross"].command(Launch(0, 0, 0))  # mail keeps no account
    real = plan(tmp_path, {"date": "2026-11-20", "cash": 500_000,
                           "strategy": [{"script": "examples/macd_cross.py", "broker": ["easytrader"]}]})  # fmt: skip
    started = real["strategy-macd_cross"].command(Launch(0, 0, 0))
    assert started[started.index("--book") + 1] == "broker" and "--cash" not in started
    assert started[started.index("--broker") + 1] == "remote" and "trader-easytrader" in real


@POSIX_ONLY
def test_a_long_run_dir_puts_the_sockets_in_the_runtime_dir(tmp_path: Path) -> None:
    from hkrt.node.traders import MAX_SOCKET_PATH

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    specs = plan(deep, {"broker": "paper", "strategy": ["examples/macd_cross.py"]})
    address = specs["strategy-macd_cross"].env["HKRT_REMOTE_ADDRESS"]
    path = address[len("ipc://") :]
    assert len(os.fsencode(path)) <= MAX_SOCKET_PATH and not path.startswith(str(tmp_path))
    other = plan(tmp_path / ("d" * 60) / ("f" * 60), {"broker": "paper", "strategy": ["examples/macd_cross.py"]})
    assert other["strategy-macd_cross"].env["HKRT_REMOTE_ADDRESS"] != address  # named after its run dir


def test_a_strategy_that_would_need_two_traders_is_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hkrt.cli import main

    config = tmp_path / "node.toml"
    config.write_text('[[strategy]]\nscript = "examples/macd_cross.py"\nbroker = ["paper", "mail"]\n', "utf-8")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(main, ["node", "--config", str(config), "--run-dir", str(tmp_path)])
        config.write_text('trader = "maybe"\n', "utf-8")
        bad = CliRunner().invoke(main, ["node", "--config", str(config), "--run-dir", str(tmp_path)])
    finally:
        os.chdir(cwd)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "strategy macd_cross: brokers paper and mail would each need a trader" in lines[0]
    assert "trader = false" in lines[0]
    assert bad.exit_code == 2 and "trader: must be true or false, not 'maybe'" in bad.output


def test_a_paper_account_file_gives_back_cash_holdings_and_open_orders(tmp_path: Path) -> None:
    from hkrt.adapters.paper.execution import PaperBroker
    from hkrt.broker import OrderRequest, OrderSide
    from hkrt.bus import DayClosed, SpotBatch
    from hkrt.trader.paper_account_file import load_account, save_account

    def spot(when: dt.datetime, close: float) -> Any:
        import hkrt

        return hkrt.Spot("SH600000", when, name="浦发银行", yesterday_close=10.0, open=10.0, high=10.2, low=9.9,
                         close=close, volume=50_000, amount=500_000, ask=[close + 0.01], ask_volume=[100_000],
                         bid=[close], bid_volume=[100_000])  # fmt: skip

    def request(when: dt.datetime, shares: int, price: float, cid: str) -> OrderRequest:
        return OrderRequest(when, "SH", "600000", price, shares, client_order_id=cid, order_type="limit")

    broker = PaperBroker(100_000)
    day, next_day = DAY, DAY + dt.timedelta(days=3)
    broker.on_spots(SpotBatch.from_spots([spot(dt.datetime.combine(day, dt.time(14)), 10.0)]))
    assert broker.submit(OrderSide.Buy, request(dt.datetime.combine(day, dt.time(14, 0, 1)), 1000, 10.01, "b")).ok
    broker.on_day_closed(DayClosed(day, "day_end", 0))
    broker.on_spots(SpotBatch.from_spots([spot(dt.datetime.combine(next_day, dt.time(9, 30)), 10.0)]))
    resting = broker.submit(OrderSide.Sell, request(dt.datetime.combine(next_day, dt.time(9, 30, 1)), 400, 10.5, "s"))
    assert resting.ok and broker.open_orders()
    path = tmp_path / "account.json"
    save_account(broker, path, {"events": [{"seq": 1}]})
    assert os.name != "posix" or oct(path.stat().st_mode & 0o777) == "0o600"

    again = PaperBroker(1.0)
    data = load_account(again, path)
    assert data is not None and data["events"] == [{"seq": 1}]
    assert again.cash == broker.cash and again.positions == broker.positions
    assert again.sellable("SH600000") == broker.sellable("SH600000") == 600  # T+1 released, 400 held by the sell
    assert again.open_orders() == broker.open_orders() and again.reserved_cash == broker.reserved_cash
    # the resting sell goes on matching, and the next order gets a new id
    again.on_spots(SpotBatch.from_spots([spot(dt.datetime.combine(next_day, dt.time(9, 31)), 10.5)]))
    assert not again.open_orders() and again.positions[("SH", "600000")].number == 600
    nxt = again.submit(OrderSide.Sell, request(dt.datetime.combine(next_day, dt.time(9, 32)), 100, 10.5, "s2"))
    assert nxt.ok and nxt.order_id not in {resting.order_id, "P00000001"}
    assert load_account(PaperBroker(1.0), tmp_path / "none.json") is None
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="not a paper account file"):
        load_account(PaperBroker(1.0), path)


def test_a_forgotten_journal_entry_is_sent_as_new_after_a_restart(tmp_path: Path) -> None:
    from hkrt.trader.journal import UNKNOWN, TraderJournal

    path = tmp_path / "t.journal"
    journal = TraderJournal(path)
    journal.received("a", "s1", "SH600000", "buy", "2026-11-20")  # the trader dies before answering
    journal.received("b", "s1", "SH600000", "buy", "2026-11-20")
    journal.answered("b", "Sent", "P00000002", "")
    journal.close()
    again = TraderJournal(path)
    assert again.get("a").status == UNKNOWN and again.unknown == 1  # type: ignore[union-attr]
    again.forget("a")
    again.forget("b")
    assert again.get("a") is None and again.unknown == 0 and again.cid_of("P00000002") == ""
    again.close()
    third = TraderJournal(path)  # forgotten for good: a resend is a new order
    assert third.get("a") is None and third.get("b") is None and third.unknown == 0
    third.received("b", "s1", "SH600000", "buy", "2026-11-20")
    third.answered("b", "Sent", "P00000003", "")
    third.close()
    assert TraderJournal(path).cid_of("P00000003") == "b"


def test_a_restarted_paper_trader_forgets_what_its_account_lacks_and_serves_unconfirmed_events(
    tmp_path: Path,
) -> None:
    """The account file says which journalled orders reached the paper broker: the others are forgotten (a
    resend is new, not "outcome unknown"); the events no client confirmed are served again to their owners."""
    from hkrt.adapters.paper.execution import PaperBroker
    from hkrt.trader.journal import TraderJournal
    from hkrt.trader.paper_account import keep_paper_account
    from hkrt.trader.paper_account_file import save_account
    from hkrt.trader.server import TraderServer

    account, journal_path = tmp_path / "paper.account.json", tmp_path / "paper.journal"
    kept = PaperBroker(50_000)
    kept._orders = 1  # it took one order, P00000001
    fill = {"seq": 7, "owner": "s1", "type": "report", "report": {"kind": "fill", "client_order_id": "a"}}
    save_account(kept, account, {"events": [fill]})
    journal = TraderJournal(journal_path)
    for cid in ("a", "b", "c"):
        journal.received(cid, "s1", "SH600000", "buy", "2026-11-20")
    journal.answered("a", "Sent", "P00000001", "")  # in the account
    journal.answered("c", "Sent", "P00000002", "")  # answered after the account's last write: not in it
    journal.close()  # "b": received, never answered (the trader died first)

    server = TraderServer(PaperBroker(1.0), "ipc:///unused", journal=journal_path, guard=None)
    keep_paper_account(server, account)
    assert server.broker.cash == 50_000 and server.hold_events
    assert server.journal.get("a") is not None and server.journal.get("b") is None
    assert server.journal.get("c") is None and server.journal.unknown == 0
    events, _last, _first = server._events_for("s1", 0)
    assert [(e["type"], e["report"]["kind"], e["owner"]) for e in events] == [("report", "fill", "s1")]
    assert server._events_for("s2", 0)[0] == []  # only its owner's
    server.journal.close()
    fresh = TraderServer(PaperBroker(1.0), "ipc:///unused", journal=journal_path, guard=None)
    keep_paper_account(fresh, account, new=True)  # a new node run: the account starts over
    assert fresh.broker.cash == 1.0 and fresh._events_for("s1", 0)[0] == []
    fresh.journal.close()
