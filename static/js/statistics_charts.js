// The Statistics page's charts: cumulative P&L, daily P&L bars and drawdown of the view's daily
// mark-to-market curve, drawn from the JSON the page embeds and refreshed from #stat-charts data-url
// every 10 s (fills arriving move them; a 304 says nothing changed). One series per quote asset; a
// second quote gets the left scale.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  const LC = window.LightweightCharts;
  const box = document.getElementById("stat-charts");
  if (!LC || !box) return;
  const REFRESH_MS = 10000;
  const PRICE_POLLS = 30;  // every 5 minutes
  let polls = 0;
  const palette = ["#4c9aff", "#e0a526", "#b47cff", "#38c7d1"];
  const charts = {
    pnl: LC.createChart(document.getElementById("stat-chart"), options()),
    daily: LC.createChart(document.getElementById("stat-daily-chart"), options()),
    drawdown: LC.createChart(document.getElementById("stat-drawdown-chart"), options()),
  };
  const series = {};  // quote -> {pnl, daily, drawdown}

  function options() {
    return {
      layout: { background: { color: "transparent" }, textColor: "#d7dde6", attributionLogo: false },
      grid: { vertLines: { color: "#222a36" }, horzLines: { color: "#222a36" } },
      timeScale: { borderColor: "#2a3240" },
      rightPriceScale: { borderColor: "#2a3240" },
      leftPriceScale: { borderColor: "#2a3240" },
      autoSize: true,
    };
  }

  function add(quote, i) {
    const scale = i === 0 ? "right" : "left";
    const colour = palette[i % palette.length];
    return {
      pnl: charts.pnl.addSeries(LC.BaselineSeries, {
        baseValue: { type: "price", price: 0 }, title: quote, priceScaleId: scale,
        topLineColor: "#2fbf71", bottomLineColor: "#f0506e",
        topFillColor1: "rgba(47,191,113,0.25)", topFillColor2: "rgba(47,191,113,0.02)",
        bottomFillColor1: "rgba(240,80,110,0.02)", bottomFillColor2: "rgba(240,80,110,0.25)",
      }),
      daily: charts.daily.addSeries(LC.HistogramSeries, { title: quote, priceScaleId: scale, color: colour }),
      drawdown: charts.drawdown.addSeries(LC.AreaSeries, {
        title: quote, priceScaleId: scale, lineColor: "#f0506e",
        topColor: "rgba(240,80,110,0.05)", bottomColor: "rgba(240,80,110,0.35)",
      }),
    };
  }

  function points(list, coloured) {
    return list.map(function (p) {
      const value = Number(p.value);
      const point = { time: p.time, value: value };
      if (coloured) point.color = value < 0 ? "#f0506e" : "#2fbf71";
      return point;
    });
  }

  function draw(data) {
    const quotes = Object.keys(data);
    quotes.forEach(function (quote, i) {
      if (!series[quote]) series[quote] = add(quote, Object.keys(series).length);
      series[quote].pnl.setData(points(data[quote].pnl, false));
      series[quote].daily.setData(points(data[quote].daily, true));
      series[quote].drawdown.setData(points(data[quote].drawdown, false));
    });
    Object.keys(series).forEach(function (quote) {
      if (quotes.indexOf(quote) >= 0) return;
      Object.keys(charts).forEach(function (name) { charts[name].removeSeries(series[quote][name]); });
      delete series[quote];
    });
    const twoScales = Object.keys(series).length > 1;
    Object.keys(charts).forEach(function (name) {
      charts[name].applyOptions({ leftPriceScale: { visible: twoScales } });
      charts[name].timeScale().fitContent();
    });
    // What the charts end on, per quote ("USDT 12.5"): says the page follows the fills without reading canvas.
    box.dataset.last = quotes.map(function (quote) {
      const pnl = data[quote].pnl;
      return quote + " " + (pnl.length ? pnl[pnl.length - 1].value : "0");
    }).join(", ");
    box.dataset.ready = "1";
    document.getElementById("stat-chart").dataset.ready = "1";
  }

  function refresh() {
    if (document.hidden) return;
    // The view's ETag goes back: 304 while no fill arrived, nothing to draw. Every PRICE_POLLS-th poll asks
    // without it, so open positions follow the latest price too.
    polls += 1;
    const headers = { Accept: "application/json" };
    if (polls % PRICE_POLLS !== 0) headers["If-None-Match"] = '"' + box.dataset.etag + '"';
    fetch(box.dataset.url, { headers: headers, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status !== 200) return null;
        box.dataset.etag = (response.headers.get("ETag") || "").replace(/"/g, "");
        return response.json();
      })
      .then(function (data) { if (data) draw(data); })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  draw(JSON.parse(document.getElementById(box.dataset.seriesId).textContent));
  window.setInterval(refresh, REFRESH_MS);
});
