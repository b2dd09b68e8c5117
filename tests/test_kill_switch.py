"""The kill switch: ``hkrt halt`` / ``resume`` / ``status`` against a running strategy, through its control
files, on a simulated day with working limit orders at the paper broker and at easytrader's own HTTP server.

The strategy places three limit buys away from the market at 09:35, then its 10:00 timer waits (blocking the
callback thread) while the test halts it: the halt is read and done by the run loop, so a busy callback
cannot hold it up.  At 10:30 it tries another order (refused: halted), at 11:00 it waits for the resume, and
at 13:30 its order goes out again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hkrt.strategy import Strategy, run_sim
from hkrt.strategy.control import (
    COMMAND_TTL_S,
    ControlChannel,
    ControlError,
    control_dir,
    read_status,
    send_command,
    write_json_atomic,
)

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 20)
CODES = ["SH600000", "SH600001", "SH600002"]
SYMBOLS = 20


def hkrt_cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hkrt", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, **(env or {})})  # fmt: skip


class Gate:
    """A strategy timer that stops the callback thread until the test lets it go."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self) -> None:
        self.reached.set()
        assert self.go.wait(60), "the test never let the strategy go on"


def away(strategy: Strategy, code: str) -> float:
    last = strategy.last_price(code)
    assert last is not None
    return round(last * 0.95, 2)  # a limit buy 5 % under the market: working all day


def kill_switch_strategy(state_dir: Path | None, brokers: Any = None) -> tuple[Strategy, dict[str, Any], Gate, Gate]:
    strategy = Strategy(CODES, brokers=brokers, state_dir=state_dir, name="ks")
    placed: dict[str, Any] = {}
    halt_gate, resume_gate = Gate(), Gate()

    @strategy.run_daily_at(time="09:35")
    def open_orders() -> None:
        placed["first"] = [strategy.order(c, 100, away(strategy, c), order_type="limit") for c in CODES]

    strategy.run_daily_at(halt_gate, time="10:00")

    @strategy.run_daily_at(time="10:30")
    def while_halted() -> None:
        placed["halted"] = strategy.order(CODES[0], 100, away(strategy, CODES[0]), order_type="limit")

    strategy.run_daily_at(resume_gate, time="11:00")

    @strategy.run_daily_at(time="13:30")
    def after_resume() -> None:
        placed["resumed"] = strategy.order(CODES[1], 100, away(strategy, CODES[1]), order_type="limit")

    return strategy, placed, halt_gate, resume_gate


