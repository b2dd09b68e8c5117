"""Each notifier against a local server speaking its documented API (tests/notify_servers.py): delivery in
plain text and markdown, DingTalk's and Feishu's signatures checked by the server, the API's length limits,
retries of 5xx and 429 (honouring retry_after), the API's error codes as one line, persistent failure
counted and logged once per interval, secrets never shown; mail through a real aiosmtpd server."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hkrt.notify import Alert, NotifyConfigError, make_notifier
from hkrt.notify.base import Notifier
from notify_servers import ApiServer, DingTalkServer, FeishuServer, TelegramServer, WeComServer, serving

TOKEN, SECRET = "tok-Ab3+/=secret", "SECd1ngt@lk-s3cret+/="
FAST = {"backoff": 0.01, "timeout": 5.0}


def make(kind: str, server: ApiServer, *, secret: str | None = SECRET, **kw: Any) -> Notifier:
    settings: dict[str, Any] = {"url": server.base, **FAST, **kw}
    if kind == "dingtalk":
        settings.update(access_token=TOKEN, url=server.base + "/robot/send")
        if secret:
            settings["secret"] = secret
    elif kind == "wecom":
        settings.update(key=TOKEN, url=server.base + "/cgi-bin/webhook/send")
    elif kind == "feishu":
        settings.update(hook=TOKEN.replace("/", "x").replace("+", "y").replace("=", "z"),
                        url=server.base + "/open-apis/bot/v2/hook")  # fmt: skip
        if secret:
            settings["secret"] = secret
    else:
        settings.update(token=TOKEN.replace("/", "x"), chat_id="-100123")
    return make_notifier(kind, settings, environ={})


def server_for(kind: str, secret: str | None = SECRET) -> ApiServer:
    if kind == "dingtalk":
        return DingTalkServer(TOKEN, secret)
    if kind == "wecom":
        return WeComServer(TOKEN)
    if kind == "feishu":
        return FeishuServer(TOKEN.replace("/", "x").replace("+", "y").replace("=", "z"), secret)
    return TelegramServer(TOKEN.replace("/", "x"), "-100123")


KINDS = ["dingtalk", "wecom", "feishu", "telegram"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api(kind: str) -> Iterator[ApiServer]:
    with serving(server_for(kind)) as server:
        yield server


HALT = Alert("risk_state", "critical", "trading HALTED", "test <stop> & 跌停", source="ks")


@pytest.mark.parametrize("markdown", [True, False])
def test_each_notifier_delivers_an_alert_its_server_accepts(kind: str, api: ApiServer, markdown: bool) -> None:
    notifier = make(kind, api, markdown=markdown)
    result = notifier.send(HALT)
    assert result.ok, result.error
    assert result.attempts == 1 and notifier.stats["sent"] == 1
    assert len(api.messages) == 1 and not api.refused
    (text,) = api.texts()
    assert "trading HALTED" in text and "CRITICAL" in text and "ks" in text
    assert ("test <stop> & 跌停" in text) or ("test &lt;stop&gt; &amp; 跌停" in text)  # Telegram HTML escapes


@pytest.mark.parametrize("kind", ["dingtalk", "feishu"])
def test_a_wrong_signing_secret_is_refused_by_the_server_and_reported_in_one_line(kind: str) -> None:
    with serving(server_for(kind)) as server:
        notifier = make(kind, server, secret="SECnot-the-right-one")
        result = notifier.send(HALT)
    assert not result.ok and result.attempts == 1  # a signature mismatch does not pass on a retry
    code = "310000" if kind == "dingtalk" else "19021"
    assert code in result.error and "sign" in result.error and "\n" not in result.error
    assert "SECnot-the-right-one" not in result.error and not server.messages


@pytest.mark.parametrize("kind", ["dingtalk", "feishu"])
def test_an_unsigned_robot_takes_messages_without_a_signature(kind: str) -> None:
    with serving(server_for(kind, secret=None)) as server:
        result = make(kind, server, secret=None).send(HALT)
    assert result.ok and len(server.messages) == 1


def test_server_errors_and_429_are_retried_until_delivered(kind: str, api: ApiServer) -> None:
    api.fail_next(1, 503, {"error": "busy"})
    api.fail_next(1, 429, {"error": "slow down"})
    notifier = make(kind, api)
    result = notifier.send(HALT)
    assert result.ok and result.attempts == 3
    assert notifier.stats["retries"] == 2 and api.requests == 3 and len(api.messages) == 1


def test_telegram_waits_the_retry_after_it_is_given() -> None:
    with serving(TelegramServer(TOKEN.replace("/", "x"), "-100123")) as server:
        server.fail_next(1, 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                  "parameters": {"retry_after": 1}})  # fmt: skip
        notifier = make("telegram", server, backoff=0.0)  # only retry_after can make it wait
        started = time.monotonic()
        result = notifier.send(HALT)
        waited = time.monotonic() - started
    assert result.ok and result.attempts == 2 and len(server.messages) == 1
    assert waited >= 1.0  # a lower bound: the wait cannot be shorter than the API asked


def test_a_retry_after_longer_than_max_wait_is_not_retried() -> None:
    with serving(TelegramServer(TOKEN.replace("/", "x"), "-100123")) as server:
        server.fail_next(1, 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 600",
                                  "parameters": {"retry_after": 600}})  # fmt: skip
        result = make("telegram", server, max_wait=5).send(HALT)
    assert not result.ok and result.attempts == 1
    assert "asked to wait 600 s" in result.error and "flood control" in result.error


@pytest.mark.parametrize(
    ("kind", "code", "words"),
    [("dingtalk", "130101", "too fast"), ("wecom", "45009", "too fast"), ("feishu", "11232", "too fast")],
)
def test_the_apis_rate_limit_answer_is_named(kind: str, code: str, words: str) -> None:
    with serving(server_for(kind)) as server:
        server.per_minute = 1
        notifier = make(kind, server, retries=0)
        assert notifier.send(HALT).ok
        result = notifier.send(HALT)
    assert not result.ok and code in result.error and words in result.error


def test_a_persistent_failure_is_counted_each_time_and_logged_once_per_interval(
    kind: str, api: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    api.fail_next(100, 502, {"error": "bad gateway"})
    notifier = make(kind, api, retries=1)
    with caplog.at_level(logging.WARNING, logger="hkrt.notify"):
        results = [notifier.send(HALT) for _ in range(3)]
    assert [r.ok for r in results] == [False] * 3 and all(r.attempts == 2 for r in results)
    assert "502" in results[0].error
    assert notifier.stats["failed"] == 3 and notifier.stats["attempts_failed"] == 6
    lines = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(lines) == 1  # the next one waits for failure_log_interval (300 s)


def test_long_alerts_are_cut_to_what_each_api_accepts(kind: str, api: ApiServer) -> None:
    big = Alert("feed_gap", "warning", "lost", "行情" * 5000)
    for markdown in (True, False):
        assert make(kind, api, markdown=markdown).send(big).ok
    assert len(api.messages) == 2 and not api.refused
    assert all("(cut)" in t for t in api.texts())


def test_a_refused_connection_is_retried_then_reported_without_the_secret() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifier = make_notifier("telegram", {"token": TOKEN, "chat_id": "1", "url": f"http://127.0.0.1:{port}",
                                          "backoff": 0.01, "retries": 2}, environ={})  # fmt: skip
    result = notifier.send(HALT)
    assert not result.ok and result.attempts == 3 and "ConnectionError" in result.error
    assert TOKEN not in result.error and TOKEN not in repr(notifier)


def test_a_hung_server_costs_one_timeout_per_attempt(kind: str, api: ApiServer) -> None:
    api.hang.set()
    result = make(kind, api, timeout=0.3, retries=1).send(HALT)
    assert not result.ok and result.attempts == 2 and "TimeoutError" in result.error
    assert api.hung == 2


def test_settings_come_from_the_environment_and_a_bad_one_is_named() -> None:
    with serving(WeComServer(TOKEN)) as server:
        env = {"HKRT_WECOM_KEY": TOKEN, "HKRT_WECOM_URL": server.base + "/cgi-bin/webhook/send"}
        assert make_notifier("wecom", environ=env).send(HALT).ok
    with pytest.raises(NotifyConfigError, match="HKRT_WECOM_KEY"):
        make_notifier("wecom", environ={})
    with pytest.raises(NotifyConfigError, match="HKRT_WECOM_RETRIES must be int"):
        make_notifier("wecom", {"key": "k"}, environ={"HKRT_WECOM_RETRIES": "abc"})
    with pytest.raises(NotifyConfigError, match="min_severity"):
        make_notifier("wecom", {"key": "k", "min_severity": "loud"}, environ={})
    with pytest.raises(NotifyConfigError, match="unknown notifier type 'slack'"):
        make_notifier("ops", {"type": "slack"}, environ={})
    ops = make_notifier("ops", {"type": "dingtalk", "access_token": "t"}, environ={})
    assert ops.name == "ops" and ops.TYPE == "dingtalk"


# ---------------------------------------------------------------------------- mail, through the mail broker's SMTP
aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd runs the local SMTP server")
handlers = pytest.importorskip("aiosmtpd.handlers")


class Inbox(handlers.Message):  # type: ignore[misc,name-defined]
    def __init__(self) -> None:
        super().__init__()
        self.received: list[Any] = []

    def handle_message(self, message: Any) -> None:
        self.received.append(message)


def test_mail_alerts_go_through_the_mail_brokers_smtp_code() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    smtp = aiosmtpd_controller.Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        notifier = make_notifier("mail", {"host": "127.0.0.1", "port": port, "security": "none",
                                          "to": "ops@example.com, desk@example.com", "sender": "hkrt@example.com"},
                                 environ={})  # fmt: skip
        assert notifier.send(HALT).ok
    finally:
        smtp.stop()
    (msg,) = inbox.received
    assert msg["Subject"] == "[hkrt alert] CRITICAL risk_state [ks]: trading HALTED"
    assert msg["To"] == "ops@example.com, desk@example.com" and msg["From"] == "hkrt@example.com"
    body = msg.get_payload(decode=True).decode("utf-8")
    assert "test <stop> & 跌停" in body


def test_mail_to_a_closed_port_fails_in_one_line_and_is_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifier = make_notifier("mail", {"host": "127.0.0.1", "port": port, "security": "none", "to": "a@b.c",
                                      "sender": "h@b.c", "retries": 1, "backoff": 0.01}, environ={})  # fmt: skip
    result = notifier.send(HALT)
    assert not result.ok and result.attempts == 2 and "during connect" in result.error


def test_a_server_echoing_the_token_never_gets_it_into_the_error_or_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with serving(DingTalkServer(TOKEN, SECRET)) as server:
        server.fail_next(1, 200, {"errcode": 300001, "errmsg": f"token {TOKEN} is not exist; sign {SECRET}"})
        with caplog.at_level(logging.WARNING, logger="hkrt.notify"):
            result = make("dingtalk", server).send(HALT)
    assert not result.ok and "errcode 300001" in result.error and "***" in result.error
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "300001" in logged
    for secret in (TOKEN, SECRET):
        assert secret not in result.error and secret not in logged


def test_importing_hkrt_notify_loads_no_http_or_mail_module() -> None:
    import subprocess
    import sys

    code = "import sys, hkrt.notify; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('httpx', 'httpcore', 'smtplib', 'email', 'ssl', 'http')))"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize(
    ("kind", "server", "words"),
    [
        ("wecom", lambda: WeComServer("another-key"), "WeCom errcode 93000: the webhook key is invalid"),
        ("telegram", lambda: TelegramServer("another-token", "-100123"), "Telegram refused the bot token"),
        ("dingtalk", lambda: DingTalkServer("another-token", SECRET), "DingTalk errcode 300001: token is not exist"),
        ("feishu", lambda: FeishuServer("another-hook", SECRET), "Feishu code 19001: param invalid"),
    ],
)
def test_a_wrong_credential_is_named_in_one_line_and_not_retried(kind: str, server: Any, words: str) -> None:
    with serving(server()) as api:
        result = make(kind, api).send(HALT)
    assert not result.ok and result.attempts == 1 and result.error.startswith(f"{kind}: {words}")
    assert "\n" not in result.error and TOKEN not in result.error


def test_feishu_names_its_code_when_it_comes_with_an_http_error() -> None:
    with serving(server_for("feishu")) as api:
        api.fail_next(1, 400, {"code": 9499, "msg": "Bad Request"})
        result = make("feishu", api).send(HALT)
    assert not result.ok and result.attempts == 1 and "Feishu code 9499: Bad Request" in result.error
