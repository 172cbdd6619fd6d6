// Heartbeat page: candles from /heartbeat/candles.json, then live over SSE (closed, forming, book).
(function () {
  "use strict";
  const el = document.getElementById("chart");
  if (!el || !window.LightweightCharts) return;
  const tfMs = Number(el.dataset.tfMs);
  const timeframe = el.dataset.timeframe;
  const state = document.getElementById("live-state");
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
  function utc(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " "); }
  function lastClose(e) {
    const row = document.querySelector(`#last-closes tr[data-tf="${e.tf}"]`);
    if (!row) return;
    const prev = Number(row.querySelector(".close").textContent);
    row.querySelector(".open-time").textContent = utc(Number(e.t));
    row.querySelector(".close").textContent = String(Number(e.c));
    const change = row.querySelector(".change");
    if (prev) {
      const pct = (Number(e.c) - prev) / prev * 100;
      change.textContent = pct.toFixed(2);
      change.className = "num change " + (pct > 0 ? "buy" : pct < 0 ? "sell" : "");
    }
    row.classList.add("flash-row");
    setTimeout(() => row.classList.remove("flash-row"), 900);
  }

  fetch(el.dataset.candlesUrl, { credentials: "same-origin" })
    .then((r) => r.json())
    .then((rows) => {
      series.setData(rows.map((r) => ({ time: r.time, open: r.open, high: r.high, low: r.low, close: r.close })));
      if (rows.length) { last = rows[rows.length - 1]; el.dataset.lastTime = String(last.time); }
      el.dataset.bars = String(rows.length);
      el.dataset.loaded = "1";
      listen();
    });

  function listen() {
    const source = new EventSource(el.dataset.streamUrl);
    source.onopen = () => { state.textContent = "live"; state.className = "pill ok"; };
    source.onerror = () => { state.textContent = "reconnecting…"; state.className = "pill bad"; };
    source.addEventListener("candle", (msg) => {
      const e = JSON.parse(msg.data);
      lastClose(e);
      if (e.tf === timeframe) put(bar(e));
      else if (e.tf === "1m") mergeMinute(bar(e));
    });
    source.addEventListener("forming", (msg) => {
      const e = JSON.parse(msg.data);
      if (timeframe === "1m") put(bar(e)); else mergeMinute(bar(e));
    });
    source.addEventListener("book", (msg) => {
      const e = JSON.parse(msg.data);
      document.getElementById("book-bid").textContent = e.bid;
      document.getElementById("book-ask").textContent = e.ask;
    });
  }
})();
