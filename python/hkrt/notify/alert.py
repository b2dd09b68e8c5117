"""An alert: what happened (``kind``), how bad (``severity``), in a title and a few lines of text.

The router (:mod:`hkrt.notify.alerts`) makes them from bus events; each notifier formats one as plain text or
markdown and cuts it to what its API accepts (:func:`fit`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from hkrt.core.china_time import china_now

#: lowest first; a notifier sends the alerts at or above its ``min_severity``
SEVERITIES = ("info", "warning", "error", "critical")

#: the kinds the router makes (docs/alerts.md, "What triggers an alert")
KINDS = (
    "feed_silent",  # FeedStatus silent / no_publisher
    "feed_resumed",  # FeedStatus resumed
    "feed_gap",  # FeedGap: messages lost for good
    "risk_refused",  # RiskEvent refused: an order the risk engine did not let out
    "risk_state",  # RiskEvent state: ACTIVE / REDUCING / HALTED
    "deadman",  # the dead-man switch fired (its RiskEvent, or DeadManSwitch(on_alert=router.deadman))
    "broker_rejected",  # OrderEvent rejected by a broker (not by the risk engine)
    "day_closed",  # DayClosed
    "process_restart",  # AlertRouter.process_restarted(name, reason), from a supervisor
    "process_hung",  # AlertRouter.process_hung(name, why): a supervised process stopped beating, killed
    "process_gave_up",  # AlertRouter.process_gave_up(name, reason): restarted too often, left down
    "summary",  # N alerts of one kind held back by its rate limit
    "test",  # hkrt notify-test
)

TRUNCATED = " …(cut)"


_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """0 for info .. 3 for critical; ValueError naming the valid ones."""
    rank = _RANK.get(severity)
    if rank is None:
        raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return rank


@dataclass(frozen=True)
class Alert:
    """One alert.  ``count`` > 1: a summary standing for that many alerts of ``kind``."""

    kind: str
    severity: str
    title: str
    text: str = ""
    source: str = ""  # the strategy, process or feed it is about
    at: dt.datetime = field(default_factory=china_now)  # China wall time it was made
    count: int = 1

    def __post_init__(self) -> None:
        severity_rank(self.severity)

    @property
    def headline(self) -> str:
        where = f" [{self.source}]" if self.source else ""
        return f"{self.severity.upper()} {self.kind}{where}: {self.title}"

    def plain(self) -> str:
        """The alert as plain text: the headline, the text, the time."""
        lines = [self.headline]
        if self.text:
            lines.append(self.text)
        lines.append(f"at {self.at:%Y-%m-%d %H:%M:%S} (China)")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The alert as markdown (the subset DingTalk, WeCom and Feishu render: a heading, bold, plain lines)."""
        where = f" · {self.source}" if self.source else ""
        lines = [f"### {self.severity.upper()} · {self.kind}{where}", f"**{self.title}**"]
        if self.text:
            lines.append("")
            lines.extend(self.text.splitlines())
        lines.append("")
        lines.append(f"{self.at:%Y-%m-%d %H:%M:%S} (China)")
        return "\n".join(lines)


def fit(text: str, limit: int, *, unit: str = "chars") -> str:
    """``text`` cut to ``limit`` characters (``unit="chars"``) or UTF-8 bytes (``"bytes"``), the cut marked."""
    if unit == "chars":
        return text if len(text) <= limit else text[: max(0, limit - len(TRUNCATED))] + TRUNCATED
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    room = max(0, limit - len(TRUNCATED.encode("utf-8")))
    return raw[:room].decode("utf-8", "ignore") + TRUNCATED  # "ignore": never half a character


def digest(alerts: list[Alert]) -> Alert:
    """Several queued alerts as one message (a notifier's own rate limit was reached): the worst severity,
    every headline, the first alert's time."""
    worst = max(alerts, key=lambda a: severity_rank(a.severity)).severity
    total = sum(a.count for a in alerts)
    kinds = sorted({a.kind for a in alerts})
    text = "\n".join(f"- {a.headline}" + (f" — {a.text.splitlines()[0]}" if a.text else "") for a in alerts)
    title = f"{total} alerts ({', '.join(kinds)})"
    return Alert("summary" if len(kinds) > 1 else kinds[0], worst, title, text, at=alerts[0].at, count=total)
