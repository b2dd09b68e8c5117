"""Several hosts: a collector host and a strategy host, two network namespaces on a veth pair (tests/netns.py),
the spot server on one, an agent (store + journal) and ``hkrt run examples/macd_cross.py`` on the other; over
TCP sealed with a feed key, and over a password-protected Redis on the collector host. The agent's MIN bars of
the day and the strategy's orders and fills equal a single-host run of the same simulated day; a subscriber
without the key is refused in one line, one with a wrong key takes nothing and says so; no password is ever
printed; and a link pulled for a few seconds mid-day loses nothing over either transport.

Root and iproute2 are needed (skipped otherwise, failed instead when .ci/run sets HKRT_NETNS_REQUIRED=1). The
test process itself never sends a packet to the namespaces' addresses: everything that talks to them runs
inside one (``ip netns exec``), redis-cli included."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from netns import Host, HostPair, this_host, two_hosts

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 20)
SYMBOLS = 6  # the simulated market's first 6 symbols are exactly examples/macd_cross.py's codes
SPEED = 2000  # market seconds per wall second: the day (09:15-15:00) in about 10 s
STRATEGY = "examples/macd_cross.py"
FEED_PORT = 9200  # each namespace has ports of its own: fixed ports collide with nothing
REDIS_PORT = 6379
DEADLINE = 120.0  # s for a whole day's run to finish, generous for a loaded 2-core machine
ORDER_COLUMNS = ["created", "updated", "symbol", "side", "order_type", "price", "stop_price", "shares",
                 "filled_shares", "average_price", "fees", "status", "broker_order_id", "emulated"]  # fmt: skip
FILL_COLUMNS = ["datetime", "symbol", "side", "price", "shares", "fees"]


# ------------------------------------------------------------------ the single-host run
@dataclass
class DayRun:
    bars: pd.DataFrame  # the agent's stored MIN bars of the day
    orders: list[dict[str, str]]
    fills: list[dict[str, str]]


def hkrt(*args: object) -> list[str]:
    return [sys.executable, "-m", "hkrt", *map(str, args)]


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without a feed key of its own (each test says which key a process gets)
    and without the terminal's size (the commands print plain lines to a file)."""
    dropped = ("COLUMNS", "LINES", "HKRT_FEED_KEY", "HKRT_FEED_KEY_FILE")
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **extra}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def orders_and_fills(out: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """What ``hkrt run --out`` wrote, without the run's own ids (each run tags its client order ids)."""
    orders = [{k: o[k] for k in ORDER_COLUMNS} for o in read_csv(out / "orders.csv")]
    fills = [{k: t[k] for k in FILL_COLUMNS} for t in read_csv(out / "trades.csv")]
    return orders, fills


def stored_min_bars(store: Path) -> pd.DataFrame:
    from hkrt.store import KDataStore

    return KDataStore(store).load(None, "MIN").reset_index(drop=True)


# ------------------------------------------------------------------ processes on the hosts
def logs(paths: Sequence[Path]) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in paths if p.exists())


