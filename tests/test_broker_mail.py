"""MailOrderBroker against a real SMTP server on 127.0.0.1 (aiosmtpd): implicit TLS, STARTTLS, AUTH,
the message as a mail client reads it, and every failure as a Failed result rather than an exception."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email
import email.policy
import email.utils
import json
import logging
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from hkrt._hkrt import OrderSide, OrderStatus
from hkrt.broker.mail import MailOrderBroker

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd runs the local SMTP server")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

# the implicit-TLS server needs auth_require_tls=False (see smtp_server), and aiosmtpd warns about it
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

T0 = dt.datetime(2026, 11, 20, 14, 50)
USER, PASSWORD = "bot@example.com", "s3cret-app-pw"
TO = ["alice@example.com", "Bob <bob@example.org>"]


# ---------------------------------------------------------------------------- a local SMTP server
@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI: the venv has no `cryptography`)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test certificate")
    d = tmp_path_factory.mktemp("cert")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return crt, key


def server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


def client_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    """Verifies the server (certificate and name), trusting only the test certificate."""
    return ssl.create_default_context(cafile=str(cert[0]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps every delivered message and every AUTH attempt."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[str, bool]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"

    def authenticator(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        self.logins.append((auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?", ok))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in self.envelopes]


@contextlib.contextmanager
def smtp_server(mode: str, cert: tuple[Path, Path] | None = None, **kw) -> Iterator[tuple[Inbox, int]]:
    """mode 'ssl' (implicit TLS), 'starttls' (required before anything else) or 'plain'."""
    inbox = Inbox()
    port = free_port()
    params: dict = {"authenticator": inbox.authenticator, "auth_required": True}
    if mode == "ssl":
        assert cert is not None
        params["ssl_context"] = server_context(cert)
        # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; the implicit-TLS channel is encrypted anyway.
        params["auth_require_tls"] = False
    elif mode == "starttls":
        assert cert is not None
        params.update(tls_context=server_context(cert), require_starttls=True, auth_require_tls=True)
    else:
        params.update(auth_require_tls=False)
    params.update(kw)
    controller = aiosmtpd_controller.Controller(inbox, hostname="127.0.0.1", port=port, **params)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def broker(port: int, cert: tuple[Path, Path] | None, security: str = "ssl", **kw) -> MailOrderBroker:
    settings = {"user": USER, "password": PASSWORD, "to": TO, "security": security, "timeout": 5.0}
    if cert is not None:
        settings["ssl_context"] = client_context(cert)
    settings.update(kw)
    return MailOrderBroker("127.0.0.1", port, **settings)


# ---------------------------------------------------------------------------- delivery
def test_implicit_tls_with_auth_delivers_one_well_formed_message(cert) -> None:
    with smtp_server("ssl", cert) as (inbox, port):
        b = broker(port, cert)
        r = b.buy(T0, "SH", "600000", 10.0, 1000, 9.5, 11.25, 2, "回调买入 第一笔")
    assert r.status == OrderStatus.Sent, r.error
    assert inbox.logins == [(USER, True)]
    assert len(inbox.envelopes) == 1
    mail_from, rcpt_tos, _ = inbox.envelopes[0]
    assert mail_from == USER
    assert rcpt_tos == ["alice@example.com", "bob@example.org"]

    msg = inbox.messages()[0]
    assert msg["Subject"] == "[hkrt] BUY SH600000 1000 @ 10.00"
    assert msg["From"] == USER
    to = msg["To"]
    assert [a.addr_spec for a in to.addresses] == ["alice@example.com", "bob@example.org"]
    assert str(to) == "alice@example.com, Bob <bob@example.org>"
    assert msg["Message-ID"] == r.order_id and r.order_id.startswith("<") and r.order_id.endswith("@example.com>")
    sent_at = email.utils.parsedate_to_datetime(msg["Date"])
    assert sent_at.tzinfo is not None
    assert abs((dt.datetime.now(dt.timezone.utc) - sent_at).total_seconds()) < 120
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    fields = dict(line.split(": ", 1) for line in body.splitlines())
    assert fields == {
        "side": "BUY",
        "datetime": "2026-11-20 14:50:00",
        "market": "SH",
        "code": "600000",
        "price": "10.00",
        "num": "1000",
        "stoploss": "9.50",
        "goal_price": "11.25",
        "part_from": "2",
        "remark": "回调买入 第一笔",
        "broker": "MailOrderBroker",
    }
    assert b.sent_count == 1
    assert [(x.side, x.result.status, x.result.order_id) for x in b.records] == [
        (OrderSide.Buy, OrderStatus.Sent, r.order_id)
    ]


def test_starttls_sell_and_fund_price_subject(cert) -> None:
    with smtp_server("starttls", cert) as (inbox, port):
        b = broker(port, cert, security="starttls", to="ops@example.com", subject_prefix="[live]")
        r = b.sell(T0, "sz", "159915", 2.345, 300)
    assert r.ok, r.error
    assert inbox.logins == [(USER, True)]  # AUTH happened only after STARTTLS (auth_require_tls)
    msg = inbox.messages()[0]
    assert msg["Subject"] == "[live] SELL SZ159915 300 @ 2.345"
    assert [a.addr_spec for a in msg["To"].addresses] == ["ops@example.com"]


def test_plain_smtp_to_a_server_that_requires_starttls_fails_and_sends_nothing(cert) -> None:
    with smtp_server("starttls", cert) as (inbox, port):
        b = broker(port, None, security="none")  # loopback: clear text is allowed, the server refuses it
        r = b.buy(T0, "SH", "600000", 10.0, 100)
    assert r.status == OrderStatus.Failed
    # the server offers AUTH only after STARTTLS: the client never sends the password in clear
    assert f"mail to 127.0.0.1:{port} failed" in r.error and "AUTH extension not supported" in r.error
    assert inbox.envelopes == [] and inbox.logins == []


def test_wrong_password_is_failed_with_a_clear_error_and_nothing_is_sent(cert) -> None:
    with smtp_server("ssl", cert) as (inbox, port):
        b = broker(port, cert, password="wrong-password")
        r = b.buy(T0, "SH", "600000", 10.0, 1000)
    assert r.status == OrderStatus.Failed
    assert "login as 'bot@example.com' refused" in r.error and "535" in r.error
    assert "wrong-password" not in r.error
    assert inbox.logins and set(inbox.logins) == {(USER, False)}  # smtplib tries PLAIN, then LOGIN
    assert inbox.envelopes == []
    assert b.last_error == r.error
    assert [x.result.status for x in b.records] == [OrderStatus.Failed]
    assert b.sent_count == 0


def test_an_untrusted_certificate_is_refused(cert) -> None:
    with smtp_server("ssl", cert) as (inbox, port):
        b = broker(port, None)  # the default context: system CAs only
        r = b.buy(T0, "SH", "600000", 10.0, 1000)
    assert r.status == OrderStatus.Failed
    assert "CERTIFICATE_VERIFY_FAILED" in r.error
    assert inbox.logins == [] and inbox.envelopes == []


def test_server_down_is_failed_counted_and_does_not_raise() -> None:
    port = free_port()  # nothing listens there
    b = broker(port, None)
    r1 = b.buy(T0, "SH", "600000", 10.0, 1000)
    r2 = b.sell(T0, "SH", "600000", 10.5, 1000)
    for r in (r1, r2):
        assert r.status == OrderStatus.Failed
        assert f"mail to 127.0.0.1:{port} failed" in r.error and "ConnectionRefusedError" in r.error
    assert [(x.side, x.result.status) for x in b.records] == [
        (OrderSide.Buy, OrderStatus.Failed),
        (OrderSide.Sell, OrderStatus.Failed),
    ]
    assert PASSWORD not in r1.error


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        held: list[socket.socket] = []
        accepter = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
        accepter.start()
        b = broker(port, None, security="starttls", timeout=0.5)
        start = time.monotonic()
        r = b.buy(T0, "SH", "600000", 10.0, 1000)
        elapsed = time.monotonic() - start
        accepter.join(5)
        for s in held:
            s.close()
    assert r.status == OrderStatus.Failed
    assert "timed out" in r.error
    assert elapsed < 3.0


def test_broker_last_datetime_guard_sends_no_mail_for_history(cert) -> None:
    with smtp_server("ssl", cert) as (inbox, port):
        b = broker(port, cert)
        b.broker_last_datetime = T0
        old = b.buy(T0 - dt.timedelta(days=1), "SH", "600000", 10.0, 1000)
        assert old.status == OrderStatus.Skipped
        assert inbox.envelopes == [] and inbox.logins == []
        live = b.buy(T0, "SH", "600000", 10.0, 1000)
    assert live.status == OrderStatus.Sent
    assert len(inbox.envelopes) == 1
    assert [x.result.status for x in b.records] == [OrderStatus.Skipped, OrderStatus.Sent]


# ---------------------------------------------------------------------------- configuration
def test_security_rules_and_default_ports() -> None:
    common = {"user": USER, "password": PASSWORD, "to": TO}
    assert MailOrderBroker("smtp.qq.com", **common).port == 465
    assert MailOrderBroker("smtp.163.com", security="starttls", **common).port == 587
    with pytest.raises(ValueError, match="clear text"):
        MailOrderBroker("smtp.qq.com", security="none", **common)
    assert MailOrderBroker("smtp.qq.com", security="none", allow_insecure=True, **common).port == 25
    assert MailOrderBroker("127.0.0.1", 2525, security="none", **common).port == 2525
    assert MailOrderBroker("::1", security="none", **common).security == "none"
    with pytest.raises(ValueError, match="security must be"):
        MailOrderBroker("smtp.qq.com", security="tls", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an e-mail address"):
        MailOrderBroker("smtp.qq.com", user=USER, password=PASSWORD, to="alice")
    with pytest.raises(ValueError, match="no recipient"):
        MailOrderBroker("smtp.qq.com", user=USER, password=PASSWORD, to=[])
    with pytest.raises(ValueError, match="go together"):
        MailOrderBroker("smtp.qq.com", user=USER, password=None, to=TO)


def test_from_env_and_the_password_stays_hidden() -> None:
    env = {
        "HKRT_MAIL_HOST": "smtp.163.com",
        "HKRT_MAIL_PORT": "994",
        "HKRT_MAIL_USER": "trader@163.com",
        "HKRT_MAIL_PASSWORD": "APPPASSWORD123",
        "HKRT_MAIL_TO": "a@example.com, b@example.com",
        "HKRT_MAIL_SECURITY": "SSL",
        "HKRT_MAIL_TIMEOUT": "3.5",
        "OTHER": "ignored",
    }
    b = MailOrderBroker.from_env(environ=env)
    assert (b.host, b.port, b.security, b.sender) == ("smtp.163.com", 994, "ssl", "trader@163.com")
    assert b.recipients == ["a@example.com", "b@example.com"]
    for text in (repr(b), str(b)):
        assert "APPPASSWORD123" not in text and "smtp.163.com" in text
    b2 = MailOrderBroker.from_config({"host": "smtp.qq.com", "user": "u@qq.com", "password": "pw", "to": "x@qq.com"})
    assert (b2.port, b2.security) == (465, "ssl")
    with pytest.raises(ValueError, match=r"'host' is required \(environment variables HKRT_MAIL_\*\)") as exc:
        MailOrderBroker.from_env(environ={"HKRT_MAIL_PASSWORD": "APPPASSWORD123", "HKRT_MAIL_TO": "a@b.c"})
    assert "APPPASSWORD123" not in str(exc.value)
    with pytest.raises(TypeError, match="unknown mail setting"):
        MailOrderBroker.from_config({"host": "h", "to": "a@b.c", "pasword": "typo"})


def test_a_mail_broker_has_no_asset_info() -> None:
    b = MailOrderBroker("127.0.0.1", security="none", user=None, password=None, sender="bot@localhost", to=TO)
    assert b.get_asset_info() == ""
    assert "mail notifier" in b.last_error and "no asset info" in b.last_error


# ---------------------------------------------------------------------------- faults after and before delivery
class QuitFails(Inbox):
    """Takes the message (250 to DATA), then fails QUIT: an error reply, or a reset connection."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    async def handle_QUIT(self, server, session, envelope) -> str:
        if self.how == "reply":
            return "421 4.3.2 System shutting down"
        _reset(server)
        return "221 never read"


