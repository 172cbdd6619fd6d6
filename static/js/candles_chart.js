// A candlestick chart fed by the heartbeat: the stored candles (data-candles-url), then live from an SSE
// connection of the htmx sse extension (sse-connect on `live`): `candle` (closed, any timeframe) and
// `forming` (the 1m candle under way) events carry JSON. A forming 1m candle moves the current bar of any
// timeframe. The Heartbeat page and the Trading page's market both draw theirs with it:
//   const drawn = window.CandlesChart(el, live, { onBar: (bar) => ... , priceFormat: {...} });
//   drawn.chart, drawn.series (lightweight-charts objects), drawn.loaded (a promise: the stored candles are in)
// `el` carries data-candles-url, data-timeframe, data-tf-ms; it gets data-bars, data-last-time, data-last-close.
(function () {
  "use strict";
  window.CandlesChart = function (el, live, options) {
    const opts = options || {};
    const tfMs = Number(el.dataset.tfMs);
    const timeframe = el.dataset.timeframe;
    const chart = LightweightCharts.createChart(el, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: "#c9d1d9" },
      grid: { vertLines: { color: "rgba(255,255,255,0.05)" }, horzLines: { color: "rgba(255,255,255,0.05)" } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    const style = {
      upColor: "#26a69a", downColor: "#ef5350", borderVisible: false,
      wickUpColor: "#26a69a", wickDownColor: "#ef5350",
    };
    if (opts.priceFormat) style.priceFormat = opts.priceFormat;
    const series = chart.addSeries(LightweightCharts.CandlestickSeries, style);
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
      if (opts.onBar) opts.onBar(b);
    }
    function mergeMinute(m) {
      const start = Math.floor(m.time * 1000 / tfMs) * tfMs / 1000;
      if (last && last.time === start) {
        put({ time: start, open: last.open, high: Math.max(last.high, m.high), low: Math.min(last.low, m.low), close: m.close });
      } else if (!last || start > last.time) {
        put({ time: start, open: m.open, high: m.high, low: m.low, close: m.close });
      }
    }
    function onLive(draw) {
      return (msg) => {
        const e = JSON.parse(msg.data);
        if (loaded) draw(e); else early.push(() => draw(e));
      };
    }
    const onCandle = onLive((e) => {
      if (e.tf === timeframe) put(bar(e));
      else if (e.tf === "1m") mergeMinute(bar(e));
    });
    const onForming = onLive((e) => { if (timeframe === "1m") put(bar(e)); else mergeMinute(bar(e)); });
    // Each (re)connection may bring a new EventSource; the same listener added twice to one is added once.
    live.addEventListener("htmx:sseOpen", (evt) => {
      evt.detail.source.addEventListener("candle", onCandle);
      evt.detail.source.addEventListener("forming", onForming);
    });

    const ready = fetch(el.dataset.candlesUrl, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((rows) => {
        series.setData(rows.map((r) => ({ time: r.time, open: r.open, high: r.high, low: r.low, close: r.close })));
        if (rows.length) { last = rows[rows.length - 1]; el.dataset.lastTime = String(last.time); }
        el.dataset.bars = String(rows.length);
        el.dataset.loaded = "1";
        loaded = true;
        early.splice(0).forEach((draw) => draw());
      });
    return { chart: chart, series: series, loaded: ready };
  };
})();
