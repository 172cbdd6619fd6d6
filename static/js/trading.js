// Live order updates on the trading pages. One EventSource per page on the user's order events; each
// `order` event (and each (re)connection, which may have missed some) fires `order-changed` on every
// [data-on-order] element, which htmx then refreshes from the server (hx-trigger="order-changed").
// Own code rather than the vendored htmx sse extension: that build is the htmx-1 one and never fires
// `sse:*` triggers under htmx 2.
(function () {
  const root = document.querySelector("[data-order-events]");
  if (!root || !window.EventSource) return;
  const badge = document.getElementById("live-state");

  function show(text, kind) {
    if (!badge) return;
    badge.textContent = text;
    badge.className = "pill " + kind;
  }

  function notify() {
    document.querySelectorAll("[data-on-order]").forEach((el) => htmx.trigger(el, "order-changed"));
  }

  const source = new EventSource(root.dataset.orderEvents);
  source.addEventListener("open", () => { show("live", "ok"); notify(); });
  source.addEventListener("error", () => show("reconnecting…", "warn"));
  source.addEventListener("order", notify);
  window.addEventListener("pagehide", () => source.close());
})();
