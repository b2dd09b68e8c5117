"""Ctrl-C (SIGINT) and SIGTERM end every long-running ``hkrt`` command with the shell's status (130, 143), no
traceback and one closing line (hkrt.cli.signals).  Each command runs as a real process on real sockets; the
signal is sent once its output says it is up (polled, with a deadline, no fixed sleep)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import hkrt

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals (Windows stops with Ctrl-Break)")

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


@dataclass
class Command:
    args: list[str]
    up: str  # printed (stdout or stderr) once the command is running
    last: str  # in its output after the stop


class SilentServer:
    """A local HTTP server that accepts and never answers: a notifier's send blocks on it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted = threading.Event()
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self._held.append(self.listener.accept()[0])
                self.accepted.set()
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self.listener.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def commands(tmp: Path) -> dict[str, Command]:
    address = f"ipc://{tmp / 'feed.ipc'}"
    state = tmp / "state"  # a strategy's state dir whose strategy never answers: hkrt halt waits
    for sub in ("commands", "acks"):
        (state / "control" / sub).mkdir(parents=True, mode=0o700)
    (state / "control").chmod(0o700)
    (state).chmod(0o700)
    status = {"name": "quiet", "pid": os.getpid(), "running": True, "heartbeat": time.time() + 3600}
    (state / "control" / "status.json").write_text(json.dumps(status))
    return {
        "spot-server": Command(
            ["spot-server", "--source", "sim", "--symbols", "5", "--speed", "1", "--address", address],
            "spot-server: source sim",
            "stopped",
        ),
        "agent": Command(["agent", "--address", address], "agent: subscribing", "stopped: "),
        "run": Command(
            [
                "run",
                str(ROOT / "examples" / "ma_cross.py"),
                "--address",
                address,
                "--state-dir",
                str(tmp / "run-state"),
            ],
            "subscribing to the spot feed",
            "P&L: ",
        ),
        "run-sim": Command(
            ["run", str(ROOT / "examples" / "ma_cross.py"), "--source", "sim", "--symbols", "10", "--speed", "1"],
            "strategy ma_cross.py",
            "P&L: ",
        ),
        "demo": Command(
            ["demo", "--days", "1", "--symbols", "10", "--speed", "1", "--out", str(tmp / "demo")],
            "run folder:",
            "summary",
        ),
        "trader": Command(
            [
                "trader",
                "--broker",
                "test",
                "--address",
                f"ipc://{tmp / 'trader.ipc'}",
                "--journal",
                str(tmp / "trader.journal"),
            ],
            "serving on",
            "",
        ),
        "notify-test": Command(["notify-test", "dingtalk"], "", "hkrt notify-test: stopped by"),
        "halt": Command(["halt", str(state), "--reason", "test", "--timeout", "600"], "", "hkrt halt: stopped by"),
    }


def _env(tmp: Path, silent: SilentServer) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(Path(hkrt.__file__).resolve().parents[1]),
        "HOME": str(tmp),  # the run's state, the trader's journal: not the user's
        "HKRT_HOME": str(tmp / "hkrt-home"),
        "HKRT_DINGTALK_ACCESS_TOKEN": "t0ken",
        "HKRT_DINGTALK_URL": f"http://127.0.0.1:{silent.port}/robot/send",
        "HKRT_DINGTALK_TIMEOUT": "600",
    }


def _up(name: str, command: Command, tmp: Path, output: Path, silent: SilentServer) -> bool:
    if name == "notify-test":  # its send blocks on the silent server once connected
        return silent.accepted.is_set()
    if name == "halt":  # it waits for the strategy's answer once its command file is written
        return any((tmp / "state" / "control" / "commands").glob("*.json"))
    return command.up in output.read_text(errors="replace")


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("name", ["spot-server", "agent", "run", "run-sim", "demo", "trader", "notify-test", "halt"])
def test_a_signal_ends_the_command_with_the_shells_status(
    name: str, sig: signal.Signals, tmp_path: Path, silent: SilentServer
) -> None:
    command = commands(tmp_path)[name]
    output = tmp_path / "output.txt"
    with output.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hkrt", *command.args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=tmp_path, env=_env(tmp_path, silent))  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _up(name, command, tmp_path, output, silent):
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, f"{name} did not come up: {output.read_text()}"
            time.sleep(0.05)
        proc.send_signal(sig)
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = output.read_text(errors="replace")
    assert status == 128 + sig, text
    assert "Traceback" not in text and "Aborted!" not in text, text
    assert command.last in text, text
    closing = [line for line in text.splitlines() if "stopped by" in line]
    assert len(closing) <= 1, text  # one closing line at most (the servers' is "stopped")
