"""The supervisor on its own, with tiny real child processes: backoff and give-up, a critical child's give-up
stopping the node, a finite child's runs, listeners, and a stop that kills a child ignoring it."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from hkrt.node import Heartbeat, Launch, ProcessSpec, RestartPolicy, Supervisor

FAST = RestartPolicy(backoff=0.05, backoff_max=0.2, max_restarts=3, window=60)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_crashing_child_is_restarted_with_backoff_then_given_up_while_the_others_run(tmp_path: Path) -> None:
    events: list[tuple[str, str, dict[str, Any]]] = []
    supervisor = Supervisor(
        [
            ProcessSpec("feed", py("import sys, time; time.sleep(1.5)"), completes_node=True),
            ProcessSpec("crasher", py("import sys; print('boom'); sys.exit(3)"), restart=FAST),
        ],
        tmp_path,
        finish_grace=0.1,
        poll=0.02,
    )
    supervisor.subscribe(lambda kind, name, info: events.append((kind, name, info)))
    assert supervisor.run() == 0 and supervisor.outcome == "completed"
    stats = supervisor.stats()
    assert supervisor.restarts["crasher"] == 3 and stats["crasher"]["starts"] == 4
    assert stats["crasher"]["gave_up"] and stats["crasher"]["last_exit"] == 3
    assert stats["feed"]["state"] == "done" and supervisor.restarts["feed"] == 0
    delays = [info["delay"] for kind, name, info in events if kind == "restarting"]
    assert delays == [0.05, 0.1, 0.2]  # doubling, capped at backoff_max
    assert [k for k, n, _ in events if n == "crasher"][-1] == "gave_up"
    log = (tmp_path / "logs" / "crasher.log").read_text(encoding="utf-8")
    assert log.splitlines().count("boom") == 4 and "gave up after 3 restarts" in log


def test_giving_up_on_a_critical_child_stops_the_node_with_status_1(tmp_path: Path) -> None:
    supervisor = Supervisor(
        [
            ProcessSpec("agent", py("import sys; sys.exit(1)"), restart=FAST, critical=True),
            ProcessSpec("strategy", py("import time; time.sleep(60)"), stop_timeout=5),
        ],
        tmp_path,
        poll=0.02,
    )
    started = time.monotonic()
    assert supervisor.run() == 1
    assert supervisor.outcome == "failed: gave up on agent"
    assert supervisor.stats()["strategy"]["state"] == "stopped" and time.monotonic() - started < 30


def test_a_finite_child_makes_its_runs_and_a_hung_one_is_killed(tmp_path: Path) -> None:
    seen: list[int] = []

    def argv(launch: Launch) -> list[str]:
        seen.append(launch.run)
        return py("pass")

    never_beats = Heartbeat(lambda pid: None, timeout=1.0, startup=0.3)
    supervisor = Supervisor(
        [
            ProcessSpec("days", argv, runs=3, completes_node=True),
            ProcessSpec("hung", py("import time; time.sleep(60)"), heartbeat=never_beats, restart=FAST),
        ],
        tmp_path,
        finish_grace=1.5,
        poll=0.02,
    )
    assert supervisor.run() == 0
    assert seen == [0, 1, 2] and supervisor.restarts["days"] == 0
    hung = supervisor.stats()["hung"]
    assert hung["hung_kills"] >= 1 and hung["restarts"] >= 1


def test_a_child_ignoring_the_stop_is_killed_after_its_stop_timeout(tmp_path: Path) -> None:
    ignores = py(
        "import signal, time\nfor s in ('SIGTERM', 'SIGBREAK'):\n    getattr(signal, s, None) and "
        "signal.signal(getattr(signal, s), signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"
    )
    supervisor = Supervisor([ProcessSpec("stubborn", ignores, stop_timeout=0.5)], tmp_path, poll=0.02)
    log = tmp_path / "logs" / "stubborn.log"

    def stop_when_up() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "up" not in (
            log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        ):
            time.sleep(0.05)
        supervisor.request_stop()

    import threading

    threading.Thread(target=stop_when_up, daemon=True).start()
    started = time.monotonic()
    assert supervisor.run() == 0 and supervisor.outcome == "stopped"
    assert time.monotonic() - started < 20
    assert "did not stop within 0.5 s: killed" in log.read_text(encoding="utf-8")


def test_a_child_log_is_bounded_by_rotation_and_cuts_endless_lines(tmp_path: Path) -> None:
    """A status line redrawn with carriage returns is one line per redraw; a line without an end is cut at
    MAX_LINE; the files never pass (backups + 1) * max_bytes (plus one line)."""
    import io

    from hkrt.node.child_log import MAX_LINE, ChildLog

    log = ChildLog(tmp_path / "logs" / "x.log", max_bytes=4000, backups=2)
    redraws = b"".join(b"\rstatus %d" % i for i in range(500))
    endless = b"y" * (MAX_LINE * 2 + 10)
    log.pump(io.BytesIO(redraws + b"\n" + endless), "x").join(10)
    log.close()
    files = sorted((tmp_path / "logs").iterdir())
    assert [f.name for f in files] == ["x.log", "x.log.1", "x.log.2"]
    assert all(f.stat().st_size <= 4000 + MAX_LINE + 1 for f in files)
    assert log.lines == 500 + 3 and log.cut_lines == 2  # 500 redraws, the endless line in 3 pieces
    assert files[0].read_text(encoding="utf-8").splitlines()[-1] == "y" * 10


def test_the_feed_heartbeat_counts_only_once_the_agent_heard_this_server(tmp_path: Path) -> None:
    import json

    from hkrt.node.process import feed_heartbeat

    path = tmp_path / "agent.json"
    age = feed_heartbeat(path)

    def agent(pid: int, publishers: int, heard: float | None, beat_age: float = 0.0) -> None:
        path.write_text(json.dumps({"pid": pid, "heartbeat": time.time() - beat_age, "publishers": publishers,
                                    "last_message_age_s": heard}), encoding="utf-8")  # fmt: skip

    assert age(100) is None  # no agent yet
    agent(7, 0, None)
    assert age(100) is None  # the agent heard nobody
    agent(7, 1, 0.5)
    assert age(100) == 0.5  # it heard server 100
    agent(7, 1, 30.0)
    assert age(100) == 30.0  # and nothing since: stale
    assert age(101) is None  # a restarted server: the agent's silence is the old one's
    agent(7, 2, 0.2)
    assert age(101) == 0.2
    agent(8, 1, 0.3)
    assert age(101) == 0.3  # a restarted agent heard only the current server
    agent(8, 1, 0.3, beat_age=60)
    assert age(101) is None  # the agent's own beat is stale: nothing known of the feed
