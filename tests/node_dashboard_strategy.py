"""A strategy script for the node's dashboard test (tests/test_node_dashboard_browser.py), copied there as
``alpha.py`` and ``beta.py``: each follows its own symbol (alpha SH600000, beta SH600001) and, on its third MIN bar,
places a limit buy far below the market, which stays working until a halt cancels it."""

from pathlib import Path

import hkrt

SYMBOL = {"alpha": "SH600000", "beta": "SH600001"}.get(Path(__file__).stem, "SH600002")
strategy = hkrt.Strategy(codes=[SYMBOL], ktypes=["MIN", "MIN5"], cash=1_000_000, name=Path(__file__).stem)
seen = {"bars": 0}


@strategy.on_bar(ktypes=["MIN"])
def place(symbol: str, ktype: hkrt.KType, bar: hkrt.Bar) -> None:
    seen["bars"] += 1
    if seen["bars"] == 3:
        strategy.order(symbol, 100, round(bar.close * 0.95, 2), order_type="limit")