class DataFails(Inbox):
    """Fails before or while answering DATA: a 554 answer, or a reset in place of the answer."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.how == "reset at RCPT":
            _reset(server)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.how == "554":
            return "554 5.7.1 Message rejected as spam"
        _reset(server)  # the body has arrived; the answer never will
        return "250 never read"


def _reset(server) -> None:
    """Drop the client's connection with a TCP reset (SO_LINGER 0), not a polite close."""
    sock = server.transport.get_extra_info("socket")
    linger = struct.pack("ii", 1, 0) if os.name == "posix" else struct.pack("HH", 1, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    server.transport.abort()


@contextlib.contextmanager
def custom_server(handler: Inbox, mode: str, cert, **kw) -> Iterator[int]:
    port = free_port()
    params: dict = {"authenticator": handler.authenticator, "auth_required": True, "auth_require_tls": False}
    if mode == "ssl":
        params["ssl_context"] = server_context(cert)
    params.update(kw)
    controller = aiosmtpd_controller.Controller(handler, hostname="127.0.0.1", port=port, **params)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.mark.parametrize(("how", "mode"), [("reply", "plain"), ("reply", "ssl"), ("reset", "ssl"), ("reset", "plain")])
def test_a_failed_quit_after_250_to_data_is_sent_not_failed(how, mode, cert, caplog) -> None:
    """Reporting this Failed invites the strategy to send the order again: a duplicate."""
    inbox = QuitFails(how)
    with caplog.at_level(logging.INFO, logger="hkrt.broker"), custom_server(inbox, mode, cert) as port:
        b = broker(port, cert if mode == "ssl" else None, security="ssl" if mode == "ssl" else "none")
        r = b.buy(T0, "SH", "600000", 10.0, 1000)
    assert r.status == OrderStatus.Sent, r.error
    assert len(inbox.envelopes) == 1 and inbox.messages()[0]["Message-ID"] == r.order_id
    assert b.sent_count == 1 and b.last_error == ""
    assert not [rec for rec in caplog.records if rec.name.startswith("hkrt") and rec.levelno >= logging.WARNING]
    if how == "reply":  # the error reply is noted, below WARNING: nothing is lost
        assert [rec.code for rec in caplog.records if "QUIT" in rec.getMessage()] == [421]


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("554", "SMTPDataError 554 5.7.1 Message rejected as spam"),
        ("reset at RCPT", "failed during MAIL/RCPT: SMTPServerDisconnected"),
        ("reset in DATA", "failed during DATA: SMTPServerDisconnected"),
    ],
)
def test_a_failure_before_the_250_to_data_stays_failed_with_its_reason(how, expected, cert) -> None:
    inbox = DataFails(how)
    with custom_server(inbox, "plain", cert) as port:
        b = broker(port, None, security="none")
        r = b.buy(T0, "SH", "600000", 10.0, 1000)
    assert r.status == OrderStatus.Failed and expected in r.error, r.error
    # the server may have stored a message whose answer was lost: the text says to look before resending
    assert ("check the mailbox before resending" in r.error) == (how == "reset in DATA")
    assert b.sent_count == 0


