"""A node's dashboard without a browser (docs/dashboard.md, "A node's dashboard"): a strategy's relay on a real
nng ipc socket followed by a mirror, a reader that fell behind the relay's ring (a snapshot, the loss counted), a
hole in the changes, a restarted strategy (a new epoch), the mirror's bounds, the series watched, the node's
config, and the node's web server halting one strategy through its control channel."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the dashboard extra: pip install 'hkrt[dashboard]'")
ws_client = pytest.importorskip("websockets.sync.client", reason="needs websockets (the test extra)")

import hkrt  # noqa: E402
from hkrt.bus import Bar, BarClosed, EventBus, OrderEvent  # noqa: E402
from hkrt.core.ktype import KType  # noqa: E402
from hkrt.dashboard.hub import RESYNC  # noqa: E402
from hkrt.dashboard.mirror import RelayReader, StrategyMirror  # noqa: E402
from hkrt.dashboard.relay import VERSION, RelayServer  # noqa: E402

CODES = ("SH600000", "SZ000001")
T0 = dt.datetime(2026, 11, 20, 9, 31)
TOKEN = secrets.token_urlsafe(24)
ROOT = Path(__file__).resolve().parents[1]


def bar_event(minute: int, symbol: str = CODES[0], ktype: str = "MIN") -> BarClosed:
    close = 10.0 + minute / 100
    bar = Bar(T0 + dt.timedelta(minutes=minute), close, close + 0.1, close - 0.1, close, 1000.0, 10_000.0)
    return BarClosed(symbol, KType.parse(ktype), bar)


def order_event(n: int, status: str, strategy: str) -> OrderEvent:
    return OrderEvent(client_order_id=f"{strategy}-o{n}", symbol=CODES[0], side="buy", shares=100, status=status,
                      reason="", strategy=strategy, datetime=T0)  # fmt: skip


@pytest.fixture
def strategies() -> Iterator[dict[str, hkrt.Strategy]]:
    made = {name: hkrt.Strategy(CODES, ktypes=["MIN", "MIN5"], name=name) for name in ("alpha", "beta")}
    buses = []
    for strategy in made.values():
        bus = EventBus()
        strategy.attach(bus)
        bus.start()
        buses.append(bus)
    try:
        yield made
    finally:
        for bus in buses:
            bus.stop()


def publish(strategy: hkrt.Strategy, *events: Any) -> None:
    bus = strategy.bus
    assert bus is not None
    for event in events:
        assert bus.publish(event)
    assert bus.wait_idle(5.0)


def until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def ipc(tmp_path: Path, name: str) -> str:
    return f"ipc://{tmp_path / name}"


# ------------------------------------------------------------- relay + mirror
def test_a_mirror_follows_a_relay_over_nng_snapshot_then_every_change(
    strategies: dict[str, hkrt.Strategy], tmp_path: Path
) -> None:
    strategy = strategies["alpha"]
    relay = RelayServer(strategy, ipc(tmp_path, "alpha.ipc")).start()
    publish(strategy, bar_event(0), bar_event(1))  # before the reader: in its snapshot
    mirror = StrategyMirror("alpha")
    heard: list[Any] = []
    mirror.listener = heard.append
    reader = RelayReader({"alpha": mirror}, {"alpha": relay.address}, poll=0.02).start()
    try:
        until(lambda: mirror.connected and mirror.seq == relay.state.seq, "the first snapshot")
        assert heard[0] is RESYNC and mirror.stats["snapshots"] == 1
        if os.name == "posix":
            assert (tmp_path / "alpha.ipc").stat().st_mode & 0o077 == 0  # the owner's alone
        # the last bar again: an amended bar replaces the one it corrects
        changes = (bar_event(2), bar_event(0, CODES[1]), order_event(1, "accepted", "alpha"),
                   order_event(1, "filled", "alpha"), bar_event(2))  # fmt: skip
        publish(strategy, *changes)
        until(lambda: mirror.seq == relay.state.seq, "the changes")
        assert mirror.snapshot()["data"] == relay.state.snapshot()["data"]
        deltas = [m for m in heard if m is not RESYNC]
        assert [d["seq"] for d in deltas] == list(range(deltas[0]["seq"], mirror.seq + 1))  # in order, no hole
        assert mirror.stats["lost"] == mirror.stats["gaps"] == 0 and mirror.stats["snapshots"] == 1
        assert relay.stats["snapshots"] == 1  # the rest came as changes
    finally:
        reader.stop()
        relay.stop()


def test_a_strategy_down_delays_no_other_and_its_restart_is_followed_from_a_snapshot(
    strategies: dict[str, hkrt.Strategy], tmp_path: Path
) -> None:
    relays = {n: RelayServer(s, ipc(tmp_path, f"{n}.ipc")).start() for n, s in strategies.items()}
    mirrors = {n: StrategyMirror(n) for n in strategies}
    # a reader that waits long on a relay that does not answer: one thread for both would hold beta's updates
    reader = RelayReader(mirrors, {n: r.address for n, r in relays.items()}, poll=0.02, timeout=30.0).start()
    try:
        until(lambda: all(m.connected for m in mirrors.values()), "both relays")
        first_epoch = mirrors["alpha"].epoch
        relays["alpha"].stop()  # alpha's process is gone: its reader's ask waits for an answer
        time.sleep(0.2)
        publish(strategies["beta"], bar_event(0, CODES[1]))
        until(lambda: mirrors["beta"].seq == relays["beta"].state.seq, "beta's bar while alpha is down")
        relays["alpha"] = RelayServer(strategies["alpha"], ipc(tmp_path, "alpha.ipc")).start()  # restarted
        publish(strategies["alpha"], bar_event(0))
        until(lambda: mirrors["alpha"].connected and mirrors["alpha"].seq == relays["alpha"].state.seq > 0,
              "alpha followed again", timeout=15)  # fmt: skip
        assert mirrors["alpha"].epoch not in (None, first_epoch) and mirrors["alpha"].stats["snapshots"] == 2
        assert mirrors["alpha"].snapshot()["data"] == relays["alpha"].state.snapshot()["data"]
    finally:
        reader.stop()
        for relay in relays.values():
            relay.stop()


def test_a_reader_behind_the_ring_gets_a_snapshot_and_the_loss_is_counted(
    strategies: dict[str, hkrt.Strategy], tmp_path: Path
) -> None:
    strategy = strategies["alpha"]
    relay = RelayServer(strategy, ipc(tmp_path, "ring.ipc"), ring_size=5)  # answer() needs no socket
    try:
        mirror = StrategyMirror("alpha")
        first = relay.answer({"v": VERSION, "epoch": None, "after": None})
        mirror.apply_snapshot(first["epoch"], first["snapshot"])
        publish(strategy, *(bar_event(m) for m in range(3)))
        near = relay.answer({"v": VERSION, "epoch": mirror.epoch, "after": mirror.seq})
        assert [d["seq"] for d in near["deltas"]] == [1, 2, 3]  # within the ring: just the changes
        assert mirror.apply_deltas(near["epoch"], near["deltas"]) and mirror.seq == 3
        publish(strategy, *(bar_event(m) for m in range(3, 23)))  # 20 more: the ring keeps the last 5
        far = relay.answer({"v": VERSION, "epoch": mirror.epoch, "after": mirror.seq})
        assert "snapshot" in far and far["lost"] == 15 and far["seq"] == 23
        assert relay.stats["lagged"] == 1 and relay.stats["lost"] == 15
        mirror.apply_snapshot(far["epoch"], far["snapshot"], far["lost"])
        assert mirror.stats["lost"] == 15 and mirror.snapshot()["data"] == relay.state.snapshot()["data"]
        # a reply that does not follow on (a hole): nothing past it is applied, the caller asks for a snapshot
        publish(strategy, bar_event(23), bar_event(24))
        more = relay.answer({"v": VERSION, "epoch": mirror.epoch, "after": mirror.seq})["deltas"]
        assert not mirror.apply_deltas(mirror.epoch or "", more[1:]) and mirror.stats["gaps"] == 1
        assert mirror.seq == 23
        # a restarted strategy numbers again from 0 in another epoch: the mirror's epoch gets a snapshot
        again = RelayServer(strategy, ipc(tmp_path, "again.ipc"))
        try:
            answer = again.answer({"v": VERSION, "epoch": mirror.epoch, "after": mirror.seq})
            assert "snapshot" in answer and answer["epoch"] != mirror.epoch and answer["lost"] == 0
            assert not mirror.apply_deltas(answer["epoch"], [])  # another epoch's changes are not applied
        finally:
            again.stop()
        with pytest.raises(ValueError, match="version"):
            relay.answer({"after": 1})
        with pytest.raises(ValueError, match="whole number"):
            relay.answer({"v": VERSION, "epoch": mirror.epoch, "after": "3"})
    finally:
        relay.stop()


def test_the_mirror_keeps_its_bounds() -> None:
    mirror = StrategyMirror("alpha", max_bars=3, max_series=2, max_done_orders=2, max_trades=2, max_equity=2)
    data = {"strategy": "alpha", "symbols": list(CODES), "ktypes": ["MIN"], "bars": [], "orders": []}
    mirror.apply_snapshot("e", {"type": "snapshot", "seq": 0, "data": data})
    changes: list[dict[str, Any]] = []

    def change(kind: str, payload: Any) -> None:
        changes.append({"type": "delta", "seq": len(changes) + 1, "kind": kind, "data": payload})

    for minute in range(5):
        change("bar", {"symbol": CODES[0], "ktype": "MIN", "bar": {"time": minute * 60, "close": 1.0}})
    change("bar", {"symbol": CODES[1], "ktype": "MIN", "bar": {"time": 0, "close": 1.0}})
    change("bar", {"symbol": CODES[1], "ktype": "MIN5", "bar": {"time": 0, "close": 1.0}})  # a third series
    for n in range(4):
        change("order", {"id": f"o{n}", "status": "filled"})
        change("trade", {"id": f"t{n}", "time": n})
        change("equity", {"time": n, "value": 1.0})
    change("order", {"id": "w", "status": "accepted"})
    assert mirror.apply_deltas("e", changes)
    data = mirror.snapshot()["data"]
    assert [b["time"] for b in data["bars"][0]["bars"]] == [120, 180, 240]  # the oldest left
    assert len(data["bars"]) == 2 and mirror.stats["bars_dropped_series"] == 1
    assert [o["id"] for o in data["orders"]] == ["w", "o2", "o3"]  # working kept, the oldest done left
    assert [t["id"] for t in data["trades"]] == ["t2", "t3"] and len(data["equity"]) == 2


def test_the_series_browsers_show_are_asked_of_the_relay(strategies: dict[str, hkrt.Strategy], tmp_path: Path) -> None:
    strategy = strategies["alpha"]
    relay = RelayServer(strategy, ipc(tmp_path, "watch.ipc"))
    try:
        mirror = StrategyMirror("alpha")
        first = relay.answer({"v": VERSION, "epoch": None, "after": None})
        mirror.apply_snapshot(first["epoch"], first["snapshot"])
        assert mirror.watch(None, (CODES[0], "MIN5")) == (CODES[0], "MIN5")
        assert mirror.watch(None, ("SH999999", "MIN")) is None  # not a symbol of the strategy
        relay.answer({"v": VERSION, "epoch": mirror.epoch, "after": mirror.seq, "watch": mirror.watched()})
        assert dict(relay.state._watched) == {(CODES[0], "MIN5"): 1}
        mirror.watch((CODES[0], "MIN5"), None)
        relay.answer({"v": VERSION, "epoch": mirror.epoch, "after": mirror.seq, "watch": mirror.watched()})
        assert dict(relay.state._watched) == {}
    finally:
        relay.stop()


# ------------------------------------------------------------- the node's server
class ControlLoop:
    """A strategy's control channel polled as its run loop does (every 50 ms), from a thread."""

    def __init__(self, strategy: hkrt.Strategy, state_dir: Path) -> None:
        from hkrt.strategy.control import ControlChannel

        self.channel = ControlChannel(strategy, state_dir).open()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.channel.poll()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.channel.close()


