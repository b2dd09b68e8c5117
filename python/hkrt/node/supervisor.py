"""The supervisor: runs :class:`~hkrt.node.process.ProcessSpec` children as real OS processes and keeps them up.

- **Start** in the given order (the spot server, the agent, the strategies), each its own process group
  (POSIX: a new session; Windows: ``CREATE_NEW_PROCESS_GROUP``), so a Ctrl-C in the terminal reaches the
  node alone and the node stops the children in its own order.
- **Watch** every ``poll`` seconds: an exit is seen by ``Popen.poll``; a child whose heartbeat is stale is
  hung: killed (it cannot be asked: it does not answer) and handled as a failed exit.
- **Restart** by the spec's :class:`~hkrt.node.process.RestartPolicy`: exponential backoff, and a give-up
  after ``max_restarts`` inside the window (ERROR log, ``gave_up``; a critical child's give-up stops the node
  with status 1).  One child's end never touches another: a crashing strategy leaves the feed and the agent
  running.
- **Stop** (Ctrl-C, SIGTERM, :meth:`request_stop`, or the feed done): in reverse start order (strategies,
  then the agent, then the spot server), each asked to stop (POSIX SIGTERM; Windows CTRL_BREAK_EVENT, which
  :mod:`hkrt.node.child` turns into the command's own Ctrl-C stop) and given its ``stop_timeout``, then killed.
- **Count**: :attr:`Supervisor.restarts` (child name -> restarts, a Counter the metrics read), :meth:`stats`,
  and ``node.json`` in the run dir rewritten every second (what ``cat``, a test or a dashboard reads).
  :meth:`subscribe` registers ``func(kind, name, info)`` for "started", "exited", "hung", "restarting",
  "gave_up" (the alert notifiers).
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hkrt.node.child_log import ChildLog, shown_command
from hkrt.node.process import Launch, ProcessSpec

log = logging.getLogger("hkrt.node")

STATUS_FILE = "node.json"
EXIT_OK, EXIT_FAILED = 0, 1
RESTART_STOP_S = 2.0  # seconds a child restarted on request (restart()) gets to stop before it is killed
EventListener = Callable[[str, str, dict[str, Any]], None]


class _Child:
    """The supervisor's state of one spec: its current process and its history."""

    def __init__(self, spec: ProcessSpec, child_log: ChildLog) -> None:
        self.spec = spec
        self.log = child_log
        self.proc: subprocess.Popen[bytes] | None = None
        self.state = "waiting"  # waiting (to start at start_at), running, done, exited, failed, stopped
        self.start_at = 0.0
        self.spawned_at = 0.0
        self.starts = 0
        self.restarts = 0
        self.runs = 0  # successful ends
        self.hung_kills = 0
        self.last_exit: int | None = None
        self.recent: collections.deque[float] = collections.deque()  # monotonic times of restarts in the window
        self.restarting = False  # the next start is a restart (not the first, nor the next run)
        self.restart_asked = ""  # why restart() asked for a restart, until the loop does it
        self.pump: threading.Thread | None = None
        self.beat_age: float | None = None  # seconds since its last heartbeat, at the last look (None: none yet)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.state == "running" else None


