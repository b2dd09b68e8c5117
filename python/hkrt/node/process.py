"""What the supervisor runs: a child process described by a :class:`ProcessSpec` (its name, how to start it,
when to restart it, how to tell it is alive), independent of what the child does.

The node's children (the spot server, the agent, each strategy; later a trader process per broker and a
metrics endpoint) are all specs of this one shape: hkrt.node.plan builds them from the node's config.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

RESTART_WHEN = ("always", "on-failure", "never")


class Launch(NamedTuple):
    """What a spec's ``argv`` callable is told when its child is about to start."""

    run: int  # runs of this child that ended successfully so far (a sim day each)
    attempt: int  # starts of this child so far (0 at the first)
    restarts: int  # of those, restarts after a failure or a hang
    fresh: bool = True  # the first start, the next run after a success, or a restart asked for; False after a failure
    gone: frozenset[str] = frozenset()  # children the supervisor gave up on, or that ended for good


@dataclass(frozen=True)
class RestartPolicy:
    """When a child that ended is started again, after how long, and when the supervisor gives up.

    ``when``: "always" (any end), "on-failure" (an exit status other than 0, a signal, a hang) or "never".
    The delay before a restart doubles with each restart inside ``window`` seconds, from ``backoff`` up to
    ``backoff_max``; the ``max_restarts``-th restart inside the window is not made: the supervisor gives up
    on the child (an ERROR log line, ``gave_up`` in its stats) and, when the child is critical, stops the node.
    """

    when: str = "on-failure"
    backoff: float = 0.5
    backoff_max: float = 30.0
    max_restarts: int = 5
    window: float = 300.0

    def __post_init__(self) -> None:
        if self.when not in RESTART_WHEN:
            raise ValueError(f"restart must be one of {', '.join(RESTART_WHEN)}, not {self.when!r}")
        if not self.backoff > 0 or self.backoff_max < self.backoff:
            raise ValueError(f"restart backoff must be > 0 and <= backoff_max ({self.backoff:g}, {self.backoff_max:g})")
        if self.max_restarts < 0 or not self.window > 0:
            raise ValueError(f"max_restarts must be >= 0 and window > 0 ({self.max_restarts}, {self.window:g})")

    def delay(self, recent: int) -> float:
        """Seconds to wait before the restart that follows ``recent`` restarts inside the window."""
        return float(min(self.backoff_max, self.backoff * 2 ** min(recent, 30)))

    def restarts_after(self, exit_status: int | None, *, hung: bool) -> bool:
        """Whether a child that ended so is started again (before the give-up count)."""
        if self.when == "never":
            return False
        return self.when == "always" or hung or exit_status != 0


@dataclass(frozen=True)
class Heartbeat:
    """How the supervisor tells a live child from a hung one.

    ``age(pid)``: seconds since the child's last sign of life, or None when it has given none yet (or
    the sign is not its own: another pid).  The child is hung when that age passes ``timeout`` seconds,
    or when it gave no sign ``startup`` seconds after it started (``startup=None``: a child without a sign
    yet is never judged, for a heartbeat seen through another process).  A child is never staler than
    its own life: the age is cut to the time since it started.
    """

    age: Callable[[int], float | None]
    timeout: float = 10.0
    startup: float | None = 30.0

    def __post_init__(self) -> None:
        if not self.timeout > 0 or (self.startup is not None and not self.startup > 0):
            raise ValueError(f"heartbeat timeout and startup must be > 0 ({self.timeout:g}, {self.startup})")


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised child.

    ``argv``: the command line, or a callable given a :class:`Launch` (a sim day's server gets the next
    date; only the first start waits for subscribers).  ``runs``: successful ends (exit status 0) it makes
    before it is done (a sim of N days: N); after each but the last it is started again at once.
    ``completes_node``: once this child is done the node finishes (a simulated or replayed feed ended).
    ``critical``: giving up on it stops the node with a failure (the feed, the agent); a strategy is not.
    ``stop_timeout``: seconds it is given to stop when asked (then it is killed).
    """

    name: str
    argv: Sequence[str] | Callable[[Launch], Sequence[str]]
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    heartbeat: Heartbeat | None = None
    stop_timeout: float = 10.0
    critical: bool = False
    completes_node: bool = False
    runs: int = 1
    env: Mapping[str, str] | None = None
    cwd: str | None = None

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\:"):
            raise ValueError(f"a process name must be a plain word (it names its log file), not {self.name!r}")
        if self.runs < 1 or not self.stop_timeout > 0:
            raise ValueError(f"{self.name}: runs must be >= 1 and stop_timeout > 0")

    def command(self, launch: Launch) -> list[str]:
        return [str(a) for a in (self.argv(launch) if callable(self.argv) else self.argv)]


def hkrt_command(*args: str) -> list[str]:
    """The command line of an hkrt CLI command as a supervised child: this Python running
    :mod:`hkrt.node.child` (no console script needed, the same interpreter and environment)."""
    return [sys.executable, "-m", "hkrt.node.child", *args]


def read_beat(path: Path) -> dict[str, Any] | None:
    """A heartbeat file's JSON object (an agent's heartbeat, a strategy's control/status.json), or None."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None  # not there yet, or being replaced (written atomically: a rare miss, read again later)
    return data if isinstance(data, dict) else None


def file_heartbeat(path: str | os.PathLike[str]) -> Callable[[int], float | None]:
    """An ``age(pid)`` over a JSON file the child rewrites: its ``heartbeat`` (wall-clock epoch seconds)
    counts when its ``pid`` is the child's."""
    where = Path(path)

    def age(pid: int) -> float | None:
        beat = read_beat(where)
        if beat is None or beat.get("pid") != pid or not isinstance(beat.get("heartbeat"), (int, float)):
            return None
        return max(0.0, time.time() - float(beat["heartbeat"]))

    return age


def feed_heartbeat(agent_beat: str | os.PathLike[str], *, fresh: float = 10.0) -> Callable[[int], float | None]:
    """An ``age(pid)`` of the spot server seen through the agent's heartbeat file: seconds since the agent
    last heard a message (publishers send a heartbeat every second when idle).

    None (nothing known) until the agent has heard this server: a started server is a new publisher, so the
    agent's count of ``publishers`` seen must have grown since the server's first look here (until then the
    agent's silence is the previous server's, or this one is still starting); None too while the agent's own
    beat is older than ``fresh`` seconds."""
    where = Path(agent_beat)
    # the server and agent pids last looked at, and the agent's publishers count before that server spoke
    state: dict[str, Any] = {"server": None, "agent": None, "base": 0}

    def age(pid: int) -> float | None:
        beat = read_beat(where) or {}
        agent, publishers = beat.get("pid"), beat.get("publishers")
        seen = publishers if isinstance(publishers, int) else 0
        if pid != state["server"]:  # a new server: nothing the agent heard so far was it
            state.update(server=pid, agent=agent, base=seen if agent is not None else 0)
        elif agent != state["agent"]:  # a new agent: whatever it heard was the current server
            state.update(agent=agent, base=0)
        when = beat.get("heartbeat")
        if seen <= state["base"] or not isinstance(when, (int, float)) or time.time() - float(when) > fresh:
            return None
        heard = beat.get("last_message_age_s")
        return float(heard) if isinstance(heard, (int, float)) else None

    return age
