"""Signals and their combination, without a bus: the vote and the fixed weights on hand-computed cases, their
properties (score in [-1, 1], the sources' order irrelevant, a zero-weight source changing nothing), and the
per-source split of fills whose parts add up to the account (docs/signals.md)."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hkrt.bus import SignalEvent
from hkrt.strategy.book import Book
from hkrt.strategy.signals import Decision, live_signals, make_signal, vote, weighted_target
from hkrt.strategy.signals_attribution import ACCOUNT, Attribution, _split_sell

T0 = dt.datetime(2026, 11, 20, 10, 1)


def sig(source: str, action: str, confidence: float = 1.0, when: dt.datetime = T0) -> SignalEvent:
    return SignalEvent(source, "SH600000", action, confidence, "", when)


# ------------------------------------------------------------------------------ hand cases
def test_a_vote_under_the_threshold_decides_nothing_and_over_it_shares_go_to_its_voters() -> None:
    weights = {"macd": 2.0, "rsi": 1.0, "boll": 1.0}  # W = 4
    signals = {"macd": sig("macd", "buy", 0.9), "rsi": sig("rsi", "buy", 0.6), "boll": sig("boll", "sell", 0.8)}
    # (2 x 0.9 + 1 x 0.6 - 1 x 0.8) / 4 = 1.6 / 4 = 0.4
    assert vote(signals, weights, 0.5) == Decision("vote", pytest.approx(0.4), None)
    decided = vote(signals, weights, 0.4)
    assert decided.target == 1.0 and decided.value == pytest.approx(0.4)
    # the buys' weighted confidences 1.8 and 0.6: 0.75 and 0.25; the seller has no share
    assert decided.shares == {"macd": pytest.approx(0.75), "rsi": pytest.approx(0.25)}


def test_a_vote_to_be_out_a_flat_abstains_and_an_absent_source_dilutes() -> None:
    weights = {"macd": 2.0, "rsi": 1.0, "boll": 1.0}
    signals = {"macd": sig("macd", "sell", 1.0), "rsi": sig("rsi", "flat", 1.0), "boll": sig("boll", "sell", 0.5)}
    decided = vote(signals, weights, 0.5)  # (-2 - 0.5) / 4 = -0.625
    assert (decided.value, decided.target) == (pytest.approx(-0.625), 0.0)
    assert decided.shares == {"macd": pytest.approx(0.8), "boll": pytest.approx(0.2)}
    alone = vote({"rsi": sig("rsi", "buy", 1.0)}, weights, 0.5)  # 1 / 4: the others abstain
    assert (alone.value, alone.target) == (pytest.approx(0.25), None)
    assert vote({"macd": sig("macd", "buy", 1.0)}, weights, 0.5).target == 1.0  # 2 / 4 reaches 0.5


def test_fixed_weights_hold_each_sources_share_and_credit_what_moved() -> None:
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    first = weighted_target({"a": sig("a", "buy"), "b": sig("b", "buy", 0.5), "c": sig("c", "sell")}, weights, {})
    assert first.target == pytest.approx(0.65)  # 0.5 x 1 + 0.3 x 0.5 + 0.2 x 0
    assert first.shares == {"a": pytest.approx(0.5 / 0.65), "b": pytest.approx(0.15 / 0.65)}
    assert first.parts == {"a": 1.0, "b": 0.5, "c": 0.0}
    # a turns flat: the target falls by a's 0.5, the sell is a's alone
    second = weighted_target({"a": sig("a", "flat"), "b": sig("b", "buy", 0.5)}, weights, first.parts)
    assert (second.target, second.shares) == (pytest.approx(0.15), {"a": pytest.approx(1.0)})
    # c buys and b leaves at once: up 0.2 (c), down 0.15 (b): the target rises, c's decision
    third = weighted_target({"a": sig("a", "flat"), "c": sig("c", "buy")}, weights, second.parts)
    assert (third.target, third.shares) == (pytest.approx(0.2), {"c": pytest.approx(1.0)})


def test_a_signal_counts_for_max_age_market_seconds() -> None:
    latest = {"a": sig("a", "buy", when=T0), "b": sig("b", "buy", when=T0 - dt.timedelta(seconds=61))}
    now = T0 + dt.timedelta(seconds=3)
    assert set(live_signals(latest, now, None)) == {"a", "b"}
    assert set(live_signals(latest, now, 64)) == {"a", "b"}
    assert set(live_signals(latest, now, 63.9)) == {"a"}
    assert set(live_signals(latest, T0, 0)) == {"a"}  # 0: the decision's own cycle only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("SH600000", "long", 1.0), "signal action 'long' is not one of buy, sell, flat"),
        (("SH600000", "buy", 1.5), "signal confidence must be a number within 0..1, not 1.5"),
        (("SH600000", "buy", math.nan), "signal confidence must be a number within 0..1, not nan"),
        (("SH600000", "buy", True), "signal confidence must be a number within 0..1, not True"),
        (("SH600000", "buy", "high"), "signal confidence must be a number within 0..1, not 'high'"),
        (("60000X", "buy", 1.0), "signal symbol '60000X' is not a symbol"),
    ],
)
def test_a_bad_signal_is_one_value_error_naming_it(args: tuple[str, str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        make_signal("a", args[0], args[1], args[2], "", T0)  # type: ignore[arg-type]


def test_a_signal_is_normalised_and_dated() -> None:
    assert make_signal("a", "600000.SH", "flat", 0, "why", T0) == SignalEvent("a", "SH600000", "flat", 0.0, "why", T0)


def test_bad_weights_and_thresholds_are_refused() -> None:
    one = {"a": sig("a", "buy")}
    with pytest.raises(ValueError, match="weights are all 0"):
        vote(one, {"a": 0.0}, 0.5)
    with pytest.raises(ValueError, match="weight of 'a' must be a finite number >= 0, not -1"):
        vote(one, {"a": -1}, 0.5)
    with pytest.raises(ValueError, match=r"threshold must be within \(0, 1\], not 0"):
        vote(one, {"a": 1}, 0)


# ------------------------------------------------------------------------------ properties
ACTIONS = st.sampled_from(["buy", "sell", "flat"])
SOURCES = st.dictionaries(
    st.sampled_from(["s1", "s2", "s3", "s4", "s5"]),
    st.tuples(st.floats(0, 10), st.one_of(st.none(), st.tuples(ACTIONS, st.floats(0, 1)))),
    min_size=1,
).filter(lambda d: math.fsum(w for w, _ in d.values()) > 0)


def split(spec: dict[str, tuple[float, tuple[str, float] | None]]) -> tuple[dict[str, float], dict[str, SignalEvent]]:
    weights = {s: w for s, (w, _) in spec.items()}
    signals = {s: sig(s, a, c) for s, (_, x) in spec.items() if x is not None for a, c in [x]}
    return weights, signals


@given(SOURCES, st.floats(0.01, 1), st.randoms(use_true_random=False))
def test_vote_properties(spec: dict, threshold: float, rnd: random.Random) -> None:
    weights, signals = split(spec)
    decided = vote(signals, weights, threshold)
    assert -1.0 <= decided.value <= 1.0
    assert (decided.target is None) == (abs(decided.value) < threshold - 1e-12)
    if decided.shares:
        assert math.fsum(decided.shares.values()) == pytest.approx(1.0)
        assert all(v > 0 and weights[s] > 0 for s, v in decided.shares.items())
    # the order of the sources is irrelevant
    names = list(weights)
    rnd.shuffle(names)
    shuffled = vote({s: signals[s] for s in names if s in signals}, {s: weights[s] for s in names}, threshold)
    assert shuffled == decided
    # a source of weight 0 changes nothing, whatever it says
    muted = vote({**signals, "zero": sig("zero", "sell", 1.0)}, {**weights, "zero": 0.0}, threshold)
    assert muted == decided


@given(SOURCES, SOURCES, st.randoms(use_true_random=False))
def test_weights_properties(spec: dict, before: dict, rnd: random.Random) -> None:
    weights, signals = split(spec)
    previous = {s: weighted_target(split(before)[1], weights, {}).parts.get(s, 0.0) for s in weights}
    decided = weighted_target(signals, weights, previous)
    assert 0.0 <= decided.target <= 1.0  # type: ignore[operator]
    if decided.shares:
        assert math.fsum(decided.shares.values()) == pytest.approx(1.0)
    names = list(weights)
    rnd.shuffle(names)
    assert weighted_target({s: signals[s] for s in names if s in signals}, {s: weights[s] for s in names},
                           previous) == decided  # fmt: skip
    assert weighted_target({**signals, "zero": sig("zero", "buy")}, {**weights, "zero": 0.0}, previous) == decided


# ------------------------------------------------------------------------------ attribution
def test_a_sell_comes_first_out_of_its_deciders_holdings_then_the_others() -> None:
    holdings = {"a": 600.0, "b": 300.0, ACCOUNT: 100.0}
    assert _split_sell(300, holdings, {"b"}) == {"b": 300.0}
    assert _split_sell(500, holdings, {"b"}) == {"b": 300.0, "a": pytest.approx(200 * 600 / 700),
                                                  ACCOUNT: pytest.approx(200 * 100 / 700)}  # fmt: skip
    assert _split_sell(90, holdings, {"a", "b"}) == {"a": pytest.approx(60.0), "b": pytest.approx(30.0)}
    assert _split_sell(1200, holdings, {"a"})[ACCOUNT] == pytest.approx(300.0)  # 200 nobody held: the account's


def test_fills_split_by_hand() -> None:
    att = Attribution(["a", "b"])
    att.order_placed("o1", {"a": 0.75, "b": 0.25})
    att.fill("o1", "SH600000", "buy", 10.0, 1000, 5.0, held_after=1000)
    rows = att.rows(lambda s: 10.5)
    assert (rows["a"]["bought"], rows["a"]["fees"], rows["b"]["bought"]) == (750.0, 3.75, 250.0)
    assert rows["a"]["unrealized_pnl"] == pytest.approx(750 * 10.5 - 7503.75)
    att.order_placed("o2", {"b": 1.0})  # b decided the sell: its 250 first, then a's 750
    att.fill("o2", "SH600000", "sell", 11.0, 1000, 16.0, held_after=0)
    rows = att.rows(lambda s: 11.0)
    assert rows["b"]["realized_pnl"] == pytest.approx(250 * 11 - 4.0 - 2501.25)  # 244.75
    assert rows["a"]["realized_pnl"] == pytest.approx(750 * 11 - 12.0 - 7503.75)  # 734.25
    # the round trip's P&L: 11,000 - 16 - 10,005 = 979
    assert rows["a"]["pnl"] + rows["b"]["pnl"] == pytest.approx(979.0)
    assert rows["a"]["market_value"] == rows["b"]["market_value"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 30), st.floats(5, 15), st.integers(0, 3),
                          st.floats(0.05, 1)), min_size=1, max_size=40), st.booleans())  # fmt: skip
def test_the_sources_parts_add_up_to_the_account_through_any_fills(steps: list, own_orders: bool) -> None:
    """Buys and sells (sells never more than held) of one symbol, each decided by a random mix of three
    sources (or by the account itself): positions never negative, their sum the account's, and the P&L parts
    summing to the book's."""
    book = Book(10_000_000.0)
    att = Attribution(["a", "b", "c"])
    for n, (buy, lots, price, who, mix) in enumerate(steps):
        price = round(price, 2)
        held = book.held("SH600000")
        shares = lots * 100 if buy else min(lots * 100, held)
        if shares == 0:
            continue
        cid = f"o{n}"
        if not own_orders:
            who %= 3
        if who < 3:  # an aggregated order: a random split between a source and the next
            first, second = "abc"[who], "abc"[(who + 1) % 3]
            att.order_placed(cid, {first: mix, second: 1 - mix} if mix < 1 else {first: 1.0})
        fees = round(price * shares * 0.0003 + 1, 2)
        side = "buy" if buy else "sell"
        book.fill(T0, "SH600000", side, price, shares, cid, fees=fees)
        att.fill(cid, "SH600000", side, price, shares, fees, book.held("SH600000"))
        rows = att.rows(lambda s, last=price: last)
        assert all(h.shares >= -1e-9 for src in att.sources.values() for h in src.holdings.values())
        held_by_sources = math.fsum(h.shares for src in att.sources.values() for h in src.holdings.values())
        assert held_by_sources <= book.held("SH600000") + 1e-6
        if not own_orders:  # only aggregated orders: every share and yuan is a source's
            pnl = book.cash + book.held("SH600000") * price - book.initial_cash
            assert math.fsum(r["pnl"] for r in rows.values()) == pytest.approx(pnl, abs=1e-6)
            assert math.fsum(r["fees"] for r in rows.values()) == pytest.approx(book.fees, abs=1e-9)
            assert held_by_sources == pytest.approx(book.held("SH600000"), abs=1e-6)
