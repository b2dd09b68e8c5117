"""The control channel of a running strategy: ``hkrt halt``, ``hkrt resume`` and ``hkrt status``.

Files in ``<state dir>/control/`` (docs/kill-switch.md), made by the strategy when it runs with a
state dir (``hkrt run`` gives a live run ``~/.hkrt/state/<name>``):

- ``status.json``: what the strategy says about itself (trading state, its reason and since when,
  open orders, the last command and what it did, pid, the dead-man switch), rewritten every
  ``HEARTBEAT_S`` seconds by the run loop: its ``heartbeat`` tells a live strategy from a stale file.
- ``commands/``: a command is one JSON file (``{"id", "command", "reason", "sent"}``) written to a
  temporary name and renamed into place, so the strategy never reads half of one.  The run loop
  takes at most ``MAX_PER_POLL`` per look (every 50 ms), oldest first, and removes each it ran.
- ``acks/<id>.json``: the answer to one command (what it did, the state after), which the sender
  waits for and removes.  At most ``MAX_ACKS`` are kept (an answer nobody came for is dropped, oldest
  first).
- ``rejected/``: command files the strategy could not read (not JSON, no id, a foreign owner, too
  big) or that were older than ``COMMAND_TTL_S`` when seen: moved here, never deleted, with a
  WARNING and a count in ``stats``.

Why files and not a socket: the same on Windows (QMT users) and POSIX; no listener of any kind (no
network port, no named pipe whose default ACL another session might open); a command from another
user is impossible because the directory is the owner's alone (0700, checked at start: a directory
group- or world-writable, or owned by someone else, is refused in one line, and a command file not
owned by this user is moved aside; on Windows the directory sits in the user's profile, whose ACL is
the user's); ``hkrt status`` still reads the last status of a strategy that died; and a strategy
whose callback thread is stuck still answers, because the run loop (not the callback thread) reads
the commands.

``halt`` acts from the run loop's thread at once (hkrt.strategy.kill_switch.stop_trading: the trading
state is set first, then each working order's cancel goes to its broker, never waiting on a full
callback queue for more than ``ACTION_WAIT_S``), and again on the callback thread when it next runs
(a sweep for an order that was on its way out during the halt).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.control")

CONTROL_DIR = "control"
STATUS_FILE = "status.json"
COMMANDS = ("halt", "resume", "status")
MAX_PER_POLL = 8  # commands run per look of the run loop (the rest wait for the next look, 50 ms on)
MAX_ACKS = 100  # answers kept for their senders
MAX_COMMAND_BYTES = 64 * 1024  # a bigger file is not a command
MAX_REASON = 500  # characters of a reason
COMMAND_TTL_S = 60.0  # a command older than this when the strategy sees it is not run (moved aside)
HEARTBEAT_S = 1.0  # status.json rewritten at least this often while the strategy runs
STALE_AFTER_S = 5.0  # a status whose heartbeat is older: the strategy is not running (or its run loop is stuck)
ACTION_WAIT_S = 5.0  # the run loop waits this long for a halt's cancels before answering "still cancelling"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ControlError(Exception):
    """A control command could not be given or answered (one line, for the CLI)."""


# ------------------------------------------------------------------ files
def control_dir(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir).expanduser() / CONTROL_DIR


def secure_dir(path: Path) -> Path:
    """Make ``path`` (and parents) and keep it the owner's alone: 0700 where the OS has modes.  A
    directory owned by another user, or one this user cannot make private, raises PermissionError."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        st = path.stat()
        if st.st_uid != os.geteuid():
            raise PermissionError(f"{path} belongs to another user (uid {st.st_uid}): not a control directory")
        if st.st_mode & 0o077:
            os.chmod(path, 0o700)
            if path.stat().st_mode & 0o077:
                raise PermissionError(f"{path} cannot be made private to its owner (mode {st.st_mode & 0o777:o})")
    return path


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to a temporary file next to ``path`` (owner-only) and rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(data, ensure_ascii=False, default=str, indent=1).encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat() if isinstance(value, dt.date) else None


