"""The strategy ``hkrt demo`` runs: a moving-average cross on 5-minute bars.

It lives in the package (not only in examples/) so the demo works from an installed wheel.
For each code: when the FAST-bar average of MIN5 closes crosses above the SLOW-bar average, buy
shares worth ``lot_value`` yuan; when it crosses below, sell the whole holding.  Shares bought
today cannot be sold (T+1): such a sell is refused by the strategy's book and shows up in its
orders as Rejected, as it would live; ``hkrt demo`` plays several days in one run, so the next
day's cross down sells them (a round trip).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hkrt.core.ktype import KType
from hkrt.hooks import Bar
from hkrt.strategy.strategy import Strategy

FAST, SLOW = 5, 20
BOARDS = ("SH600", "SZ000", "SZ300", "SH688", "BJ920")  # the simulated market's boards, in its order


def demo_codes(universe: Sequence[str], per_board: int = 2) -> list[str]:
    """The first ``per_board`` codes of each board present in ``universe`` (every lot rule gets traded)."""
    picked: list[str] = []
    for board in BOARDS:
        picked += [c for c in universe if c.startswith(board)][:per_board]
    return picked or list(universe[:per_board])


def ma_cross_strategy(
    codes: Iterable[str],
    *,
    ktypes: Iterable[KType | str] = ("MIN5",),
    cash: float = 1_000_000.0,
    lot_value: float = 100_000.0,
    fast: int = FAST,
    slow: int = SLOW,
) -> Strategy:
    """A Strategy trading the MA cross on MIN5 bars of ``codes``.

    ``ktypes`` are the periods its agent builds; MIN5 must be among them (the demo asks for all
    13 so its summary shows every period, while only MIN5 bars reach the cross).
    """
    strategy = Strategy(codes=codes, ktypes=ktypes, cash=cash, name="ma_cross")
    if KType.MIN5 not in strategy.ktypes:
        raise ValueError("the MA cross trades MIN5 bars: include MIN5 in ktypes")

    @strategy.on_bar(ktypes=[KType.MIN5])
    def ma_cross(symbol: str, ktype: KType, bar: Bar) -> None:
        if bar.volume == 0:
            return  # a flat bar filled in for a period without trades (or after a day ended early): no news
        close = strategy.kdata(symbol, ktype, end=bar.datetime)["close"]
        if len(close) <= slow:
            return  # the slow average needs `slow` bars, and a previous value to detect a cross
        fast_ma, slow_ma = close.rolling(fast).mean(), close.rolling(slow).mean()
        was_above, is_above = fast_ma.iloc[-2] > slow_ma.iloc[-2], fast_ma.iloc[-1] > slow_ma.iloc[-1]
        if is_above and not was_above and strategy.position(symbol) == 0:
            strategy.order_value(symbol, lot_value, bar.close, remark="ma cross up")
        elif was_above and not is_above and strategy.position(symbol) > 0:
            strategy.order(symbol, -strategy.position(symbol), bar.close, remark="ma cross down")

    return strategy
