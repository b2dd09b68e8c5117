"""Notebook charts in a real kernel and a real browser (docs/dashboard.md, "In a notebook").

In a fresh ipykernel (nbclient, the inline matplotlib backend as Jupyter has it): ``candlestick(bars)`` as a
cell's last line shows exactly one output, an interactive HTML chart holding the bars; the static path writes
PNG and SVG without changing the kernel's backend, and a pyplot figure made after it still shows.  In headless
Chromium (skipped, naming the Debian packages, where they are missing): the chart has drawn its bars and
lines, and a live chart started in one cell receives new bars of a running strategy while the next cells run.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

import test_notebooks  # noqa: E402

CELL_TIMEOUT = test_notebooks.CELL_TIMEOUT
kernel = test_notebooks.kernel  # the fixture: a kernel spec in tmp_path

try:
    import test_dashboard_browser
except pytest.skip.Exception as missing:  # no chromium: the kernel tests still run
    BROWSER_MISSING: str | None = str(missing)
else:
    BROWSER_MISSING = None
    wait_for = test_dashboard_browser.wait_for  # (the browser fixture comes from conftest: headless_chromium)

needs_browser = pytest.mark.skipif(BROWSER_MISSING is not None, reason=str(BROWSER_MISSING))

BARS = """
import pandas as pd
index = pd.date_range("2026-11-20 09:31", periods=40, freq="min")
close = [10 + 0.01 * ((7 * i) % 13) for i in range(40)]
bars = pd.DataFrame({"open": close[1:] + close[:1], "high": [c + 0.05 for c in close],
                     "low": [c - 0.05 for c in close], "close": close, "volume": 1000.0}, index=index)
bars.iloc[7, bars.columns.get_loc("close")] = 10.377  # a price to find in the chart
"""


def notebook(*cells: str) -> Any:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in cells])


def client_for(nb: Any, kernel: str, tmp_path: Path) -> Any:
    return nbclient.NotebookClient(nb, kernel_name=kernel, timeout=CELL_TIMEOUT,
                                   resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip


def shown(cell: Any) -> list[Any]:
    """What a cell shows: its display outputs (text on stdout not counted)."""
    return [o for o in cell.outputs if o.output_type in ("display_data", "execute_result")]


def test_a_cells_last_candlestick_shows_one_chart_and_the_static_path_leaves_the_backend(
    kernel: str, tmp_path: Path
) -> None:
    nb = notebook(
        "import matplotlib\nimport matplotlib.pyplot as plt\n" + BARS + "\nbefore = matplotlib.get_backend()",
        "from hkrt.notebook import candlestick\ncandlestick(bars, title='forty minutes')",
        "from hkrt.notebook import static_candlestick\nstatic_candlestick(bars)",
        "from hkrt.notebook import save_candlestick\n"
        "png = save_candlestick('chart.png', bars)\nsvg = save_candlestick('chart.svg', bars)\n"
        "print('backend', before, matplotlib.get_backend() == before, png.stat().st_size > 10_000, "
        "svg.read_text()[:5])",
        "plt.plot([1, 2, 3])\nplt.title('made after save_candlestick')\nplt.show()",
        "from hkrt.notebook.chart import candlestick as pyplot_candlestick\n"
        "pyplot_candlestick(bars, title='the older spelling')\nplt.show()",
    )
    client_for(nb, kernel, tmp_path).execute()
    interactive, static, saved, after, older = nb.cells[1:]
    (chart,) = shown(interactive)  # one output: no second figure, no "<Figure ...>" line
    assert chart.output_type == "execute_result" and "text/html" in chart.data
    assert not [o for o in interactive.outputs if o.output_type == "stream"]
    page = html.unescape(chart.data["text/html"])
    assert "<iframe srcdoc=" in chart.data["text/html"] and "hkrtCandles.create" in page
    assert '"close": 10.377' in page and page.count('"time": ') == 40 and "forty minutes" in page
    (image,) = shown(static)
    assert set(image.data) >= {"image/png"} and "text/html" not in image.data
    text = "".join(o.text for o in saved.outputs if o.output_type == "stream")
    backend = re.search(r"backend (\S+) (True|False) (True|False) (\S+)", text)
    assert backend, text
    assert backend.group(1) == "module://matplotlib_inline.backend_inline"  # what Jupyter runs a kernel with
    assert backend.groups()[1:] == ("True", "True", "<?xml")  # unchanged; the files written
    assert [o.output_type for o in shown(after)] == ["display_data"] and "image/png" in shown(after)[0].data
    assert len(shown(older)) == 1 and "image/png" in shown(older)[0].data  # plt.show() still shows it, once


@needs_browser
def test_the_interactive_chart_draws_its_bars_and_lines_in_chromium(browser: Any, tmp_path: Path) -> None:
    import pandas as pd

    from hkrt.notebook import candlestick

    index = pd.date_range("2026-11-20 09:31", periods=50, freq="min")
    close = pd.Series([10 + 0.02 * ((5 * i) % 11) for i in range(50)], index=index)
    bars = pd.DataFrame({"open": close.shift(1).fillna(10.0), "high": close + 0.05, "low": close - 0.05,
                         "close": close, "volume": 500.0})  # fmt: skip
    trades = pd.DataFrame({"datetime": [index[10]], "side": ["buy"], "shares": [300]})
    chart = candlestick(bars, trades, lines={"MA5": close.rolling(5).mean()}, lower={"range": bars.high - bars.low})
    page = tmp_path / "cell.html"  # what the notebook shows
    page.write_text(f"<!doctype html><html><body>{chart._repr_html_()}</body></html>", encoding="utf-8")
    browser.get(page.as_uri())
    browser.switch_to.frame(0)
    wait_for(lambda: browser.execute_script("return window.hkrtChart && hkrtChart.data().length"), "the chart")
    drawn = browser.execute_script("return hkrtChart.data().map((b) => [b.time, b.close])")
    epoch = lambda t: int(t.tz_localize("UTC").timestamp())  # noqa: E731  (market time read as UTC)
    assert drawn == [[epoch(t), pytest.approx(c)] for t, c in close.items()]
    assert browser.execute_script("return hkrtChart.lines()") == {"MA5": 46, "range": 50}
    assert browser.execute_script("return hkrtChart.marks().map((m) => m.text)") == ["B 300"]
    painted = """const area = (c) => c.width * c.height;
      const c = [...document.querySelectorAll('canvas')].sort((a, b) => area(b) - area(a))[0];
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] < 200 || d[i + 1] < 200)) n++; return n;"""
    assert browser.execute_script(painted) > 500  # the candles are on the canvas, not only in the data


@needs_browser
def test_a_live_chart_gets_new_bars_while_the_next_cells_run(kernel: str, browser: Any, tmp_path: Path) -> None:
    nb = notebook(
        """