def test_the_node_dashboard_shows_each_strategy_and_halts_only_the_one_asked(
    strategies: dict[str, hkrt.Strategy], tmp_path: Path
) -> None:
    from hkrt.dashboard.node_board import serve_node_dashboard

    relays = {n: RelayServer(s, ipc(tmp_path, f"{n}.ipc")).start() for n, s in strategies.items()}
    controls = {n: ControlLoop(s, tmp_path / "state" / n) for n, s in strategies.items()}
    node_json = tmp_path / "node.json"
    node_json.write_text(json.dumps({"outcome": "", "processes": {"strategy-alpha": {"state": "running",
                         "pid": 1, "restarts": 2}}}), encoding="utf-8")  # fmt: skip
    beat = tmp_path / "dashboard.heartbeat.json"
    board = serve_node_dashboard({n: r.address for n, r in relays.items()},
                                 {n: tmp_path / "state" / n for n in strategies}, "127.0.0.1:0", token=TOKEN,
                                 node_status=node_json, heartbeat_file=beat, poll=0.02)  # fmt: skip
    try:
        publish(strategies["alpha"], bar_event(0), order_event(1, "accepted", "alpha"))
        publish(strategies["beta"], bar_event(0, CODES[1]), bar_event(1, CODES[1]))
        until(lambda: all(m.seq == relays[n].state.seq > 0 for n, m in board.board.mirrors.items()), "both mirrors")
        url = board.url.replace("http://", "ws://") + "/ws?strategy=beta"
        with ws_client.connect(url) as conn:
            conn.send(json.dumps({"type": "hello", "token": ""}))
            snap = json.loads(conn.recv(timeout=5))
            panel = json.loads(conn.recv(timeout=5))
        assert snap["type"] == "snapshot" and snap["data"]["strategy"] == "beta"
        assert [(b["symbol"], len(b["bars"])) for b in snap["data"]["bars"]] == [(CODES[1], 2)]
        assert snap["data"]["orders"] == []  # alpha's order is alpha's
        assert panel["type"] == "node" and [s["name"] for s in panel["data"]["strategies"]] == ["alpha", "beta"]
        assert panel["data"]["processes"]["strategy-alpha"]["restarts"] == 2
        alpha = httpx.get(board.url + "/api/snapshot", params={"strategy": "alpha"}).json()["data"]
        assert [o["id"] for o in alpha["orders"]] == ["alpha-o1"]
        until(lambda: beat.exists() and json.loads(beat.read_text())["pid"] == os.getpid(), "the heartbeat")
        halt = board.url + "/api/halt"
        assert httpx.post(halt, json={"strategy": "alpha"}).status_code == 401  # the token, always
        auth = {"Authorization": "Bearer " + TOKEN}
        assert httpx.post(halt, headers=auth, json={"strategy": "gamma"}).status_code == 404
        answer = httpx.post(halt, headers=auth, json={"strategy": "alpha", "reason": "test"}, timeout=15)
        assert answer.status_code == 200 and answer.json()["state"] == "HALTED", answer.text
        assert strategies["alpha"].trading_state == "HALTED" and strategies["beta"].trading_state == "ACTIVE"
        assert strategies["alpha"].risk.reason == "halted from the node's dashboard: test"
        stats = httpx.get(board.url + "/api/stats").json()
        assert stats["halts"] == 1 and stats["unauthorized"] == 1
    finally:
        board.stop()
        for c in controls.values():
            c.stop()
        for r in relays.values():
            r.stop()