def drive(halt_gate: Gate, resume_gate: Gate, halt: Callable[[], Any], resume: Callable[[], Any]) -> dict[str, Any]:
    """In a thread: halt once the strategy waits at 10:00, resume once it waits at 11:00."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            assert halt_gate.reached.wait(60)
            out["halt"] = halt()
        except BaseException as err:
            out["error"] = err
        finally:
            halt_gate.go.set()
        try:
            assert resume_gate.reached.wait(60)
            out["resume"] = resume()
        except BaseException as err:
            out["error"] = err
        finally:
            resume_gate.go.set()

    threading.Thread(target=run, daemon=True).start()
    return out


def check_halted_day(strategy: Strategy, placed: dict[str, Any], reason: str) -> None:
    first = placed["first"]
    assert len(first) == 3 and all(o.status == "cancelled" for o in first), [(o.status, o.reason) for o in first]
    assert placed["halted"].status == "rejected" and placed["halted"].reason == f"risk: trading halted: {reason}"
    resumed = placed["resumed"]
    assert resumed.status in ("submitted", "accepted", "expired", "filled") and resumed.broker_order_id
    assert strategy.trading_state == "ACTIVE"


# ------------------------------------------------------------------ paper broker, in process
def test_halt_through_the_control_channel_cancels_at_the_paper_broker_and_resume_trades_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    strategy, placed, halt_gate, resume_gate = kill_switch_strategy(state)
    statuses: list[dict[str, Any]] = []

    def halt() -> dict[str, Any]:
        deadline = time.monotonic() + 5  # the run loop writes a change within its next look (50 ms)
        while read_status(state)["open_orders"] != 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        statuses.append(read_status(state))
        return send_command(state, "halt", "test stop")

    def resume() -> dict[str, Any]:
        statuses.append(read_status(state))
        return send_command(state, "resume", "all clear")

    out = drive(halt_gate, resume_gate, halt, resume)
    report = run_sim(strategy, DAY, symbols=SYMBOLS, speed=20000, handle_signals=False, until="13:45")
    assert "error" not in out, out.get("error")
    halted = out["halt"]
    assert halted["ok"] and halted["cancelled"] == 3 and halted["state"] == "HALTED"
    assert sorted(halted["cancelled_ids"]) == sorted(o.client_order_id for o in placed["first"])
    assert out["resume"]["ok"] and out["resume"]["changed"] and out["resume"]["state"] == "ACTIVE"
    before, during = statuses
    assert (before["state"], before["open_orders"], before["running"]) == ("ACTIVE", 3, True)
    assert during["state"] == "HALTED" and during["reason"] == "test stop"
    assert during["last_command"]["command"] == "halt" and during["last_command"]["cancelled"] == 3
    check_halted_day(strategy, placed, "test stop")
    broker = strategy.brokers[0]
    assert [o["order_id"] for o in broker.open_orders()] in ([placed["resumed"].broker_order_id], [])
    assert report.published_cycles > 0
    final = read_status(state)
    assert final["running"] is False and final["control"]["commands"] == 2
    assert not list((control_dir(state) / "acks").iterdir())  # each sender took its answer away


def test_bad_command_files_are_set_aside_and_counted_and_the_strategy_goes_on(tmp_path: Path, caplog) -> None:
    state = tmp_path / "state"
    strategy, placed, halt_gate, resume_gate = kill_switch_strategy(state)
    commands = control_dir(state) / "commands"

    def halt() -> dict[str, Any]:
        (commands / "0-garbage.json").write_bytes(b"\xff{not json")
        (commands / "1-list.json").write_text("[1, 2]")
        (commands / "2-unknown.json").write_text(json.dumps({"id": "x1", "command": "sell_everything"}))
        write_json_atomic(commands / "3-old.json", {"id": "old", "command": "halt", "reason": "yesterday's",
                                                    "sent": time.time() - COMMAND_TTL_S - 5})  # fmt: skip
        return send_command(state, "halt", "after junk")

    out = drive(halt_gate, resume_gate, halt, lambda: send_command(state, "resume", "ok"))
    report = run_sim(strategy, DAY, symbols=SYMBOLS, speed=20000, handle_signals=False, until="13:45")
    assert "error" not in out, out.get("error")
    assert out["halt"]["cancelled"] == 3
    rejected = sorted(p.name for p in (control_dir(state) / "rejected").iterdir())
    assert rejected == ["0-garbage.json", "1-list.json", "2-unknown.json", "3-old.json"]  # moved, never deleted
    assert (control_dir(state) / "rejected" / "0-garbage.json").read_bytes() == b"\xff{not json"
    stats = read_status(state)["control"]
    assert stats["malformed"] == 4 and stats["stale"] == 1 and stats["commands"] == 2
    assert sum("set aside" in r.getMessage() for r in caplog.records if r.levelname == "WARNING") == 4
    check_halted_day(strategy, placed, "after junk")  # the strategy went on to the end
    assert report.published_cycles > 0


# ---------------------------------------------------- hkrt run and hkrt halt, two processes
SCRIPT = """
import time
from pathlib import Path
import hkrt

CODES = {codes!r}
strategy = hkrt.Strategy(CODES, name="ks")

def away(code):
    return round(strategy.last_price(code) * 0.95, 2)

def wait_for(state, flag):
    Path({tmp!r}, flag).write_text("")
    deadline = time.monotonic() + 60
    while strategy.trading_state != state and time.monotonic() < deadline:
        time.sleep(0.02)

@strategy.run_daily_at(time="09:35")
def open_orders():
    for c in CODES:
        strategy.order(c, 100, away(c), order_type="limit")

strategy.run_daily_at(lambda: wait_for("HALTED", "ready_halt"), time="10:00")

@strategy.run_daily_at(time="10:30")
def while_halted():
    strategy.order(CODES[0], 100, away(CODES[0]), order_type="limit", remark="while halted")

strategy.run_daily_at(lambda: wait_for("ACTIVE", "ready_resume"), time="11:00")

@strategy.run_daily_at(time="13:30")
def after_resume():
    strategy.order(CODES[1], 100, away(CODES[1]), order_type="limit", remark="after resume")
