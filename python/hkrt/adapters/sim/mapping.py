"""The simulated market's edge: which symbols it lists and their daily price limits.

Its spots are made in hkrt's own units (yuan, shares, naive China local time) and symbols
(``SH600000``): no unit to convert.  It takes no orders: no status to map.
"""

from __future__ import annotations


def universe(n: int) -> list[str]:
    """n symbols over every board, in a fixed mix: SH main, SZ main, ChiNext, STAR, BJ."""
    boards = [("SH", 600000, 0.35), ("SZ", 1, 0.3), ("SZ", 300001, 0.15), ("SH", 688001, 0.12), ("BJ", 920001, 0.08)]
    out: list[str] = []
    for i, (market, first, share) in enumerate(boards):
        count = n - len(out) if i == len(boards) - 1 else min(round(n * share), n - len(out))
        out.extend(f"{market}{first + k:06d}" for k in range(count))
    return out


def price_limit(symbol: str) -> float:
    """The daily limit as a fraction of the previous close."""
    if symbol.startswith("BJ"):
        return 0.30
    if symbol.startswith(("SH688", "SZ300", "SZ301")):
        return 0.20
    return 0.10
