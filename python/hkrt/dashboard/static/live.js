// hkrt's live chart of one series (a notebook's hkrt.notebook.live_chart): the dashboard's WebSocket protocol
// (docs/dashboard.md, "Protocol") drawn by the dashboard's chart code (candles.js).  ?symbol=...&ktype=... pick
// the series; #token=... is sent in the hello where the server needs one (beyond loopback).
(function () {
  "use strict";
  const KEEP = 2000;  // bars kept in the page; older ones leave
  const $ = (id) => document.getElementById(id);
  const wanted = new URLSearchParams(location.search);
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  const candles = window.hkrtCandles.create($("chart"), { volume: true });
  const S = { seq: 0, symbol: null, ktype: null, closed: [], forming: null, trades: [], messages: 0 };
  let ws = null, fitted = false;

  const ours = (d) => d.symbol === S.symbol && d.ktype === S.ktype;
  const newest = () => S.closed.length ? S.closed[S.closed.length - 1].time : -Infinity;

  function drawn() {  // the closed bars, then the forming one when it is newer
    return S.forming && S.forming.time > newest() ? S.closed.concat([S.forming]) : S.closed.slice();
  }
  function redraw() {
    candles.setBars(drawn());
    candles.setTrades(S.trades);
    if (!fitted && S.closed.length) { candles.fit(); fitted = true; }
  }
  function label() {
    $("bar-count").textContent = String(S.closed.length);
    const t = S.closed.length ? newest() : null;
    $("last-bar").textContent = t == null ? "–" : new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");
  }
  function draw(bar) {  // the newest candle cheaply; anything else redraws
    if (!candles.update(bar)) redraw();
  }

  function closedBar(bar) {
    if (bar.time < newest()) return;  // older than the newest: the server keeps time order
    if (bar.time === newest()) S.closed[S.closed.length - 1] = bar; else S.closed.push(bar);
    if (S.closed.length > KEEP) S.closed.splice(0, S.closed.length - KEEP);
    if (S.forming && S.forming.time <= bar.time) S.forming = null;
    draw(bar);
    label();
  }
  function formingBar(bar) {
    if (bar.time <= newest()) return;  // closed already
    S.forming = bar;
    draw(bar);
  }

  function snapshot(d) {
    S.symbol = d.symbols.includes(wanted.get("symbol")) ? wanted.get("symbol") : d.symbols[0];
    S.ktype = d.ktypes.includes(wanted.get("ktype")) ? wanted.get("ktype") : d.ktypes[0];
    $("series").textContent = (d.strategy ? d.strategy + ": " : "") + S.symbol + " " + S.ktype;
    const series = d.bars.find(ours);
    S.closed = series ? series.bars.slice(-KEEP) : [];
    const forming = d.forming.find(ours);
    S.forming = forming ? forming.bar : null;
    S.trades = d.trades.filter((t) => t.symbol === S.symbol);
    candles.setPanes(d.indicators);
    redraw();
    label();
    ws.send(JSON.stringify({ type: "watch", symbol: S.symbol, ktype: S.ktype }));
  }
  function delta(kind, d) {
    if (kind === "bar" && ours(d)) closedBar(d.bar);
    else if (kind === "forming" && ours(d)) formingBar(d.bar);
    else if (kind === "indicators") candles.setPanes(d);
    else if (kind === "trade" && d.symbol === S.symbol) {
      S.trades.push(d);
      if (S.trades.length > KEEP) S.trades.shift();
      candles.setTrades(S.trades);
    }
  }

  function connect() {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = () => { ws.send(JSON.stringify({ type: "hello", token })); online(true); };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      S.messages += 1;
      if (m.type === "snapshot") { S.seq = m.seq; snapshot(m.data); }
      else if (m.type === "delta" && m.seq > S.seq) {
        if (m.seq !== S.seq + 1) { ws.close(); return; }  // a hole: reconnect for a fresh snapshot
        S.seq = m.seq;
        delta(m.kind, m.data);
      }
    };
    ws.onclose = () => { online(false); setTimeout(connect, 1000); };
  }
  function online(on) {
    $("connection").textContent = on ? "live" : "disconnected";
    $("connection").className = on ? "on" : "";
  }
  // for tests and the console: the page's state and the candles drawn
  window.hkrtLive = { state: S, candles: () => candles.data() };
  connect();
})();
