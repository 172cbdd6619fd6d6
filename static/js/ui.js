// Small page behaviours declared in the markup with data-* attributes, so that templates carry no
// inline script or event handler (the Content-Security-Policy allows scripts from this site only).
// Listeners sit on the document, so fragments swapped in by htmx behave the same.
//   <form data-confirm="Delete this?">      asks first; "Cancel" keeps the form from being sent
//   <form data-disable-on-submit>           disables its submit button once sent (no double orders)
//   <select data-autosubmit>                sends its form when the choice changes
//   <select data-navigate="/path?key=">     goes to that URL plus the chosen value
//   <time datetime="ISO" data-local="time|datetime">   shown in the reader's own time zone (the text
//                                           served is UTC, kept as the tooltip)
//   <span id="live-state">                  on a page with an SSE connection (the htmx sse extension's
//                                           sse-connect): "live" while connected, "reconnecting…" after a drop
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm !== undefined && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (form.dataset.disableOnSubmit !== undefined) {
      form.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = true; });
    }
  });
  document.addEventListener("change", function (event) {
    const field = event.target;
    if (field.dataset.autosubmit !== undefined && field.form) {
      field.form.submit();
    } else if (field.dataset.navigate !== undefined) {
      window.location.href = field.dataset.navigate + encodeURIComponent(field.value);
    }
  });
  function liveState(text, kind) {
    const badge = document.getElementById("live-state");
    if (!badge) return;
    badge.textContent = text;
    badge.classList.remove("ok", "warn", "bad");
    badge.classList.add(kind);
  }
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (element) {
      const instant = new Date(element.getAttribute("datetime"));
      if (isNaN(instant)) return;
      element.title = element.textContent;
      element.textContent = element.dataset.local === "time"
        ? instant.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
        : instant.toLocaleString();
      element.removeAttribute("data-local");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:load", function (event) { localTimes(event.target); });
  document.addEventListener("htmx:sseOpen", function () { liveState("live", "ok"); });
  document.addEventListener("htmx:sseError", function () { liveState("reconnecting…", "warn"); });
})();
