// hkrt's candlestick chart over TradingView Lightweight Charts: the dashboard's page and the notebooks' charts
// (hkrt.dashboard.notebook) draw with this same code.  A-share colours: red up, green down; buys red, sells green.
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const UP = "#dc2626", DOWN = "#16a34a";
  const PALETTE = ["#2563eb", "#f59e0b", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569"];

  // One marker per bar and side (an order's fills often come in parts), on the bar whose period holds the
  // trade: bars are labelled by their end, so the first bar at or after the trade's time.
  function tradeMarkers(bars, trades) {
    const sums = new Map();
    for (const t of trades) {
      if (t.time == null || !bars.length) continue;
      const bar = bars.find((b) => b.time >= t.time);
      if (!bar) continue;
      const k = bar.time + t.side;
      sums.set(k, { time: bar.time, side: t.side, shares: (sums.has(k) ? sums.get(k).shares : 0) + t.shares });
    }
    const out = [];
    for (const m of sums.values()) {
      const buy = m.side === "buy";
      out.push({ time: m.time, position: buy ? "belowBar" : "aboveBar", shape: buy ? "arrowUp" : "arrowDown",
                 color: buy ? UP : DOWN, text: (buy ? "B " : "S ") + m.shares });
    }
    return out.sort((a, b) => a.time - b.time);
  }

  // create(element, {volume}) -> {setBars(bars), update(bar), setTrades(trades), setPanes(panes), fit(), data(),
  // marks(), lines()}
  // bars: [{time (market time as UTC seconds), open, high, low, close, volume}], time ascending.
  function create(element, options) {
    const opts = options || {};
    const chart = LWC.createChart(element, { autoSize: true, timeScale: { timeVisible: true, secondsVisible: false } });
    const candles = chart.addSeries(LWC.CandlestickSeries, { upColor: UP, downColor: DOWN, borderUpColor: UP,
      borderDownColor: DOWN, wickUpColor: UP, wickDownColor: DOWN });
    let volume = null;
    if (opts.volume) {
      volume = chart.addSeries(LWC.HistogramSeries, { priceScaleId: "volume", priceFormat: { type: "volume" } });
      chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
      candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
    }
    const markers = LWC.createSeriesMarkers(candles, []);
    let bars = [], trades = [], panes = {};
    const lines = new Map();  // indicator label -> its line (bars carry their values in bar.ind)
    function line(label) {
      if (!lines.has(label)) {
        const overlay = panes[label] !== false;  // TA-Lib's overlap studies over the prices, the rest below
        lines.set(label, chart.addSeries(LWC.LineSeries, { color: PALETTE[lines.size % PALETTE.length], lineWidth: 1,
          title: label, priceLineVisible: false, lastValueVisible: false }, overlay ? 0 : 1));
      }
      return lines.get(label);
    }
    function drawLines() {
      const labels = new Set();
      for (const b of bars) if (b.ind) for (const label in b.ind) labels.add(label);
      for (const label of labels) {
        line(label).setData(bars.filter((b) => b.ind && label in b.ind).map((b) => ({ time: b.time, value: b.ind[label] })));
      }
      for (const [label, series] of [...lines]) {  // another series' indicators: gone, their pane with them
        if (!labels.has(label)) { chart.removeSeries(series); lines.delete(label); }
      }
    }
    const bar = (b) => ({ time: b.time, value: b.volume, color: b.close >= b.open ? UP + "88" : DOWN + "88" });
    return {
      chart,
      setBars(list) {
        bars = list.slice();
        candles.setData(bars);
        if (volume) volume.setData(bars.map(bar));
        markers.setMarkers(tradeMarkers(bars, trades));
        drawLines();
      },
      // label -> drawn over the prices (true) or in the pane below (false); before the bars that carry them
      setPanes(p) { panes = Object.assign({}, panes, p); },
      // the newest bar, or a new one after it; an older one than the newest drawn redraws all
      update(b) {
        const last = bars[bars.length - 1];
        if (last && b.time < last.time) return false;
        if (last && last.time === b.time) bars[bars.length - 1] = b; else bars.push(b);
        candles.update(b);
        if (volume) volume.update(bar(b));
        if (b.ind) for (const label in b.ind) line(label).update({ time: b.time, value: b.ind[label] });
        return true;
      },
      setTrades(list) { trades = list; markers.setMarkers(tradeMarkers(bars, trades)); },
      fit() { chart.timeScale().fitContent(); },
      data() { return candles.data(); },
      marks() { return markers.markers(); },
      lines() { const out = {}; for (const [label, s] of lines) out[label] = s.data().length; return out; },
    };
  }

  window.hkrtCandles = { create, tradeMarkers };
})();