class Supervisor:
    """Runs ``specs`` under ``run_dir`` (``logs/<name>.log`` per child, ``node.json``).

    ``finish_grace``: seconds the node waits, once a ``completes_node`` child is done, before it stops the
    others (their last bars and reports).  ``poll``: seconds between looks at the children.
    """

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        run_dir: str | os.PathLike[str],
        *,
        finish_grace: float = 3.0,
        poll: float = 0.2,
        log_max_bytes: int = 10 << 20,
        log_backups: int = 3,
    ) -> None:
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two processes named {dupes[0]!r}: each child needs its own name")
        self.run_dir = Path(run_dir).expanduser()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.children = [
            _Child(s, ChildLog(self.run_dir / "logs" / f"{s.name}.log", max_bytes=log_max_bytes, backups=log_backups))
            for s in specs
        ]
        self.restarts: collections.Counter[str] = collections.Counter({s.name: 0 for s in specs})
        self.finish_grace = finish_grace
        self.poll = poll
        self.stop_signal: int | None = None  # the signal a stop was asked with
        self.outcome = ""  # why the node ended: "completed", "signal", "failed: ...", "stopped"
        self._stop = threading.Event()
        self._listeners: list[EventListener] = []
        self._next_status = 0.0
        self._started = time.time()
        self.status_extra: dict[str, Any] = {}  # more keys of node.json (the metrics endpoints)

    # ------------------------------------------------------------------ API
    def subscribe(self, func: EventListener) -> EventListener:
        """Call ``func(kind, name, info)`` on each child event (from the supervisor's thread; must be quick)."""
        self._listeners.append(func)
        return func

    def request_stop(self, signum: int | None = None) -> None:
        """Ask the node to stop (safe from a signal handler or another thread)."""
        if self.stop_signal is None:
            self.stop_signal = signum
        self._stop.set()

    def restart(self, name: str, reason: str) -> None:
        """Ask for child ``name`` to be stopped (as at the node's stop) and started again at once, as a fresh
        start (counted in ``restarts``).  Safe from a listener or another thread: the loop does it."""
        for c in self.children:
            if c.spec.name == name:
                c.restart_asked = reason or "asked"
                return
        raise KeyError(f"no child named {name!r}")

    def stats(self) -> dict[str, Any]:
        """Per child: state, pid, starts, restarts, runs, hung_kills, last_exit, gave_up, heartbeat age, log file."""
        return {
            c.spec.name: {
                "state": c.state,
                "pid": c.pid,
                "starts": c.starts,
                "restarts": c.restarts,
                "runs": c.runs,
                "hung_kills": c.hung_kills,
                "last_exit": c.last_exit,
                "gave_up": c.state == "failed",
                "critical": c.spec.critical,
                "heartbeat_age": c.beat_age if c.state == "running" else None,
                "log": str(c.log.path),
            }
            for c in self.children
        }

    def run(self) -> int:
        """Start the children and supervise them until the node ends; return its exit status: 0 when a
        finite feed completed or a stop was asked without a signal, 128 + the signal for a signal's stop,
        1 when a critical child was given up on.  The children are all stopped when it returns."""
        status = EXIT_OK
        try:
            status = self._loop()
        finally:
            self._stop_all()
            self._write_status(force=True)
            for c in self.children:
                if c.pump is not None:
                    c.pump.join(2.0)
                c.log.close()
        return status

    # --------------------------------------------------------------- the loop
    def _loop(self) -> int:
        finishing_at: float | None = None
        while True:
            if self._stop.is_set():
                self.outcome = "signal" if self.stop_signal is not None else "stopped"
                return 128 + self.stop_signal if self.stop_signal is not None else EXIT_OK
            now = time.monotonic()
            for c in self.children:
                if c.restart_asked and c.state == "running":
                    self._restart_now(c)
                c.restart_asked = ""
                if c.state == "running":
                    self._check(c, now)
                if c.state == "waiting" and now >= c.start_at and not self._stop.is_set():
                    self._spawn(c)
            failed = [c for c in self.children if c.state == "failed" and c.spec.critical]
            if failed:
                self.outcome = f"failed: gave up on {failed[0].spec.name}"
                log.error("node stopping: gave up on %s", failed[0].spec.name, extra={"child": failed[0].spec.name})
                return EXIT_FAILED
            if finishing_at is None and any(c.state == "done" and c.spec.completes_node for c in self.children):
                finishing_at = now + self.finish_grace
                log.info("the feed is done: stopping the node in %.1f s", self.finish_grace)
            if finishing_at is not None and now >= finishing_at:
                self.outcome = "completed"
                return EXIT_OK
            self._write_status()
            self._stop.wait(self.poll)

    def _spawn(self, c: _Child) -> None:
        spec = c.spec
        gone = frozenset(o.spec.name for o in self.children if o.state in ("failed", "exited", "done"))
        argv = spec.command(Launch(c.runs, c.starts, c.restarts, fresh=not c.restarting, gone=gone))
        env = {**os.environ, **(spec.env or {})}
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd,
                env=env,
                **_own_group(),
            )
        except OSError as err:  # no such program, no permission: an exit like any other
            c.log.note(f"could not start {argv[0]}: {err}")
            log.error("%s: could not start: %s", spec.name, err, extra={"child": spec.name})
            c.starts += 1
            self._ended(c, 127, hung=False)
            return
        c.proc, c.state, c.spawned_at, c.beat_age = proc, "running", time.monotonic(), None
        c.starts += 1
        c.log.note(f"started pid {proc.pid} (start {c.starts}): {shown_command(argv)}")
        assert proc.stdout is not None
        c.pump = c.log.pump(proc.stdout, spec.name)
        log.info("%s started, pid %d", spec.name, proc.pid, extra={"child": spec.name, "pid": proc.pid})
        self._emit("started", spec.name, {"pid": proc.pid, "start": c.starts})

    def _check(self, c: _Child, now: float) -> None:
        assert c.proc is not None
        status = c.proc.poll()
        if status is not None:
            self._ended(c, status, hung=False)
            return
        beat = c.spec.heartbeat
        if beat is None:
            return
        alive_for = now - c.spawned_at
        age = beat.age(c.proc.pid)
        c.beat_age = min(age, alive_for) if age is not None else None
        if age is None:
            if beat.startup is None or alive_for <= beat.startup:
                return
            why = f"no heartbeat {alive_for:.0f} s after its start"
        else:
            age = min(age, alive_for)
            if age <= beat.timeout:
                return
            why = f"heartbeat {age:.0f} s old (timeout {beat.timeout:g} s)"
        c.hung_kills += 1
        log.warning("%s is hung (%s): killing pid %d", c.spec.name, why, c.proc.pid,
                    extra={"child": c.spec.name, "pid": c.proc.pid, "hung_kills": c.hung_kills})  # fmt: skip
        c.log.note(f"hung ({why}): killed")
        self._emit("hung", c.spec.name, {"pid": c.proc.pid, "why": why})
        c.proc.kill()  # a hung process would not act on a polite request
        try:
            status = c.proc.wait(10.0)
        except subprocess.TimeoutExpired:
            status = -9
        self._ended(c, status, hung=True)

    def _ended(self, c: _Child, status: int, *, hung: bool) -> None:
        spec, now = c.spec, time.monotonic()
        c.last_exit, c.proc = status, None
        if not hung:
            c.log.note(f"exited with status {status}")
        self._emit("exited", spec.name, {"status": status, "hung": hung})
        if status == 0 and not hung:
            c.runs += 1
            if c.runs < spec.runs:  # the next run (a sim's next day): not a restart
                c.state, c.start_at, c.restarting = "waiting", now, False
                log.info("%s: run %d of %d done", spec.name, c.runs, spec.runs, extra={"child": spec.name})
                return
            if spec.restart.when != "always":
                c.state = "done"
                log.info("%s done", spec.name, extra={"child": spec.name})
                return
        if not spec.restart.restarts_after(status, hung=hung):
            c.state = "exited"
            level = logging.ERROR if spec.critical else logging.WARNING
            log.log(level, "%s exited with status %s: not restarted (restart %s)", spec.name, status,
                    spec.restart.when, extra={"child": spec.name, "status": status})  # fmt: skip
            if spec.critical:
                c.state = "failed"
            return
        while c.recent and now - c.recent[0] > spec.restart.window:
            c.recent.popleft()
        if len(c.recent) >= spec.restart.max_restarts:
            c.state = "failed"
            log.error(
                "%s: gave up after %d restarts in %.0f s (last status %s)%s", spec.name, len(c.recent),
                spec.restart.window, status, ": the node stops" if spec.critical else ": the node goes on without it",
                extra={"child": spec.name, "restarts": c.restarts, "status": status},
            )  # fmt: skip
            c.log.note(f"gave up after {len(c.recent)} restarts in {spec.restart.window:g} s")
            self._emit("gave_up", spec.name, {"status": status, "restarts": c.restarts})
            return
        delay = spec.restart.delay(len(c.recent))
        c.recent.append(now)
        c.restarts += 1
        self.restarts[spec.name] += 1
        c.state, c.start_at, c.restarting = "waiting", now + delay, True
        what = "hung" if hung else f"exited with status {status}"
        log.warning("%s %s: restart %d in %.1f s", spec.name, what, c.restarts, delay,
                    extra={"child": spec.name, "status": status, "restarts": c.restarts})  # fmt: skip
        self._emit("restarting", spec.name, {"status": status, "hung": hung, "delay": delay, "restarts": c.restarts})

    def _restart_now(self, c: _Child) -> None:
        reason = c.restart_asked
        log.warning("%s: restarting (%s)", c.spec.name, reason, extra={"child": c.spec.name})
        self._stop_child(c, timeout=min(c.spec.stop_timeout, RESTART_STOP_S))
        c.restarts += 1
        self.restarts[c.spec.name] += 1
        c.state, c.start_at, c.restarting = "waiting", time.monotonic(), False
        self._emit("restarting", c.spec.name, {"status": c.last_exit, "hung": False, "delay": 0.0,
                                               "restarts": c.restarts, "reason": reason})  # fmt: skip

    # --------------------------------------------------------------- stopping
    def _stop_all(self) -> None:
        """Stop the children in reverse start order, each within its stop_timeout, then killed."""
        for c in reversed(self.children):
            if c.state == "waiting":
                c.state = "stopped"
            if c.state == "running" and c.proc is not None:
                self._stop_child(c)

    def _stop_child(self, c: _Child, timeout: float | None = None) -> None:
        """Ask the child to stop, give it ``timeout`` (its stop_timeout), then kill it."""
        assert c.proc is not None
        proc, spec = c.proc, c.spec
        timeout = spec.stop_timeout if timeout is None else timeout
        c.log.note(f"stopping pid {proc.pid}")
        _ask_to_stop(proc)
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %g s: killed", spec.name, timeout,
                        extra={"child": spec.name, "pid": proc.pid})  # fmt: skip
            c.log.note(f"did not stop within {timeout:g} s: killed")
            proc.kill()
            status = proc.wait()
        c.last_exit, c.proc, c.state = status, None, "stopped"
        c.log.note(f"stopped, status {status}")
        log.info("%s stopped (status %s)", spec.name, status, extra={"child": spec.name, "status": status})

    # ------------------------------------------------------------------ misc
    def _emit(self, kind: str, name: str, info: dict[str, Any]) -> None:
        for func in self._listeners:
            try:
                func(kind, name, info)
            except Exception:  # a listener's bug must not stop the supervision
                log.exception("node event listener failed", extra={"event": kind, "child": name})

    def _write_status(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_status:
            return
        self._next_status = now + 1.0
        from hkrt.strategy.control import write_json_atomic

        try:
            write_json_atomic(
                self.run_dir / STATUS_FILE,
                {"pid": os.getpid(), "heartbeat": time.time(), "started": self._started, "outcome": self.outcome,
                 "restarts": dict(self.restarts), "processes": self.stats(), **self.status_extra},
            )  # fmt: skip
        except OSError as err:
            log.warning("node status %s not written: %s", self.run_dir / STATUS_FILE, err)


def _own_group() -> dict[str, Any]:
    """Popen options that put the child in a process group of its own (a terminal's Ctrl-C reaches only
    the node, which stops the children in order)."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    return {"start_new_session": True}


def _ask_to_stop(proc: subprocess.Popen[bytes]) -> None:
    """POSIX: SIGTERM.  Windows: CTRL_BREAK_EVENT to the child's group (hkrt.node.child makes it a Ctrl-C
    stop); TerminateProcess would give it no time to flush its store."""
    try:
        if os.name == "nt":
            proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            proc.terminate()
    except OSError:
        pass  # already gone