# ---------------------------------------------------------------------------- no secret in logs or errors
SECRET = "s3cr3t +/&=%pw"  # URL-encoding changes it; smtplib sends only ASCII passwords


def secret_encodings(secret: str, user: str) -> dict[str, str]:
    raw = secret.encode()
    forms = {
        "plain": secret,
        "base64": base64.b64encode(raw).decode(),
        "base64 url-safe": base64.urlsafe_b64encode(raw).decode(),
        "AUTH PLAIN blob": base64.b64encode(b"\0" + user.encode() + b"\0" + raw).decode(),
        "quote": urllib.parse.quote(secret, safe=""),
        "quote lower-case": urllib.parse.quote(secret, safe="").lower(),
        "quote_plus": urllib.parse.quote_plus(secret),
    }
    for offset in (1, 2):  # the password inside a longer blob, at each alignment base64 has
        forms[f"base64 at offset {offset}"] = base64.b64encode(b"x" * offset + raw + b"yz").decode()
    return forms


def base64_hides(text: str, secret: str) -> bool:
    """True when no run of base64 characters in ``text`` decodes, at any alignment, to bytes holding
    ``secret`` (an independent check of the redaction, which works from the encoded side)."""
    raw = secret.encode()
    for run in re.findall(r"[A-Za-z0-9+/_-]{4,}", text):
        for start in range(4):
            chunk = run[start:]
            chunk = chunk[: len(chunk) - (len(chunk) % 4 == 1)]  # one odd character holds no whole byte
            chunk += "=" * (-len(chunk) % 4)
            for alphabet in (None, b"-_"):
                try:
                    decoded = base64.b64decode(chunk, altchars=alphabet) if chunk else b""
                except ValueError:
                    continue
                if raw in decoded:
                    return False
    return True


