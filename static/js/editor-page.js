// Editor page glue: keep autocomplete and the environment badge in step with the picker,
// and keep keyboard focus in the results when htmx replaces them.
(function () {
  "use strict";
  function onPick(select) {
    var option = select.options[select.selectedIndex];
    if (!option || !window.WardenEditor) return;
    var instance = window.WardenEditor.instances[0];
    if (instance) {
      instance.setSchema({}, option.dataset.dialect);
      instance.loadSchema(option.dataset.schemaUrl);
    }
    var badge = document.getElementById("env-badge");
    if (badge) {
      var env = option.textContent.split("·").pop().trim();
      badge.textContent = env;
      badge.className = "env env-" + env.toLowerCase();
    }
    // The download is offered where the grant has the export capability (the server
    // decides either way: a refusal is shown and recorded).
    var exportButton = document.getElementById("export-button");
    if (exportButton) exportButton.hidden = option.dataset.export !== "yes";
    schemaFor(option);
  }

  // The schema sidebar: the tree of the picked connection, loaded when the panel is open.
  var schemaUrl = "";
  function schemaFor(option) {
    var panel = document.getElementById("schema-panel");
    if (!panel || !option || !option.dataset.schemaPage) return;
    var name = document.getElementById("schema-connection");
    if (name) name.textContent = option.textContent.split("·")[0].trim();
    var tree = document.getElementById("schema-tree");
    if (option.dataset.schemaPage !== schemaUrl && tree) {
      tree.textContent = "";
      var link = document.createElement("a");
      link.href = option.dataset.schemaPage;
      link.textContent = "Tables and columns, with what is masked for you →";
      tree.appendChild(link);
    }
    if (panel.open) loadSchemaTree(option.dataset.schemaPage);
  }
  function loadSchemaTree(url) {
    if (!url || url === schemaUrl || !window.htmx) return;
    schemaUrl = url;
    var tree = document.getElementById("schema-tree");
    if (tree) tree.setAttribute("aria-busy", "true");
    window.htmx
      .ajax("GET", url, { target: "#schema-tree", swap: "innerHTML" })
      .then(function () { if (tree) tree.removeAttribute("aria-busy"); });
  }
  function pickedOption() {
    var select = document.querySelector("select[data-connection-picker]");
    return select ? select.options[select.selectedIndex] : null;
  }
  document.addEventListener(
    "toggle",
    function (event) {
      var panel = event.target;
      if (!panel.matches || !panel.matches("details[data-schema-panel]")) return;
      try { window.localStorage.setItem("warden.schemaOpen", panel.open ? "1" : ""); } catch (e) {}
      var option = pickedOption();
      if (panel.open && option) loadSchemaTree(option.dataset.schemaPage);
    },
    true // toggle does not bubble
  );
  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("schema-panel");
    var remembered = "";
    try { remembered = window.localStorage.getItem("warden.schemaOpen") || ""; } catch (e) {}
    if (panel && remembered && pickedOption()) panel.open = true; // its toggle event loads it
  });

  // A name clicked in the schema tree goes into the statement at the cursor.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-insert]");
    if (!button) return;
    event.preventDefault(); // a table's name sits in its <summary>: do not fold it
    var text = button.dataset.insert;
    var instance = window.WardenEditor && window.WardenEditor.instances[0];
    if (instance) {
      var view = instance.view;
      view.dispatch(view.state.replaceSelection(text), { scrollIntoView: true });
      view.focus();
      return;
    }
    var area = document.getElementById("sql");
    if (!area) return;
    var start = area.selectionStart, end = area.selectionEnd;
    area.setRangeText(text, start, end, "end");
    area.focus();
  });

  // Buttons that leave the page (Download CSV, Save) are ordinary form posts, with their
  // formaction: stopped here, on the way down, htmx's listener on the form never sees them.
  document.addEventListener(
    "submit",
    function (event) {
      if (event.submitter && event.submitter.hasAttribute("data-plain-submit")) {
        event.stopPropagation();
      }
    },
    true
  );
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-connection-picker]")) {
      onPick(event.target);
    }
  });

  // htmx puts focus back on an element of the same id (Cancel, Previous, Next). When the
  // focused control is gone (Cancel after cancelling, Next on the last page), focus would
  // drop to <body>: move it to the run instead, which now shows the outcome.
  var focusWasIn = null;
  function words(element) {
    return element.textContent.replace(/\s+/g, " ").trim();
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var result = document.getElementById("result");
    // A status poll that brings nothing new is not swapped in: re-inserting the same run
    // would make screen readers announce it again (role=alert, aria-live) every few seconds.
    if (target.matches && target.matches("#result .run[hx-trigger]") && event.detail.xhr) {
      var fresh = document.createElement("template");
      fresh.innerHTML = event.detail.serverResponse;
      var run = fresh.content.querySelector(".run");
      if (run && run.id === target.id && words(run) === words(target)) {
        event.detail.shouldSwap = false;
        focusWasIn = null;
        return;
      }
    }
    focusWasIn =
      result && result.contains(target) && target.contains(document.activeElement) ? target : null;
  });
  var announced = "";
  function announce() {
    var announcer = document.getElementById("run-announcer");
    var head = document.querySelector("#result .run .run-head");
    if (!announcer || !head) return;
    var summary = head.cloneNode(true);
    summary.querySelectorAll("form").forEach(function (form) { form.remove(); });
    var pager = document.querySelector("#result .pager span");
    var text = words(summary) + (pager ? ". " + words(pager) : "");
    if (text !== announced) announcer.textContent = announced = text;
  }
  document.addEventListener("htmx:afterSettle", function () {
    announce();
    if (!focusWasIn) return;
    focusWasIn = null;
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    var run = document.querySelector("#result .run");
    if (run) run.focus();
  });
})();
