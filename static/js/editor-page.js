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
  }
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
