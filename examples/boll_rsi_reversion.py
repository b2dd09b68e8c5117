"""Bollinger-band mean reversion with an RSI filter, every entry protected by a bracket.

For each symbol, on each closed MIN bar: when the close is below the lower Bollinger band
(BBANDS 20, 2 σ) and RSI(14) is under 30 — stretched and oversold — buy shares worth 100,000 yuan
with a limit at the close; take profit at the middle band (the mean it should revert to) and stop
out 3 % below the entry.  A close above the upper band sells a sellable holding at market.

    hkrt run examples/boll_rsi_reversion.py --source sim --broker paper --date 2026-11-20 --symbols 20
        # a simulated day with signals (tests/test_examples_run.py runs it, and its replay)
"""

import math

import hkrt
from hkrt.core.price_limits import round_to_tick

ENTRY_VALUE = 100_000.0  # yuan per entry
OVERSOLD = 30.0
STOP_LOSS = 0.97

strategy = hkrt.Strategy(
    codes=["SH600000", "SH600001", "SZ000001", "SZ000002", "SZ300001", "SH688001"],
    ktypes=["MIN"],
    cash=1_000_000,
    name="boll_rsi",
)


@strategy.on_bar
def reversion(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
    bands = strategy.indicator(symbol, ktype, "BBANDS", timeperiod=20, nbdevup=2.0, nbdevdn=2.0)
    rsi = strategy.indicator(symbol, ktype, "RSI", timeperiod=14)
    lower, middle, upper = bands["lowerband"], bands["middleband"], bands["upperband"]
    if math.isnan(lower) or math.isnan(rsi):
        return  # 20 bars for the bands, 15 for RSI(14)
    if bar.close < lower and rsi < OVERSOLD and strategy.position(symbol) == 0 and not strategy.open_orders(symbol):
        take_profit = round_to_tick(symbol, middle, "down")
        stop_loss = round_to_tick(symbol, bar.close * STOP_LOSS, "down")
        if take_profit > bar.close > stop_loss:
            strategy.order_value(
                symbol,
                ENTRY_VALUE,
                bar.close,
                order_type="limit",
                take_profit=take_profit,
                stop_loss=stop_loss,
                remark="below lower band, RSI oversold",
            )
    elif bar.close > upper and strategy.positions.get(symbol) and strategy.positions[symbol].sellable > 0:
        strategy.order(symbol, -strategy.positions[symbol].sellable, remark="above upper band")


if __name__ == "__main__":
    strategy.run()