import threading
import hkrt
from hkrt.notebook import live_chart
from hkrt.strategy import run_sim

strategy = hkrt.Strategy(["SH600000", "SZ000001"], ktypes=["MIN"], name="nb")
seen = []

@strategy.on_bar(ktypes=["MIN"], symbols=["SH600000"])
def buy_once(symbol, ktype, bar):
    seen.append(bar)
    if len(seen) == 4:
        strategy.order(symbol, 100)

chart = live_chart(strategy, "SH600000", "MIN")
runner = threading.Thread(target=run_sim, args=(strategy, "2026-11-20"), daemon=True,
                          kwargs={"symbols": 2, "speed": 120, "handle_signals": False, "until": "10:30"})
runner.start()
chart
""",
        "print('the kernel runs this cell while the day plays:', runner.is_alive(), len(seen))",
        "chart.stop()\nstrategy.stop()\nrunner.join(30)\nprint('stopped:', not runner.is_alive(), chart)",
    )
    client = client_for(nb, kernel, tmp_path)
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        (frame,) = shown(nb.cells[0])
        url = html.unescape(re.search(r'<iframe src="([^"]+)"', frame.data["text/html"]).group(1))
        assert "/static/live.html?symbol=SH600000&ktype=MIN" in url
        browser.get(url)
        count = "return window.hkrtLive ? hkrtLive.state.closed.length : 0"
        first = wait_for(lambda: browser.execute_script(count) >= 2 and browser.execute_script(count), "bars")
        client.execute_cell(nb.cells[1], 1)  # returns at once: nothing blocks the kernel
        text = nb.cells[1].outputs[0].text
        assert "the kernel runs this cell while the day plays: True" in text, text
        wait_for(lambda: browser.execute_script(count) > first + 2, "new bars pushed to the page")
        wait_for(lambda: browser.execute_script("return hkrtLive.state.trades.length"), "the strategy's trade")
        drawn = browser.execute_script("return hkrtLive.candles().length")
        assert drawn >= browser.execute_script(count)  # the closed bars and maybe the forming one, drawn
        assert browser.find_element("id", "connection").text == "live"
        client.execute_cell(nb.cells[2], 2)
        assert "stopped: True" in nb.cells[2].outputs[0].text
        wait_for(lambda: browser.find_element("id", "connection").text == "disconnected", "the page to see the stop")


def test_an_agents_live_chart_starts_with_its_bars_then_pushes_each_new_one() -> None:
    pytest.importorskip("fastapi", reason="needs the dashboard extra: pip install 'hkrt[dashboard]'")
    ws_client = pytest.importorskip("websockets.sync.client", reason="needs websockets (the test extra)")
    import httpx

    import hkrt
    from conftest import SYMBOL, spot
    from hkrt.notebook import live_chart

    agent = hkrt.SpotAgent(["MIN"])
    agent.bus.start()  # in-process ingest: the bus started by hand
    for i, minute in enumerate(("09:30:03", "09:31:03", "09:32:03", "09:33:03")):
        agent.ingest(spot(minute, 10.0 + i / 10, 1000.0 * (i + 1), 10_000.0 * (i + 1)))
    held = len(agent.kdata(SYMBOL, "MIN"))
    chart = live_chart(agent, SYMBOL, "MIN", max_bars=2)
    try:
        assert "/static/live.html?symbol=" in chart._repr_html_()
        with ws_client.connect(chart.server.url.replace("http", "ws") + "/ws") as conn:
            conn.send(json.dumps({"type": "hello", "token": ""}))
            snap = json.loads(conn.recv(timeout=5))
            (series,) = snap["data"]["bars"]
            assert held == 4 and len(series["bars"]) == 2  # the closed bars the agent held, bounded by max_bars
            assert snap["data"]["forming"][0]["bar"]["time"] > series["bars"][-1]["time"]
            agent.ingest(spot("09:34:03", 10.9, 6000.0, 60_000.0))  # closes the 09:34 bar
            delta = json.loads(conn.recv(timeout=5))
            assert (delta["seq"], delta["kind"]) == (snap["seq"] + 1, "bar")
            assert delta["data"]["bar"]["close"] == pytest.approx(10.3)  # the bar that was forming, closed
        refused = httpx.post(chart.server.url + "/api/halt", headers={"Authorization": f"Bearer {chart.server.token}"})
        assert refused.status_code in (404, 405)  # an agent has nothing to halt
    finally:
        chart.stop()
        agent.stop()
    assert not chart.running and "stopped" in chart._repr_html_()
    with pytest.raises(httpx.ConnectError):
        httpx.get(chart.server.url + "/api/snapshot", timeout=2)
