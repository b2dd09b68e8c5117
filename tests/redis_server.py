"""A real redis-server for the tests: started on a private unix socket (nothing listens on TCP), no
persistence, stopped by its PID.  ``stop()`` then ``start()`` restarts it on the same socket, as an
operator's restart would (without persistence the restart loses every stream).

Tests skip, naming the Debian package, where redis-server or the redis client is missing
(``.ci/run`` installs both)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SKIP_NO_SERVER = "redis-server is not installed (Debian package redis-server)"


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        assert self.process is None, "already running"
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            assert self.process.poll() is None, (self.directory / "redis.log").read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "redis-server did not start within 10 s"
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop it (SIGKILL: as a crash; nothing is saved either way)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        self.socket.unlink(missing_ok=True)

    def client(self):  # a redis-py client, for the tests' own checks
        import redis

        return redis.Redis(unix_socket_path=str(self.socket))

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with self.client() as client:
                return bool(client.ping())
        except Exception:
            return False


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started server in a short private directory (a unix socket path must stay under ~100 bytes)."""
    if shutil.which("redis-server") is None:
        pytest.skip(SKIP_NO_SERVER)
    pytest.importorskip("redis", reason="the redis client is not installed (pip install 'hkrt[redis]')")
    directory = Path(tempfile.mkdtemp(prefix="hkrt-redis-"))
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
