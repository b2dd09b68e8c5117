"""hkrt run with real brokers from settings: mail (a real local SMTP server) and easytrader
(easytrader's own HTTP server with a test user behind it), over a simulated day."""

from __future__ import annotations

import csv
import email
import email.policy
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from hkrt.strategy.broker_config import describe, load_config, make_broker, settings

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "examples/daily_rebalance.py", "--source", "sim", "--date", "2026-11-20", "--symbols", "50"]


def hkrt_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hkrt", *args], capture_output=True, text=True, timeout=180,
                          cwd=ROOT, env={**os.environ, **env})  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_settings_come_from_the_config_file_and_the_environment_wins(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "hkrt.toml"
    config.write_text('[broker.mail]\nhost = "smtp.example.com"\nto = "a@example.com"\npassword = "from-file"\n')
    monkeypatch.setenv("HKRT_MAIL_PASSWORD", "from-env")
    values = settings("mail", load_config(config))
    assert values == {"host": "smtp.example.com", "to": "a@example.com", "password": "from-env"}
    assert describe(values)["password"] == "***" and describe(values)["host"] == "smtp.example.com"
    bad = tmp_path / "bad.toml"
    bad.write_text("[broker.mail\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ValueError, match="unknown broker 'ib'"):
        make_broker("ib", {}, cash=0)
    monkeypatch.delenv("HKRT_MAIL_PASSWORD")
    with pytest.raises(ValueError, match="HKRT_EASYTRADER_HOST"):
        make_broker("easytrader", {}, cash=0)


def test_a_simulated_day_mails_each_order_through_a_real_smtp_server(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.raw: list[bytes] = []

        async def handle_DATA(self, server, session, envelope) -> str:
            self.raw.append(envelope.original_content)
            return "250 OK"

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = {"HKRT_MAIL_HOST": "127.0.0.1", "HKRT_MAIL_PORT": str(port), "HKRT_MAIL_SECURITY": "none",
               "HKRT_MAIL_TO": "trader@example.com", "HKRT_MAIL_SENDER": "hkrt@example.com",
               "HKRT_TEST_FILLS": "instant"}  # fmt: skip
        out = hkrt_cli(*RUN, "--broker", "test", "--broker", "mail", "--out", str(tmp_path), env=env)
    finally:
        controller.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    with (tmp_path / "orders.csv").open() as f:
        orders = list(csv.DictReader(f))  # one row per order: the paper account (primary) filled them
    assert len(orders) == 5 and {(o["broker"], o["status"]) for o in orders} == {("TestOrderBroker", "filled")}
    with (tmp_path / "broker_orders.csv").open() as f:
        legs = [o for o in csv.DictReader(f) if o["broker"] == "MailOrderBroker"]  # the mirror's answers
    assert len(legs) == 5 and {o["result"] for o in legs} == {"Sent"}
    assert {o["client_order_id"] for o in legs} == {o["client_order_id"] for o in orders}
    mails = [email.message_from_bytes(raw, policy=email.policy.default) for raw in inbox.raw]
    assert sorted(m["Subject"] for m in mails) == sorted(
        f"[hkrt] BUY {o['symbol']} {o['shares']} @ {float(o['price']):.2f}" for o in orders
    )
    assert {m["Message-ID"] for m in mails} == {o["broker_order_id"] for o in legs}


def test_a_simulated_day_places_orders_through_easytraders_own_server() -> None:
    from easytrader_user import EasyTraderServer, FakeThsUser

    user = FakeThsUser(cash=1_000_000)
    server = EasyTraderServer().start()
    server.install(user)
    try:
        env = {"HKRT_EASYTRADER_HOST": "127.0.0.1", "HKRT_EASYTRADER_PORT": str(server.port),
               "HKRT_EASYTRADER_CLIENT": "ths"}  # fmt: skip
        out = hkrt_cli(*RUN, "--broker", "easytrader", env=env)
    finally:
        server.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    buys = [r for r in server.requests if r[1] == "/buy"]
    assert len(buys) == 5
    assert all(b[2]["amount"] % 100 == 0 and b[2]["amount"] > 0 for b in buys)
    # easytrader answers Sent and (in this test) reports nothing: the orders stay submitted, the book waits
    assert "orders (5)" in out.stdout and "submitted" in out.stdout and "cash 1,000,000.00" in out.stdout


def test_book_broker_starts_the_book_from_the_accounts_cash_and_positions(tmp_path: Path) -> None:
    """A live strategy restarted mid-day must know what its account holds: --book broker opens the book (and the
    ledger) with the broker's cash and positions; a broker with no account, or --cash beside it, is one line."""
    from easytrader_user import EasyTraderServer, FakeThsUser

    user = FakeThsUser(cash=500_000, positions={"600000": (1200, 9.5), "000001": (300, 12.0)})
    server = EasyTraderServer().start()
    server.install(user)
    try:
        env = {"HKRT_EASYTRADER_HOST": "127.0.0.1", "HKRT_EASYTRADER_PORT": str(server.port),
               "HKRT_EASYTRADER_CLIENT": "ths"}  # fmt: skip
        out = hkrt_cli(*RUN, "--broker", "easytrader", "--book", "broker", env=env)
        both = hkrt_cli(*RUN, "--broker", "easytrader", "--book", "broker", "--cash", "1000", env=env)
    finally:
        server.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "book: from broker easytrader: cash 500,000.00, 2 positions (SH600000 1200, SZ000001 300)" in out.stdout
    assert "initial cash 500,000.00" in out.stdout  # the P&L is the account's, not a made-up million
    assert both.returncode == 2 and "--cash and --book broker do not go together" in both.stderr
    mail = hkrt_cli(
        *RUN,
        "--broker",
        "mail",
        "--book",
        "broker",
        env={
            "HKRT_MAIL_HOST": "127.0.0.1",
            "HKRT_MAIL_PORT": str(free_port()),
            "HKRT_MAIL_TO": "a@b.c",
            "HKRT_MAIL_SENDER": "h@b.c",
            "HKRT_MAIL_SECURITY": "none",
        },
    )
    errors = [line for line in mail.stderr.splitlines() if line.startswith("Error:")]
    assert mail.returncode == 2 and len(errors) == 1, mail.stderr
    assert (
        errors[0]
        == "Error: --book broker: broker mail keeps no account (mails every order (SMTP): a notifier, no account)"
    )
    assert "Traceback" not in out.stderr + both.stderr + mail.stderr


def test_config_path_expands_the_home_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))  # what expanduser reads on Windows
    (tmp_path / "hkrt.toml").write_text('[broker.mail]\nhost = "smtp.example.com"\n')
    assert load_config("~/hkrt.toml") == {"mail": {"host": "smtp.example.com"}}
    with pytest.raises(ValueError, match=f"config file {re.escape(str(tmp_path / 'missing.toml'))} does not exist"):
        load_config("~/missing.toml")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits; Windows uses ACLs")
@pytest.mark.parametrize(
    ("mode", "secret", "warned"),
    [(0o644, True, "group and others"), (0o640, True, "group"), (0o604, True, "others"), (0o600, True, ""),
     (0o644, False, "")],
)  # fmt: skip
def test_a_config_file_with_a_secret_readable_by_others_is_warned_about(
    tmp_path: Path, caplog, mode: int, secret: bool, warned: str
) -> None:
    config = tmp_path / "hkrt.toml"
    text = '[broker.mail]\nhost = "smtp.example.com"\n'
    config.write_text(text + ('password = "from-file"\n[broker.easytrader]\ncomm_password = "c"\n' if secret else ""))
    config.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="hkrt"):
        assert load_config(config)["mail"]["host"] == "smtp.example.com"
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("hkrt")]
    if not warned:
        assert lines == []
        return
    assert lines == [
        f"config file {config} holds a secret (broker.mail.password, broker.easytrader.comm_password) and is "
        f"readable by {warned} (mode {mode:03o}): run chmod 600 {config}"
    ]
    assert "from-file" not in lines[0]