def wait_for(what: str, check: Callable[[], Any], *, watch: Sequence[subprocess.Popen[bytes]] = (),
             logs_of: Sequence[Path] = (), timeout: float = DEADLINE) -> Any:  # fmt: skip
    """Poll ``check`` until it returns something true; fail, with the logs, at the deadline or when a
    watched process ends first."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        ended = [p for p in watch if p.poll() is not None]
        if ended or time.monotonic() > deadline:
            why = f"{len(ended)} process(es) ended" if ended else f"{timeout:.0f} s passed"
            pytest.fail(f"{why} before {what}\n{logs(logs_of)}")
        time.sleep(0.1)


def finished(process: subprocess.Popen[bytes], what: str, log: Path, *, timeout: float = DEADLINE) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not finish within {timeout:.0f} s\n{logs([log])}")


def stop(process: subprocess.Popen[bytes], what: str, log: Path) -> int:
    """SIGTERM, as an operator stops an agent: it flushes its store and closes its journal (exit 143)."""
    process.send_signal(signal.SIGTERM)
    return finished(process, what, log, timeout=30)


def heartbeat(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_key(path: Path) -> Path:
    """A feed key file as docs/feed-recovery.md makes one: 32 random bytes in hex, owner-only."""
    path.write_text(secrets.token_hex(32) + "\n", encoding="ascii")
    path.chmod(0o600)
    return path


@dataclass
class StrategyHost:
    """The agent and the strategy on the strategy host, and where they write."""

    folder: Path
    agent: subprocess.Popen[bytes]
    strategy: subprocess.Popen[bytes]

    @property
    def agent_log(self) -> Path:
        return self.folder / "agent.log"

    @property
    def strategy_log(self) -> Path:
        return self.folder / "strategy.log"

    @property
    def beat(self) -> Path:
        return self.folder / "agent.heartbeat.json"


def start_strategy_host(host: Host, folder: Path, feed: Sequence[str], strategy_feed: Sequence[str],
                        env: Mapping[str, str]) -> StrategyHost:  # fmt: skip
    """``hkrt agent`` with a store, a journal and a heartbeat file, and ``hkrt run`` of the strategy on a
    simulated feed until 15:00 with the paper broker, both reading the collector's feed as ``feed`` says."""
    folder.mkdir()
    agent = host.start(hkrt("agent", *feed, "--store", folder / "store", "--journal", folder / "journal",
                            "--heartbeat-file", folder / "agent.heartbeat.json"),
                       folder / "agent.log", env=env, cwd=ROOT)  # fmt: skip
    strategy = host.start(hkrt("run", STRATEGY, "--source", "feed", *strategy_feed, "--feed-is-sim", "--until",
                               "15:00", "--broker", "paper", "--out", folder / "out"),
                          folder / "strategy.log", env=env, cwd=ROOT)  # fmt: skip
    return StrategyHost(folder, agent, strategy)


def finish_day(side: StrategyHost, server: subprocess.Popen[bytes], server_log: Path) -> DayRun:
    """The spot server plays the day to its end; the strategy stops at 15:00; the agent, once it has closed
    the day, is stopped. Their bars, orders and fills."""
    everyone = [server_log, side.agent_log, side.strategy_log]
    assert finished(server, "the spot server", server_log) == 0, logs(everyone)
    assert finished(side.strategy, "the strategy", side.strategy_log) == 0, logs(everyone)
    wait_for("the agent closes the day", lambda: heartbeat(side.beat).get("closed_day") == DAY.isoformat(),
             watch=[side.agent], logs_of=everyone, timeout=30)  # fmt: skip
    assert stop(side.agent, "the agent", side.agent_log) == 128 + signal.SIGTERM, logs(everyone)
    beat = heartbeat(side.beat)
    assert beat["running"] is False and beat["lost_messages"] == 0, beat
    assert list((side.folder / "journal").iterdir()), "the agent journals what it took"
    orders, fills = orders_and_fills(side.folder / "out")
    return DayRun(stored_min_bars(side.folder / "store"), orders, fills)


@pytest.fixture(scope="module")
def single_host(tmp_path_factory: pytest.TempPathFactory) -> DayRun:
    """The reference: the same commands on one host, over ipc (no key needed there)."""
    folder = tmp_path_factory.mktemp("single-host")
    feed = ["--address", f"ipc://{folder / 'feed.ipc'}"]
    with this_host() as host:
        side = start_strategy_host(host, folder / "strategy-host", feed, feed, environment())
        server_log = folder / "spot-server.log"
        server = host.start(hkrt("spot-server", "--source", "sim", "--symbols", SYMBOLS, "--date", DAY, "--speed",
                                 SPEED, *feed, "--wait-subscribers", 2), server_log, env=environment())  # fmt: skip
        day = finish_day(side, server, server_log)
    assert len(day.bars) == 240 * SYMBOLS and day.fills, "the reference day must have every bar and some fills"
    return day


