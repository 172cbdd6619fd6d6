// Strategy editor: CodeMirror over the code textarea (which stays the submitted field), error-line
// highlighting from validation results, "Insert" of AI-proposed code, and the try-on-candles chart.
// Without JS (or if the bundle fails) the plain textarea still edits and submits the code.
(function () {
  "use strict";
  let view = null;
  let setErrorLines = null;

  function textarea() { return document.getElementById("code"); }

  function startEditor() {
    const area = textarea();
    const mount = document.getElementById("editor");
    if (!area || !mount || !window.CM) return;
    const CM = window.CM;
    const setErrors = CM.StateEffect.define();
    const errorLines = CM.StateField.define({
      create() { return CM.Decoration.none; },
      update(decos, tr) {
        decos = decos.map(tr.changes);
        for (const effect of tr.effects) {
          if (effect.is(setErrors)) decos = effect.value;
        }
        return decos;
      },
      provide: (field) => CM.EditorView.decorations.from(field),
    });
    try {
      view = new CM.EditorView({
        parent: mount,
        state: CM.EditorState.create({
          doc: area.value,
          extensions: [
            CM.basicSetup, CM.python(), CM.oneDark, CM.lintGutter(), errorLines,
            CM.keymap.of([CM.indentWithTab]),
            CM.EditorView.updateListener.of((update) => {
              if (update.docChanged) area.value = update.state.doc.toString();
            }),
          ],
        }),
      });
    } catch (err) {
      console.error("code editor failed; the plain textarea stays", err);
      return;
    }
    setErrorLines = function (errors) {
      const doc = view.state.doc;
      const lineDecos = [];
      const diagnostics = [];
      for (const e of errors) {
        const number = Math.min(Math.max(parseInt(e.line, 10) || 1, 1), doc.lines);
        const line = doc.line(number);
        lineDecos.push(CM.Decoration.line({ class: "cm-error-line" }).range(line.from));
        diagnostics.push({ from: line.from, to: line.to, severity: "error", message: e.message });
      }
      lineDecos.sort((a, b) => a.from - b.from);
      const unique = lineDecos.filter((d, i) => i === 0 || d.from !== lineDecos[i - 1].from);
      view.dispatch(CM.setDiagnostics(view.state, diagnostics));
      view.dispatch({ effects: setErrors.of(CM.Decoration.set(unique)) });
    };
    area.closest("label").hidden = true;
    mount.hidden = false;
    mount.dataset.ready = "1";
    showValidation(document.getElementById("validation"));
  }

  function gotoLine(number) {
    const area = textarea();
    if (view) {
      const line = view.state.doc.line(Math.min(Math.max(number, 1), view.state.doc.lines));
      view.dispatch({ selection: { anchor: line.from }, scrollIntoView: true });
      view.focus();
    } else if (area) {
      const offset = area.value.split("\n").slice(0, number - 1).join("\n").length;
      area.focus();
      area.setSelectionRange(offset, offset);
    }
  }

  function showValidation(root) {
    if (!root || !setErrorLines) return;
    const box = root.querySelector("[data-errors]");
    if (!box) return;
    try { setErrorLines(JSON.parse(box.dataset.errors || "[]")); } catch (err) { console.error(err); }
  }

  function setCode(code) {
    const area = textarea();
    if (view) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: code } });
    }
    if (area) area.value = code;
  }

  function drawChart(el) {
    if (!window.LightweightCharts || el.dataset.drawn) return;
    const data = JSON.parse(el.dataset.chart);
    const LC = window.LightweightCharts;
    const chart = LC.createChart(el, {
      autoSize: true,
      layout: { background: { color: "#161b22" }, textColor: "#d7dde6" },
      grid: { vertLines: { color: "#2a3240" }, horzLines: { color: "#2a3240" } },
      timeScale: { timeVisible: true },
    });
    const series = chart.addSeries(LC.CandlestickSeries, {
      upColor: "#2fbf71", downColor: "#f0506e", wickUpColor: "#2fbf71", wickDownColor: "#f0506e", borderVisible: false,
    });
    series.setData(data.candles);
    const markers = data.signals.map((s) => {
      const bullish = (s.kind === "entry") === (s.side === "long");
      return {
        time: s.time,
        position: bullish ? "belowBar" : "aboveBar",
        color: s.kind === "entry" ? (bullish ? "#2fbf71" : "#f0506e") : "#e0a526",
        shape: bullish ? "arrowUp" : "arrowDown",
        text: s.kind === "entry" ? s.side : "exit" + (s.reason && s.reason !== "signal" ? " " + s.reason : ""),
      };
    });
    LC.createSeriesMarkers(series, markers);
    chart.timeScale().fitContent();
    el.dataset.drawn = "1";
  }

  document.addEventListener("click", (event) => {
    const jump = event.target.closest(".goto-line");
    if (jump) { gotoLine(parseInt(jump.dataset.line, 10) || 1); return; }
    const insert = event.target.closest(".insert-code");
    if (insert) {
      const proposed = insert.parentElement.querySelector(".proposed-code");
      setCode(proposed.value);
      insert.textContent = "Inserted";
      insert.disabled = true;
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target.id === "validation") showValidation(target);
    target.querySelectorAll("[data-chart]").forEach(drawChart);
    if (target.id === "try-result") showValidation(target);
  });

  // Leaving with unsaved changes asks first (the browser's own "leave site?" dialog). The code as loaded is
  // the saved one; saving the editor's form, or putting the text back as it was, leaves without a question.
  let savedCode = null;
  let saving = false;
  function unsaved() {
    const area = textarea();
    return area !== null && savedCode !== null && !saving && area.value !== savedCode;
  }
  window.addEventListener("beforeunload", (event) => {
    if (!unsaved()) return;
    event.preventDefault();
    event.returnValue = "";  // older browsers show the dialog only when this is set
  });
  document.addEventListener("submit", (event) => {
    if (event.target.id === "editor-form") saving = true;
  });

  document.addEventListener("DOMContentLoaded", () => {
    const area = textarea();
    savedCode = area ? area.value : null;
    startEditor();
  });
})();
