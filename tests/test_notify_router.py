"""AlertRouter on a real bus with notifiers talking to local API servers (tests/notify_servers.py): a halt
on a simulated day is delivered, a burst is summarised by the per-kind limit and digested by a notifier's own
limit (never silently dropped), a hung webhook never holds the bus's callback thread, kinds and severities
go where they are configured."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hkrt.bus import DayClosed, EventBus, FeedGap, FeedStatus, GapInfo, OrderEvent, RiskEvent
from hkrt.bus.records import FeedEvent
from hkrt.notify import AlertRouter, make_notifier
from hkrt.notify.base import Notifier
from notify_servers import DingTalkServer, TelegramServer, WeComServer, serving

TOKEN, SECRET = "router-token", "SECrouter-secret"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def dingtalk(server: DingTalkServer, **kw: Any) -> Notifier:
    settings = {"access_token": TOKEN, "secret": SECRET, "url": server.base + "/robot/send", "backoff": 0.01, **kw}
    return make_notifier("dingtalk", settings, environ={})


@pytest.fixture
def ding() -> Iterator[DingTalkServer]:
    with serving(DingTalkServer(TOKEN, SECRET)) as server:
        server.per_minute = 10_000
        yield server


@pytest.fixture
def bus() -> Iterator[EventBus]:
    b = EventBus(name="test-alerts").start()
    yield b
    b.stop()


def refusal(i: int) -> RiskEvent:
    return RiskEvent("refused", "ACTIVE", f"risk: order value over the limit #{i}", symbol="SH600000",
                     client_order_id=f"o-{i}", strategy="s1")  # fmt: skip


# ---------------------------------------------------------------------------- a halt on a simulated day
def test_a_halt_on_a_simulated_day_is_delivered(ding: DingTalkServer) -> None:
    from hkrt.strategy import Strategy, run_sim

    strategy = Strategy(["SH600000", "SH600001"], name="halting")

    @strategy.run_daily_at(time="10:00")
    def stop_it() -> None:
        strategy.halt("test")

    router = AlertRouter([dingtalk(ding)], source="node-a")
    strategy.bus_listeners.append(router.follow)
    try:
        run_sim(strategy, dt.date(2026, 11, 20), symbols=20, speed=20000, handle_signals=False, until="10:30")
        assert router.wait_idle(10)
    finally:
        router.stop()
    assert strategy.trading_state == "HALTED"
    halts = [t for t in ding.texts() if "HALTED" in t]
    assert len(halts) == 1, ding.texts()
    assert "risk_state" in halts[0] and "halting" in halts[0] and "test" in halts[0] and "CRITICAL" in halts[0]
    assert "market time 2026-11-20 10:00" in halts[0]  # the simulated day's clock, not the wall's
    assert router.status()["notifiers"]["dingtalk"]["sent"] == len(ding.messages)


# ---------------------------------------------------------------------------- rate limits
def test_a_burst_of_100_refusals_gives_a_few_alerts_and_one_summary_of_the_rest(
    ding: DingTalkServer, bus: EventBus
) -> None:
    router = AlertRouter([dingtalk(ding, per_minute=600)], per_kind_burst=3, per_kind_per_minute=1,
                         summary_interval=0.3).attach(bus)  # fmt: skip
    try:
        for i in range(100):
            bus.publish(refusal(i))
        assert bus.wait_idle(10)
        assert wait_for(lambda: len(ding.messages) >= 4)
        assert router.wait_idle(10)
    finally:
        router.stop()
    texts = ding.texts()
    assert len(texts) == 4, texts
    assert ["#0" in texts[0], "#1" in texts[1], "#2" in texts[2]] == [True, True, True]
    assert "97 more like this in the last" in texts[3] and "#99" in texts[3]  # the last one held back
    assert router.stats["held_back"] == 97 and router.stats["summaries"] == 1


def test_the_summary_goes_out_a_minute_after_the_first_alert_held_back(ding: DingTalkServer, bus: EventBus) -> None:
    now = [1000.0]  # the router's clock, moved by hand
    router = AlertRouter([dingtalk(ding)], per_kind_burst=1, per_kind_per_minute=1, clock=lambda: now[0]).attach(bus)
    try:
        for i in range(3):
            bus.publish(refusal(i))
        assert bus.wait_idle(10) and router.wait_idle(10)
        assert len(ding.messages) == 1 and router.status()["held"] == {"risk_refused": 2}
        now[0] += 59.0
        time.sleep(1.5)  # the summary ticker looks every second: not due yet
        assert len(ding.messages) == 1
        now[0] += 1.0
        assert wait_for(lambda: len(ding.messages) == 2)
    finally:
        router.stop()
    assert "2 more like this in the last minute" in ding.texts()[1] and "#2" in ding.texts()[1]
    assert router.status()["held"] == {}


def test_a_notifiers_own_limit_merges_waiting_alerts_into_one_digest(bus: EventBus) -> None:
    with serving(WeComServer(TOKEN)) as server:
        wecom = make_notifier("wecom", {"key": TOKEN, "url": server.base + "/cgi-bin/webhook/send", "per_minute": 60},
                              environ={})  # fmt: skip
        router = AlertRouter([wecom], per_kind_burst=100, per_kind_per_minute=1000).attach(bus)
        router.outboxes[0].bucket = type(router.outboxes[0].bucket)(60, 1)  # one now, the next in a second
        try:
            bus.publish(refusal(0))
            assert wait_for(lambda: len(server.messages) == 1)  # the token spent: the next comes in a second
            for i in range(1, 6):
                bus.publish(refusal(i))
            assert bus.wait_idle(10)
            assert wait_for(lambda: len(server.messages) >= 2)
            assert router.wait_idle(10)
        finally:
            router.stop()
        texts = server.texts()
    assert len(texts) == 2, texts
    assert "#0" in texts[0] and "5 alerts (risk_refused)" in texts[1]
    assert all(f"#{i}" in texts[1] for i in range(1, 6))
    status = router.status()["notifiers"]["wecom"]
    assert status["digests"] == 1 and status["alerts_sent"] == 6 and status.get("dropped", 0) == 0


# ---------------------------------------------------------------------------- a hung webhook
def test_a_hung_webhook_never_holds_the_bus_callback_thread(ding: DingTalkServer, bus: EventBus) -> None:
    ding.hang.set()
    router = AlertRouter([dingtalk(ding, timeout=30, retries=0, per_minute=100_000)], queue=5,
                         per_kind_burst=1000, per_kind_per_minute=100_000).attach(bus)  # fmt: skip
    seen: list[int] = []
    bus.subscribe(RiskEvent, lambda e: seen.append(1))  # after the router: runs once the router's handler returned
    try:
        bus.publish(refusal(-1))
        assert wait_for(lambda: ding.hung >= 1)  # the outbox's thread waits for the server's answer
        for i in range(200):
            bus.publish(refusal(i))
        assert bus.wait_idle(10)  # every event handled while the server still holds the first request
        outbox = router.outboxes[0]
        assert len(seen) == 201 and ding.hung == 1 and not ding.release.is_set()
        assert outbox.depth == 5 and outbox.stats["dropped"] == 200 - 5
        assert bus.stats()["blocked"] == 0 and bus.stats()["errors"] == 0
        ding.release.set()  # the server answers; the five newest go out (the 195 oldest were dropped, counted)
        assert router.wait_idle(10)
    finally:
        ding.release.set()
        router.stop()
    texts = ding.texts()
    assert len(texts) == 6 and "#-1" in texts[0]
    assert [f"#{i}" in t for i, t in zip(range(195, 200), texts[1:], strict=True)] == [True] * 5
    status = router.status()["notifiers"]["dingtalk"]
    assert status["queued"] == 201 and status["alerts_sent"] == 6 and status["dropped"] == 195


# ---------------------------------------------------------------------------- routing
def _delivered(expected: str, texts: str) -> bool:
    """Whether the alert ``expected`` ("SEVERITY kind [source]: title...") is in ``texts``: as the plain
    headline of a digest, or as its own markdown message ("### SEVERITY · kind · source" then the title in
    bold) -- which of the two depends on how fast the notifier's thread drained its queue."""
    if expected in texts:
        return True
    head, _, title = expected.partition(": ")
    severity, kind, *rest = head.split(" ")
    source = f" · {rest[0].strip('[]')}" if rest else ""
    markdown = f"### {severity} · {kind}{source}"
    return markdown in texts and (not title or f"**{title}" in texts)


