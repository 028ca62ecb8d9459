// Warden SQL editor: CodeMirror 6 on top of a plain <textarea>.
//
// The <textarea> stays in the form and remains the source of truth for
// submission (its value is kept in sync on every edit), so normal form POSTs
// and htmx hx-post keep working; without JS the page still has a textarea.
//
// API (window.WardenEditor):
//   mount(textarea, {dialect, schema, onRun}) -> {view, getValue, setValue,
//                                                  setSchema, loadSchema, focus, destroy}
//   mountAll(root?)      mount every textarea[data-sql-editor] under root
//   loadSchema(inst,url) fetch {"tables": {...}} and apply it
//   get(textarea)        instance for a textarea, or null
//   instances            live array of mounted (still connected) instances

import { EditorState, Compartment, Prec } from "@codemirror/state";
import {
  EditorView,
  keymap,
  lineNumbers,
  highlightActiveLineGutter,
  highlightSpecialChars,
  drawSelection,
  highlightActiveLine,
  placeholder as placeholderExt,
} from "@codemirror/view";
import {
  defaultKeymap,
  history,
  historyKeymap,
  indentWithTab,
} from "@codemirror/commands";
import {
  bracketMatching,
  indentOnInput,
  syntaxHighlighting,
  defaultHighlightStyle,
} from "@codemirror/language";
import {
  autocompletion,
  completionKeymap,
  closeBrackets,
  closeBracketsKeymap,
} from "@codemirror/autocomplete";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import {
  sql,
  PostgreSQL,
  MySQL,
  MariaSQL,
  SQLite,
  StandardSQL,
} from "@codemirror/lang-sql";

const MOUNTED_ATTR = "data-sql-editor-mounted";
const EDITOR_ATTR = "data-warden-editor";
const SELECTOR = "textarea[data-sql-editor]";

const registry = new WeakMap(); // textarea -> instance
const instances = [];

function dialectFor(name) {
  switch (String(name || "").toLowerCase()) {
    case "postgresql":
    case "postgres":
    case "pg":
      return { dialect: PostgreSQL, defaultSchema: "public" };
    case "mysql":
      return { dialect: MySQL };
    case "mariadb":
      return { dialect: MariaSQL };
    case "sqlite":
    case "sqlite3":
      return { dialect: SQLite };
    default:
      return { dialect: StandardSQL };
  }
}

// Accepts {"tables": {...}} (schema endpoint shape) or a bare mapping
// {"table": ["col", ...], "schema.table": [...]}.
function normalizeSchema(schema) {
  if (!schema || typeof schema !== "object") return {};
  if (
    schema.tables &&
    typeof schema.tables === "object" &&
    !Array.isArray(schema.tables)
  ) {
    return schema.tables;
  }
  return schema;
}

function sqlExtension(dialectName, schema) {
  const d = dialectFor(dialectName);
  const config = {
    dialect: d.dialect,
    schema: normalizeSchema(schema),
    upperCaseKeywords: true,
  };
  if (d.defaultSchema) config.defaultSchema = d.defaultSchema;
  return sql(config);
}

const wardenTheme = EditorView.theme({
  "&": {
    backgroundColor: "#fff",
    color: "#1f2937",
    border: "1px solid #cbd5e1",
    borderRadius: "6px",
    maxHeight: "70vh",
  },
  "&.cm-focused": {
    outline: "2px solid #2563eb",
    outlineOffset: "1px",
    borderColor: "#2563eb",
  },
  ".cm-scroller": {
    fontFamily:
      'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
    fontSize: "14px",
    lineHeight: "1.5",
    overflow: "auto",
  },
  ".cm-content, .cm-gutter": { minHeight: "12em" },
  ".cm-content": { padding: "6px 0", caretColor: "#111827" },
  ".cm-gutters": {
    backgroundColor: "#f8fafc",
    color: "#64748b",
    borderRight: "1px solid #e2e8f0",
    borderTopLeftRadius: "6px",
    borderBottomLeftRadius: "6px",
  },
  ".cm-activeLine": { backgroundColor: "#f1f5f9" },
  ".cm-activeLineGutter": { backgroundColor: "#e2e8f0", color: "#0f172a" },
  "&.cm-focused .cm-matchingBracket": {
    backgroundColor: "#bfdbfe",
    outline: "1px solid #93c5fd",
  },
  ".cm-placeholder": { color: "#94a3b8" },
  ".cm-tooltip": {
    border: "1px solid #cbd5e1",
    backgroundColor: "#fff",
    borderRadius: "4px",
  },
  ".cm-tooltip-autocomplete > ul > li[aria-selected]": {
    backgroundColor: "#2563eb",
    color: "#fff",
  },
  ".cm-panels": { backgroundColor: "#f8fafc", color: "#1f2937" },
  ".cm-panels.cm-panels-top": { borderBottom: "1px solid #e2e8f0" },
  ".cm-panels.cm-panels-bottom": { borderTop: "1px solid #e2e8f0" },
});

