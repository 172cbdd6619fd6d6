// The dashboard's equity curve (lightweight-charts line), from /dashboard/equity.json: drawn on load and
// redrawn every minute (the panels around it are htmx fragments that refresh themselves).
(function () {
  "use strict";
  const el = document.getElementById("equity-chart");
  if (!el || !window.LightweightCharts) return;
  const chart = LightweightCharts.createChart(el, {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: "#c9d1d9" },
    grid: { vertLines: { color: "rgba(255,255,255,0.05)" }, horzLines: { color: "rgba(255,255,255,0.05)" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const series = chart.addSeries(LightweightCharts.AreaSeries, {
    lineColor: "#58a6ff", topColor: "rgba(88,166,255,0.3)", bottomColor: "rgba(88,166,255,0.02)",
    priceFormat: { type: "price", precision: 2, minMove: 0.01 },
  });
  function draw() {
    fetch(el.dataset.url, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((body) => {
        series.setData(body.points);
        chart.timeScale().fitContent();
        el.dataset.points = String(body.points.length);
      });
  }
  draw();
  setInterval(draw, 60000);
})();
