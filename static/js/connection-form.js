// The connection form: the port follows the engine (its default as placeholder, and as the
// value while the field is blank or still holds another engine's default). Without this
// script a blank port is stored as the engine's default when the form is saved.
(function () {
  "use strict";
  const engine = document.getElementById("id_engine");
  const port = document.getElementById("id_port");
  if (!engine || !port || !port.dataset.defaultPorts) return;
  const defaults = JSON.parse(port.dataset.defaultPorts);
  const known = Object.values(defaults).map(String);
  function follow() {
    const wanted = defaults[engine.value];
    port.placeholder = wanted === undefined ? "" : String(wanted);
    if (port.value === "" || known.includes(port.value)) {
      port.value = wanted === undefined ? "" : String(wanted);
    }
  }
  engine.addEventListener("change", follow);
})();
