"""``hkrt node``: real child processes on a simulated feed (the spot server, the agent with store and journal,
strategies on the paper broker): a whole day from one command, a strategy killed mid-day and restarted while
the agent's bars stay whole, a hung strategy killed and restarted, a bad setting refused in one line, and
Ctrl-C / SIGTERM stopping the children in order with the conventional exit status."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 20)
SYMBOLS = 20
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="signals sent as on POSIX")


def node_process(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """The node with its brokers in the strategies' processes (the traders: tests/test_node_trader.py)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    argv = [sys.executable, "-m", "hkrt", "node", "--run-dir", str(tmp_path / "node"),
            "--address", f"ipc://{tmp_path / 'spot.ipc'}", "--symbols", str(SYMBOLS), "--date", DAY.isoformat(),
            "--broker", "paper", "--no-trader", *args]  # fmt: skip
    return subprocess.Popen(argv, text=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def wait_until(what: str, check: Any, proc: subprocess.Popen[str], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the node ended (status {proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.1)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"timed out waiting for {what}:\n{out}\n{err}")


def feed_messages(run_dir: Path) -> int:
    return int(read_json(run_dir / "agent.heartbeat.json").get("messages") or 0)


def reference_bars(tmp_path: Path) -> pd.DataFrame:
    """The day's MIN bars of one process: the simulated day's snapshots ingested by an in-process agent
    with a store (what the node's agent process must have stored too)."""
    from hkrt.adapters.sim.config import SimConfig
    from hkrt.adapters.sim.data import SimMarket
    from hkrt.agent.spot_agent import SpotAgent
    from hkrt.store import KDataStore

    market = SimMarket(DAY, SimConfig(symbols=SYMBOLS))
    agent = SpotAgent(store=tmp_path / "reference")
    for t in market.times():
        agent.ingest(market.snapshot(t))
    agent.close_day(DAY)
    agent.stop()
    return KDataStore(tmp_path / "reference").load(None, "MIN")


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A Prometheus endpoint's samples: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=30).read().decode("utf-8")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def alerts_file(tmp_path: Path, base: str) -> Path:
    """An alerts TOML sending to a local WeCom test server (tests/notify_servers.py) under the key node-key."""
    alerts = tmp_path / "alerts.toml"
    alerts.write_text(f'[notify.ops]\ntype = "wecom"\nkey = "node-key"\nurl = "{base}/cgi-bin/webhook/send"\n',
                      encoding="utf-8")  # fmt: skip
    alerts.chmod(0o600)
    return alerts


def test_a_node_plays_a_day_and_survives_a_killed_strategy(tmp_path: Path) -> None:
    """The issue's "done when": the restart is counted in the node's one /metrics (scraped over HTTP right after
    the kill, with the agent's bar counters merged in), /health answers 200, a WeCom test server gets the
    "restarted" alert, and no bar is lost."""
    from notify_servers import WeComServer, serving

    run_dir = tmp_path / "node"
    with serving(WeComServer("node-key")) as wecom:
        alerts = alerts_file(tmp_path, wecom.base)
        proc = node_process(tmp_path, "--speed", "1000", "--strategy", "examples/macd_cross.py",
                            "--strategy", "examples/boll_rsi_reversion.py", "--metrics", "127.0.0.1:0",
                            "--alerts", str(alerts))  # fmt: skip
        wait_until("the feed flows", lambda: feed_messages(run_dir) > 300, proc)
        node_json = read_json(run_dir / "node.json")
        victim, url = node_json["processes"]["strategy-macd_cross"]["pid"], node_json["metrics"]["url"]
        assert victim is not None and set(node_json["metrics"]["children"]) == set(node_json["processes"])
        os.kill(victim, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)

        def restart_counted() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            samples = scrape(url + "/metrics")
            return samples if sample(samples, "hkrt_process_restarts_total", process="strategy-macd_cross") else None

        samples = wait_until("the restart in /metrics", restart_counted, proc)
        assert sample(samples, "hkrt_process_restarts_total", process="strategy-macd_cross") == 1
        assert sample(samples, "hkrt_process_restarts_total", process="agent") == 0
        assert sample(samples, "hkrt_node_process_up", process="agent") == 1
        assert (sample(samples, "hkrt_bars_emitted_total", process="agent") or 0) > 0  # the agent's own, merged
        assert (sample(samples, "hkrt_server_cycles_total", process="spot-server") or 0) > 0
        health = urllib.request.urlopen(url + "/health", timeout=30)
        report = json.loads(health.read())
        assert health.status == 200 and report["processes"]["agent"]["state"] == "running", report
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        restarted = [t for t in wecom.texts() if "process_restart" in t and "strategy-macd_cross" in t]
        assert restarted and "exited with status" in restarted[0], wecom.texts()
    node = read_json(run_dir / "node.json")
    assert node["outcome"] == "completed"
    assert node["restarts"] == {"spot-server": 0, "agent": 0, "strategy-macd_cross": 1,
                                "strategy-boll_rsi_reversion": 0}, err  # fmt: skip
    assert "strategy-macd_cross exited with status -9: restart 1" in err or os.name == "nt"
    # the other strategy ran the whole day undisturbed, and reported at its stop
    boll = (run_dir / "logs" / "strategy-boll_rsi_reversion.log").read_text(encoding="utf-8")
    assert "ledger: " in boll and "ledger and broker PaperBroker agree" in boll
    macd = (run_dir / "logs" / "strategy-macd_cross.log").read_text(encoding="utf-8")
    assert macd.count("node: started pid") == 2
    # restarted mid-day, it first replayed the agent's journal of the day (its bars and indicators whole), then
    # the live feed went on from there without a gap
    replayed = re.search(r"backfill: ([\d,]+) messages replayed from .*spots-20261120\.hkj", macd)
    assert replayed is not None and int(replayed.group(1).replace(",", "")) > 0, macd
    assert macd.count("backfill: no journal") <= 1 and "  gaps 0  " in macd.split("node: started pid")[-1]
    assert macd.count("alerts: ops (minimum warning)") == 2 and "alerts: ops" in boll  # each got --alerts FILE
    # the agent's bars: the day closed, every bar stored, equal to one process's
    agent_log = (run_dir / "logs" / "agent.log").read_text(encoding="utf-8")
    assert f"market day {DAY} closed" in agent_log
    from hkrt.store import KDataStore

    stored = KDataStore(run_dir / "store").load(None, "MIN")
    reference = reference_bars(tmp_path)
    assert len(stored) == len(reference) == 240 * reference["symbol"].nunique() > 0  # 240 minutes a symbol
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), reference.reset_index(drop=True))
    assert order_of_stops(err) == ["strategy-boll_rsi_reversion", "strategy-macd_cross", "agent"]


