"""Moving-average cross on 5-minute bars.

For each symbol: when the 5-bar average of MIN5 closes crosses above the 20-bar average, buy
shares worth 100,000 yuan; when it crosses below, sell the whole (sellable) holding.

    hkrt run examples/ma_cross.py --source sim --broker test     # a simulated day, paper broker
    hkrt run examples/ma_cross.py --broker mail                  # live: the spot server's feed
    python examples/ma_cross.py                                  # live, the brokers below
"""

import hkrt

FAST, SLOW = 5, 20
LOT_VALUE = 100_000.0  # yuan per entry

strategy = hkrt.Strategy(
    codes=["SH600000", "SH600001", "SZ000001", "SZ000002", "SZ300001", "SH688001"],
    ktypes=["MIN5"],
    cash=1_000_000,
)


@strategy.on_bar
def ma_cross(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
    close = strategy.kdata(symbol, ktype, end=bar.datetime)["close"]
    if len(close) <= SLOW:
        return  # the slow average needs SLOW bars, and a previous value to detect a cross
    fast, slow = close.rolling(FAST).mean(), close.rolling(SLOW).mean()
    was_above, is_above = fast.iloc[-2] > slow.iloc[-2], fast.iloc[-1] > slow.iloc[-1]
    if is_above and not was_above and strategy.position(symbol) == 0:
        strategy.order_value(symbol, LOT_VALUE, bar.close, remark="ma cross up")
    elif was_above and not is_above and strategy.position(symbol) > 0:
        strategy.order(symbol, -strategy.position(symbol), bar.close, remark="ma cross down")


if __name__ == "__main__":
    strategy.run()