def test_easytrader_login_from_settings_has_the_deadline_and_is_scrubbed(monkeypatch) -> None:
    from easytrader_user import EasyTraderServer, FakeThsUser

    password = "s3crét +/&=%pw"
    user = FakeThsUser(cash=1_000.0)
    with EasyTraderServer({"ht_client": user}) as server:
        for key, value in {"HOST": server.host, "PORT": str(server.port), "CLIENT": "ht_client", "USER": "acct",
                           "PASSWORD": password, "TIMEOUT": "0.5"}.items():  # fmt: skip
            monkeypatch.setenv(f"HKRT_EASYTRADER_{key}", value)
        broker = make_broker("easytrader", {}, cash=0)
        assert user.logged_in and broker.get_asset_info()  # logged in through the server

        server.fail_with, server.fail_echo = 500, True  # an error page echoing the login request
        with pytest.raises(ValueError, match=r"the easytrader server at 127\.0\.0\.1: login refused or failed") as err:
            make_broker("easytrader", {}, cash=0)
        assert "non-JSON body" in str(err.value)
        for form in (password, urllib.parse.quote_plus(password), json.dumps(password)[1:-1]):
            assert form not in str(err.value)

        server.fail_with, server.trickle = None, 0.1  # the login answer trickles: cut at the deadline
        start = time.monotonic()
        with pytest.raises(ValueError, match=r"0\.5 s deadline"):
            make_broker("easytrader", {}, cash=0)
        assert time.monotonic() - start < 0.9