"""


def wait_file(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def test_hkrt_halt_and_resume_against_a_running_hkrt_run(tmp_path: Path) -> None:
    script = tmp_path / "ks.py"
    script.write_text(SCRIPT.format(codes=CODES, tmp=str(tmp_path)))
    state, out_dir = tmp_path / "state", tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hkrt", "run", str(script), "--source", "sim", "--date", str(DAY), "--symbols",
         str(SYMBOLS), "--speed", "20000", "--until", "13:45", "--state-dir", str(state), "--out", str(out_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_file(tmp_path / "ready_halt", proc)
        status = hkrt_cli("status", str(state))
        assert status.returncode == 0, status.stderr
        assert "trading ACTIVE" in status.stdout and "open orders 3;" in status.stdout
        empty = hkrt_cli("halt", str(state), "--reason", "  ")
        assert empty.returncode != 0 and "halt needs --reason" in empty.stderr and "Traceback" not in empty.stderr
        halted = hkrt_cli("halt", str(state), "--reason", "test stop")
        assert halted.returncode == 0, halted.stderr
        assert "3 working orders asked to cancel; trading HALTED (test stop)" in halted.stdout
        status = hkrt_cli("status", str(state))
        assert "trading HALTED: test stop" in status.stdout and "last command: halt" in status.stdout
        assert "3 cancels" in status.stdout
        wait_file(tmp_path / "ready_resume", proc)
        resumed = hkrt_cli("resume", str(state), "--reason", "all clear")
        assert resumed.returncode == 0, resumed.stderr
        assert "trading HALTED -> ACTIVE (all clear)" in resumed.stdout
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"control: hkrt halt {state}" in stdout
    import csv

    with (out_dir / "orders.csv").open(newline="") as f:
        orders = list(csv.DictReader(f))
    assert [o["status"] for o in orders[:3]] == ["cancelled"] * 3
    assert orders[3]["remark"] == "while halted" and orders[3]["reason"] == "risk: trading halted: test stop"
    assert orders[4]["remark"] == "after resume" and orders[4]["status"] != "rejected" and orders[4]["broker_order_id"]
    # the run is over: status says so, and a halt is refused in one line
    status = hkrt_cli("status", str(state))
    assert status.returncode == 0 and "STALE: the strategy is not running" in status.stdout
    late = hkrt_cli("halt", str(state), "--reason", "too late")
    assert late.returncode != 0 and "cannot take commands: the strategy is not running" in late.stderr


def test_hkrt_halt_bad_input_is_one_line(tmp_path: Path) -> None:
    missing = hkrt_cli("halt", str(tmp_path / "nothing"), "--reason", "x")
    assert missing.returncode != 0 and "no state dir" in missing.stderr and "--state-dir" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    no_channel = hkrt_cli("status", str(tmp_path / "empty"))
    assert no_channel.returncode != 0 and "no control channel" in no_channel.stderr
    no_reason = hkrt_cli("halt", str(tmp_path / "empty"))
    assert no_reason.returncode != 0 and "--reason" in no_reason.stderr
    by_name = hkrt_cli("status", "ks", env={"HOME": str(tmp_path), "USERPROFILE": str(tmp_path)})
    assert by_name.returncode != 0 and f"no state dir {tmp_path / '.hkrt' / 'state' / 'ks'}:" in by_name.stderr


def test_a_strategy_that_does_not_answer_is_reported_in_one_line(tmp_path: Path) -> None:
    """A status whose run loop stopped reading commands (a fresh heartbeat, nobody polling)."""
    strategy = Strategy(CODES, name="ks")
    channel = ControlChannel(strategy, tmp_path).open()  # opened, never polled: a stuck run loop
    with pytest.raises(ControlError, match=r"did not answer within 0\.3 s: is it running\?"):
        send_command(tmp_path, "halt", "nobody home", timeout=0.3)
    assert not list((control_dir(tmp_path) / "commands").iterdir())  # taken back: it must not run later
    channel.close()


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_the_control_directory_is_the_owners_alone(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "control").mkdir(parents=True)
    os.chmod(state / "control", 0o777)
    channel = ControlChannel(Strategy(CODES, name="ks"), state).open()
    assert (state / "control").stat().st_mode & 0o777 == 0o700
    assert (state / "control" / "status.json").stat().st_mode & 0o077 == 0
    channel.close()


# ------------------------------------------------------------ easytrader's own server on loopback
def test_halt_cancels_the_working_orders_at_easytraders_own_server(tmp_path: Path) -> None:
    from easytrader import remoteclient

    from easytrader_user import EasyTraderServer, FakeThsUser
    from hkrt.broker.easytrader_broker import EasyTraderOrderBroker

    user = FakeThsUser(1_000_000.0, auto_fill=False)  # orders stay working until cancelled
    with EasyTraderServer({"ht_client": user}) as server:
        client = remoteclient.use("ht_client", server.host, server.port)
        client.prepare(user="acct", password="pw")
        broker = EasyTraderOrderBroker(client, poll_interval=0.2)
        strategy, placed, halt_gate, resume_gate = kill_switch_strategy(None, brokers=[broker])
        out = drive(halt_gate, resume_gate, lambda: strategy.halt("test stop"), lambda: strategy.resume("ok"))
        run_sim(strategy, DAY, symbols=SYMBOLS, speed=20000, handle_signals=False, until="13:45")
        assert "error" not in out, out.get("error")
        cancels = [r for r in server.requests if r[1] == "/cancel_entrust"]
    first = placed["first"]
    assert len(out["halt"]) == 3
    ids = sorted(o.broker_order_id for o in first)
    assert sorted(str(c[2]["entrust_no"]) for c in cancels) == ids  # each cancel reached the server
    assert [e.status for e in user.entrusts[:3]] == ["已撤"] * 3
    assert placed["halted"].reason == "risk: trading halted: test stop"
    assert len(user.entrusts) == 4 and user.entrusts[3].no == placed["resumed"].broker_order_id  # resumed: sent


# ------------------------------------------------------ a stuck callback thread and a full callback queue
def test_halt_reaches_the_broker_while_the_callback_is_stuck_and_its_queue_full(tmp_path: Path) -> None:
    from stuck_strategy import stuck_strategy

    with stuck_strategy(tmp_path / "state") as stuck:
        strategy = stuck.strategy
        assert strategy.bus is not None and strategy.bus.running_handler is not None  # stuck in its callback
        answer = send_command(tmp_path / "state", "halt", "stuck and full", timeout=15)
        assert answer["ok"] and answer["state"] == "HALTED"
        # every cancel reached the paper broker; one may still wait to publish its report (the queue is full)
        assert answer["cancelled"] + answer["pending"] == 3 and answer["pending"] <= 1
        assert strategy.brokers[0].open_orders() == []
        assert strategy.trading_state == "HALTED" and strategy.risk.reason == "stuck and full"
    assert [o.status for o in stuck.placed] == ["cancelled"] * 3  # the reports arrived once it got going


def test_a_control_directory_another_running_strategy_answers_in_is_refused(tmp_path: Path, monkeypatch) -> None:
    from hkrt.strategy import control

    monkeypatch.setattr(control, "STALE_AFTER_S", 3.0)  # (5 s by default; the takeover below waits it out)
    status = control_dir(tmp_path) / "status.json"
    status.parent.mkdir(parents=True)
    alive = threading.Event()

    def other_strategy() -> None:  # another process's heartbeat, moving
        while not alive.is_set():
            write_json_atomic(
                status, {"name": "other", "pid": os.getpid() + 1, "running": True, "heartbeat": time.time()}
            )
            time.sleep(0.1)

    beating = threading.Thread(target=other_strategy, daemon=True)
    beating.start()
    deadline = time.monotonic() + 10
    while not status.exists() and time.monotonic() < deadline:  # its first heartbeat written (a loaded machine)
        time.sleep(0.01)
    try:
        with pytest.raises(FileExistsError, match=r"another running strategy \(other, pid \d+\)"):
            ControlChannel(Strategy(CODES, name="ks"), tmp_path).open()
    finally:
        alive.set()
        beating.join()
    # a run that died a moment ago (a fresh heartbeat that no longer moves): a restart takes the directory over
    write_json_atomic(status, {"name": "other", "pid": os.getpid() + 1, "running": True, "heartbeat": time.time()})
    channel = ControlChannel(Strategy(CODES, name="ks"), tmp_path).open()
    assert read_status(tmp_path)["name"] == "ks"
    channel.close()
