// framecode workbench keyboard shortcuts (vendored, no dependencies).
// On a quote page: 1-9 toggle a code, Enter saves, s skips, n focuses the memo,
// d toggles the codebook definitions, Esc leaves the memo.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    var form = document.getElementById("decide");
    if (!form || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" && target.type !== "checkbox" || target.tagName === "TEXTAREA");
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;  // Enter in the memo submits the form natively, which saves
    }
    var key = event.key;
    if (/^[1-9]$/.test(key)) {
      var box = form.querySelector('input[type=checkbox][data-key="' + key + '"]');
      if (box) { box.checked = !box.checked; event.preventDefault(); }
    } else if (key === "Enter") {
      event.preventDefault();
      document.getElementById("save").click();
    } else if (key === "s" && document.getElementById("skip")) {
      event.preventDefault();
      document.getElementById("skip").click();
    } else if (key === "n") {
      event.preventDefault();
      document.getElementById("memo").focus();
    } else if ((key === "d" || key === "?") && document.getElementById("definitions")) {
      event.preventDefault();
      var panel = document.getElementById("definitions");
      panel.hidden = !panel.hidden;
      if (!panel.hidden) panel.scrollIntoView({ behavior: "instant", block: "start" });
    }
  });
})();