function submitForm(textarea) {
  const form = textarea.form || textarea.closest("form");
  if (!form) return false;
  if (typeof form.requestSubmit === "function") form.requestSubmit();
  else form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
  return true;
}

// Remove editor DOM left over from an htmx history snapshot (the textarea is
// marked but no live instance exists for this element).
function removeStaleEditors(textarea) {
  let next = textarea.nextElementSibling;
  while (next && next.hasAttribute(EDITOR_ATTR)) {
    const stale = next;
    next = next.nextElementSibling;
    stale.remove();
  }
}

function pruneInstances() {
  for (let i = instances.length - 1; i >= 0; i--) {
    const inst = instances[i];
    if (!inst.textarea.isConnected) {
      inst.view.destroy();
      registry.delete(inst.textarea);
      instances.splice(i, 1);
    }
  }
}

function mount(textarea, options = {}) {
  if (!(textarea instanceof HTMLTextAreaElement)) {
    throw new TypeError("WardenEditor.mount expects a <textarea> element");
  }
  const existing = registry.get(textarea);
  if (existing) return existing;
  removeStaleEditors(textarea);

  let dialect = options.dialect || textarea.dataset.dialect || "";
  let schema = options.schema || {};
  const onRun = typeof options.onRun === "function" ? options.onRun : null;
  const languageConf = new Compartment();

  const run = (view) => {
    syncTextarea(view.state.doc.toString());
    if (onRun) onRun();
    else submitForm(textarea);
    return true;
  };

  let syncing = false;
  function syncTextarea(text) {
    if (textarea.value === text) return;
    textarea.value = text;
    syncing = true;
    try {
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    } finally {
      syncing = false;
    }
  }

  const contentAttrs = { "aria-label": "SQL editor" };
  if (textarea.getAttribute("aria-describedby"))
    contentAttrs["aria-describedby"] = textarea.getAttribute("aria-describedby");
  if (textarea.required) contentAttrs["aria-required"] = "true";

  const readOnly = textarea.readOnly || textarea.disabled;

  const extensions = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    drawSelection(),
    indentOnInput(),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    bracketMatching(),
    closeBrackets(),
    autocompletion(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    Prec.highest(
      keymap.of([
        { key: "Mod-Enter", run, preventDefault: true },
        { key: "Ctrl-Enter", run, preventDefault: true },
      ])
    ),
    // indentWithTab keeps CodeMirror's standard escape hatch: press Escape,
    // then Tab / Shift-Tab moves focus out of the editor. Ctrl-M
    // (Shift-Alt-M on macOS) toggles Tab-moves-focus mode permanently.
    keymap.of([
      ...closeBracketsKeymap,
      ...defaultKeymap,
      ...searchKeymap,
      ...historyKeymap,
      ...completionKeymap,
      indentWithTab,
    ]),
    languageConf.of(sqlExtension(dialect, schema)),
    wardenTheme,
    EditorView.contentAttributes.of(contentAttrs),
    EditorView.editorAttributes.of({ [EDITOR_ATTR]: "" }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) syncTextarea(update.state.doc.toString());
    }),
    EditorState.readOnly.of(readOnly),
    EditorView.editable.of(!readOnly),
  ];
  if (textarea.placeholder) extensions.push(placeholderExt(textarea.placeholder));

  const view = new EditorView({
    state: EditorState.create({ doc: textarea.value, extensions }),
  });
  textarea.insertAdjacentElement("afterend", view.dom);
  textarea.style.display = "none";
  textarea.setAttribute(MOUNTED_ATTR, "");

  const cleanups = [];
  const listen = (target, type, fn) => {
    target.addEventListener(type, fn);
    cleanups.push(() => target.removeEventListener(type, fn));
  };

  // <label for="id"> should focus the editor instead of the hidden textarea.
  if (textarea.id) {
    const labels = document.querySelectorAll(
      `label[for="${CSS.escape(textarea.id)}"]`
    );
    labels.forEach((label) =>
      listen(label, "click", (e) => {
        e.preventDefault();
        view.focus();
      })
    );
  }
  // A required-but-empty textarea is hidden; send the user to the editor.
  listen(textarea, "invalid", () => view.focus());
  // Form reset restores textarea.defaultValue; mirror it into the editor.
  const form = textarea.form;
  if (form) {
    listen(form, "reset", () => setTimeout(() => setValue(textarea.value), 0));
  }
  // Someone set textarea.value programmatically and fired input/change.
  const fromTextarea = () => {
    if (!syncing && textarea.value !== view.state.doc.toString())
      setValue(textarea.value);
  };
  listen(textarea, "change", fromTextarea);
  listen(textarea, "input", fromTextarea);

  function getValue() {
    return view.state.doc.toString();
  }
  function setValue(text) {
    text = text == null ? "" : String(text);
    view.dispatch({
      changes: { from: 0, to: view.state.doc.length, insert: text },
    });
    syncTextarea(text);
  }
  function setSchema(newSchema, newDialect) {
    schema = newSchema || {};
    if (newDialect) dialect = newDialect;
    view.dispatch({
      effects: languageConf.reconfigure(sqlExtension(dialect, schema)),
    });
  }
  function focus() {
    view.focus();
  }
  function destroy() {
    cleanups.forEach((fn) => fn());
    view.destroy();
    view.dom.remove();
    textarea.style.display = "";
    textarea.removeAttribute(MOUNTED_ATTR);
    registry.delete(textarea);
    const i = instances.indexOf(instance);
    if (i >= 0) instances.splice(i, 1);
  }

  const instance = {
    view,
    textarea,
    getValue,
    setValue,
    setSchema,
    loadSchema: (url) => loadSchema(instance, url),
    focus,
    destroy,
  };
  registry.set(textarea, instance);
  pruneInstances();
  instances.push(instance);
  if (textarea.autofocus) view.focus();
  return instance;
}