# ------------------------------------------------------------- the node's config
def test_the_node_key_dashboard_adds_relays_and_a_child_whose_token_stays_in_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hkrt.node.config import NodeConfigError, node_config
    from hkrt.node.plan import node_specs

    monkeypatch.delenv("HKRT_DASHBOARD_TOKEN", raising=False)
    monkeypatch.delenv("HKRT_DASHBOARD_TOKEN_FILE", raising=False)
    script = str(ROOT / "tests" / "node_dashboard_strategy.py")
    settings = {"run-dir": str(tmp_path / "node"), "strategy": [script], "dashboard": "127.0.0.1:8050"}
    specs = {s.name: s for s in node_specs(node_config(settings))}
    board = specs["dashboard"]
    argv = board.command(launch=_launch())
    token_file = tmp_path / "node" / "dashboard.token"
    token = token_file.read_text().strip()
    assert len(token) >= 16 and token not in " ".join(argv)
    assert board.env == {"HKRT_DASHBOARD_TOKEN_FILE": str(token_file)}
    if os.name == "posix":
        assert token_file.stat().st_mode & 0o777 == 0o600
    strategy_argv = specs["strategy-node_dashboard_strategy"].command(launch=_launch())
    relay = strategy_argv[strategy_argv.index("--dashboard-relay") + 1]
    assert f"node_dashboard_strategy={relay}" in argv and relay.startswith("ipc://")
    assert list(specs)[-1] == "dashboard"  # started last, stopped first
    with pytest.raises(NodeConfigError, match=re.escape("dashboard: dashboard on 0.0.0.0:8050 would be reachable")):
        node_specs(node_config({**settings, "dashboard": "0.0.0.0:8050"}))
    with pytest.raises(NodeConfigError, match="no strategy to show"):
        node_specs(node_config({"run-dir": str(tmp_path / "n2"), "dashboard": "8050"}))
    assert "dashboard" not in {s.name for s in node_specs(node_config({**settings, "dashboard": None}))}
    # a token set by the operator: a file named by the key (passed on by name), or the environment (inherited)
    mine = tmp_path / "my.token"
    mine.write_text(TOKEN + "\n")
    wide = {**settings, "dashboard": "0.0.0.0:8050", "dashboard-token-file": str(mine)}
    board = {s.name: s for s in node_specs(node_config(wide))}["dashboard"]
    assert board.env == {"HKRT_DASHBOARD_TOKEN_FILE": str(mine)} and TOKEN not in " ".join(board.command(_launch()))
    monkeypatch.setenv("HKRT_DASHBOARD_TOKEN", TOKEN)
    board = {s.name: s for s in node_specs(node_config({**settings, "dashboard": "0.0.0.0:8050"}))}["dashboard"]
    assert board.env is None


