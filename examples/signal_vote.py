"""Two signal strategies, one account: a MACD trend view and an RSI momentum view vote on every symbol.

The sources place no orders; they say what they think (``strategy.signal``) and a ``SignalAggregator``
combines their latest opinions into the account's orders (docs/signals.md):

- ``macd``: on each closed MIN bar, "buy" while the MACD histogram (MACD_CN, 2 x (DIF - DEA)) is above 0,
  "sell" while below, confidence 1 -- said when its view changes;
- ``rsi``: RSI(14) above 55 is "buy", below 45 "sell", between them "flat", with confidence
  |RSI - 50| / 20 (at most 1) -- said when its action changes.

The vote (equal weights, threshold 0.6): score = (sign x confidence of each) / 2.  MACD alone reaches only
0.5, so the account buys 100,000 yuan of a symbol when MACD is up and RSI confirms with confidence >= 0.2
(RSI >= 54... above 55), and sells the holding when both lean down as far.  Every order carries the sources'
shares of its decision in its remark, and the attribution table printed at the end splits orders, fills,
fees and P&L between macd and rsi (its rows sum to the account's).  On one simulated day the sells are
refused (T+1: shares bought today are sellable tomorrow).

    hkrt run examples/signal_vote.py --source sim --broker paper --date 2026-11-20 --symbols 20
        # tests/test_signal_example.py runs it
"""

import math

import hkrt
from hkrt.strategy import SignalAggregator

CODES = ["SH600000", "SH600001", "SZ000001", "SZ000002", "SZ300001", "SH688001"]

account = hkrt.Strategy(CODES, ktypes=["MIN"], cash=1_000_000, name="account")
macd = hkrt.Strategy(CODES, ktypes=["MIN"], name="macd")
rsi = hkrt.Strategy(CODES, ktypes=["MIN"], name="rsi")
aggregator = SignalAggregator(account, [macd, rsi], method="vote", threshold=0.6, target_value=100_000)

said: dict[tuple[str, str], str] = {}  # (source, symbol) -> the action it said last


def say(source: hkrt.Strategy, symbol: str, action: str, confidence: float, reason: str) -> None:
    """Signal only a change of view: the aggregator keeps each source's latest signal."""
    if said.get((source.name, symbol)) != action:
        said[(source.name, symbol)] = action
        source.signal(symbol, action, confidence, reason)


@macd.on_bar
def macd_view(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
    hist = macd.indicator(symbol, ktype, "MACD_CN")["macdhist"]
    if not math.isnan(hist) and hist != 0:
        say(macd, symbol, "buy" if hist > 0 else "sell", 1.0, f"MACD histogram {hist:+.4f}")


@rsi.on_bar
def rsi_view(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
    value = rsi.indicator(symbol, ktype, "RSI", timeperiod=14)
    if math.isnan(value):
        return
    action = "buy" if value > 55 else "sell" if value < 45 else "flat"
    say(rsi, symbol, action, min(1.0, abs(value - 50) / 20), f"RSI {value:.1f}")


@account.on_stop
def attribution() -> None:
    if __name__ == "__main__":  # hkrt run prints the attribution table itself
        print("\nsignal attribution by source (docs/signals.md):")
        print(aggregator.attribution().round(2).to_string())


if __name__ == "__main__":
    account.run()
