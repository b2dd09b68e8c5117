"""The default universe when no codes are given, without any database.

The A-share code space by board: every code a listed stock can have today, plus the main
indices.  A pull source is asked for all of them once; the codes it does not know are
reported as unknown and pruned by the spot server, so later cycles carry only listed ones.
"""

from __future__ import annotations

# (market, first code, last code): SH main board, STAR, SZ main board and SME, ChiNext, BJ.
BOARDS = (
    ("SH", 600000, 605999),
    ("SH", 688000, 689999),
    ("SZ", 1, 3999),
    ("SZ", 300000, 301999),
    ("BJ", 920000, 920999),
)
INDICES = ("SH000001", "SH000016", "SH000300", "SH000688", "SH000905", "SZ399001", "SZ399005", "SZ399006")


def candidate_codes() -> list[str]:
    """Every candidate symbol, boards first, then the indices."""
    out = [f"{market}{code:06d}" for market, first, last in BOARDS for code in range(first, last + 1)]
    return out + list(INDICES)
