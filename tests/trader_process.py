"""``hkrt trader`` as a real child process for the tests: started, waited for, killed, restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path


class TraderProcess:
    """``python -m hkrt trader --broker BROKER --address ADDRESS --journal JOURNAL --guard none [extra]``; its
    stderr lines are collected in ``lines``."""

    def __init__(self, folder: Path, broker: str = "paper", *extra: str, env: Mapping[str, str] | None = None,
                 address: str | None = None) -> None:  # fmt: skip
        self.address = address or f"ipc://{folder / 'trader.ipc'}"
        self.args = [sys.executable, "-m", "hkrt", "trader", "--broker", broker, "--address", self.address,
                     "--journal", str(folder / "trader.journal"), "--guard", "none", *extra]  # fmt: skip
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._serving = threading.Event()

    def start(self, timeout: float = 30.0) -> TraderProcess:
        self._serving.clear()
        self.proc = subprocess.Popen(self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                     env=self.env)  # fmt: skip
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if not self._serving.wait(timeout):
            self.stop()
            raise AssertionError("hkrt trader did not start:\n" + "".join(self.lines))
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)
            if "serving on" in line:
                self._serving.set()

    def kill(self) -> None:
        """SIGKILL: the trader dies mid-whatever, as a crash would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def __enter__(self) -> TraderProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
