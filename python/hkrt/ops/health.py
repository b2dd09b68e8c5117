"""``/health``: ok, degraded or failing, with the reasons (docs/metrics.md, "Health").

Failing (HTTP 503): a strategy HALTED; its ledger and book disagreeing (or a fill left unposted); the
feed silent during a trading session.  Degraded (HTTP 200, reasons listed): a strategy REDUCING; the
dead-man switch fired in the last :attr:`HealthRules.deadman_recent_s` seconds; the callback queue at
:attr:`HealthRules.queue_fraction` of its bound or more; no publisher connected during a session; the
journal's or the store's writes failing.  Otherwise ok.

The rules read the same dicts the metrics do, at request time; nothing is kept between requests.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hkrt.core.calendar import could_trade
from hkrt.core.china_time import SESSIONS, china_now

OK, DEGRADED, FAILING = "ok", "degraded", "failing"
_RANK = {OK: 0, DEGRADED: 1, FAILING: 2}


@dataclass(frozen=True)
class HealthRules:
    queue_fraction: float = 0.8  # callback queue depth (events or items) / its bound: degraded from here
    deadman_recent_s: float = 900.0  # a dead-man alert keeps the node degraded this long (wall seconds)


@dataclass(frozen=True)
class Finding:
    status: str  # DEGRADED or FAILING
    check: str  # a fixed name: risk_halted, feed_silent ...
    detail: str


@dataclass
class HealthReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        return max((f.status for f in self.findings), key=_RANK.__getitem__, default=OK)

    @property
    def http_status(self) -> int:
        return 503 if self.status == FAILING else 200

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": [vars(f) for f in self.findings]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def in_session(now: dt.datetime, is_trading_day: Callable[[dt.date], bool]) -> bool:
    """True during a continuous-trading session of a trading day (China local ``now``)."""
    try:
        trading = is_trading_day(now.date())
    except ValueError:  # a day past the holiday table: judge it as a trading day (louder, not quieter)
        trading = could_trade(now.date())
    return trading and any(opens <= now.time() < closes for opens, closes in SESSIONS)


def agent_findings(stats: Mapping[str, Any], *, running: bool, session: bool, rules: HealthRules) -> list[Finding]:
    """The feed and the callback queue of one agent's ``stats()``."""
    out: list[Finding] = []
    t, cb = stats["transport"], stats["callbacks"]
    if running and session:
        if t.get("silent"):
            age = t.get("last_message_age_s")
            since = f" for {age:.0f} s" if age is not None else ""
            out.append(Finding(FAILING, "feed_silent", f"feed silent{since} during trading hours"))
        elif not t.get("connected"):
            out.append(Finding(DEGRADED, "no_publisher", "no spot server connected during trading hours"))
    for used, bound, what in ((cb["depth"], cb["max_events"], "events"), (cb["items"], cb["max_items"], "items")):
        if bound and used >= rules.queue_fraction * bound:
            out.append(Finding(DEGRADED, "callback_queue", f"callback queue at {used}/{bound} {what} "
                               f"({used / bound:.0%} of its bound): the callbacks fall behind"))  # fmt: skip
    for which in ("journal", "store"):
        writer = stats.get(which)
        if writer and writer.get("failing"):
            out.append(Finding(DEGRADED, f"{which}_failing", f"the {which}'s writes fail: {writer.get('last_error')}"))
    return out


def strategy_findings(row: Mapping[str, Any], *, wall: dt.datetime, rules: HealthRules) -> list[Finding]:
    """One strategy read by ``hkrt.ops.metrics`` (name, risk, ledger, deadman)."""
    out: list[Finding] = []
    name, risk = row["name"], row["risk"]
    if risk["state"] == "HALTED":
        out.append(Finding(FAILING, "risk_halted", f"strategy {name} HALTED: {risk['reason']}"))
    elif risk["state"] == "REDUCING":
        out.append(Finding(DEGRADED, "risk_reducing", f"strategy {name} REDUCING: {risk['reason']}"))
    ledger = row["ledger"]
    if ledger.get("disagreements") or ledger.get("unposted"):
        counts = f"{ledger.get('disagreements', 0)} fills, {ledger.get('unposted', 0)} fills unposted"
        out.append(Finding(FAILING, "ledger", f"strategy {name}: ledger and book disagreed after {counts}"))
    last = (row.get("deadman") or {}).get("last_alert")
    if last is not None:
        fired = dt.datetime.fromisoformat(last["wall"])
        if (wall - fired).total_seconds() < rules.deadman_recent_s:
            out.append(Finding(DEGRADED, "deadman_fired", f"strategy {name}: dead-man switch fired at "
                               f"{last['wall']}: {last['reason']}"))  # fmt: skip
    return out


def assess(
    agent_stats: Mapping[str, Any] | None,
    *,
    agent_running: bool = False,
    strategies: Sequence[Mapping[str, Any]] = (),
    is_trading_day: Callable[[dt.date], bool] = could_trade,
    clock: Callable[[], dt.datetime] = china_now,
    wall: Callable[[], dt.datetime] | None = None,
    rules: HealthRules | None = None,
) -> HealthReport:
    """The node's health from what was read now.  ``clock``: China local time (trading hours);
    ``wall``: the dead-man switch's wall clock (its alerts' ``wall``; default: ``clock``, as the switch's)."""
    rules = rules or HealthRules()
    report = HealthReport()
    if agent_stats is not None:
        session = in_session(clock(), is_trading_day)
        report.findings += agent_findings(agent_stats, running=agent_running, session=session, rules=rules)
    now = (wall or clock)()
    for row in strategies:
        report.findings += strategy_findings(row, wall=now, rules=rules)
    return report
