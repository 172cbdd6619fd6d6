// Heartbeat chart: candles from /heartbeat/candles.json, then live from the page's one SSE connection
// (js/candles_chart.js). That connection is the htmx sse extension's (sse-connect on #live), which also
// swaps in the book and the last-closes rows as server-rendered fragments.
(function () {
  "use strict";
  const el = document.getElementById("chart");
  if (!el || !window.LightweightCharts || !window.CandlesChart) return;
  window.CandlesChart(el, document.getElementById("live"));
})();
