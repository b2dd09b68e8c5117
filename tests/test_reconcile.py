"""reconcile(): a strategy's book against the broker's asset snapshot, hand-built on both sides."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest

from hkrt.broker.asset import AssetInfo, BrokerPosition
from hkrt.strategy.reconcile import PositionDifference, reconcile, reconcile_broker

WHEN = dt.datetime(2026, 11, 20, 14, 50)


def asset(cash: float, *holdings: tuple[str, str, float]) -> AssetInfo:
    return AssetInfo(cash, [BrokerPosition(m, c, n, cost_price=10.0) for m, c, n in holdings], WHEN)


def test_agreeing_book_and_broker_are_ok_and_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hkrt.strategy.reconcile")
    r = reconcile(
        {"SH600000": 1000, "SZ000001": 500}, 50_000.0, asset(50_000.004, ("SH", "600000", 1000), ("SZ", "000001", 500))
    )
    assert r.ok and r.positions == [] and r.cash_ok
    assert r.cash_difference == pytest.approx(0.004)
    assert caplog.records == []
    assert str(r).startswith("book and broker agree")


def test_every_difference_is_listed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hkrt.strategy.reconcile")
    book = {"SH600000": 1000, "SZ000001": 500, "SH600519": 0}  # 600519: held with 0 = not held
    broker = asset(48_000.0, ("SH", "600000", 800), ("BJ", "430047", 200), ("SH", "600519", 0))
    r = reconcile(book, 50_000.0, broker)
    assert not r.ok
    assert r.positions == [
        PositionDifference("BJ430047", 0, 200),  # at the broker only (an order typed by hand?)
        PositionDifference("SH600000", 1000, 800),
        PositionDifference("SZ000001", 500, 0),  # in the book only
    ]
    assert [d.difference for d in r.positions] == [200, -200, -500]
    assert r.cash_difference == pytest.approx(-2000.0) and not r.cash_ok
    lines = [rec.getMessage() for rec in caplog.records]
    assert len(lines) == 4 and all(rec.levelno == logging.WARNING for rec in caplog.records)
    assert "SH600000 book 1000 shares, broker 800 shares (-200)" in lines[1]
    assert "cash book 50000.00 yuan, broker 48000.00 yuan (-2000.00)" in lines[3]
    assert caplog.records[0].symbol == "BJ430047" and caplog.records[0].broker == 200  # type: ignore[attr-defined]
    assert "SZ000001 book 500 broker 0" in str(r)


def test_cash_tolerance_and_merged_shareholder_rows() -> None:
    # one stock under two shareholder accounts: the broker holds their sum
    two_rows = asset(10_000.5, ("SH", "600000", 300), ("SH", "600000", 200))
    assert reconcile({"sh600000": 500}, 10_000.0, two_rows, cash_tolerance=1.0).ok
    r = reconcile({"SH600000": 500}, 10_000.0, two_rows)  # default tolerance: 0.01 yuan
    assert not r.ok and r.positions == [] and r.cash_difference == pytest.approx(0.5)
    with pytest.raises(ValueError, match="cash_tolerance"):
        reconcile({}, 0.0, two_rows, cash_tolerance=-1)


def test_a_stale_broker_snapshot_is_flagged(caplog: pytest.LogCaptureFixture) -> None:
    from hkrt.adapters.easytrader.mapping import EasyTraderAsset

    caplog.set_level(logging.WARNING, "hkrt.strategy.reconcile")
    base = asset(1000.0, ("SZ", "000001", 100))
    stale = EasyTraderAsset(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}, stale=True)
    r = reconcile({}, 1000.0, stale)
    assert r.stale and r.broker_time == WHEN and r.positions == [PositionDifference("SZ000001", 0, 100)]
    assert "stale broker snapshot" in caplog.records[0].getMessage()
    assert not reconcile({"SZ000001": 100}, 1000.0, base).stale


def test_reconcile_broker_reads_the_brokers_asset_and_survives_one_without() -> None:
    from hkrt.broker import TestOrderBroker, crtOB

    paper = TestOrderBroker(cash=10_000.0)
    r = reconcile_broker(paper, {}, 10_000.0)
    assert r is not None and r.ok

    class NoAccount:  # buy/sell only, as a notifier: get_asset_info() answers ""
        def buy(self, code, price, num):
            return None

        def sell(self, code, price, num):
            return None

    assert reconcile_broker(crtOB(NoAccount(), "notifier"), {"SH600000": 100}, 0.0) is None
