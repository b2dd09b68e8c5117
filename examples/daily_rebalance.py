"""Daily rebalance at 14:50: hold equal values of a fixed basket.

At 14:50 each trading day, every symbol is brought to an equal share of the portfolio's
value (cash plus holdings at the latest prices), lot-rounded; sells go first so their cash
pays for the buys.  Shares bought today cannot be sold before tomorrow (T+1).

    hkrt run examples/daily_rebalance.py --source sim --broker test
"""

import hkrt

BASKET = ["SH600000", "SH600002", "SZ000001", "SZ000003", "SZ300002"]
CASH_BUFFER = 0.02  # keep 2 % in cash for price moves between the decision and the fill

strategy = hkrt.Strategy(codes=BASKET, ktypes=["MIN"], cash=1_000_000)


@strategy.run_daily_at("14:50")
def rebalance() -> None:
    prices = {s: strategy.last_price(s) for s in BASKET}
    tradable = [s for s, p in prices.items() if p]
    if not tradable:
        return
    target = strategy.portfolio_value() * (1 - CASH_BUFFER) / len(tradable)
    deltas = {s: target - strategy.position(s) * prices[s] for s in tradable}
    for symbol in sorted(tradable, key=lambda s: deltas[s]):  # sells (negative) first
        strategy.order_target_value(symbol, target, prices[symbol], remark="rebalance 14:50")


if __name__ == "__main__":
    strategy.run()
