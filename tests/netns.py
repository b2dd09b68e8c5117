"""Two "hosts" for the multi-host tests: Linux network namespaces joined by a veth pair.

::

    namespace <tag>-c ("collector host")          namespace <tag>-s ("strategy host")
    lo 127.0.0.1 (up)                             lo 127.0.0.1 (up)
    <tag>c 10.231.N.1/24  ──────── veth ────────  <tag>s 10.231.N.2/24

Each namespace has its own interfaces, routes and ports, and nothing else: no route to the machine's
own network, so a process started in one (``ip netns exec NAME ...``) reaches only the other one's
address (and its own loopback). The names carry a random tag (``hk`` + 6 hex digits), so tests running
side by side never meet; the subnet's third byte is random too, which costs nothing (no namespace sees
another's subnet) and makes a leftover from a killed run easy to tell apart.

:func:`two_hosts` builds them and ALWAYS takes them down: it ends the processes it started (SIGTERM, then
SIGKILL by pid), then any process still inside a namespace (every one there was started by the test),
then deletes the namespaces, which deletes the veth pair with them. It skips, saying why, when not run
as root or without iproute2's ``ip netns``; with ``HKRT_NETNS_REQUIRED=1`` (set by .ci/run) that is a
failure instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRED_ENV = "HKRT_NETNS_REQUIRED"


@dataclass
class Host:
    """One namespace: its name, its veth's name and address."""

    netns: str
    link: str
    ip: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def argv(self, *command: str) -> list[str]:
        """``command`` run inside this host (``ip netns exec`` execs it: the Popen's pid is the command's);
        as it is on :func:`this_host`."""
        return ["ip", "netns", "exec", self.netns, *command] if self.netns else list(command)

    def start(self, command: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
        """Start ``command`` here, its stdout and stderr to ``log``; ended by :func:`two_hosts` if still running."""
        with log.open("wb") as out:
            process = subprocess.Popen(self.argv(*command), stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=dict(env) if env is not None else None,
                                       cwd=cwd)  # fmt: skip
        self.processes.append(process)
        return process

    def run(self, command: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run ``command`` here to its end; its output as text."""
        return subprocess.run(self.argv(*command), capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL)  # fmt: skip

    def set_link(self, up: bool) -> None:
        """Bring this host's end of the veth up or down (down: the cable pulled, for both hosts)."""
        _ip("-n", self.netns, "link", "set", "dev", self.link, "up" if up else "down")


@dataclass
class HostPair:
    collector: Host
    strategy: Host


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip() or f'status {done.returncode}'}")


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"{reason} (and ${REQUIRED_ENV}=1: these tests must run here)")
    pytest.skip(reason)


@contextmanager
def two_hosts() -> Iterator[HostPair]:
    """A collector host and a strategy host on one veth pair (module docstring); always taken down."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        _unavailable("network namespaces need root (ip netns add)")
    if shutil.which("ip") is None:
        _unavailable("ip is not installed (Debian package iproute2)")
    tag = "hk" + secrets.token_hex(3)
    subnet = f"10.231.{secrets.randbelow(254) + 1}"
    pair = HostPair(Host(f"{tag}-c", f"{tag}c", f"{subnet}.1"), Host(f"{tag}-s", f"{tag}s", f"{subnet}.2"))
    made: list[str] = []
    try:
        try:
            for host in (pair.collector, pair.strategy):
                _ip("netns", "add", host.netns)
                made.append(host.netns)
            # the veth is made inside the collector's namespace, its peer inside the strategy's: never in ours
            _ip("-n", pair.collector.netns, "link", "add", pair.collector.link, "type", "veth", "peer", "name",
                pair.strategy.link, "netns", pair.strategy.netns)  # fmt: skip
            for host in (pair.collector, pair.strategy):
                _ip("-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", host.link)
                _ip("-n", host.netns, "link", "set", "dev", "lo", "up")
                host.set_link(True)
        except OSError as err:
            _unavailable(f"cannot build network namespaces here: {err}")
        _wait_for_carrier(pair)
        yield pair
    finally:
        for host in (pair.collector, pair.strategy):
            _end(host.processes)
        for name in made:
            _end_leftovers(name)
            with suppress(OSError):
                _ip("netns", "del", name)


@contextmanager
def this_host() -> Iterator[Host]:
    """This machine as a :class:`Host` (no namespace, loopback): the single-host run to compare with."""
    host = Host("", "lo", "127.0.0.1")
    try:
        yield host
    finally:
        _end(host.processes)


def _wait_for_carrier(pair: HostPair, timeout: float = 10.0) -> None:
    """Both ends of the veth report a carrier (a link brought up takes a moment to say so)."""
    deadline = time.monotonic() + timeout
    for host in (pair.collector, pair.strategy):
        while "LOWER_UP" not in host.run(["ip", "-o", "link", "show", "dev", host.link]).stdout:
            if time.monotonic() > deadline:
                raise AssertionError(f"the veth {host.link} in {host.netns} has no carrier after {timeout:.0f} s")
            time.sleep(0.05)


def _end(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _end_leftovers(netns: str) -> None:
    """Kill (by pid) what still runs inside ``netns``: only the test started processes there."""
    found = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30)
    for pid in (int(p) for p in found.stdout.split() if p.isdigit()):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
