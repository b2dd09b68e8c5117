"""MACD crossover on minute bars, every entry protected by a bracket.

For each symbol: when the MACD histogram (the Chinese-terminal one, 2 × (DIF − DEA)) turns from
≤ 0 to > 0 on a closed MIN bar, buy shares worth 100,000 yuan with a limit at that bar's close,
protected by a take-profit 3 % above and a stop-loss 2 % below the entry (a bracket: one cancels
the other; both wait for the shares to become sellable, T+1).  When the histogram turns negative
while a position is held and sellable, cancel its bracket's legs and sell it at market.

    hkrt run examples/macd_cross.py --source sim --broker paper --date 2026-11-20 --symbols 20
        # a simulated day with signals (tests/test_examples_run.py runs it, and its replay)
    hkrt run examples/macd_cross.py --broker mail                 # live: the spot server's feed
"""

import math

import hkrt
from hkrt.core.price_limits import round_to_tick

ENTRY_VALUE = 100_000.0  # yuan per entry
TAKE_PROFIT, STOP_LOSS = 1.03, 0.98

strategy = hkrt.Strategy(
    codes=["SH600000", "SH600001", "SZ000001", "SZ000002", "SZ300001", "SH688001"],
    ktypes=["MIN"],
    cash=1_000_000,
    name="macd_cross",
)
last_hist: dict[str, float] = {}


@strategy.on_bar
def macd_cross(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
    hist = strategy.indicator(symbol, ktype, "MACD_CN")["macdhist"]
    previous, last_hist[symbol] = last_hist.get(symbol, math.nan), hist
    if math.isnan(previous) or math.isnan(hist):
        return  # MACD(12, 26, 9) needs 33 bars before its first histogram value
    if previous <= 0 < hist and strategy.position(symbol) == 0 and not strategy.open_orders(symbol):
        strategy.order_value(
            symbol,
            ENTRY_VALUE,
            bar.close,
            order_type="limit",
            take_profit=round_to_tick(symbol, bar.close * TAKE_PROFIT),
            stop_loss=round_to_tick(symbol, bar.close * STOP_LOSS),
            remark="macd up",
        )
    elif previous >= 0 > hist and strategy.positions.get(symbol) and strategy.positions[symbol].sellable > 0:
        for leg in strategy.open_orders(symbol, "sell"):  # the bracket's legs would sell the same shares again
            strategy.cancel(leg)
        strategy.order(symbol, -strategy.positions[symbol].sellable, remark="macd down")


if __name__ == "__main__":
    strategy.run()