def hkrt_log_text(caplog: pytest.LogCaptureFixture) -> str:
    from hkrt.core.logs import record_fields

    return "\n".join(
        f"{rec.getMessage()} {record_fields(rec)}" for rec in caplog.records if rec.name.startswith("hkrt")
    )


class EchoingServer(Inbox):
    """A hostile or misconfigured server whose 535 reply echoes what the client sent for AUTH."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[str] = []

    async def handle_AUTH(self, server, session, envelope, args) -> str:  # AUTH PLAIN <blob>: echoed as sent
        self.replies.append(f"535 5.7.8 Authentication failed: AUTH {' '.join(args)}")
        return self.replies[-1]


class EchoingLogin(Inbox):
    """LOGIN sends the password alone, base64-encoded, after a challenge: echoed in every form."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[str] = []

    def authenticator(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        password = auth_data.password.decode()
        encoded = base64.b64encode(auth_data.password).decode()
        reply = f"535 5.7.8 bad password {encoded} (raw {password}, form password={urllib.parse.quote_plus(password)})"
        self.replies.append(reply)
        return AuthResult(success=False, handled=False, message=reply)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_server_echoing_the_auth_line_never_puts_the_password_in_logs_or_errors(mechanism, cert, caplog) -> None:
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    inbox = EchoingServer() if mechanism == "PLAIN" else EchoingLogin()
    with (
        caplog.at_level(logging.DEBUG, logger="hkrt"),
        custom_server(inbox, "ssl", cert, auth_exclude_mechanism=[other]) as port,
    ):
        b = broker(port, cert, password=SECRET)
        r = b.buy(T0, "SH", "600000", 10.0, 1000)
    assert r.status == OrderStatus.Failed and "535" in r.error and "refused" in r.error
    forms = secret_encodings(SECRET, USER)
    sent = "\n".join(inbox.replies)
    # the server did echo the password (so the checks below can fail) ...
    echoed = {"PLAIN": ["AUTH PLAIN blob"], "LOGIN": ["base64", "plain", "quote_plus"]}
    assert all(forms[name] in sent for name in echoed[mechanism]), sent
    # ... and none of its forms reached the result, last_error, repr or any hkrt log line
    texts = {"error": r.error, "last_error": b.last_error, "repr": repr(b), "logs": hkrt_log_text(caplog)}
    assert "failed" in texts["logs"]
    leaks = [(where, name) for where, text in texts.items() for name, form in forms.items() if form in text]
    assert leaks == []
    assert all(base64_hides(text, SECRET) for text in texts.values())
    assert not base64_hides(sent, SECRET)  # the checker does find the password in what the server sent


def test_redact_secrets_forms() -> None:
    from hkrt.broker.mail import redact_secrets

    forms = secret_encodings(SECRET, USER)
    text = " | ".join(f"{name}: {form}" for name, form in forms.items())
    out = redact_secrets(text, [SECRET, None, ""])
    assert [name for name, form in forms.items() if form in out] == [] and base64_hides(out, SECRET)
    assert out.count("***") == len(forms) and "AUTH PLAIN blob: ***" in out and not base64_hides(text, SECRET)
    # JSON and repr escapes of a non-ASCII secret, and base64 of a JSON body holding it
    pw = 'pä"ss\\wörd'
    body = json.dumps({"user": "acct", "password": pw})
    text = f"{body} {json.dumps(pw, ensure_ascii=False)} {pw!r} {base64.b64encode(body.encode()).decode()}"
    out = redact_secrets(text, [pw])
    assert "ss" not in out.replace("password", "") and "acct" in out and out.count("***") == 4
    escaped = json.dumps(pw)[1:-1]
    assert base64_hides(out, pw) and base64_hides(out, escaped) and not base64_hides(text, escaped)
    # ordinary words survive; a secret too short for a base64 match is still hidden plainly
    assert redact_secrets("user bot@example.com ok", ["xy"]) == "user bot@example.com ok"
    assert redact_secrets("key xy here", ["xy"]) == "key *** here"
