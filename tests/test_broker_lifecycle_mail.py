"""The mail broker reports no lifecycle: a person executes the order it mails, so the order stays
``submitted`` and the book does not change (docs/broker-mail.md, "Order lifecycle")."""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest

from hkrt.broker import OrderRequest, OrderSide, OrderStatus
from hkrt.broker.mail import MailOrderBroker
from hkrt.bus import EventBus, ExecutionReport
from hkrt.strategy.book import Book
from hkrt.strategy.order import Order

controller = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd runs the local SMTP server")
handlers = pytest.importorskip("aiosmtpd.handlers")


class Inbox(handlers.Message):  # type: ignore[misc,name-defined]
    """Keeps each delivered message (aiosmtpd parses it)."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[object] = []

    def handle_message(self, message: object) -> None:
        self.raw.append(message)


def test_a_mailed_order_stays_submitted_and_the_book_does_not_change() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    smtp = controller.Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    bus = EventBus().start()
    book = Book(cash=100_000.0)
    order = Order("m-1", "SH600000", "buy", 1000, order_type="limit", price=10.0, broker="MailOrderBroker")

    def apply(report: ExecutionReport) -> None:  # what the order manager does with a report
        if report.kind == "fill":
            order.add_fill(report.shares, report.price, 0.0, report.datetime)
            book.fill(
                report.datetime or dt.datetime.now(), report.symbol, report.side, report.price, report.shares, None
            )
        else:
            order.move_to(report.kind, report.datetime, report.reason)  # the kinds are statuses

    bus.subscribe(ExecutionReport, apply)
    try:
        broker = MailOrderBroker("127.0.0.1", port=port, security="none", to="trader@example.com",
                                 sender="hkrt@example.com", user=None, password=None)  # fmt: skip
        assert getattr(broker, "attach", None) is None  # nothing for Strategy.attach to start: no reports
        r = broker.submit(OrderSide.Buy, OrderRequest(dt.datetime(2026, 11, 20, 10, 0), "SH", "600000", 10.0, 1000,
                                                      client_order_id="m-1"))  # fmt: skip
        assert r.status == OrderStatus.Sent and r.order_id.startswith("<")  # the Message-ID
        order.broker_order_id = r.order_id
        assert len(inbox.raw) == 1
        time.sleep(0.2)
        assert bus.wait_idle()
    finally:
        bus.stop()
        smtp.stop()
    assert bus.published == 0  # no report: the lifecycle ends at submitted
    assert (order.status, order.filled_shares, order.is_open) == ("submitted", 0, True)
    assert (book.cash, book.positions, list(book.trades)) == (100_000.0, {}, [])
    assert broker.get_asset_info() == "" and "no account" in broker.last_error  # nothing to reconcile against
