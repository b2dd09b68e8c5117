// hkrt dashboard: applies the server's snapshot, then its numbered deltas (docs/dashboard.md, "Protocol").
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const MAX_BARS = 2000;      // per series kept in the page
  const MAX_ROWS = 200;       // rows drawn per table
  const $ = (id) => document.getElementById(id);
  const S = { seq: 0, bars: new Map(), forming: new Map(), orders: new Map(), trades: [], equity: [], positions: [], account: {},
              risk: {}, health: {}, feed: {}, symbols: [], ktypes: [] };
  let ws = null, dirty = false, chartKey = null;

  // a node's dashboard: ?strategy=NAME picks the strategy shown (the server's first without it)
  const NODE = { on: false, strategies: [], processes: {}, outcome: "" };
  const wantedStrategy = new URLSearchParams(location.search).get("strategy");
  const tokenBox = $("token");
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) tokenBox.value = fromHash;

  // ---- charts (candles.js: the same chart as the notebooks')
  const candles = window.hkrtCandles.create($("chart"), { volume: true });
  const equityChart = LWC.createChart($("equity"), { autoSize: true, timeScale: { timeVisible: true } });
  const equityLine = equityChart.addSeries(LWC.LineSeries, { color: "#2563eb", lineWidth: 2 });

  const key = (symbol, ktype) => symbol + "|" + ktype;
  const selected = () => key($("symbol").value, $("ktype").value);

  function setOptions(select, values) {
    const keep = select.value;
    select.innerHTML = "";
    for (const v of values) select.add(new Option(v, v));
    if (values.includes(keep)) select.value = keep;
  }

  function addBar(symbol, ktype, bar) {
    const k = key(symbol, ktype);
    let list = S.bars.get(k);
    if (!list) { list = []; S.bars.set(k, list); }
    const last = list[list.length - 1];
    if (last && last.time === bar.time) list[list.length - 1] = bar;
    else if (!last || last.time < bar.time) list.push(bar);
    else return false;  // an older bar than the newest: ignored (the server keeps time order)
    if (list.length > MAX_BARS) list.splice(0, list.length - MAX_BARS);
    const forming = S.forming.get(k);
    if (forming && forming.time <= bar.time) S.forming.delete(k);
    if (k === chartKey) { show(bar); drawMarkers(); showCount(); }
    return true;
  }

  // the newest candle: a closed bar, or the one still forming (a closed bar of its time replaces it)
  function show(bar) {
    if (!candles.update(bar)) { candles.setBars(series(chartKey)); drawMarkers(); }  // older than drawn: redraw
  }

  function series(k) {
    const list = (S.bars.get(k) || []).slice();
    const forming = S.forming.get(k);
    if (forming && (!list.length || list[list.length - 1].time < forming.time)) list.push(forming);
    return list;
  }

  function setForming(symbol, ktype, bar) {
    const k = key(symbol, ktype);
    const list = S.bars.get(k) || [];
    if (list.length && list[list.length - 1].time >= bar.time) return;  // closed already
    S.forming.set(k, bar);
    if (k === chartKey) show(bar);
  }

  function showCount() {
    const list = S.bars.get(chartKey) || [];
    $("bar-count").textContent = String(list.length);
    const last = list[list.length - 1];
    $("last-bar").textContent = last ? new Date(last.time * 1000).toISOString().slice(0, 16).replace("T", " ") : "–";
  }

  function drawChart() {
    chartKey = selected();
    candles.setBars(series(chartKey));
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "watch", symbol: $("symbol").value, ktype: $("ktype").value }));
    }
    drawMarkers();
    showCount();
    candles.fit();
  }

  function drawMarkers() {
    const symbol = $("symbol").value;
    candles.setTrades(S.trades.filter((t) => t.symbol === symbol));
  }

  // ---- state
  function applySnapshot(d) {
    S.bars.clear();
    for (const s of d.bars) S.bars.set(key(s.symbol, s.ktype), s.bars.slice(-MAX_BARS));
    S.forming = new Map(d.forming.map((f) => [key(f.symbol, f.ktype), f.bar]));
    candles.setPanes(d.indicators);
    S.orders = new Map(d.orders.map((o) => [o.id, o]));
    S.trades = d.trades; S.equity = d.equity; S.positions = d.positions; S.account = d.account;
    S.risk = d.risk; S.health = d.health; S.feed = d.feed;
    $("strategy").textContent = d.strategy;
    const withBars = d.symbols.filter((s) => d.bars.some((b) => b.symbol === s && b.bars.length));
    setOptions($("symbol"), withBars.concat(d.symbols.filter((s) => !withBars.includes(s))));
    setOptions($("ktype"), d.ktypes);
    if (!chartKey) {  // the first snapshot: ?symbol=...&ktype=... pick the series (a notebook's live view)
      const wanted = new URLSearchParams(location.search);
      if (d.symbols.includes(wanted.get("symbol"))) $("symbol").value = wanted.get("symbol");
      if (d.ktypes.includes(wanted.get("ktype"))) $("ktype").value = wanted.get("ktype");
    }
    drawChart();
    equityLine.setData(S.equity);
    equityChart.timeScale().fitContent();
  }

  function applyDelta(kind, d) {
    switch (kind) {
      case "bar": addBar(d.symbol, d.ktype, d.bar); break;
      case "forming": setForming(d.symbol, d.ktype, d.bar); break;
      case "indicators": candles.setPanes(d); break;
      case "order": S.orders.set(d.id, d); break;
      case "trade": S.trades.push(d); if (S.trades.length > 2000) S.trades.shift(); drawMarkers(); break;
      case "equity":
        if (!S.equity.length || S.equity[S.equity.length - 1].time < d.time) { S.equity.push(d); equityLine.update(d); }
        break;
      case "positions": S.positions = d; break;
      case "account": S.account = d; break;
      case "risk": S.risk = d; break;
      case "health": S.health = d; break;
      case "feed": S.feed = d; break;
    }
  }

  function applyNode(d) {
    NODE.on = true; NODE.strategies = d.strategies; NODE.processes = d.processes; NODE.outcome = d.outcome;
    const select = $("strategy-select");
    select.hidden = false; $("node-panel").hidden = false;
    const current = currentStrategy();
    select.replaceChildren(...d.strategies.map((s) => new Option(
      s.name + (s.connected ? (s.state && s.state !== "ACTIVE" ? " (" + s.state + ")" : "") : " (no relay)"), s.name)));
    select.value = current;
  }

  // the strategy this page shows: in a node, the selector's (the first without ?strategy=); alone, the snapshot's
  function currentStrategy() {
    if (!NODE.on) return $("strategy").textContent;
    const names = NODE.strategies.map((s) => s.name);
    return names.includes(wantedStrategy) ? wantedStrategy : names[0];
  }

  function onMessage(ev) {
    const m = JSON.parse(ev.data);
    if (m.type === "node") { applyNode(m.data); dirty = true; return; }
    if (m.type === "snapshot") { S.seq = m.seq; applySnapshot(m.data); }
    else if (m.type === "delta") {
      if (m.seq <= S.seq) return;  // already in the snapshot
      if (m.seq !== S.seq + 1) { ws.close(); return; }  // a hole: reconnect for a fresh snapshot
      S.seq = m.seq; applyDelta(m.kind, m.data);
    }
    dirty = true;
  }

  // ---- tables
  const cell = (v, cls) => { const td = document.createElement("td"); td.textContent = v == null ? "" : String(v); if (cls) td.className = cls; return td; };
  const num = (v, digits) => (v == null ? "" : Number(v).toFixed(digits));

  function fill(tbody, rows, make) {
    tbody.replaceChildren(...rows.slice(0, MAX_ROWS).map(make));
  }

  function render() {
    if (!dirty) return;
    dirty = false;
    const risk = $("risk-state");
    risk.textContent = S.risk.state || "?"; risk.className = "badge " + (S.risk.state || "");
    $("risk-reason").textContent = S.risk.reason || "";
    const health = $("health");
    health.textContent = S.health.status || "?"; health.className = "badge " + (S.health.status || "");
    $("health-reasons").replaceChildren(...(S.health.reasons || []).map((r) => {
      const li = document.createElement("li"); li.textContent = r.status + ": " + r.detail; return li; }));
    $("feed").textContent = S.feed.market_time ? "market " + S.feed.market_time + "  gaps " + S.feed.gaps +
      (S.feed.last_event ? "  " + S.feed.last_event : "") : "";
    const a = S.account;
    $("account").textContent = a.value == null ? "" : "value " + num(a.value, 2) + "  cash " + num(a.cash, 2) +
      "  P&L " + num(a.pnl, 2) + "  orders " + a.orders + "  trades " + a.trades;
    fill($("positions"), S.positions, (p) => {
      const tr = document.createElement("tr");
      tr.append(cell(p.symbol), cell(p.shares), cell(p.sellable), cell(num(p.cost, 3)), cell(num(p.last, 2)), cell(num(p.pnl, 2)));
      return tr;
    });
    const orders = [...S.orders.values()];
    const done = new Set(["filled", "cancelled", "rejected", "expired"]);
    orders.sort((x, y) => (done.has(x.status) - done.has(y.status)) || String(y.time).localeCompare(String(x.time)));
    fill($("orders"), orders, (o) => {
      const tr = document.createElement("tr");
      tr.dataset.id = o.id; tr.dataset.status = o.status;
      if (!done.has(o.status)) tr.className = "working";
      tr.append(cell(o.time ? o.time.slice(11) : ""), cell(o.symbol), cell(o.side, o.side), cell(o.shares), cell(o.filled),
                cell(num(o.avg_price || o.price, 2)), cell(o.status), cell(o.reason, "reason"));
      return tr;
    });
    fill($("trades"), S.trades.slice().reverse(), (t) => {
      const tr = document.createElement("tr");
      tr.append(cell(t.when ? t.when.slice(11) : ""), cell(t.symbol), cell(t.side, t.side), cell(t.shares), cell(num(t.price, 2)));
      return tr;
    });
  }
  function renderNode() {
    if (!NODE.on) return;
    $("node-outcome").textContent = NODE.outcome || "";
    fill($("node-processes"), Object.entries(NODE.processes), ([name, p]) => {
      const tr = document.createElement("tr");
      tr.dataset.name = name; tr.dataset.state = p.state;
      tr.append(cell(name), cell(p.state, p.gave_up ? "sell" : ""), cell(p.pid), cell(p.starts), cell(p.restarts),
                cell(p.last_exit));
      return tr;
    });
  }
  setInterval(() => { const was = dirty; render(); if (was) renderNode(); }, 250);

  // ---- connection
  function connect() {
    const query = wantedStrategy ? "?strategy=" + encodeURIComponent(wantedStrategy) : "";
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + query);
    ws.onopen = () => { ws.send(JSON.stringify({ type: "hello", token: tokenBox.value })); setConnection(true); };
    ws.onmessage = onMessage;
    ws.onclose = () => { setConnection(false); setTimeout(connect, 1000); };
  }
  function setConnection(on) {
    const c = $("connection"); c.textContent = on ? "live" : "disconnected"; c.className = "badge " + (on ? "on" : "off");
  }

  $("symbol").onchange = drawChart;
  $("ktype").onchange = drawChart;
  $("strategy-select").onchange = (ev) => {  // another strategy of the node: its page (the token's fragment kept)
    location.href = location.pathname + "?strategy=" + encodeURIComponent(ev.target.value) + location.hash;
  };
  $("halt").onclick = async () => {
    const out = $("halt-result");
    out.textContent = "halting…";
    try {
      const r = await fetch("/api/halt", { method: "POST", headers: { "Content-Type": "application/json",
        "Authorization": "Bearer " + tokenBox.value }, body: JSON.stringify({ reason: "halt button", strategy: currentStrategy() }) });
      const body = await r.json();
      out.textContent = r.ok ? body.state + " (" + body.cancelled + " orders asked to cancel)" : "refused: " + body.error;
      if (r.ok) { S.risk = { state: body.state, reason: body.reason }; dirty = true; }
    } catch (e) { out.textContent = "failed: " + e; }
  };
  // for tests and the console: the page's state and the candles drawn
  window.hkrtDashboard = { state: S, node: NODE, strategy: currentStrategy, candles: () => candles.data(),
                           lines: () => candles.lines() };
  connect();
})();
