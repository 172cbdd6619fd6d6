// Heartbeat chart: candles from /heartbeat/candles.json, then live from the page's one SSE connection.
// That connection is the htmx sse extension's (sse-connect on #live), which also swaps in the book and the
// last-closes rows as server-rendered fragments. The chart stays script: lightweight-charts takes bars through
// its JS API, not HTML, so this code listens for the JSON `candle` and `forming` events on the extension's
// EventSource (handed over by its htmx:sseOpen event).
(function () {
  "use strict";
  const el = document.getElementById("chart");
  if (!el || !window.LightweightCharts) return;
  const tfMs = Number(el.dataset.tfMs);
  const timeframe = el.dataset.timeframe;
  const chart = LightweightCharts.createChart(el, {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: "#c9d1d9" },
    grid: { vertLines: { color: "rgba(255,255,255,0.05)" }, horzLines: { color: "rgba(255,255,255,0.05)" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const series = chart.addSeries(LightweightCharts.CandlestickSeries, {
    upColor: "#26a69a", downColor: "#ef5350", borderVisible: false,
    wickUpColor: "#26a69a", wickDownColor: "#ef5350",
  });
  let last = null;   // the bar on the chart's right edge
  let loaded = false;
  const early = [];  // live events that came before the stored candles: drawn right after them
  el.dataset.bars = "0";

  function bar(e) {
    return { time: Math.floor(Number(e.t) / 1000), open: Number(e.o), high: Number(e.h), low: Number(e.l), close: Number(e.c) };
  }
  function put(b) {
    if (last && b.time < last.time) return;  // never draw back in time
    series.update(b);
    if (!last || b.time > last.time) el.dataset.bars = String(Number(el.dataset.bars) + 1);
    last = b;
    el.dataset.lastTime = String(b.time);
    el.dataset.lastClose = String(b.close);
  }
  // A forming 1m candle moves the current bar of any timeframe.
  function mergeMinute(m) {
    const start = Math.floor(m.time * 1000 / tfMs) * tfMs / 1000;
    if (last && last.time === start) {
      put({ time: start, open: last.open, high: Math.max(last.high, m.high), low: Math.min(last.low, m.low), close: m.close });
    } else if (!last || start > last.time) {
      put({ time: start, open: m.open, high: m.high, low: m.low, close: m.close });
    }
  }
  function live(draw) {
    return (msg) => {
      const e = JSON.parse(msg.data);
      if (loaded) draw(e); else early.push(() => draw(e));
    };
  }
  const onCandle = live((e) => {
    if (e.tf === timeframe) put(bar(e));
    else if (e.tf === "1m") mergeMinute(bar(e));
  });
  const onForming = live((e) => { if (timeframe === "1m") put(bar(e)); else mergeMinute(bar(e)); });
  // Each (re)connection may bring a new EventSource; the same listener added twice to one is added once.
  document.getElementById("live").addEventListener("htmx:sseOpen", (evt) => {
    evt.detail.source.addEventListener("candle", onCandle);
    evt.detail.source.addEventListener("forming", onForming);
  });

  fetch(el.dataset.candlesUrl, { credentials: "same-origin" })
    .then((r) => r.json())
    .then((rows) => {
      series.setData(rows.map((r) => ({ time: r.time, open: r.open, high: r.high, low: r.low, close: r.close })));
      if (rows.length) { last = rows[rows.length - 1]; el.dataset.lastTime = String(last.time); }
      el.dataset.bars = String(rows.length);
      el.dataset.loaded = "1";
      loaded = true;
      early.splice(0).forEach((draw) => draw());
    });
})();