def order_of_stops(log_text: str) -> list[str]:
    return [line.split(" hkrt.node: ")[1].split(" stopped")[0] for line in log_text.splitlines()
            if " hkrt.node: " in line and " stopped (status" in line]  # fmt: skip


def test_a_hung_strategy_is_killed_and_restarted(tmp_path: Path) -> None:
    script = tmp_path / "blocking.py"
    shutil.copy(ROOT / "tests" / "node_blocking_strategy.py", script)
    (tmp_path / "block-once").write_text("", encoding="utf-8")
    run_dir = tmp_path / "node"
    from notify_servers import WeComServer, serving

    with serving(WeComServer("node-key")) as wecom:
        proc = node_process(tmp_path, "--speed", "2000", "--strategy", str(script), "--startup-timeout", "8",
                            "--heartbeat-timeout", "5", "--alerts", str(alerts_file(tmp_path, wecom.base)))  # fmt: skip
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    hung = [t for t in wecom.texts() if "process_hung" in t and "strategy-blocking" in t]
    assert hung and "no heartbeat" in hung[0], wecom.texts()  # the node's alert, sent before it ended
    child = read_json(run_dir / "node.json")["processes"]["strategy-blocking"]
    # once at least (the blocked start); a second start slowed past 8 s by a busy machine would be killed too
    assert child["hung_kills"] >= 1 and child["restarts"] == child["hung_kills"] == child["starts"] - 1, err
    assert "strategy-blocking is hung (no heartbeat" in err
    log = (run_dir / "logs" / "strategy-blocking.log").read_text(encoding="utf-8")
    assert "hung (no heartbeat" in log and "ledger:" in log  # the second start ran to the node's stop
    assert f"market day {DAY} closed" in (run_dir / "logs" / "agent.log").read_text(encoding="utf-8")


