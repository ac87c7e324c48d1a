// framecode workbench: follows a retraining on /retrain by polling /retrain/status (vendored, no dependencies).
(function () {
  "use strict";
  var card = document.getElementById("retrain");
  if (!card || card.dataset.state !== "running") return;
  var names = { idle: "Not started", running: "Training", done: "Done", failed: "Failed" };
  function show(status) {
    document.getElementById("state").textContent = names[status.state] || status.state;
    document.getElementById("serving").textContent = status.serving;
    var bar = document.getElementById("bar"), step = document.getElementById("step");
    var running = status.state === "running";
    step.textContent = running ? status.step + (status.total ? " (" + status.done + " of " + status.total + ")" : "") : "";
    bar.hidden = !running;
    if (status.total) { bar.max = status.total; bar.value = status.done; } else { bar.removeAttribute("value"); }
    var message = document.getElementById("message");
    message.textContent = status.message;
    message.hidden = !status.message;
    message.className = status.state === "failed" ? "problem" : status.state === "done" ? "notice" : "";
    document.getElementById("start").disabled = running;
    card.dataset.state = status.state;
    if (running) setTimeout(poll, 1000);
  }
  function poll() {
    fetch("/retrain/status", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(show, function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
