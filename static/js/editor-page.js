// Editor page glue: keep autocomplete and the environment badge in step with the picker.
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
})();