def _launch() -> Any:
    from hkrt.node.process import Launch

    return Launch(0, 0, 0)


def test_bad_dashboard_settings_are_one_line_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from hkrt.cli import main

    monkeypatch.delenv("HKRT_DASHBOARD_TOKEN", raising=False)
    monkeypatch.delenv("HKRT_DASHBOARD_TOKEN_FILE", raising=False)
    relay = f"a={ipc(tmp_path, 'a.ipc')}"
    cases = [
        (["dashboard", "--relay", "a"], "'a': expected NAME=VALUE"),
        (["dashboard", "--relay", relay, "--relay", relay], "strategy 'a' given twice"),
        (["dashboard", "--relay", relay, "--control", f"b={tmp_path}"], "strategy 'b' has no --relay"),
        (["dashboard", "--relay", relay, "--address", "0.0.0.0:8050"], "would be reachable beyond this machine"),
        (["node", "--run-dir", str(tmp_path / "n"), "--strategy", str(ROOT / "tests" / "node_dashboard_strategy.py"),
          "--dashboard", "0.0.0.0:8050"], "dashboard: dashboard on 0.0.0.0:8050 would be reachable"),
    ]  # fmt: skip
    for args, message in cases:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(errors) == 1 and message in errors[0], result.output
        assert "Traceback" not in result.output
