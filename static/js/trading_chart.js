// The Trading page's market chart (js/candles_chart.js on the heartbeat's candles of the symbol), priced on
// the symbol's tick, with our fills as arrows and our open orders as price lines (data-overlay-url, read again
// on every order event of the page's order stream and every 15 s).
(function () {
  "use strict";
  const el = document.getElementById("chart");
  if (!el || !window.LightweightCharts || !window.CandlesChart) return;
  const tick = Number(el.dataset.tick) || 0;
  const precision = tick ? Math.max(0, Math.round(-Math.log10(tick))) : 2;
  const format = new Intl.NumberFormat("en-US", { minimumFractionDigits: precision, maximumFractionDigits: precision });
  // The last price follows the live bars; the summary, swapped in again by htmx, starts from the stored one.
  let liveClose = null;
  function showLast() {
    const node = document.getElementById("last-price");
    if (node && liveClose !== null) node.textContent = format.format(liveClose);
  }
  const market = document.getElementById("market");
  market.addEventListener("htmx:afterSwap", showLast);
  const drawn = window.CandlesChart(el, market, {
    priceFormat: { type: "price", precision: precision, minMove: tick || Math.pow(10, -precision) },
    onBar: (bar) => { liveClose = bar.close; showLast(); },
  });
  drawn.chart.applyOptions({ localization: { priceFormatter: (value) => format.format(value) } });
  const markers = LightweightCharts.createSeriesMarkers(drawn.series, []);
  let lines = [];

  function overlay() {
    return fetch(el.dataset.overlayUrl, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((body) => {
        markers.setMarkers(body.fills.map((f) => ({
          time: Math.floor(f.time / 60) * 60,
          position: f.side === "buy" ? "belowBar" : "aboveBar",
          color: f.side === "buy" ? "#26a69a" : "#ef5350",
          shape: f.side === "buy" ? "arrowUp" : "arrowDown",
          text: f.side + " " + f.quantity + " @ " + format.format(Number(f.price)),
        })));
        lines.forEach((line) => drawn.series.removePriceLine(line));
        lines = body.orders.map((o) => drawn.series.createPriceLine({
          price: Number(o.price),
          color: o.side === "buy" ? "#26a69a" : "#ef5350",
          lineStyle: LightweightCharts.LineStyle.Dashed,
          axisLabelVisible: true,
          title: "#" + o.id + " " + o.side + " " + o.type.replace("_", " "),
        }));
        el.dataset.markers = String(body.fills.length);
        el.dataset.lines = String(lines.length);
      });
  }
  drawn.loaded.then(overlay);
  setInterval(overlay, 15000);
  const orders = document.getElementById("order-stream");
  if (orders) {
    orders.addEventListener("htmx:sseOpen", (evt) => evt.detail.source.addEventListener("order", () => setTimeout(overlay, 500)));
  }
})();
