"""Multi-day runs: consecutive simulated days in one strategy run (``run_sim(days=N)``), the same
days recorded and replayed as several journals (``run_replay([...])``), and the CLI's ``--days``.

Real parts: the in-process spot server on an nng socket, the strategy's agent, the paper broker
(T+1, fees, expiry at the close), the order emulator; journals written by a spot server's recorder.
Few symbols and a snapshot every 30 market seconds keep each day well under a second of work.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hkrt
import sim_journals
from hkrt.fetcher.sim import SimConfig, SimMarket, price_limit
from hkrt.strategy.runner import run_replay, run_sim

DAYS = [dt.date(2026, 11, 20), dt.date(2026, 11, 23), dt.date(2026, 11, 24)]  # Friday, Monday, Tuesday
SYMBOLS = 10
INTERVAL = 30.0  # market seconds between snapshots: 510 cycles a day
CONFIG = SimConfig(symbols=SYMBOLS, interval=INTERVAL)
CODES = ["SH600000", "SZ000001"]
BUY, SELL = CODES[0], CODES[0]


def played(market: SimMarket) -> list[dict[str, np.ndarray]]:
    return list(market.day_snapshots())


# ------------------------------------------------------------------ the simulated market
def test_the_following_day_opens_from_the_previous_close_with_limits_recomputed() -> None:
    config = SimConfig(symbols=60, interval=INTERVAL, suspended_share=0.1)
    first = SimMarket(DAYS[0], config)
    with pytest.raises(ValueError, match="has not been played to its 15:00 close"):
        SimMarket.following(first, DAYS[1])
    day1 = played(first)
    second = SimMarket.following(first, DAYS[1])
    day2 = played(second)
    close, yesterday = day1[-1]["close"], day2[0]["yesterday_close"]
    traded, suspended = close > 0, close == 0
    assert traded.any() and suspended.any()
    assert np.array_equal(yesterday[traded], close[traded])  # every trading symbol: its close
    assert np.array_equal(yesterday[suspended], day1[-1]["yesterday_close"][suspended])  # kept
    assert all(np.array_equal(s["yesterday_close"], yesterday) for s in day2)
    limits = np.array([price_limit(s.decode()) for s in second.symbols])
    live = day2[-1]["close"] > 0
    assert (day2[-1]["high"][live] <= np.round(yesterday * (1 + limits), 2)[live] + 1e-9).all()
    assert (day2[-1]["low"][live] >= np.round(yesterday * (1 - limits), 2)[live] - 1e-9).all()
    # the day's own draws are those of the standalone day: same suspensions, other prices
    alone = SimMarket(DAYS[1], config)
    assert np.array_equal(alone.snapshot(next(alone.times()))["close"] == 0, day2[0]["close"] == 0)
    assert not np.array_equal(alone._state.previous_close, yesterday)
    # deterministic for (seed, first day, days), and a standalone day is as before
    again = SimMarket(DAYS[0], config)
    played(again)
    assert np.array_equal(played(SimMarket.following(again, DAYS[1]))[-1]["close"], day2[-1]["close"])
    assert np.array_equal(played(SimMarket(DAYS[0], config))[-1]["close"], close)
    with pytest.raises(ValueError, match="must come after 2026-11-20"):
        SimMarket.following(first, DAYS[0])
    with pytest.raises(ValueError, match="one price per simulated symbol"):
        SimMarket(DAYS[1], config, previous_close=np.ones(3))


# ------------------------------------------------------------------ a strategy over three days
def trader() -> tuple[hkrt.Strategy, dict[str, Any]]:
    """Buys BUY at 10:00 on the first day and tries to sell it at 10:30 (T+1: refused); sells it at
    10:00 on the second day; places a day limit far below the market on the first day (expires at its
    close).  Records what it saw."""
    strategy = hkrt.Strategy(codes=CODES, ktypes=["MIN", "DAY"], cash=1_000_000, name="multiday")
    seen: dict[str, Any] = {"day_bars": [], "bars_before_day2": None, "sma_day2": None, "yesterday_close": {},
                            "cash_at_open": {}, "held_at_open": {}}  # fmt: skip

    @strategy.on_bar(ktypes=["MIN"])
    def on_min(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
        day, t = bar.datetime.date(), bar.datetime.time()
        if symbol != BUY:
            return
        seen["cash_at_open"].setdefault(day, strategy.cash)
        seen["held_at_open"].setdefault(day, strategy.position(BUY))
        if day == DAYS[0] and t == dt.time(10, 0):
            strategy.order_value(BUY, 100_000, remark="buy")
            other = strategy.last_price(CODES[1])
            assert other is not None
            strategy.order(CODES[1], 100, round(other * 0.92, 2), order_type="limit", remark="far below")
            # held by the emulator: a day stop that never triggers expires at the close; a bracket's
            # stop-loss leg (active from the next day, T+1) lives on until it fires or is cancelled
            strategy.order(CODES[1], 100, order_type="stop", stop_price=round(other * 1.5, 2), remark="day stop")
            strategy.order(CODES[1], 100, stop_loss=round(other * 0.5, 2), remark="protected")
        if day == DAYS[0] and t == dt.time(10, 30):
            strategy.order(SELL, -100, remark="same-day sell")
        if day == DAYS[1] and t == dt.time(9, 31):
            bars = strategy.kdata(BUY, "MIN", end=bar.datetime)
            seen["bars_before_day2"] = (len(bars), bars.index[0].date())
            seen["sma_day2"] = strategy.indicator(BUY, "MIN", "SMA", timeperiod=60)
        if day == DAYS[1] and t == dt.time(10, 0):
            strategy.order(SELL, -strategy.positions[SELL].sellable, remark="next-day sell")

    @strategy.on_bar(ktypes=["DAY"])
    def on_day(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
        seen["day_bars"].append((symbol, bar.datetime.date(), bar.close))

    @strategy.on_spot
    def on_spot(spot: Any) -> None:
        seen["yesterday_close"].setdefault((spot.symbol, spot.datetime.date()), spot.yesterday_close)

    return strategy, seen


def orders_of(strategy: hkrt.Strategy) -> list[tuple[Any, ...]]:
    """Orders without their client ids (each run tags them), in order."""
    o = strategy.orders.astype(object)
    o = o.where(o.notna(), None)  # NaN (no price) compares unequal to itself
    return list(o[["created", "symbol", "side", "order_type", "price", "shares", "filled_shares", "status",
                   "reason", "remark"]].itertuples(index=False, name=None))  # fmt: skip


@pytest.fixture(scope="module")
def sim_run() -> tuple[hkrt.Strategy, dict[str, Any], Any]:
    strategy, seen = trader()
    report = run_sim(strategy, DAYS[0], days=3, symbols=SYMBOLS, interval=INTERVAL, speed=1e9, handle_signals=False)
    return strategy, seen, report


def test_a_buy_on_day_one_is_refused_a_sale_that_day_and_sold_on_day_two(sim_run: Any) -> None:
    strategy, _, _ = sim_run
    orders = strategy.orders.set_index("remark")
    assert orders.loc["buy", "status"] == "filled" and orders.loc["buy", "created"].date() == DAYS[0]
    bought = int(orders.loc["buy", "filled_shares"])
    assert orders.loc["same-day sell", "status"] == "rejected" and "T+1" in orders.loc["same-day sell", "reason"]
    sold = orders.loc["next-day sell"]
    assert sold["status"] == "filled" and sold["created"].date() == DAYS[1] and int(sold["filled_shares"]) == bought
    trades = strategy.trades
    fills = [(t.date(), side) for t, side in zip(trades["datetime"], trades["side"], strict=True)]
    assert fills and set(fills) == {(DAYS[0], "buy"), (DAYS[1], "sell")}
    assert fills == sorted(fills)  # every buy on day 1, every sell on day 2
    assert strategy.performance().round_trips >= 1
    # a day order expires at its close, not later
    far = orders.loc["far below"]
    assert far["status"] == "expired" and far["updated"].date() == DAYS[0]
    stop = orders.loc["day stop"]
    assert stop["status"] == "expired" and stop["updated"].date() == DAYS[0] and stop["emulated"]
    entry = strategy.orders[strategy.orders["remark"] == "protected"].iloc[0]
    assert entry["status"] == "filled"
    legs = strategy.orders[strategy.orders["parent_id"] == entry["client_order_id"]]
    assert list(legs["order_type"]) == ["stop"] and list(legs["status"]) == ["submitted"]  # held across two nights
    assert bool(legs["emulated"].iloc[0]) and strategy.position(CODES[1]) == int(entry["filled_shares"])


def test_positions_cash_bars_and_the_equity_curve_carry_over(sim_run: Any) -> None:
    strategy, seen, report = sim_run
    assert report.days == DAYS and report.closed_days == DAYS and report.day_closed and report.complete
    assert report.gaps == 0 and report.days_played == 3
    # the position bought on day 1 is there at day 2's open, the cash it cost too
    trades = strategy.trades
    day1_buys = trades[(trades["side"] == "buy") & (trades["datetime"].dt.date == DAYS[0])]
    bought = int(day1_buys.loc[day1_buys["symbol"] == BUY, "shares"].sum())
    assert seen["held_at_open"] == {DAYS[0]: 0, DAYS[1]: bought, DAYS[2]: 0} and bought > 0
    assert strategy.position(BUY) == 0
    assert seen["cash_at_open"][DAYS[1]] == pytest.approx(1_000_000 - (day1_buys["amount"] + day1_buys["fees"]).sum())
    # a DAY bar per code and day, and day 2's previous close is day 1's close
    day_bars = {(s, d): c for s, d, c in seen["day_bars"]}
    assert set(day_bars) == {(s, d) for s in CODES for d in DAYS}
    for s in CODES:
        for before, after in itertools.pairwise(DAYS):
            assert seen["yesterday_close"][(s, after)] == pytest.approx(day_bars[(s, before)])
    # the agent's bars of day 1 are there on day 2: 240 MIN bars, and the indicator warmed over them
    assert seen["bars_before_day2"] == (241, DAYS[0])
    assert seen["sma_day2"] is not None and np.isfinite(seen["sma_day2"])
    assert len(strategy.kdata(BUY, "MIN")) == 240 * 3
    # the equity curve spans the three days
    curve = strategy.equity
    assert sorted({t.date() for t in curve.index}) == DAYS
    assert strategy.performance().days == 3


def test_a_later_day_alone_continues_the_run_a_spot_server_and_the_backfill_see_the_same_market(sim_run: Any) -> None:
    from hkrt.adapters import registry
    from hkrt.adapters.sim.data import SimMinuteHistory, continued_market

    strategy, _seen, _report = sim_run
    # the market of day 3 made alone (a node's spot server for day 3) is the run's day 3
    day1 = SimMarket(DAYS[0], CONFIG)
    played(day1)
    day2 = SimMarket.following(day1, DAYS[1])
    played(day2)
    day3 = played(SimMarket.following(day2, DAYS[2]))
    alone = played(continued_market(CONFIG, DAYS[2], DAYS[0]))
    assert all(np.array_equal(a["close"], b["close"]) for a, b in zip(alone, day3, strict=True))
    assert np.array_equal(continued_market(CONFIG, DAYS[0], DAYS[0]).snapshot(next(day1.times()))["close"],
                          SimMarket(DAYS[0], CONFIG).snapshot(next(day1.times()))["close"])  # fmt: skip
    with pytest.raises(ValueError, match="2026-11-21 is not a trading day"):
        continued_market(CONFIG, dt.date(2026, 11, 21), DAYS[0])
    # the backfill of day 2 is the bars the run's agent made on day 2, not a standalone day's
    until = dt.datetime.combine(DAYS[1], dt.time(15, 1))  # after the 15:00 snapshot
    history = SimMinuteHistory(CONFIG, first_day=DAYS[0]).minute_bars([BUY], DAYS[1], until)
    bars = strategy.kdata(BUY, "MIN")
    ran = bars[bars.index.date == DAYS[1]]
    assert len(history) == len(ran) == 240
    assert np.allclose(history["close"].to_numpy(), ran["close"].to_numpy())
    assert np.allclose(history["volume"].to_numpy(), ran["volume"].to_numpy())
    standalone = SimMinuteHistory(CONFIG).minute_bars([BUY], DAYS[1], until)
    assert not np.allclose(standalone["close"].to_numpy(), ran["close"].to_numpy())
    # the spot server's settings: --date continues --first-day; a first day after it is one line
    config = registry.data_config("sim", {"day": DAYS[1], "first_day": DAYS[0], "symbols": SYMBOLS})
    assert (config.day, config.first_day) == (DAYS[1], DAYS[0])
    with pytest.raises(Exception, match="first_day 2026-11-23 comes after the day played, 2026-11-20"):
        registry.data_config("sim", {"day": DAYS[0], "first_day": DAYS[1]})


def test_a_multi_journal_replay_gives_the_orders_of_the_sim_run(sim_run: Any, tmp_path: Path) -> None:
    strategy, _, _ = sim_run
    journals = record_days(tmp_path)
    replayed, _ = trader()
    report = run_replay(replayed, journals, handle_signals=False)
    assert report.days == DAYS and report.closed_days == DAYS and report.day_closed
    assert orders_of(replayed) == orders_of(strategy)
    columns = ["datetime", "symbol", "side", "price", "shares", "fees"]
    assert replayed.trades[columns].equals(strategy.trades[columns])
    # a directory of them (here in a list: hkrt run --replay DIR) plays in the order of their days
    again, _ = trader()
    assert run_replay(again, [tmp_path], handle_signals=False).days == DAYS
    assert orders_of(again) == orders_of(strategy)


def record_days(folder: Path) -> list[Path]:
    """The three days, one journal each, named so that their names do not sort in date order: a
    directory is played by the days inside."""
    return sim_journals.record_days([folder / f"{name}.hkj" for name in "zyx"], DAYS, CONFIG)


def test_bad_days_and_journal_orders_are_one_line_errors(tmp_path: Path) -> None:
    strategy, _ = trader()
    for days in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"^days must be a whole number of at least 1, not "):
            run_sim(strategy, DAYS[0], days=days, symbols=SYMBOLS)  # type: ignore[arg-type]
    journals = record_days(tmp_path)
    out_of_order = r"^journal .*y\.hkj \(2026-11-23\) comes before the day of .*x\.hkj \(2026-11-24\): give journals"
    with pytest.raises(ValueError, match=out_of_order):
        run_replay(strategy, [journals[0], journals[2], journals[1]])
    with pytest.raises(ValueError, match=r"repeats the day of .*\(2026-11-20\): give journals in increasing date"):
        run_replay(strategy, [journals[0], journals[0]])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no journal"):
        run_replay(strategy, empty)
    assert strategy.agent is None  # refused before any run began


def test_stopping_on_a_later_day_stops_the_whole_run_and_until_stops_on_the_first() -> None:
    strategy = hkrt.Strategy(codes=CODES, ktypes=["MIN"], name="stops")
    last: list[dt.datetime] = []

    @strategy.on_bar
    def on_bar(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
        last.append(bar.datetime)
        if bar.datetime.date() == DAYS[1] and bar.datetime.time() == dt.time(10, 0):
            strategy.stop()  # as Ctrl-C does

    report = run_sim(strategy, DAYS[0], days=3, symbols=SYMBOLS, interval=INTERVAL, speed=1e9, handle_signals=False)
    assert report.days == DAYS[:2] and report.closed_days == DAYS[:1] and not report.day_closed
    assert max(last) == dt.datetime.combine(DAYS[1], dt.time(10, 0))  # nothing delivered after the stop

    strategy, last = hkrt.Strategy(codes=CODES, ktypes=["MIN"], name="until"), []
    strategy.on_bar(on_bar)
    report = run_sim(strategy, DAYS[0], days=3, symbols=SYMBOLS, interval=INTERVAL, speed=1e9, until="11:00",
                     handle_signals=False)  # fmt: skip
    assert report.days[0] == DAYS[0] and report.closed_days == [] and not report.day_closed
    assert max(last).date() == DAYS[0] and max(last).time() <= dt.time(11, 0)
