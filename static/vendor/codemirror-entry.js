// Entry for static/vendor/codemirror-6.bundle.js (build command in static/vendor/README.md).
// Exposes the few CodeMirror 6 pieces the strategy editor uses as `window.CM`.
import { basicSetup } from "codemirror";
import { EditorView, keymap, Decoration } from "@codemirror/view";
import { EditorState, StateField, StateEffect } from "@codemirror/state";
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { oneDark } from "@codemirror/theme-one-dark";
import { setDiagnostics, lintGutter } from "@codemirror/lint";

window.CM = {
  EditorView, EditorState, StateField, StateEffect, Decoration, keymap, indentWithTab,
  basicSetup, python, oneDark, setDiagnostics, lintGutter,
};
