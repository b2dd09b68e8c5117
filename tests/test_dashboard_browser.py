"""The dashboard in a real browser: Selenium drives Debian's headless chromium (docs/dashboard.md).

A strategy plays a simulated day (``run_sim`` in a thread, slowed so the page is seen changing) with the
dashboard serving it; the page must show bars arriving and updating, the order the strategy placed, and the
halt button must refuse without the token and halt the strategy with it.  The screenshot goes to
``$HKRT_ARTIFACTS`` (CI sets it: .ci/run) or else the test's tmp_path.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headless_chromium import require

require()

import hkrt  # noqa: E402
from hkrt.dashboard import serve_dashboard  # noqa: E402
from hkrt.fetcher.sim import universe  # noqa: E402
from hkrt.strategy import run_sim  # noqa: E402

DAY = dt.date(2026, 11, 20)
CODES = universe(3)
SPEED = 240.0  # market seconds per wall second: a MIN bar every 0.25 s, slow enough to watch
WAIT = 20.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_page_shows_live_bars_and_orders_and_its_halt_button_halts(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    strategy = hkrt.Strategy(CODES, ktypes=["MIN", "MIN5"], name="board")
    placed: dict[str, str] = {}
    seen = {"bars": 0}

    @strategy.on_bar(ktypes=["MIN"], symbols=[CODES[0]])
    def trade(symbol: str, ktype: Any, bar: Any) -> None:
        seen["bars"] += 1
        strategy.indicator(symbol, "MIN", "SMA", timeperiod=3)  # drawn over the prices from the next bar on
        strategy.indicator(symbol, "MIN", "RSI", timeperiod=3)  # in the pane below
        if seen["bars"] == 3:  # a limit far below the market: it stays working until the halt cancels it
            placed["working"] = strategy.order(
                symbol, 100, round(bar.close * 0.97, 2), order_type="limit"
            ).client_order_id
        elif seen["bars"] == 5:
            placed["filled"] = strategy.order(symbol, 200).client_order_id

    token = secrets.token_urlsafe(24)
    board = serve_dashboard(strategy, "127.0.0.1:0", token=token, ktypes=["MIN", "MIN5"])
    play = {"symbols": 3, "speed": SPEED, "handle_signals": False, "until": "11:00"}
    runner = threading.Thread(target=run_sim, args=(strategy, DAY), kwargs=play)
    try:
        browser.get(board.url)  # no token in the page yet: reading works on loopback, halting must not
        runner.start()
        text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731
        wait_for(lambda: text("connection") == "live", "the WebSocket to connect")
        first = int(wait_for(lambda: int(text("bar-count")) >= 2 and text("bar-count"), "bars on the chart"))
        first_last = text("last-bar")
        wait_for(lambda: int(text("bar-count")) > first and text("last-bar") != first_last, "the chart to update")
        lines = "return window.hkrtDashboard.lines()"
        wait_for(lambda: browser.execute_script(lines).get("SMA(timeperiod=3)", 0) >= 2, "the SMA line over the bars")
        assert browser.execute_script(lines).get("RSI(timeperiod=3)", 0) >= 1
        wait_for(lambda: "working" in placed, "the strategy's order")
        row = f"#orders tr[data-id='{placed['working']}']"
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, row), "the order's row in the orders table")
        assert browser.find_element(By.CSS_SELECTOR, row).get_attribute("data-status") not in ("cancelled", "rejected")
        wait_for(lambda: "filled" in placed, "the market order")
        filled = f"#orders tr[data-id='{placed['filled']}'][data-status='filled']"
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, filled), "the filled order's row")
        wait_for(lambda: "SH600000" in text("positions"), "the position")
        Select(browser.find_element(By.ID, "ktype")).select_by_value("MIN5")  # the page asks for its forming bar
        newest = "const d = window.hkrtDashboard; const c = d.candles(); const b = d.state.bars.get('{}|MIN5') || [];"
        newest += "return [c.length ? c[c.length - 1].time : 0, b.length ? b[b.length - 1].time : 0];"
        drawn = lambda: browser.execute_script(newest.format(CODES[0]))  # noqa: E731
        wait_for(lambda: drawn()[0] > drawn()[1] > 0, "the forming MIN5 bar drawn after the closed ones")
        browser.find_element(By.ID, "halt").click()
        wait_for(lambda: text("halt-result").startswith("refused"), "the halt without a token to be refused")
        assert strategy.trading_state == "ACTIVE"
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.ID, "halt").click()
        wait_for(lambda: text("risk-state") == "HALTED", "the page to show HALTED")
        wait_for(lambda: text("health") == "failing", "the health rules to say failing (halted)")
        assert strategy.trading_state == "HALTED"
        cancelled = f"#orders tr[data-id='{placed['working']}'][data-status='cancelled']"
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, cancelled), "the working order cancelled by the halt")
        out = Path(os.environ.get("HKRT_ARTIFACTS") or tmp_path)
        out.mkdir(parents=True, exist_ok=True)
        shot = out / "dashboard.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"dashboard screenshot: {shot}")
        assert board.stats["halts"] == 1 and board.stats["unauthorized"] == 1
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        # the refused halt is a 401 the page reports; a missing favicon is no error of ours
        assert [m for m in errors if "/api/halt" not in m and "favicon" not in m] == []
    finally:
        strategy.stop()
        runner.join(timeout=30)
        board.stop()
    assert not runner.is_alive()


def test_a_notebook_chart_draws_its_bars_and_trades_with_the_dashboards_chart_code(
    browser: Any, tmp_path: Path
) -> None:
    import pandas as pd

    from hkrt.dashboard.notebook import interactive_candlestick

    index = pd.date_range("2026-11-20 09:31", periods=30, freq="min")
    close = [10 + 0.1 * (i % 7) for i in range(30)]
    bars = pd.DataFrame({"open": close, "high": [c + 0.2 for c in close], "low": [c - 0.2 for c in close],
                         "close": close[1:] + close[:1], "volume": 1000.0}, index=index)  # fmt: skip
    bars.iloc[5] = float("nan")  # a bar without prices is left out
    trades = pd.DataFrame({"datetime": pd.to_datetime(["2026-11-20 09:33:20", "2026-11-20 09:33:40",
                                                       "2026-11-20 09:50:00"]),
                           "side": ["buy", "buy", "sell"], "shares": [100, 200, 300]})  # fmt: skip
    chart = interactive_candlestick(bars, trades=trades, title="SH600000 </script> MIN")
    page = tmp_path / "notebook.html"  # what a notebook shows: the iframe
    page.write_text(f"<!doctype html><html><body>{chart._repr_html_()}</body></html>", encoding="utf-8")
    browser.get(page.as_uri())
    browser.switch_to.frame(0)
    drawn = wait_for(lambda: browser.execute_script("return window.hkrtChart && window.hkrtChart.data().length"),
                     "the notebook chart")  # fmt: skip
    assert drawn == 29
    marks = browser.execute_script("return hkrtChart.marks().map((m) => [m.time, m.text])")
    minute = lambda text: int(pd.Timestamp(text).tz_localize("UTC").timestamp())  # noqa: E731
    # the two buys of 09:33 on the bar ending 09:34, summed; the sell on the 09:50 bar
    assert marks == [[minute("2026-11-20 09:34"), "B 300"], [minute("2026-11-20 09:50"), "S 300"]]
    from selenium.webdriver.common.by import By

    assert "SH600000 </script> MIN" in browser.find_element(By.CLASS_NAME, "t").text
    shown = browser.execute_script("return document.querySelectorAll('canvas').length")
    assert shown > 0
