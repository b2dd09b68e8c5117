"""hkrt.strategy.performance: hand-computed metrics, FIFO round trips, properties, the PNG (docs/performance.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hkrt.strategy.performance import Performance, match_round_trips, performance, plot_performance

SQRT_242 = math.sqrt(242)


def daily(values: list[float], start: str = "2026-11-02") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)) + pd.Timedelta(hours=15))


def fills(rows: list[tuple[str, str, str, float, int, float]]) -> pd.DataFrame:
    """(datetime, symbol, side, price, shares, fees) -> the columns of strategy.trades."""
    frame = pd.DataFrame(rows, columns=["datetime", "symbol", "side", "price", "shares", "fees"])
    frame["datetime"] = pd.to_datetime(frame["datetime"])
    frame["amount"] = frame["price"] * frame["shares"]
    frame["client_order_id"] = [f"o{i}" for i in range(len(frame))]
    frame["trade_id"] = [f"t{i}" for i in range(len(frame))]
    frame["broker"] = "paper"
    return frame


def test_hand_computed_curve() -> None:
    # returns: 110/100-1 = 0.1, 99/110-1 = -0.1, 121/99-1 = 0.2222...
    # mean = 0.2222/3 = 0.074074; sample std (ddof 1) = sqrt((0.025926² + 0.174074² + 0.148148²)/2) = 0.162668
    # Sharpe = 0.074074 / 0.162668 * sqrt(242) = 0.45537 * 15.5563 = 7.0838
    # downside deviation = sqrt((0² + 0.1² + 0²)/3) = 0.057735 -> Sortino = 0.074074 / 0.057735 * 15.5563 = 19.959
    # drawdown: peak 110 (day 2), trough 99 (day 3): 11 yuan, 10 %
    perf = performance(daily([100, 110, 99, 121]))
    assert perf.daily_returns.to_numpy() == pytest.approx([0.1, -0.1, 22 / 99])
    assert perf.total_return == pytest.approx(0.21)
    assert perf.annual_return == pytest.approx(1.21 ** (242 / 3) - 1)
    assert perf.max_drawdown == pytest.approx(0.10)
    assert perf.max_drawdown_value == pytest.approx(11.0)
    assert perf.peak == pd.Timestamp("2026-11-03 15:00") and perf.trough == pd.Timestamp("2026-11-04 15:00")
    assert perf.sharpe == pytest.approx(7.0838, abs=1e-3)
    assert perf.sortino == pytest.approx(19.959, abs=1e-2)
    assert perf.days == 4 and perf.start_equity == 100 and perf.end_equity == 121
    assert perf.turnover == 0 and perf.round_trips == 0 and perf.total_fees == 0
    assert math.isnan(perf.win_rate) and perf.reasons["win_rate"] == "no round trips"
    assert math.isnan(perf.exposure) and "cash" in perf.reasons["exposure"]


def test_risk_free_rate_lowers_sharpe() -> None:
    curve = daily([100, 110, 99, 121])
    # excess = r - 0.0242/242 = r - 0.0001: the std is unchanged, the mean drops by 0.0001
    perf = performance(curve, risk_free=0.0242)
    r = np.array([0.1, -0.1, 22 / 99]) - 0.0001
    assert perf.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * SQRT_242)


def test_flat_curve_has_nan_ratios_with_reasons() -> None:
    perf = performance(daily([1e6] * 5))
    assert perf.total_return == 0 and perf.max_drawdown == 0 and perf.peak is None
    assert math.isnan(perf.sharpe) and perf.reasons["sharpe"] == "daily returns have zero variance"
    assert math.isnan(perf.sortino) and "zero downside" in perf.reasons["sortino"]
    assert "n/a (daily returns have zero variance)" in perf.table()


def test_constant_growth_is_zero_variance_not_a_huge_sharpe() -> None:
    perf = performance(daily([100 * 1.01**i for i in range(6)]))
    assert math.isnan(perf.sharpe) and perf.reasons["sharpe"] == "daily returns have zero variance"


def test_one_day_has_no_returns() -> None:
    curve = pd.Series(
        [100.0, 101.0, 100.5], index=pd.to_datetime(["2026-11-02 09:31", "2026-11-02 10:00", "2026-11-02 15:00"])
    )
    perf = performance(curve)
    assert perf.days == 1 and len(perf.daily_returns) == 0
    assert perf.total_return == pytest.approx(0.005)
    assert perf.reasons["sharpe"] == "needs at least 2 daily returns, has 0"
    assert math.isnan(perf.annual_return) and "2 trading days" in perf.reasons["annual_return"]
    # the intraday dip from 101 to 100.5 is a drawdown even without daily returns
    assert perf.max_drawdown == pytest.approx(0.5 / 101)


def test_intraday_collapses_to_each_days_last_value() -> None:
    times = pd.to_datetime([
        "2026-11-02 09:31", "2026-11-02 11:30", "2026-11-02 15:00",
        "2026-11-03 09:31", "2026-11-03 14:00", "2026-11-03 15:00",
        "2026-11-04 09:31", "2026-11-04 15:00",
    ])  # fmt: skip
    curve = pd.Series([100, 120, 105, 90, 110, 115.5, 120, 103.95], index=times)
    perf = performance(curve)
    # closes 105, 115.5, 103.95 -> returns 0.1, -0.1 (the 120 at 11:30 and the 90 at 09:31 are not closes)
    assert perf.daily_returns.to_numpy() == pytest.approx([0.1, -0.1])
    assert list(perf.daily_returns.index) == list(pd.to_datetime(["2026-11-03", "2026-11-04"]))
    assert perf.days == 3
    # the drawdown sees every sample: 120 at 11:30 on day 1 down to 90 at 09:31 on day 2 = 25 %
    assert perf.max_drawdown == pytest.approx(0.25) and perf.max_drawdown_value == pytest.approx(30)
    assert perf.peak == times[1] and perf.trough == times[3]
    # mean 0, std > 0: Sharpe exactly 0
    assert perf.sharpe == pytest.approx(0.0)


def test_fifo_round_trips_with_partial_sells_and_fees() -> None:
    trades = fills([
        ("2026-11-02 10:00", "600000.SH", "buy", 10.0, 1000, 5.0),
        ("2026-11-02 11:00", "600000.SH", "buy", 11.0, 500, 5.0),
        ("2026-11-03 10:00", "600000.SH", "sell", 12.0, 600, 6.0),
        ("2026-11-04 10:00", "600000.SH", "sell", 10.5, 900, 9.0),
        ("2026-11-02 10:30", "000001.SZ", "buy", 20.0, 100, 1.0),
        ("2026-11-03 10:30", "000001.SZ", "sell", 21.0, 50, 0.5),
    ])  # fmt: skip
    # lot 1: 1000 @ 10, closed by 600 @ 12 (all of that sell's 6 yuan fees) and 400 of the 900 @ 10.5 (4/9 of 9 = 4)
    #        pnl = 7200 + 4200 - 10000 - 5 - 6 - 4 = 1385 (a win)
    # lot 2: 500 @ 11, closed by 500 of the 900 @ 10.5 (5 yuan of its fees): 5250 - 5500 - 5 - 5 = -260 (a loss)
    # 000001.SZ: 50 of 100 sold, the lot is still open: no round trip.  Win rate 1/2.
    trips, unmatched = match_round_trips(trades)
    assert unmatched == 0
    assert list(trips["pnl"]) == pytest.approx([1385.0, -260.0])
    assert list(trips["shares"]) == [1000, 500]
    assert list(trips["fees"]) == pytest.approx([15.0, 10.0])
    assert trips["exit_price"].iloc[0] == pytest.approx(11.4)
    assert trips["exit"].iloc[0] == pd.Timestamp("2026-11-04 10:00")
    assert trips["return"].iloc[1] == pytest.approx(-260 / 5505)
    perf = performance(daily([100_000, 101_000, 101_100]), trades)
    assert perf.round_trips == 2 and perf.win_rate == pytest.approx(0.5)
    assert perf.total_fees == pytest.approx(26.5)
    traded = 10_000 + 5_500 + 7_200 + 9_450 + 2_000 + 1_050
    assert perf.turnover == pytest.approx(traded / np.mean([100_000, 101_000, 101_100]))


def test_sell_without_a_buy_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    trades = fills([
        ("2026-11-03 10:00", "600000.SH", "sell", 12.0, 300, 1.0),
        ("2026-11-03 10:05", "600000.SH", "buy", 11.0, 100, 1.0),
        ("2026-11-04 10:00", "600000.SH", "sell", 12.0, 100, 1.0),
    ])  # fmt: skip
    with caplog.at_level("WARNING", logger="hkrt.performance"):
        trips, unmatched = match_round_trips(trades)
    assert unmatched == 300 and len(trips) == 1 and trips["pnl"].iloc[0] == pytest.approx(100 - 2)
    assert "300 shares have no earlier buy" in caplog.text


def test_exposure_from_cash() -> None:
    curve = daily([100.0, 100.0, 101.0, 101.0])
    # in a position on day 2 only; day 4 has no cash sample: the 101 of day 3 carries forward (all cash)
    cash = pd.Series([100.0, 50.0, 101.0], index=curve.index[[0, 1, 2]])
    perf = performance(curve, cash=cash)
    assert perf.exposure == pytest.approx(1 / 4)
    assert "exposure" not in perf.reasons


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="indexed by datetime"):
        performance(pd.Series([1.0, 2.0]))
    with pytest.raises(ValueError, match="positive"):
        performance(daily([100, 0, 50]))
    with pytest.raises(ValueError, match="no values"):
        performance(daily([math.nan, math.nan]))
    with pytest.raises(ValueError, match=r"lack the columns \['amount'\]"):
        performance(daily([1, 2]), fills([("2026-11-02", "a", "buy", 1.0, 100, 0.0)]).drop(columns="amount"))


def test_as_dict_and_tables() -> None:
    perf = performance(daily([100, 110, 99, 121]))
    d = perf.as_dict()
    assert d["max_drawdown"] == pytest.approx(0.1) and d["peak"] == "2026-11-03T15:00:00"
    assert d["reasons"]["exposure"] == "no cash series given"
    md = perf.table()
    assert md.startswith("| metric | value |") and "| max drawdown | 10.00 % (11.00) |" in md
    text = perf.table(markdown=False)
    assert "Sharpe" in text and "|" not in text and str(perf) == text


def numpy_metrics(values: np.ndarray) -> tuple[float, float, float]:
    """Sharpe, Sortino, max drawdown written out plainly, to check the module against."""
    r = values[1:] / values[:-1] - 1
    sharpe = r.mean() / r.std(ddof=1) * np.sqrt(242)
    sortino = r.mean() / np.sqrt(np.mean(np.where(r < 0, r, 0.0) ** 2)) * np.sqrt(242)
    worst = 0.0
    peak = values[0]
    for v in values:
        peak = max(peak, v)
        worst = max(worst, (peak - v) / peak)
    return float(sharpe), float(sortino), worst


def test_formulas_match_a_plain_numpy_reimplementation() -> None:
    rng = np.random.default_rng(15)
    for _ in range(20):
        values = 1e6 * np.cumprod(1 + rng.normal(0.0005, 0.02, size=250))
        perf = performance(daily(list(values)))
        sharpe, sortino, mdd = numpy_metrics(values)
        assert perf.sharpe == pytest.approx(sharpe, rel=1e-9)
        assert perf.sortino == pytest.approx(sortino, rel=1e-9)
        assert perf.max_drawdown == pytest.approx(mdd, rel=1e-9)


positive = st.floats(min_value=1.0, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(positive, min_size=1, max_size=60))
def test_properties(values: list[float]) -> None:
    perf = performance(daily(values))
    assert 0.0 <= perf.max_drawdown <= 1.0
    assert perf.end_equity == pytest.approx(perf.start_equity * (1 + perf.total_return))
    assert perf.total_return == pytest.approx(values[-1] / values[0] - 1)
    assert len(perf.daily_returns) == len(values) - 1
    assert perf.max_drawdown_value >= 0.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e3, allow_nan=False), min_size=1, max_size=60))
def test_non_decreasing_curve_has_no_drawdown(steps: list[float]) -> None:
    perf = performance(daily(list(100.0 + np.cumsum(steps))))
    assert perf.max_drawdown == 0.0 and perf.peak is None and perf.max_drawdown_value == 0.0


def test_plot_writes_a_png(tmp_path: Path) -> None:
    times = pd.date_range("2026-11-02 09:30", periods=240, freq="min")
    curve = pd.Series(1e6 + np.sin(np.arange(240) / 20) * 1e4, index=times)
    perf = performance(curve)
    out = plot_performance(perf, tmp_path / "run" / "performance.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    import matplotlib.image

    image = matplotlib.image.imread(out)
    assert image.shape[0] == 600 and image.shape[1] == 1200  # 12 x 6 inches at 100 dpi


def test_performance_is_frozen() -> None:
    perf = performance(daily([100, 101]))
    assert isinstance(perf, Performance)
    with pytest.raises(AttributeError):
        perf.sharpe = 1.0  # type: ignore[misc]


def test_single_sample_in_china_time_plots(tmp_path: Path) -> None:
    one = pd.Series([1e6], index=pd.to_datetime(["2026-11-02 10:00"]).tz_localize("Asia/Shanghai"))
    perf = performance(one)
    assert perf.days == 1 and perf.max_drawdown == 0 and perf.total_return == 0
    assert perf.reasons["sortino"] == "needs at least 2 daily returns, has 0"
    out = plot_performance(perf, tmp_path / "one.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
