// Keyboard use of the approval pages: j/k move through the queue, Enter opens;
// on a request, a / r focus Approve / Reject (Enter then confirms), c focuses the comment.
(function () {
  "use strict";
  function typing(event) {
    var t = event.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    var links = Array.prototype.slice.call(document.querySelectorAll("[data-queue] tbody tr a"));
    var at = links.indexOf(document.activeElement);
    if (links.length && (event.key === "j" || event.key === "k")) {
      var next = event.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
      links[next].focus();
      event.preventDefault();
      return;
    }
    var target = { a: "approve", r: "reject", c: "comment" }[event.key];
    if (target && document.getElementById(target)) {
      document.getElementById(target).focus();
      event.preventDefault();
    }
  });
})();
