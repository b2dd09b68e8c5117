"""``hkrt spot-server --redis`` and ``hkrt agent --redis --group``: a simulated day from one process to the
other through a real redis-server (tests/redis_server.py), and flags refused in one line that never
shows the URL's password."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redis_server import running_redis


def hkrt(*args: str, **popen) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.Popen([sys.executable, "-m", "hkrt", *args], text=True, env=env, **popen)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["agent", "--redis", "redis://u:Sekr3t-pw@host:99999", "--group", "g"], "--redis"),
        (["agent", "--redis", "http://:Sekr3t-pw@host", "--group", "g"], "--redis"),
        (["agent", "--redis", "redis://:Sekr3t-pw@host"], "--group"),
        (["agent", "--group", "g"], "--group"),
        (["agent", "--redis", "redis://:Sekr3t-pw@host", "--group", "g", "--address", "ipc:///x"], "--address"),
        (["spot-server", "--redis", "ftp://:Sekr3t-pw@host"], "--redis"),
        (["spot-server", "--redis", "redis://:Sekr3t-pw@host", "--maxlen", "0"], "--maxlen"),
        (["spot-server", "--maxlen", "10"], "--maxlen"),
        (["run", "examples/macd_cross.py", "--redis", "redis://:Sekr3t-pw@host"], "--group"),
        (
            ["run", "examples/macd_cross.py", "--source", "sim", "--redis", "redis://:Sekr3t-pw@host", "--group", "g"],
            "--redis",
        ),
        (
            ["run", "examples/macd_cross.py", "--redis", "redis://:Sekr3t-pw@host", "--group", "g", "--tcp", "9"],
            "--tcp",
        ),
    ],
)
def test_bad_redis_flags_are_one_line_naming_the_flag_without_the_password(args: list[str], flag: str) -> None:
    out, err = hkrt(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE).communicate(timeout=60)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and flag in errors[0], err
    assert "Traceback" not in out + err and "Sekr3t" not in out + err


def test_a_sim_day_from_spot_server_to_agent_through_redis(tmp_path: Path) -> None:
    with running_redis() as server:
        agent = hkrt("agent", "--redis", server.url, "--group", "desk", "--consumer", "host-b", "--stream", "day",
                     "--seconds", "12", stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        with server.client() as client:  # the agent has joined: its group exists
            deadline = time.monotonic() + 30
            while not (client.exists("day") and client.xinfo_groups("day")):
                assert time.monotonic() < deadline and agent.poll() is None, "the agent did not join"
                time.sleep(0.05)
        done = subprocess.run(
            [sys.executable, "-m", "hkrt", "spot-server", "--source", "sim", "--symbols", "3", "--date", "2026-11-20",
             "--speed", "100000", "--interval", "30", "--address", f"ipc://{tmp_path / 'feed.ipc'}",
             "--redis", server.url, "--stream", "day", "--maxlen", "5000"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"appending to Redis {server.url}, stream day" in done.stdout
        assert "dropped 0" not in done.stdout and ", 0 dropped, 0 errors" in done.stdout, done.stdout
        out, err = agent.communicate(timeout=60)
        with server.client() as client:
            pending = client.xpending("day", "desk")["pending"]
    assert agent.returncode == 0, out + err
    assert f"agent: subscribing to {server.url} stream day group desk consumer host-b" in out
    assert "market day 2026-11-20 closed" in out, out
    assert "2026-11-20 15:00 SH600000 MIN" in out, out
    assert "Traceback" not in out + err and pending == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock"),
        ("unix://:pw@/run/redis.sock?db=2", "unix://:***@/run/redis.sock?db=2"),
        ("redis://alice:p%40ss@10.0.0.5:6380/1", "redis://alice:***@10.0.0.5:6380/1"),
        ("rediss://cache.example?password=pw2&db=1", "rediss://cache.example?password=***&db=1"),
        ("redis://localhost", "redis://localhost"),
    ],
)
def test_a_redis_url_is_shown_without_its_password(url: str, shown: str) -> None:
    from hkrt.feed.redis_url import parse_redis_url

    parsed = parse_redis_url(url)
    assert parsed.display == shown
    if parsed.password:  # as given and URL-encoded, both hidden
        assert parsed.password not in parsed.redact(f"AUTH failed for {parsed.password} in {url}")
        assert "p%40ss" not in parsed.redact(url)