function loadSchema(instance, url) {
  return fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  })
    .then((r) => {
      if (!r.ok) throw new Error(`schema fetch failed: HTTP ${r.status}`);
      return r.json();
    })
    .then((data) => {
      instance.setSchema(normalizeSchema(data));
      return data;
    })
    .catch((err) => {
      console.warn("WardenEditor:", err);
      throw err;
    });
}

function mountAll(root) {
  root = root || document;
  const found = [];
  if (root instanceof Element && root.matches(SELECTOR)) found.push(root);
  if (root.querySelectorAll) found.push(...root.querySelectorAll(SELECTOR));
  pruneInstances();
  const mounted = [];
  for (const ta of found) {
    if (registry.has(ta)) continue;
    const inst = mount(ta, { dialect: ta.dataset.dialect });
    const url = ta.dataset.schemaUrl;
    if (url) loadSchema(inst, url).catch(() => {});
    mounted.push(inst);
  }
  return mounted;
}

const WardenEditor = {
  mount,
  mountAll,
  loadSchema,
  get: (textarea) => registry.get(textarea) || null,
  instances,
};
window.WardenEditor = WardenEditor;

function onHtmxEvent(evt) {
  const target =
    (evt.detail && (evt.detail.elt || evt.detail.target)) || evt.target;
  mountAll(target && target.querySelectorAll ? target : document);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => mountAll(document));
} else {
  mountAll(document);
}
document.addEventListener("htmx:load", onHtmxEvent);
document.addEventListener("htmx:afterSwap", onHtmxEvent);
document.addEventListener("htmx:historyRestore", () => mountAll(document));
