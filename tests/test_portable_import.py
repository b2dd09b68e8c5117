"""hkrt works where the Unix-only modules do not exist (Windows, where QMT users run
``hkrt spot-server --source qmt``): simulated here by a fresh interpreter in which ``fcntl``,
``pwd``, ``grp``, ``termios`` and ``resource`` cannot be imported and ``os.getuid`` /
``os.geteuid`` are gone.  In it hkrt imports, aggregates in-process, writes and reads a store, and
carries a feed from a publisher to an agent over TCP.  docs/architecture.md, "Import cost and
portability", has the rules; the Windows-only branches (named pipe, LOCALAPPDATA) are checked here
by calling them with os.name set to "nt" for the one call."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import hkrt.store as store_module
from hkrt.feed.retransmit import retransmit_address
from hkrt.feed.transport import default_address, windows_pipe_name
from hkrt.store import KDataStore, default_store_root

ROOT = Path(__file__).resolve().parents[1]
UNIX_ONLY = ("fcntl", "pwd", "grp", "termios", "resource")

# Run first in the child: from here on the Unix-only modules are "not installed".
SIMULATED_WINDOWS = f"""
import os, sys

UNIX_ONLY = {UNIX_ONLY!r}
REFUSED = []


class UnixOnlyModules:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in UNIX_ONLY:
            REFUSED.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}} (simulated Windows)", name=name)
        return None


for _name in UNIX_ONLY:
    sys.modules.pop(_name, None)
sys.meta_path.insert(0, UnixOnlyModules())
del os.getuid, os.geteuid
"""
MARK = "RESULT:"


def run_as_windows(code: str) -> dict:
    """Run ``code`` after SIMULATED_WINDOWS in a new interpreter; it leaves its findings in
    ``result`` (a dict), returned here with the Unix-only modules it ended up holding."""
    tail = f"""
