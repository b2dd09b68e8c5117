"""A real, private PostgreSQL server for tests and benchmarks: its own data directory, port and socket.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user (``runuser``), in a
directory that user owns; as anyone else it runs as that user.  Trust authentication on 127.0.0.1 only,
``fsync=off`` (a test database need not survive a power loss).  Start to accepting connections takes about a
second.  :meth:`stop` and :meth:`start` again keep the data: tests use that to take the database away
mid-run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "find_pg_bindir"]

PG_PACKAGE = "postgresql-15"  # the Debian package that provides the binaries


def find_pg_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: ``$HKRT_PG_BINDIR``, Debian's /usr/lib/postgresql/<n>/bin (newest
    first), else the PATH.  None when PostgreSQL is not installed."""
    candidates = [os.environ.get("HKRT_PG_BINDIR", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for directory in candidates:
        if directory and (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One private server.  ``url`` connects as the ``postgres`` superuser to the ``postgres`` database."""

    def __init__(self, bindir: Path | None = None, *, port: int | None = None) -> None:
        found = bindir or find_pg_bindir()
        if found is None:
            raise FileNotFoundError(f"PostgreSQL's initdb/pg_ctl not found: install the {PG_PACKAGE} package")
        self.bindir = found
        self.port = port or _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hkrt-pg-"))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.log = self.dir / "server.log"
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    def init(self, template: Path | None = None) -> PostgresServer:
        """Make the data directory: ``initdb``, or a copy of ``template`` (the data directory of a stopped server
        made by ``init``), which is several times quicker when tests need many servers."""
        self.socket_dir.mkdir(parents=True)
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        if template is not None:  # cp -a keeps the owner and the 0700 mode PostgreSQL insists on
            subprocess.run(["cp", "-a", str(template), str(self.data)], check=True, timeout=120)
            return self
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "-N")
        return self

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self.running = True
        return self

    def stop(self) -> None:
        """Stop fast: open connections are cut, as when a database host goes away."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
            self.running = False

    def remove(self) -> None:
        """Stop and delete the data directory."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.init().start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