def test_kinds_and_severities_go_where_configured(ding: DingTalkServer, bus: EventBus) -> None:
    with serving(TelegramServer("t0k", "42")) as tg:
        halts_only = make_notifier("telegram", {"token": "t0k", "chat_id": "42", "url": tg.base,
                                                "kinds": ["risk_state", "deadman"], "min_severity": "critical"},
                                   environ={})  # fmt: skip
        router = AlertRouter([dingtalk(ding), halts_only], min_severity="info").attach(bus)
        try:
            bus.publish(FeedStatus(FeedEvent("silent", 12.0, "ipc:///tmp/x")))
            bus.publish(FeedGap(GapInfo(1, 10, 15, 5)))
            bus.publish(refusal(1))
            bus.publish(RiskEvent("state", "REDUCING", "drawdown 5%", strategy="s1"))
            bus.publish(RiskEvent("state", "HALTED", "dead-man switch: the feed silent for 61 s", strategy="s1"))
            bus.publish(OrderEvent("c1", "SH600000", "buy", 100, "rejected", reason="price outside the band",
                                   broker="qmt", strategy="s1"))  # fmt: skip
            own = OrderEvent("c2", "SH600000", "buy", 100, "rejected", reason="risk: too big", broker="(strategy)")
            bus.publish(own)
            bus.publish(DayClosed(dt.date(2026, 11, 20), "day_end", 120))
            router.process_restarted("strategy-a", "exit code -9")
            assert bus.wait_idle(10) and router.wait_idle(10)
        finally:
            router.stop()
        tg_texts = tg.texts()
    every = "\n".join(ding.texts())  # one by one while the notifier's tokens last, then as a digest
    expected = [
        "ERROR feed_silent", "WARNING feed_gap", "WARNING risk_refused", "ERROR risk_state [s1]: trading REDUCING",
        "CRITICAL deadman", "ERROR broker_rejected [s1]: order rejected by qmt: price outside the band",
        "ERROR process_restart [strategy-a]",
    ]  # fmt: skip
    assert [k for k in expected if not _delivered(k, every)] == [], every
    assert "day_closed" not in every  # info: below the DingTalk notifier's own minimum (warning)
    assert "risk: too big" not in every  # the strategy's own refusal is no broker failure
    assert len(tg_texts) == 1 and "deadman" in tg_texts[0]  # the only critical one of its kinds