result["unix_modules_loaded"] = sorted(n for n in UNIX_ONLY if n in sys.modules)
result["refused"] = sorted(set(REFUSED))
print({MARK!r} + __import__("json").dumps(result, default=str))
"""
    script = SIMULATED_WINDOWS + "\nresult = {}\n" + textwrap.dedent(code) + tail
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = [x for x in done.stdout.splitlines() if x.startswith(MARK)][-1]
    result = json.loads(line[len(MARK) :])
    assert result["unix_modules_loaded"] == []
    return result


def test_the_simulation_hides_the_unix_only_modules() -> None:
    result = run_as_windows(
        """
        for name in UNIX_ONLY:
            try:
                __import__(name)
            except ModuleNotFoundError:
                result[name] = "missing"
        result["getuid"] = hasattr(os, "getuid") or hasattr(os, "geteuid")
        """
    )
    assert [result[name] for name in UNIX_ONLY] == ["missing"] * len(UNIX_ONLY)
    assert result["getuid"] is False and result["refused"] == sorted(UNIX_ONLY)


def test_hkrt_imports_every_name_and_the_cli_without_unix_modules() -> None:
    result = run_as_windows(
        """
        import hkrt
        result["names"] = sorted(name for name in hkrt.__all__ if getattr(hkrt, name) is not None)
        import hkrt.feed.server, hkrt.fetcher.qmt, hkrt.broker.qmt, hkrt.strategy.runner, hkrt.agent.history_sources
        from hkrt.cli import main
        try:
            main.main(["spot-server", "--help"], prog_name="hkrt")
        except SystemExit as exit_:
            result["help_exit"] = exit_.code
        """
    )
    import hkrt

    assert result["names"] == sorted(hkrt.__all__)
    assert result["help_exit"] == 0


def test_an_in_process_agent_aggregates_without_unix_modules() -> None:
    result = run_as_windows(
        """
        import datetime as dt
        import hkrt
        agent = hkrt.SpotAgent(["MIN", "DAY"])
        day = dt.date(2026, 11, 20)
        for hhmmss, close, volume in (("09:30:05", 10.0, 100), ("09:30:40", 10.2, 300), ("09:31:10", 10.1, 400)):
            when = dt.datetime.combine(day, dt.time.fromisoformat(hhmmss))
            agent.ingest(hkrt.Spot("SH600000", when, open=10.0, high=10.2, low=10.0, close=close,
                                   volume=volume, amount=volume * 10.0))
        frame = agent.kdata("SH600000", "MIN")
        result["labels"] = [f"{t:%H:%M}" for t in frame.index]
        result["rows"] = frame[["open", "high", "low", "close", "volume", "amount"]].values.tolist()
        result["accepted"] = agent.stats()["accepted"]
        """
    )
    assert result["labels"] == ["09:31", "09:32"]
    assert result["rows"] == [[10.0, 10.2, 10.0, 10.2, 300.0, 3000.0], [10.1, 10.1, 10.1, 10.1, 100.0, 1000.0]]
    assert result["accepted"] == 3


def test_a_store_writes_and_reads_without_unix_modules_and_says_its_lock_is_off(tmp_path: Path) -> None:
    result = run_as_windows(
        f"""
        import logging
        import pandas as pd
        import hkrt

        warnings = []
        handler = logging.Handler()
        handler.emit = lambda record: warnings.append(record.getMessage())
        logging.getLogger("hkrt.store").addHandler(handler)
        store = hkrt.KDataStore({str(tmp_path / "store")!r})
        bars = pd.DataFrame({{"symbol": ["SH600000", "SZ000001"],
                             "datetime": [pd.Timestamp("2026-11-20 09:31")] * 2,
                             "open": [10.0, 5.0], "high": [10.2, 5.1], "low": [10.0, 4.9], "close": [10.1, 5.0],
                             "volume": [300.0, 800.0], "amount": [3030.0, 4000.0]}})
        result["written"] = store.write(bars, "MIN")
        result["lock"] = store.writer_lock
        result["warnings"] = [w for w in warnings if "no file lock" in w]
        result["closes"] = hkrt.load_kdata(["SH600000", "SZ000001"], "MIN", store=store.root)["close"].tolist()
        """
    )
    assert result["written"] == 2 and result["closes"] == [10.1, 5.0]
    assert result["lock"] == "none" and len(result["warnings"]) == 1
    assert "fcntl" in result["refused"]  # the store asked for flock and was told there is none


def test_a_publisher_feeds_an_agent_over_tcp_without_unix_modules() -> None:
    result = run_as_windows(
        """
        import datetime as dt
        import socket
        import time
        import hkrt
        from hkrt.feed.transport import SpotPublisher

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
        day = dt.date(2026, 11, 20)
        agent = hkrt.SpotAgent(["MIN"]).start(address)
        try:
            with SpotPublisher(address, heartbeat_interval=0, retransmit=False) as publisher:  # (its port: not probed)
                assert publisher.wait_for_subscribers(1, timeout=20)
                for hhmmss, close, volume in (("09:30:05", 10.0, 100), ("09:31:10", 10.1, 400)):
                    when = dt.datetime.combine(day, dt.time.fromisoformat(hhmmss))
                    publisher.publish([hkrt.Spot("SH600000", when, open=10.0, high=10.2, low=10.0, close=close,
                                                 volume=volume, amount=volume * 10.0)])
                deadline = time.monotonic() + 20
                while agent.stats()["transport"]["messages"] < 2 and time.monotonic() < deadline:
                    time.sleep(0.02)
        finally:
            agent.stop()
        result["transport"] = {k: agent.stats()["transport"][k] for k in ("messages", "verified", "gaps")}
        result["volumes"] = agent.kdata("SH600000", "MIN")["volume"].tolist()
        """
    )
    assert result["transport"] == {"messages": 2, "verified": 2, "gaps": 0}
    assert result["volumes"] == [100.0, 300.0]


def test_the_store_lock_still_keeps_a_second_writer_out_where_flock_exists(tmp_path: Path) -> None:
    if os.name != "posix":  # pragma: no cover
        pytest.skip("flock is the POSIX lock; Windows takes msvcrt's")
    bars = pd.DataFrame(
        {"symbol": ["SH600000"], "datetime": [pd.Timestamp("2026-11-20 09:31")], "open": [10.0], "high": [10.2]}
        | {"low": [10.0], "close": [10.1], "volume": [300.0], "amount": [3030.0]}
    )
    first, second = KDataStore(tmp_path), KDataStore(tmp_path)
    assert first.write(bars, "MIN") == 1 and first.writer_lock == "flock"
    with pytest.raises(OSError, match="another process writes the store") as refused:
        second.write(bars, "MIN")
    assert refused.value.errno == errno.EBUSY and second.writer_lock == ""
    first.close()
    assert second.write(bars, "MIN") == 1 and second.writer_lock == "flock"
    second.close()


def test_windows_takes_a_per_user_pipe_name_for_the_default_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert windows_pipe_name("alice") == "hkrt-alice-spot"
    # names nng could mangle (its pipes are opened by ANSI name) or that look like a suffix: hashed
    hashed = {windows_pipe_name(user) for user in ("张三", "李四", "john.doe", "a b")}
    assert len(hashed) == 4 and all(n.isascii() and "." not in n and " " not in n for n in hashed)
    assert windows_pipe_name("张三") == windows_pipe_name("张三")  # the same user finds the same pipe
    assert retransmit_address("ipc://hkrt-alice-spot") == "ipc://hkrt-alice-spot-retransmit"
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "alice")
    with monkeypatch.context() as windows:
        windows.setattr(os, "name", "nt")
        address = default_address()
    assert address == "ipc://hkrt-alice-spot"  # a pipe name: no directory, no uid asked for


def test_windows_keeps_the_store_in_local_app_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("HKRT_STORE", "HKRT_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    with monkeypatch.context() as windows:
        windows.setattr(os, "name", "nt")  # only the choice of directory: pathlib cannot pretend
        data_home = store_module._data_home()
    assert data_home == str(tmp_path / "Local")
    assert store_module._data_home() == "~/.local/share"
    assert default_store_root() == Path.home() / ".local" / "share" / "hkrt" / "store"
