// Backtest charts: candles with trade markers, equity and drawdown (results page); equity overlay (compare).
(function () {
  "use strict";
  const LC = window.LightweightCharts;
  const PALETTE = ["#4c9aff", "#2fbf71", "#e0a526", "#f0506e", "#b47cff", "#38c7d1", "#ff8f4c", "#9aa5b1"];
  const BASE = {
    layout: { background: { color: "transparent" }, textColor: "#d7dde6", attributionLogo: false },
    grid: { vertLines: { color: "#222a36" }, horzLines: { color: "#222a36" } },
    // minBarSpacing: a long run fits the chart whole (the default 0.5 px per bar framed only its last weeks).
    timeScale: { timeVisible: true, borderColor: "#2a3240", minBarSpacing: 0.001 },
    rightPriceScale: { borderColor: "#2a3240" },
    autoSize: true,
  };

  function makeChart(el) { return LC.createChart(el, BASE); }

  // Scrolling one chart scrolls the others: equity and drawdown stay aligned with the price.
  function syncTime(charts) {
    charts.forEach((source) => {
      source.timeScale().subscribeVisibleLogicalRangeChange(() => {
        const range = source.timeScale().getVisibleRange();
        if (!range) return;
        charts.forEach((target) => { if (target !== source) target.timeScale().setVisibleRange(range); });
      });
    });
  }

  async function resultCharts(root) {
    const response = await fetch(root.dataset.chartUrl, { credentials: "same-origin" });
    const data = await response.json();
    const price = makeChart(document.getElementById("chart-candles"));
    const candles = price.addSeries(LC.CandlestickSeries, {
      upColor: "#2fbf71", downColor: "#f0506e", borderVisible: false, wickUpColor: "#2fbf71", wickDownColor: "#f0506e",
    });
    candles.setData(data.candles);
    LC.createSeriesMarkers(candles, data.markers);
    const equity = makeChart(document.getElementById("chart-equity"));
    equity.addSeries(LC.LineSeries, { color: "#4c9aff", lineWidth: 2 }).setData(data.equity);
    const drawdown = makeChart(document.getElementById("chart-drawdown"));
    drawdown.addSeries(LC.AreaSeries, {
      lineColor: "#f0506e", topColor: "rgba(240,80,110,0.05)", bottomColor: "rgba(240,80,110,0.45)", invertFilledArea: true,
    }).setData(data.drawdown);
    // The first bar in view, kept on the page (0: the whole run is framed).
    price.timeScale().subscribeVisibleLogicalRangeChange((shown) => {
      if (shown) root.dataset.firstBarShown = String(Math.max(0, Math.ceil(shown.from)));
    });
    [price, equity, drawdown].forEach((c) => c.timeScale().fitContent());
    syncTime([price, equity, drawdown]);
    root.dataset.ready = String(data.candles.length);
  }

  async function compareChart(root) {
    const ids = JSON.parse(root.dataset.chartUrls);
    const chart = makeChart(root);
    const legend = document.getElementById("bt-legend");
    for (let i = 0; i < ids.length; i++) {
      const url = root.dataset.urlTemplate.replace("/0/", "/" + ids[i] + "/");
      const data = await (await fetch(url, { credentials: "same-origin" })).json();
      const color = PALETTE[i % PALETTE.length];
      chart.addSeries(LC.LineSeries, { color: color, lineWidth: 2, title: "#" + ids[i] }).setData(data.equity);
      const item = document.createElement("span");
      item.style.setProperty("--swatch", color);
      item.textContent = "#" + ids[i];
      legend.appendChild(item);
    }
    chart.timeScale().fitContent();
    root.dataset.ready = String(ids.length);
  }

  function start() {
    const results = document.getElementById("bt-charts");
    if (results) resultCharts(results).catch((e) => { results.dataset.error = String(e); });
    const compare = document.getElementById("bt-compare-chart");
    if (compare) compareChart(compare).catch((e) => { compare.dataset.error = String(e); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