def test_below_the_minimum_severity_nothing_is_sent(ding: DingTalkServer, bus: EventBus) -> None:
    router = AlertRouter([dingtalk(ding)]).attach(bus)  # default minimum: warning
    try:
        bus.publish(DayClosed(dt.date(2026, 11, 20), "day_end", 1))
        bus.publish(FeedStatus(FeedEvent("resumed", 3.0, None)))
        bus.publish(refusal(0))
        assert bus.wait_idle(10) and router.wait_idle(10)
    finally:
        router.stop()
    assert len(ding.messages) == 1 and router.stats["below_min_severity"] == 2


def test_the_dead_man_hook_and_detaching(ding: DingTalkServer, bus: EventBus) -> None:
    from hkrt.strategy import DeadManAlert

    router = AlertRouter([dingtalk(ding)]).attach(bus)
    try:
        router.deadman(DeadManAlert("strategy", 31.0, "dead-man switch: a callback ran 31 s", 2, True,
                                    dt.datetime(2026, 11, 20, 10, 0), None))  # fmt: skip
        router.detach()
        bus.publish(refusal(0))  # not subscribed any more
        assert bus.wait_idle(10) and router.wait_idle(10)
    finally:
        router.stop()
    (text,) = ding.texts()
    assert "deadman" in text and "31 s" in text and "cancelled 2 working orders; HALTED" in text


def test_alerts_from_other_threads_are_safe(ding: DingTalkServer) -> None:
    router = AlertRouter([dingtalk(ding)], per_kind_burst=1000, per_kind_per_minute=100_000).start()
    threads = [threading.Thread(target=lambda n=n: [router.process_restarted(f"p{n}", "crash") for _ in range(25)])
               for n in range(4)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert router.wait_idle(10)
    router.stop()
    status = router.status()["notifiers"]["dingtalk"]
    assert router.stats["routed"] == 100 and status["alerts_sent"] == 100 and status.get("dropped", 0) == 0
