"""Write the notebooks of this directory from the cells below, without outputs.

The notebooks are generated rather than edited in Jupyter so that they stay small, reviewable
and free of outputs in git; CI executes them (tests/test_notebooks.py) and checks that they
still match this script.  After changing a cell:

    python notebooks/make_notebooks.py
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str) -> tuple[str, str]:
    return ("markdown", text)


def code(text: str) -> tuple[str, str]:
    return ("code", text)


LIVE_KDATA = [
    md("""
    # Live K-lines from a simulated market

    This notebook runs the whole live pipeline inside the kernel, with no account and no network:

    * a **spot server** (`hkrt.feed.server.SpotServer`) plays a simulated morning
      (`hkrt.fetcher.sim.SimMarket`, a whole-market snapshot every 3 market seconds) at high speed
      and publishes every cycle on an nng socket;
    * a **`SpotAgent`** subscribes to it and aggregates the spots into MIN, MIN5 and DAY bars in
      the background (the C++ engine; the notebook only reads);
    * a **live chart** (`hkrt.notebook.live_chart`) follows one symbol's MIN bars from a server in
      a background thread, while the kernel stays free for the next cells.

    The socket is an in-process `inproc://` address with a random name, so two notebooks (or a
    real `hkrt spot-server` on this machine) never see each other's quotes. The live chart needs
    the dashboard extra (`pip install 'hkrt[dashboard]'`) and a browser on the kernel's machine
    (its server listens on 127.0.0.1); in an executed copy (CI, `jupyter nbconvert --execute`) its
    server is gone, and the self-contained chart near the end of the notebook shows the morning.
    """),
    code("""
    import datetime as dt
    import secrets
    import threading

    import pandas as pd

    import hkrt
    from hkrt.feed.server import SpotServer
    from hkrt.feed.transport import SpotPublisher
    from hkrt.fetcher.sim import SimConfig, SimMarket
    from hkrt.notebook import candlestick, live_chart

    DAY = dt.date(2026, 11, 20)  # a trading day of the bundled calendar
    SYMBOL = "SH600001"  # one of the simulated market's symbols (hkrt.fetcher.sim.universe)
    SPEED = 900  # market seconds per wall second: the morning (2 h 15 min) takes about 9 s
    LUNCH = dt.time(11, 30)
    """),
    md("""
    ## The feed: a simulated morning on an in-process socket

    `SimMarket.times()` yields the whole day; the subclass below stops at the lunch break to keep
    the notebook short, and `end_day=False` keeps the server from sending the end-of-day marker
    (the day is not over at lunch). The publisher listens first; the agent dials it; the server
    thread waits until the agent is subscribed, because a pub/sub socket drops what nobody
    listens to.
    """),
    code('''
    class SimulatedMorning(SimMarket):
        """The simulated day from the 09:15 auction up to the lunch break."""

        def times(self, *, auction=True):
            return (t for t in super().times(auction=auction) if t.time() < LUNCH)


    market = SimulatedMorning(DAY, SimConfig(symbols=50, seed=7))
    address = f"inproc://hkrt-notebook-{secrets.token_hex(4)}"
    publisher = SpotPublisher(address)
    server = SpotServer(publisher)

    agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"])
    completed_min5 = []  # filled by the hook below, on the agent's callback thread


    @agent.on_bar(ktypes=["MIN5"], symbols=[SYMBOL])
    def on_min5(symbol, ktype, bar):
        completed_min5.append(bar)


    agent.start(address)
    assert publisher.wait_for_subscribers(1, timeout=10), "the agent did not subscribe"
    feed = threading.Thread(target=server.run_sim, args=(market,), kwargs={"speed": SPEED, "end_day": False},
                            name="hkrt-notebook-server", daemon=True)
    feed.start()
    '''),
    md("""
    ## Candlesticks that form while you watch

    `live_chart(agent, SYMBOL, "MIN")` starts a small web server in a background thread and shows
    its chart page: the bars the agent holds already, then each bar as it completes and the bar
    still forming, pushed over a WebSocket (zoom with the wheel, pan by dragging, hover for the
    values). Nothing runs on the kernel's thread: the next cell runs at once. Red bars rose, green
    bars fell (the China convention). `chart.stop()` ends it (so does the kernel's shutdown).
    """),
    code("""
    chart = live_chart(agent, SYMBOL, "MIN")
    chart
    """),
    code("""
    bars_now = len(agent.kdata(SYMBOL, "MIN"))
    print(f"the morning plays on while this cell runs: {feed.is_alive()}, {bars_now} MIN bars so far")
    """),
    code("""
    feed.join()  # wait for the morning to end (the chart above keeps updating meanwhile)
    agent.wait_idle()  # the callbacks already queued have run
    print(f"the server published {server.status.line()}")
    """),
    md("""
    ## The bars as DataFrames

    Indexed by the bar's right label (the `09:31` bar covers 09:30–09:31 and also holds the 09:25
    auction), with prices in yuan, `volume` in shares and `amount` in yuan. The morning ended at
    11:29:57, so the 11:30 bar is still forming: the agent declares a bar complete only when the
    feed's market time passes its end.
    """),
    code("""
    minutes = agent.kdata(SYMBOL, "MIN")
    minutes
    """),
    md("""
    The same chart, self-contained (the data inside the cell's output, no server): it stays in a
    saved notebook. `candlestick(bars)` as a cell's last line shows one chart.
    """),
    code("""
    candlestick(minutes, title=f"{SYMBOL} MIN bars, the morning of {DAY}")
    """),
    code("""
    print("MIN5 bars reported complete by the on_bar hook:", len(completed_min5))
    pd.DataFrame(completed_min5).set_index("datetime").tail()
    """),
    code("""
    # The DAY bar so far: open, high and low of the morning, and its cumulative volume and amount,
    # equal to the sum of the minute bars (nothing is counted twice or lost).
    day = agent.kdata(SYMBOL, "DAY")
    assert day["volume"].iloc[0] == minutes["volume"].sum()
    day
    """),
    md("""
    ## Stop everything

    The server thread has finished the morning; `stop()` would also end it early. The live
    chart's `stop()` ends its web server (its page says "disconnected"); the agent's `stop()`
    closes its socket and joins its threads; then the publisher's socket is closed.
    """),
    code("""
    chart.stop()
    server.stop()
    feed.join(10)
    agent.stop()
    publisher.close()
    stats = agent.stats()["transport"]
    print(f"messages {stats['messages']}, gaps {stats['gaps']}, accepted spots {agent.stats()['accepted']:,}")
    print("hkrt threads left:", [t.name for t in threading.enumerate() if t.name.startswith("hkrt")])
    """),
]

RECORDED_DAY = [
    md("""
    # A recorded day from the K-data store

    A running `SpotAgent(store=...)` writes every completed bar to the K-data store (Parquet files,
    docs/store.md), and `hkrt.load_kdata` reads them back in any process, even while the agent is
    still writing. This notebook analyses one such day.

    To need no account and no network, the first cell records the day itself: it feeds a
    simulated day (50 symbols) to an agent with a store in a temporary directory. With your own
    store, skip that cell and point `STORE` at it (default `~/.local/share/hkrt/store`,
    `hkrt.store.default_store_root()`).
    """),
    code("""
    import datetime as dt
    import tempfile
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    import hkrt
    from hkrt.fetcher.sim import SimConfig, SimMarket
    from hkrt.notebook import candlestick

    DAY = dt.date(2026, 11, 20)
    SYMBOL = "SH600001"
    """),
    md("""
    ## Record the day (offline)

    The agent is used in-process: each whole-market snapshot goes to `ingest` as columns, the
    same engine a subscribed agent runs. `advance_to(15:05)` tells it the session is over
    (late-stamped closing-auction snapshots count until 15:05), so the last bars and the DAY bar
    complete; `stop()` flushes them and compacts each day's files into one `data.parquet` per
    ktype.
    """),
    code("""
    workdir = tempfile.TemporaryDirectory(prefix="hkrt-notebook-")
    STORE = Path(workdir.name) / "store"

    recorder = hkrt.SpotAgent(["MIN", "MIN5", "DAY"], store=STORE)
    for snapshot in SimMarket(DAY, SimConfig(symbols=50, seed=7)).day_snapshots():
        recorder.ingest(snapshot)
    recorder.advance_to(dt.datetime.combine(DAY, dt.time(15, 5)))
    recorder.stop()

    print("bars written:", recorder.stats()["store"]["written"])
    for path in sorted(STORE.rglob("*.parquet")):
        print(path.relative_to(STORE))
    """),
    md("""
    ## Load the day

    One symbol gives a frame indexed by the bar's right label; `None` (every symbol) a long frame
    with a `symbol` column. `start`/`end` as dates mean whole days.
    """),
    code("""
    minute = hkrt.load_kdata(SYMBOL, "MIN", DAY, DAY, store=STORE)
    min5 = hkrt.load_kdata(SYMBOL, "MIN5", DAY, DAY, store=STORE)
    daily = hkrt.load_kdata(SYMBOL, "DAY", DAY, DAY, store=STORE)
    print(f"{SYMBOL}: {len(minute)} MIN bars, {len(min5)} MIN5 bars, {len(daily)} DAY bar")
    daily
    """),
    code("""
    market_min = hkrt.load_kdata(None, "MIN", DAY, DAY, store=STORE)
    market_day = hkrt.load_kdata(None, "DAY", DAY, DAY, store=STORE).set_index("symbol")
    market_min.head()
    """),
    md("""
    ## Returns

    Minute returns of one symbol, and the day's move (close against open) of every symbol. The
    simulated market lets a few symbols drift to their price limit: they show up at the ends of
    the ranking.
    """),
    code("""
    r = minute["close"].pct_change().dropna()
    print(f"{SYMBOL}: {len(r)} minute returns, std {r.std():.4%}, "
          f"largest up {r.max():.3%} at {r.idxmax():%H:%M}, largest down {r.min():.3%} at {r.idxmin():%H:%M}")
    day_move = (market_day["close"] / market_day["open"] - 1).sort_values()
    pd.concat([day_move.head(3), day_move.tail(3)]).map("{:+.2%}".format).rename("close / open - 1")
    """),
    md("""
    ## Volume profile by minute

    Shares traded in each minute of the day over all symbols. The first bar (09:31) also carries
    the 09:25 opening auction.
    """),
    code("""
    profile = market_min.groupby(market_min["datetime"].dt.strftime("%H:%M"))["volume"].sum()
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.bar(range(len(profile)), profile.to_numpy() / 1e6, width=0.9, color="#4c72b0")
    ticks = range(0, len(profile), 30)
    ax.set_xticks(list(ticks), [profile.index[i] for i in ticks])
    ax.set_ylabel("volume (million shares)")
    ax.set_title(f"Volume by minute, {market_min['symbol'].nunique()} symbols, {DAY}")
    plt.show()
    profile.describe()
    """),
    md("""
    ## VWAP and the DAY bar against its minute bars

    The day's volume-weighted average price is `amount / volume` of the DAY bar (yuan / shares).
    The DAY bar's volume and amount must equal the sum of the day's MIN bars, for every symbol.
    """),
    code("""
    vwap = market_day["amount"] / market_day["volume"]
    print(f"{SYMBOL}: VWAP {vwap[SYMBOL]:.3f} yuan, close {market_day.loc[SYMBOL, 'close']:.2f} yuan")

    summed = market_min.groupby("symbol")[["volume", "amount"]].sum()
    check = market_day[["volume", "amount"]].join(summed.add_suffix("_of_min"))
    volume_ok = bool(np.allclose(check["volume"], check["volume_of_min"], rtol=0, atol=1e-6))
    amount_ok = bool(np.allclose(check["amount"], check["amount_of_min"], rtol=1e-12, atol=1e-3))
    print(f"DAY equals the sum of its MIN bars for {len(check)} symbols: volume {volume_ok}, amount {amount_ok}")
    check.head()
    """),
    md("""
    ## Chart

    The MIN5 candlesticks of the day, with the running VWAP (cumulative amount over cumulative
    volume) drawn over them: an interactive chart (zoom with the wheel, pan by dragging, hover for
    the values). `lines=` draws series over the prices, `lower=` in a pane below;
    `candlestick(..., static=True)` gives matplotlib's drawing instead, and
    `hkrt.notebook.save_candlestick("day.png", min5)` writes a PNG or SVG.
    """),
    code("""
    running_vwap = min5["amount"].cumsum() / min5["volume"].cumsum()
    candlestick(min5, lines={"running VWAP": running_vwap}, title=f"{SYMBOL} MIN5, {DAY}")
    """),
    code("""
    workdir.cleanup()  # the recorded store was only for this notebook
    """),
]

STRATEGY_MAIL = [
    md("""
    # A strategy whose orders arrive by mail

    `MailOrderBroker` mails every order the strategy sends (docs/broker-mail.md): to follow a
    live strategy from a phone, or to trade its signals by hand. Here a strategy runs over a
    simulated day with two brokers: a paper account (`TestOrderBroker`, the **primary**: the
    strategy's book follows its fills) and the mail broker, which receives a copy of every order.

    The mail goes to an SMTP server started in this notebook on 127.0.0.1 (aiosmtpd), so nothing
    leaves the machine. In real use the host is your mail provider, over TLS, with an app
    password (授权码):

    ```python
    MailOrderBroker("smtp.qq.com", user="12345@qq.com", password="<授权码>", to="me@example.com")  # ssl, 465
    ```

    or `hkrt run my.py --broker test --broker mail` with `HKRT_MAIL_*` settings.
    """),
    code("""
    import email
    import email.policy
    import socket
    import threading

    from aiosmtpd.controller import Controller

    import hkrt
    from hkrt.broker.mail import MailOrderBroker
    from hkrt.notebook import candlestick
    from hkrt.strategy import run_sim

    DAY = "2026-11-20"
    """),
    md("""
    ## A local SMTP server

    It keeps every message it receives in a list. The port is a free one picked by the system.
    """),
    code('''
    class Inbox:
        """An aiosmtpd handler that keeps the messages."""

        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
            return "250 OK"


    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    print(f"SMTP server on 127.0.0.1:{port}")
    '''),
    md("""
    ## The strategy: equal weights at 14:50

    A basket of five simulated symbols is brought to equal values at 14:50 (the
    `examples/daily_rebalance.py` rule). `security="none"` sends in clear text, which the mail
    broker accepts only to a loopback host (anything else needs `allow_insecure=True`);
    `user=None, password=None` skips the login, as a local relay needs none.
    """),
    code("""
    BASKET = ["SH600001", "SH600002", "SZ000001", "SZ000003", "SZ300002"]

    paper = hkrt.TestOrderBroker(cash=1_000_000)
    mail = MailOrderBroker("127.0.0.1", port, user=None, password=None, sender="hkrt@example.com",
                           to="trader@example.com", security="none")
    strategy = hkrt.Strategy(codes=BASKET, ktypes=["MIN5"], brokers=[paper, mail], cash=1_000_000)


    @strategy.run_daily_at("14:50")
    def rebalance():
        prices = {s: strategy.last_price(s) for s in BASKET}
        tradable = [s for s, p in prices.items() if p]
        if not tradable:
            return
        target = strategy.portfolio_value() * 0.98 / len(tradable)  # keep 2 % cash for price moves
        for symbol in tradable:
            strategy.order_target_value(symbol, target, prices[symbol], remark="rebalance 14:50")
    """),
    md("""
    ## Run it over a simulated day

    `run_sim` starts a spot server in a thread on an `inproc://` socket and runs the strategy on
    it, as fast as the parts allow (`speed=2000`: the day in a few seconds). Everything the
    strategy sees, its timers included, follows the feed's market time. `handle_signals=False`
    leaves the kernel's Ctrl-C handling alone.
    """),
    code("""
    report = run_sim(strategy, DAY, symbols=50, speed=2000, handle_signals=False)
    report
    """),
    code("""
    strategy.orders  # one row per order and its lifecycle: filled by the paper account, the primary broker
    """),
    code("""
    strategy.broker_orders  # one row per order and broker: Filled by the paper account, Sent by mail
    """),
    code("""
    strategy.trades  # the book's fills (amount and fees in yuan)
    """),
    code("""
    strategy.summary()
    """),
    md("""
    ## The mails

    One message per order; its Message-ID is the mail broker's order id (`broker_order_id`).
    """),
    code("""
    sent_by_mail = strategy.broker_orders.query("broker == 'MailOrderBroker' and result == 'Sent'")
    for message in inbox.messages:
        print(message["Subject"])
    print(f"mails received: {len(inbox.messages)}, orders Sent by MailOrderBroker: {len(sent_by_mail)}")
    assert {m["Message-ID"] for m in inbox.messages} == set(sent_by_mail["broker_order_id"])
    """),
    code("""
    print(inbox.messages[0].get_content())
    """),
    md("""
    ## Chart with the trades

    The strategy's agent keeps the day's bars after the run. A buy is marked below its bar, with its
    shares. (To watch a strategy's chart while it runs, start `hkrt.notebook.live_chart(strategy)`
    before the run, and run it in a thread.)
    """),
    code("""
    symbol = BASKET[0]
    trades = strategy.trades[strategy.trades["symbol"] == symbol]
    candlestick(strategy.kdata(symbol, "MIN5"), trades, title=f"{symbol} MIN5 with the 14:50 rebalance")
    """),
    code("""
    smtp.stop()
    print("hkrt threads left:", [t.name for t in threading.enumerate() if t.name.startswith("hkrt")])
    """),
]

NOTEBOOKS = {
    "01_live_kdata.ipynb": LIVE_KDATA,
    "02_recorded_day_from_store.ipynb": RECORDED_DAY,
    "03_strategy_mail_broker.ipynb": STRATEGY_MAIL,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name``, with stable cell ids so that regenerating changes nothing."""
    stem = name.split("_", 1)[0]
    cells = []
    for i, (kind, text) in enumerate(NOTEBOOKS[name]):
        source = textwrap.dedent(text).strip("\n")
        cell = new_markdown_cell(source) if kind == "markdown" else new_code_cell(source)
        cell["id"] = f"nb{stem}-{i:02d}"
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    return nb


def write_all(directory: Path = HERE) -> list[Path]:
    paths = []
    for name in NOTEBOOKS:
        path = directory / name
        nbformat.write(build(name), path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