def assert_same_day(got: DayRun, want: DayRun) -> None:
    pd.testing.assert_frame_equal(got.bars, want.bars)
    assert got.orders == want.orders
    assert got.fills == want.fills


# ------------------------------------------------------------------ TCP, sealed with a feed key
def spot_server_tcp(hosts: HostPair, folder: Path, subscribers: int) -> list[str]:
    return hkrt("spot-server", "--source", "sim", "--symbols", SYMBOLS, "--date", DAY, "--speed", SPEED,
                "--address", f"ipc://{folder / 'feed.ipc'}", "--tcp", f"{hosts.collector.ip}:{FEED_PORT}",
                "--wait-subscribers", subscribers)  # fmt: skip


def test_a_day_over_authenticated_tcp_between_two_hosts_equals_one_host(tmp_path: Path, single_host: DayRun) -> None:
    with two_hosts() as hosts:
        collector, strategy_host = hosts.collector, hosts.strategy
        keyed = environment(HKRT_FEED_KEY_FILE=str(write_key(tmp_path / "feed.key")))
        feed = f"tcp://{collector.ip}:{FEED_PORT}"

        # no key on the strategy host: refused before dialling, in one line
        refused = strategy_host.run(hkrt("agent", "--address", feed, "--seconds", "1"), env=environment())
        errors = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
        assert refused.returncode == 1 and len(errors) == 1, refused.stdout + refused.stderr
        assert f"subscribe on {feed} needs a feed key" in errors[0] and "Traceback" not in refused.stderr

        side = start_strategy_host(strategy_host, tmp_path / "strategy-host", ["--address", feed],
                                   ["--address", feed], keyed)  # fmt: skip
        # a subscriber with a wrong key: connected, takes nothing, says why
        wrong = environment(HKRT_FEED_KEY_FILE=str(write_key(tmp_path / "wrong.key")))
        intruder_log, intruder_beat = tmp_path / "intruder.log", tmp_path / "intruder.heartbeat.json"
        intruder = strategy_host.start(hkrt("agent", "--address", feed, "--heartbeat-file", intruder_beat),
                                       intruder_log, env=wrong, cwd=ROOT)  # fmt: skip
        server_log = tmp_path / "spot-server.log"
        server = collector.start(spot_server_tcp(hosts, tmp_path, subscribers=3), server_log, env=keyed)
        got = finish_day(side, server, server_log)
        beat = heartbeat(intruder_beat)
        assert stop(intruder, "the agent with the wrong key", intruder_log) == 128 + signal.SIGTERM
        intruder_says = intruder_log.read_text(errors="replace")

    assert_same_day(got, single_host)
    server_says = server_log.read_text(errors="replace")
    assert f"on ipc://{tmp_path / 'feed.ipc'}, {feed}" in server_says and "done: 1 end-of-day marker" in server_says
    # the wrong key: connected (the server waited for 3 subscribers), every message refused and counted, nothing
    # taken; one warning line and the status line say so
    assert beat["spots"] == 0 and beat["messages"] == 0, beat
    assert "rejected a message that is not sealed with the feed key" in intruder_says, intruder_says
    last = [line for line in intruder_says.splitlines() if line.startswith("stopped: ")]
    assert len(last) == 1 and "spots 0" in last[0] and "refused: not sealed with our feed key" in last[0], last


# ------------------------------------------------------------------ Redis on the collector host
@dataclass
class Redis:
    host: Host
    password: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host.ip}:{REDIS_PORT}/0"

    def cli(self, on: Host, *command: str) -> str:
        """redis-cli run on ``on`` (the password through $REDISCLI_AUTH, never in an argument)."""
        done = on.run(["redis-cli", "-h", self.host.ip, "-p", str(REDIS_PORT), *command],
                      env=environment(REDISCLI_AUTH=self.password), timeout=10)  # fmt: skip
        return done.stdout