# ------------------------------------------------------- the strategy's side
class ControlChannel:
    """The running strategy's end (``Strategy.run`` opens it when the strategy has a state dir and
    calls :meth:`poll` from its run loop)."""

    def __init__(
        self,
        strategy: Strategy,
        state_dir: str | os.PathLike[str],
        *,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.strategy = strategy
        self.dir = control_dir(state_dir)
        self.commands_dir = self.dir / "commands"
        self.acks_dir = self.dir / "acks"
        self.rejected_dir = self.dir / "rejected"
        self.status_path = self.dir / STATUS_FILE
        self.stats: collections.Counter[str] = collections.Counter()
        self.last_command: dict[str, Any] | None = None
        self._wall = wall
        self._clock = clock
        self._started = wall()
        self._next_status = 0.0
        self._acks: collections.deque[Path] = collections.deque()
        self._last_fingerprint: tuple[str, str, int | None] = ("", "", None)
        self.running = False

    def open(self) -> ControlChannel:
        """Make the directories (owner-only) and write the first status.  A directory another running
        strategy answers in (a fresh heartbeat, another pid) is refused: its commands are not ours."""
        for d in (self.dir, self.commands_dir, self.acks_dir, self.rejected_dir):
            secure_dir(d)
        self._refuse_if_shared()
        self.running = True
        self._started = self._wall()
        self.write_status()
        log.info(
            "control channel at %s (hkrt halt / resume / status)",
            self.dir,
            extra={"strategy": self.strategy.name, "control_dir": str(self.dir)},
        )
        return self

    def _other_running(self) -> dict[str, Any] | None:
        try:
            other = read_status(self.dir.parent)
        except ControlError:
            return None
        return other if not stale(other) and other.get("pid") != os.getpid() else None

    def _refuse_if_shared(self) -> None:
        """A fresh status of another pid: a strategy still running here (its heartbeat moves: refused), or
        one that just died (a restart within STALE_AFTER_S: its heartbeat stops, and this run goes on)."""
        other = self._other_running()
        if other is None:
            return
        first, deadline = other.get("heartbeat"), time.monotonic() + STALE_AFTER_S + 1.0
        while time.monotonic() < deadline:
            time.sleep(0.2)
            other = self._other_running()
            if other is None:
                return
            if other.get("heartbeat") != first:
                raise FileExistsError(
                    f"{self.dir} is the control directory of another running strategy "
                    f"({other.get('name')}, pid {other.get('pid')}): give this run its own state dir"
                )

    def close(self) -> None:
        """The run ended: a last status saying so (``running: false``)."""
        if not self.running:
            return
        self.running = False
        try:
            self.write_status()
        except OSError as err:
            log.warning("control channel: the last status could not be written: %s", err)

    def poll(self) -> int:
        """Run the waiting commands (at most MAX_PER_POLL) and refresh the status when due; never raises.
        Returns the commands run."""
        ran = 0
        try:
            for path in self._waiting()[:MAX_PER_POLL]:
                if self._take(path):
                    ran += 1
        except Exception:  # the channel must never stop the strategy
            self.stats["poll_errors"] += 1
            log.exception("control channel: reading commands failed", extra={"control_dir": str(self.dir)})
        if ran or self._clock() >= self._next_status or self._fingerprint() != self._last_fingerprint:
            try:
                self.write_status()
            except Exception:
                self.stats["status_errors"] += 1
                log.exception("control channel: status.json could not be written")
        return ran

    def _waiting(self) -> list[Path]:
        try:
            names = sorted(n for n in os.listdir(self.commands_dir) if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return []
        return [self.commands_dir / n for n in names]

    def _take(self, path: Path) -> bool:
        """Read one command file; run it, or move it aside.  True when it was run."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False  # its sender took it back (timed out)
        problem = ""
        command: dict[str, Any] = {}
        if not _is_regular(st.st_mode):
            problem = "not a regular file"
        elif os.name == "posix" and st.st_uid != os.geteuid():
            problem = f"owned by another user (uid {st.st_uid})"
        elif st.st_size > MAX_COMMAND_BYTES:
            problem = f"{st.st_size} bytes: too big for a command"
        else:
            try:
                command = json.loads(path.read_bytes().decode("utf-8"))
            except (ValueError, OSError) as err:
                problem = f"not readable as JSON ({type(err).__name__}: {err})"
            else:
                problem = _malformed(command)
        if not problem:
            sent = command.get("sent")
            if isinstance(sent, (int, float)) and self._wall() - sent > COMMAND_TTL_S:
                problem = (
                    f"stale: sent {self._wall() - sent:.0f} s ago (a command older than {COMMAND_TTL_S:g} s is not run)"
                )
                self.stats["stale"] += 1
        if problem:
            self._set_aside(path, problem)
            return False
        try:
            path.unlink()  # taken: read whole, about to run
        except FileNotFoundError:
            return False  # its sender took it back meanwhile
        self.stats["commands"] += 1
        self.stats[f"command_{command['command']}"] += 1
        answer = self.run_command(command)
        self._answer(command["id"], answer)
        return True

    def _set_aside(self, path: Path, problem: str) -> None:
        self.stats["malformed"] += 1
        target = self.rejected_dir / path.name
        if target.exists():
            target = self.rejected_dir / f"{path.stem}.{secrets.token_hex(4)}{path.suffix}"
        try:
            os.replace(path, target)
        except OSError as err:  # it stays where it is; counted, and said (rate-limited by the count)
            self.stats["set_aside_failures"] += 1
            log.warning("control channel: a bad command file %s could not be moved aside: %s", path, err)
            return
        log.warning(
            "control channel: command file %s set aside in %s: %s",
            path.name,
            self.rejected_dir,
            problem,
            extra={"file": str(target), "problem": problem, "malformed": self.stats["malformed"]},
        )

    def run_command(self, command: dict[str, Any]) -> dict[str, Any]:
        """Do one (valid) command and say what it did."""
        strategy = self.strategy
        name, reason = command["command"], str(command.get("reason") or "").strip()
        answer: dict[str, Any] = {"id": command["id"], "command": name, "ok": True, "error": ""}
        if name == "halt":
            answer.update(self._halt(reason))
        elif name == "resume":
            if not reason:
                answer.update(ok=False, error="resume needs a reason")
            else:
                previous = strategy.trading_state
                answer["changed"] = strategy.resume(reason)
                answer["previous"] = previous
                log.warning(
                    "control channel: resumed by command: %s",
                    reason,
                    extra={"strategy": strategy.name, "reason": reason, "previous": previous},
                )
        answer.update(
            state=strategy.trading_state,
            reason=strategy.risk.reason,
            open_orders=self._open_orders(),
            done=self._wall(),
        )
        self.last_command = {k: answer.get(k) for k in ("id", "command", "ok", "error", "cancelled", "state", "done")}
        self.last_command["reason"] = reason
        return answer

    def _halt(self, reason: str) -> dict[str, Any]:
        if not reason:
            return {"ok": False, "error": "halt needs a reason"}
        from hkrt.strategy.kill_switch import stop_trading

        strategy = self.strategy
        outcome = stop_trading(strategy, reason, wait=ACTION_WAIT_S)
        if outcome.pending:
            self.stats["cancels_pending"] += len(outcome.pending)

        def sweep() -> None:  # an order that was on its way out during the halt: cancelled when it is out
            strategy.order_manager.cancel_all(f"cancelled by the kill switch: {reason}")

        # posted from a thread of its own: the post waits for room in a full callback queue, the run loop must not
        threading.Thread(target=strategy._post, args=(sweep,), name="hkrt-control-sweep", daemon=True).start()
        answer: dict[str, Any] = {
            "cancelled": len(outcome.asked),
            "cancelled_ids": [o.client_order_id for o in outcome.asked][:50],
            "not_cancelled": len(outcome.refused),
            "pending": len(outcome.pending),
        }
        if not outcome.halted:
            answer.update(ok=False, error=f"the trading state did not move to HALTED within {ACTION_WAIT_S:g} s")
        elif outcome.pending:
            answer["error"] = (
                f"{len(outcome.pending)} cancels still on their way after {ACTION_WAIT_S:g} s "
                "(a broker slow to answer, or the callback queue full)"
            )
        return answer

    def _open_orders(self) -> int | None:
        try:
            return len(self.strategy.open_orders())
        except Exception:
            return None

    def _answer(self, command_id: str, answer: dict[str, Any]) -> None:
        path = self.acks_dir / f"{command_id}.json"
        try:
            write_json_atomic(path, answer)
        except OSError as err:
            self.stats["ack_errors"] += 1
            log.warning("control channel: the answer to %s could not be written: %s", command_id, err)
            return
        self._acks.append(path)
        while len(self._acks) > MAX_ACKS:  # answers nobody came for (their senders timed out)
            old = self._acks.popleft()
            try:
                old.unlink()
                self.stats["acks_dropped"] += 1
            except FileNotFoundError:
                pass

    def status(self) -> dict[str, Any]:
        strategy = self.strategy
        risk = strategy.risk
        deadman = getattr(strategy, "deadman", None)
        now = self._wall()
        return {
            "name": strategy.name,
            "pid": os.getpid(),
            "running": self.running,
            "live": strategy.live,
            "state": strategy.trading_state,
            "reason": risk.reason,
            "since": _iso(risk.trading.since),
            "open_orders": self._open_orders(),
            "market_time": _iso(strategy.now),
            "heartbeat": now,
            "heartbeat_at": dt.datetime.fromtimestamp(now).isoformat(timespec="seconds"),
            "started": self._started,
            "last_command": self.last_command,
            "control": dict(self.stats),
            "deadman": deadman.status() if deadman is not None else None,
            "risk": dict(risk.stats),
        }

    def _fingerprint(self) -> tuple[str, str, int | None]:
        """What ``hkrt status`` shows that may change between heartbeats: a change is written at once."""
        return self.strategy.trading_state, self.strategy.risk.reason, self._open_orders()

    def write_status(self) -> None:
        self._next_status = self._clock() + HEARTBEAT_S
        self._last_fingerprint = self._fingerprint()
        write_json_atomic(self.status_path, self.status())


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _malformed(command: Any) -> str:
    """ "" for a command the channel can run, else what is wrong with it."""
    if not isinstance(command, dict):
        return f"a JSON {type(command).__name__}, not an object"
    cid = command.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        return "no valid id (1-64 letters, digits, - or _)"
    name = command.get("command")
    if name not in COMMANDS:
        return f"command {name!r} is not one of {', '.join(COMMANDS)}"
    reason = command.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        return f"reason must be text of at most {MAX_REASON} characters"
    return ""


# ---------------------------------------------------------- the sender's side
def resolve_state_dir(name_or_dir: str) -> Path:
    """A strategy's name (``~/.hkrt/state/<name>``, as ``hkrt run`` makes it) or its state dir."""
    text = name_or_dir.strip()
    if not text:
        raise ControlError("name a strategy (its name or its state dir)")
    path = Path(text).expanduser()
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    if path.is_dir() or any(s in text for s in seps) or text.startswith(("~", ".")):
        return path
    return Path.home() / ".hkrt" / "state" / text


def read_status(state_dir: Path) -> dict[str, Any]:
    """The strategy's status.json, with ``heartbeat_age_s`` added; ControlError when there is none."""
    path = control_dir(state_dir) / STATUS_FILE
    try:
        status = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ControlError(_not_found(state_dir)) from None
    except (ValueError, OSError) as err:
        raise ControlError(f"{path} is not a strategy status ({type(err).__name__}: {err})") from None
    if not isinstance(status, dict):
        raise ControlError(f"{path} is not a strategy status (a JSON {type(status).__name__})")
    beat = status.get("heartbeat")
    status["heartbeat_age_s"] = time.time() - beat if isinstance(beat, (int, float)) else None
    return status


def _not_found(state_dir: Path) -> str:
    if not Path(state_dir).exists():
        where = f"no state dir {state_dir}"
    else:
        where = f"no control channel in {state_dir} (no {CONTROL_DIR}/{STATUS_FILE})"
    return (
        f"{where}: is the strategy running with a state dir? (hkrt run gives a live run "
        "~/.hkrt/state/<name>; a sim or replay run needs --state-dir)"
    )


def stale(status: dict[str, Any]) -> str:
    """ "" while the status is fresh, else why it cannot be believed (the run ended, or no heartbeat)."""
    if not status.get("running", False):
        return "the strategy is not running (its last run ended)"
    age = status.get("heartbeat_age_s")
    if age is None or age > STALE_AFTER_S:
        ago = "never" if age is None else f"{age:.0f} s ago"
        return f"no heartbeat for {ago} (pid {status.get('pid')}): the strategy died or its run loop is stuck"
    return ""


def send_command(state_dir: Path, command: str, reason: str = "", *, timeout: float = 10.0) -> dict[str, Any]:
    """Drop one command into the strategy's control directory and wait for its answer."""
    if command not in COMMANDS:
        raise ControlError(f"unknown command {command!r}: one of {', '.join(COMMANDS)}")
    reason = reason.strip()
    if command in ("halt", "resume") and not reason:
        raise ControlError(f"{command} needs --reason: it is logged and shown until the state changes again")
    if len(reason) > MAX_REASON:
        raise ControlError(f"the reason is {len(reason)} characters; at most {MAX_REASON}")
    status = read_status(state_dir)  # no channel: say so now, not after the timeout
    why = stale(status)
    if why:
        raise ControlError(f"strategy {status.get('name', '?')} at {state_dir} cannot take commands: {why}")
    cdir = control_dir(state_dir)
    cid = f"{int(time.time() * 1000):013d}-{os.getpid()}-{secrets.token_hex(4)}"
    path = cdir / "commands" / f"{cid}.json"
    try:
        write_json_atomic(
            path,
            {
                "id": cid,
                "command": command,
                "reason": reason,
                "sent": time.time(),
                "from_pid": os.getpid(),
                "argv": " ".join(sys.argv[:1]),
            },
        )
    except OSError as err:
        raise ControlError(f"cannot write a command in {path.parent}: {err}") from None
    ack = cdir / "acks" / f"{cid}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = json.loads(ack.read_bytes().decode("utf-8"))
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
            continue
        with contextlib.suppress(OSError):
            ack.unlink()
        if not isinstance(answer, dict):
            raise ControlError(f"the strategy's answer {ack} is not a JSON object")
        return answer
    try:
        path.unlink()  # not taken: it must not run later, when nobody waits for it
        taken = False
    except FileNotFoundError:
        taken = True
    what = "took the command but did not answer" if taken else "did not answer"
    raise ControlError(
        f"strategy at {state_dir} {what} within {timeout:g} s: is it running? "
        f"(its last heartbeat: {status.get('heartbeat_at', '?')}, pid {status.get('pid', '?')})"
    )