@POSIX_ONLY
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_ctrl_c_and_sigterm_stop_the_children_in_order(tmp_path: Path, sig: int, status: int) -> None:
    run_dir = tmp_path / "node"
    proc = node_process(tmp_path, "--speed", "20", "--strategy", "examples/macd_cross.py")
    wait_until("the strategy's first heartbeat", lambda: (run_dir / "state" / "macd_cross" / "control" /
                                                          "status.json").exists(), proc)  # fmt: skip
    wait_until("the feed flows", lambda: feed_messages(run_dir) > 0, proc)
    pids = [p["pid"] for p in read_json(run_dir / "node.json")["processes"].values()]
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == status, out + err
    assert order_of_stops(err) == ["strategy-macd_cross", "agent", "spot-server"]
    for pid in pids:  # every child is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    node = read_json(run_dir / "node.json")
    assert node["outcome"] == "signal" and all(p["state"] == "stopped" for p in node["processes"].values())
    assert (run_dir / "store").is_dir() and "stopped:" in (run_dir / "logs" / "agent.log").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("toml", "args", "message"),
    [
        ("speed = 2000\nfoo = 1\n", [], "node.toml: unknown key 'foo'"),
        ('speed = "fast"\n', [], "node.toml: speed: must be a number, not 'fast'"),
        ("days = 0\n", [], "node.toml: days: must be at least 1, not 0"),
        ('[[strategy]]\nscript = "examples/macd_cross.py"\nbrokers = ["paper"]\n', [], "unknown key 'brokers'"),
        ("", ["--source", "qq", "--symbols", "5"], "symbols: does not apply to source qq"),
        ("", ["--source", "replay"], "source replay needs replay"),
        ("", ["--days", "2", "--source", "replay", "--replay", "README.md"], "days: is for source sim"),
        ("", ["--strategy", "no/such.py"], "strategy: no script no/such.py"),
        ("", ["--broker", "nobody"], "broker: unknown broker 'nobody'"),
    ],
)
def test_a_bad_setting_is_one_line(tmp_path: Path, toml: str, args: list[str], message: str) -> None:
    from hkrt.cli import main

    config = tmp_path / "node.toml"
    config.write_text(toml, encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(main, ["node", "--config", str(config), "--run-dir", str(tmp_path), *args])
    finally:
        os.chdir(cwd)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and message in lines[0], result.output
    assert not (tmp_path / "logs").exists()  # refused before anything started


def test_the_config_file_and_flags_give_the_same_children(tmp_path: Path) -> None:
    """node.toml's keys are the flags' (a flag wins), and a strategy table takes its own brokers and state dir."""
    from hkrt.node.config import node_config, read_toml
    from hkrt.node.plan import node_specs
    from hkrt.node.process import Launch

    config_file = tmp_path / "node.toml"
    config_file.write_text(
        f'source = "sim"\nsymbols = 30\nspeed = 100\ndate = {DAY}\nrun-dir = "{tmp_path.as_posix()}"\n'
        'broker = "test"\ntrader = false\n[[strategy]]\nscript = "examples/macd_cross.py"\nbroker = ["paper"]\n'
        f'state-dir = "{(tmp_path / "s1").as_posix()}"\n',
        encoding="utf-8",
    )
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        config = node_config(read_toml(config_file), {"speed": 500.0})
        specs = node_specs(config)
    finally:
        os.chdir(cwd)
    assert [s.name for s in specs] == ["spot-server", "agent", "strategy-macd_cross"]
    server = specs[0].command(Launch(0, 0, 0))
    assert server[server.index("--speed") + 1] == "500.0" and server[server.index("--symbols") + 1] == "30"
    assert server[-2:] == ["--wait-subscribers", "2"]
    assert "--wait-subscribers" not in specs[0].command(Launch(0, 1, 1, fresh=False))  # a restart: connected
    strategy = specs[2].command(Launch(0, 0, 0))
    assert strategy[strategy.index("--broker") + 1] == "paper" and strategy.count("--broker") == 1
    assert strategy[strategy.index("--state-dir") + 1] == str(tmp_path / "s1")
    agent = specs[1].command(Launch(0, 0, 0))
    assert agent[agent.index("--store") + 1] == str(tmp_path / "store")


def test_a_multi_day_sim_plays_the_next_trading_day_on_each_run(tmp_path: Path) -> None:
    from hkrt.node.config import node_config
    from hkrt.node.plan import node_specs
    from hkrt.node.process import Launch

    config = node_config({"date": "2026-11-20", "days": 2, "run-dir": str(tmp_path)})  # a Friday
    server = node_specs(config)[0]
    assert server.runs == 2 and server.completes_node and server.critical
    first, second = server.command(Launch(0, 0, 0)), server.command(Launch(1, 1, 0))
    assert first[first.index("--date") + 1] == "2026-11-20" and second[second.index("--date") + 1] == "2026-11-23"
    assert first[-1] == "1" and second[-1] == "1"  # no strategy: the agent alone is waited for
    # day 2 continues day 1's market (opens from its closes): one price history, as run_sim(days=2)
    assert second[second.index("--first-day") + 1] == "2026-11-20" and first.count("--first-day") == 1


@POSIX_ONLY
def test_a_stopped_spot_server_is_seen_through_the_agent_and_restarted(tmp_path: Path) -> None:
    """SIGSTOP freezes the spot server (its heartbeats too): the agent hears nothing, the node kills the server
    after --heartbeat-timeout and starts it again; the agent follows the new publisher."""
    run_dir = tmp_path / "node"
    proc = node_process(tmp_path, "--speed", "20", "--heartbeat-timeout", "3")
    wait_until("the feed flows", lambda: feed_messages(run_dir) > 0, proc)
    server = read_json(run_dir / "node.json")["processes"]["spot-server"]["pid"]
    os.kill(server, signal.SIGSTOP)
    wait_until("the server's restart", lambda: read_json(run_dir / "node.json").get("restarts", {}).get("spot-server"),
               proc, timeout=30)  # fmt: skip
    with pytest.raises(ProcessLookupError):  # the frozen one was killed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(server, 0)
            time.sleep(0.1)
    before = feed_messages(run_dir)
    wait_until("the new server's messages", lambda: feed_messages(run_dir) > before + 5, proc, timeout=30)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    node = read_json(run_dir / "node.json")
    assert node["processes"]["spot-server"]["hung_kills"] == 1 and node["restarts"]["agent"] == 0
    assert "spot-server is hung (heartbeat" in err


def test_a_strategy_given_up_before_the_first_cycle_does_not_keep_the_feed_waiting(tmp_path: Path) -> None:
    """The sim server waits for the agent and every strategy; one that never loads is given up on, and the
    server is started again waiting for the others: the day plays, the node ends."""
    run_dir = tmp_path / "node"
    proc = node_process(tmp_path, "--speed", "4000", "--strategy", str(ROOT / "tests" / "node_broken_strategy.py"),
                        "--max-restarts", "1")  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    node = read_json(run_dir / "node.json")
    assert node["processes"]["strategy-node_broken_strategy"]["gave_up"]
    assert node["restarts"]["spot-server"] == 1 and node["outcome"] == "completed"
    server_log = (run_dir / "logs" / "spot-server.log").read_text(encoding="utf-8")
    assert "--wait-subscribers 2" in server_log and "--wait-subscribers 1" in server_log
    assert f"market day {DAY} closed" in (run_dir / "logs" / "agent.log").read_text(encoding="utf-8")


@POSIX_ONLY
def test_the_children_of_a_killed_node_stop_themselves(tmp_path: Path) -> None:
    """Each child is in a session of its own (the terminal's Ctrl-C is the node's), so a node killed with
    SIGKILL could leave them running: each sees its parent gone and stops as on SIGTERM."""
    run_dir = tmp_path / "node"
    proc = node_process(tmp_path, "--speed", "20", "--strategy", "examples/ma_cross.py")
    wait_until("the strategy's first heartbeat", lambda: (run_dir / "state" / "ma_cross" / "control" /
                                                          "status.json").exists(), proc)  # fmt: skip
    wait_until("the agent's first heartbeat", lambda: read_json(run_dir / "agent.heartbeat.json").get("running"),
               proc)  # fmt: skip
    pids = [p["pid"] for p in read_json(run_dir / "node.json")["processes"].values()]
    assert all(pids)
    proc.kill()
    proc.communicate(timeout=30)
    deadline, alive = time.monotonic() + 30, list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if _alive(pid)]
    assert not alive, f"children left running: {alive}"
    assert read_json(run_dir / "agent.heartbeat.json")["running"] is False  # the agent stopped, not killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is gone for this purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_backfill_is_for_a_feed_and_a_journal_not_made_yet_is_nothing_to_replay(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "hkrt", "run", "examples/macd_cross.py", "--source", "sim", "--backfill", "x"]
    sim = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    errors = [line for line in sim.stderr.splitlines() if line.startswith("Error:")]
    assert sim.returncode == 2 and len(errors) == 1 and "--backfill" in errors[0] and "--source feed" in errors[0]
    from hkrt.feed.day_journal import newest_day_file

    assert newest_day_file(tmp_path) is None
    for name in ("spots-20261120.hkj", "spots-20261123.hkj", "spots-2026112.hkj", "spots-20261123.hkj.corrupt"):
        (tmp_path / name).write_bytes(b"")
    assert newest_day_file(tmp_path) == tmp_path / "spots-20261123.hkj"  # the latest day, other names ignored