def start_redis(host: Host, folder: Path) -> Redis:
    """redis-server on the collector host, bound to its veth address only, with a password (from an owner-only
    config file, so it is in no process's arguments), no persistence."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    pytest.importorskip("redis", reason="the redis client is not installed (pip install 'hkrt[redis]')")
    password = secrets.token_urlsafe(24)
    folder.mkdir()
    config = folder / "redis.conf"
    config.touch(mode=0o600)
    config.write_text(f"bind {host.ip}\nport {REDIS_PORT}\nrequirepass {password}\nsave \"\"\nappendonly no\n"
                      f"dir {folder}\nlogfile {folder / 'redis.log'}\n", encoding="utf-8")  # fmt: skip
    server = Redis(host, password, host.start(["redis-server", str(config)], folder / "stdout.log"))
    wait_for("redis-server answers", lambda: server.cli(host, "ping").strip() == "PONG", watch=[server.process],
             logs_of=[folder / "redis.log"], timeout=15)  # fmt: skip
    return server


def test_a_day_through_redis_on_the_collector_host_equals_one_host(tmp_path: Path, single_host: DayRun) -> None:
    with two_hosts() as hosts:
        collector, strategy_host = hosts.collector, hosts.strategy
        redis = start_redis(collector, tmp_path / "redis")
        assert redis.cli(strategy_host, "ping").strip() == "PONG"  # reachable from the other host, with the password
        assert "NOAUTH" in strategy_host.run(["redis-cli", "-h", collector.ip, "-p", str(REDIS_PORT), "xlen", "x"],
                                             env=environment()).stdout  # and only with it  # fmt: skip
        side = start_strategy_host(strategy_host, tmp_path / "strategy-host",
                                   ["--redis", redis.url, "--group", "agent", "--consumer", "strategy-host"],
                                   ["--redis", redis.url, "--group", "macd", "--consumer", "strategy-host"],
                                   environment())  # fmt: skip
        # a new group reads from its creation on: both join before the day starts
        wait_for("the agent's and the strategy's consumer groups exist",
                 lambda: {"agent", "macd"} <= set(redis.cli(collector, "xinfo", "groups", "hkrt:spots").split()),
                 watch=[side.agent, side.strategy], logs_of=[side.agent_log, side.strategy_log])  # fmt: skip
        server_log = tmp_path / "spot-server.log"
        server = collector.start(hkrt("spot-server", "--source", "sim", "--symbols", SYMBOLS, "--date", DAY, "--speed",
                                      SPEED, "--address", f"ipc://{tmp_path / 'feed.ipc'}", "--redis", redis.url,
                                      "--maxlen", "20000"),
                                 server_log, env=environment())  # fmt: skip
        got = finish_day(side, server, server_log)
        pending = {g: redis.cli(collector, "xpending", "hkrt:spots", g).split()[:1] for g in ("agent", "macd")}

    assert_same_day(got, single_host)
    assert pending == {"agent": ["0"], "macd": ["0"]}, pending  # every entry read was acknowledged
    said = [p.read_text(errors="replace") for p in (server_log, side.agent_log, side.strategy_log)]
    shown = f"redis://:***@{hosts.collector.ip}:{REDIS_PORT}/0"
    assert f"appending to Redis {shown}" in said[0] and ", 0 dropped, 0 errors" in said[0], said[0]
    assert f"subscribing to {shown}" in said[1], said[1]
    assert not any(redis.password in text for text in said), "a Redis password was printed"


# ------------------------------------------------------------------ the cable pulled mid-day
CUT_SPEED = 1000  # slower: the feed must have caught up well before the day's end and the server's exit
CUT_AFTER_MESSAGES = 600  # about 10:00 of the simulated day
CUT_SECONDS = 8.0  # longer than the agents' 5 s of silence before they say so


def messages_taken(beat: Path) -> int:
    return int(heartbeat(beat).get("messages") or 0)


def test_a_link_pulled_mid_day_loses_nothing_over_tcp_or_redis(tmp_path: Path, single_host: DayRun) -> None:
    with two_hosts() as hosts:
        collector, strategy_host = hosts.collector, hosts.strategy
        redis = start_redis(collector, tmp_path / "redis")
        keyed = environment(HKRT_FEED_KEY_FILE=str(write_key(tmp_path / "feed.key")))
        feed = f"tcp://{collector.ip}:{FEED_PORT}"
        agents: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for name, source in (("tcp", ["--address", feed]), ("redis", ["--redis", redis.url, "--group", "agent"])):
            folder = tmp_path / f"agent-{name}"
            folder.mkdir()
            argv = hkrt("agent", *source, "--store", folder / "store", "--heartbeat-file", folder / "beat.json")
            process = strategy_host.start(argv, folder / "agent.log", env=keyed, cwd=ROOT)
            agents[name] = process, folder
        processes = [p for p, _ in agents.values()]
        agent_logs = [folder / "agent.log" for _, folder in agents.values()]
        wait_for("the Redis agent's consumer group exists",
                 lambda: "agent" in redis.cli(collector, "xinfo", "groups", "hkrt:spots").split(), watch=processes,
                 logs_of=agent_logs)  # fmt: skip
        server_log = tmp_path / "spot-server.log"
        server = collector.start(hkrt("spot-server", "--source", "sim", "--symbols", SYMBOLS, "--date", DAY, "--speed",
                                      CUT_SPEED, "--address", f"ipc://{tmp_path / 'feed.ipc'}", "--tcp",
                                      f"{collector.ip}:{FEED_PORT}", "--redis", redis.url, "--maxlen", "20000",
                                      "--wait-subscribers", 1), server_log, env=keyed)  # fmt: skip
        beats = {name: folder / "beat.json" for name, (_, folder) in agents.items()}
        wait_for(f"{CUT_AFTER_MESSAGES} messages on both agents",
                 lambda: all(messages_taken(b) >= CUT_AFTER_MESSAGES for b in beats.values()),
                 watch=[*processes, server], logs_of=[server_log, *agent_logs])  # fmt: skip
        strategy_host.set_link(False)  # the cable out, for both transports at once
        time.sleep(2.5)  # what was already on this side is taken (heartbeat files are rewritten every second)
        during = {name: messages_taken(b) for name, b in beats.items()}
        time.sleep(CUT_SECONDS - 2.5)
        after = {name: messages_taken(b) for name, b in beats.items()}
        strategy_host.set_link(True)
        assert server.poll() is None, "the day must go on while the cable is out"
        assert during == after, f"nothing crosses a pulled cable: {during} then {after}"

        assert finished(server, "the spot server", server_log) == 0, logs([server_log])
        got = {}
        for name, (process, folder) in agents.items():
            beat = beats[name]
            wait_for(f"the {name} agent closes the day", lambda: heartbeat(beat).get("closed_day") == str(DAY),  # noqa: B023
                     watch=[process], logs_of=[folder / "agent.log"], timeout=60)  # fmt: skip
            assert stop(process, f"the {name} agent", folder / "agent.log") == 128 + signal.SIGTERM
            got[name] = heartbeat(beats[name]), stored_min_bars(folder / "store")

    for name, (beat, bars) in got.items():
        assert beat["lost_messages"] == 0 and beat["messages"] > after[name], (name, beat)
        pd.testing.assert_frame_equal(bars, single_host.bars, obj=f"MIN bars over {name}")
    # and the cut was said, loudly, on both: silence past 5 s, then the feed back
    said = {name: (folder / "agent.log").read_text(errors="replace") for name, (_, folder) in agents.items()}
    assert "feed silent: no message or heartbeat" in said["tcp"] and "feed resumed" in said["tcp"], said["tcp"]
    assert "cannot read the Redis stream" in said["redis"] and "Redis reachable again" in said["redis"], said["redis"]
