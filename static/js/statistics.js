// The P&L chart of the Statistics page, from the JSON the page embeds (#stat-chart data-series-id).
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  const LC = window.LightweightCharts;
  const el = document.getElementById("stat-chart");
  const data = JSON.parse(document.getElementById(el.dataset.seriesId).textContent);
  const quotes = Object.keys(data);
  if (!LC || !quotes.length) return;
  const chart = LC.createChart(el, {
    layout: { background: { color: "transparent" }, textColor: "#d7dde6", attributionLogo: false },
    grid: { vertLines: { color: "#222a36" }, horzLines: { color: "#222a36" } },
    timeScale: { timeVisible: true, borderColor: "#2a3240" },
    rightPriceScale: { borderColor: "#2a3240" },
    leftPriceScale: { borderColor: "#2a3240", visible: quotes.length > 1 },
    autoSize: true,
  });
  const palette = ["#4c9aff", "#e0a526", "#b47cff", "#38c7d1"];
  quotes.forEach(function (quote, i) {
    // A second quote asset gets its own scale: USDT and BTC amounts are not comparable.
    const series = chart.addSeries(LC.BaselineSeries, {
      baseValue: { type: "price", price: 0 }, title: quote, priceScaleId: i === 0 ? "right" : "left",
      topLineColor: "#2fbf71", bottomLineColor: "#f0506e",
      topFillColor1: "rgba(47,191,113,0.25)", topFillColor2: "rgba(47,191,113,0.02)",
      bottomFillColor1: "rgba(240,80,110,0.02)", bottomFillColor2: "rgba(240,80,110,0.25)",
    });
    series.setData(data[quote].map(function (p) { return { time: p.time, value: Number(p.value) }; }));
  });
  chart.timeScale().fitContent();
  el.dataset.ready = "1";
});
