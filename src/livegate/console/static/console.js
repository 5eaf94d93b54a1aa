// livegate console: live regions and confirmations (no inline script: the CSP forbids it).
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
  var box = document.getElementById("live");
  if (!box || !box.dataset.src) { return; }
  var busy = false;
  function typing() {
    // Never replace what an operator is filling in (a reason, a choice).
    var active = document.activeElement;
    if (active && box.contains(active) && /INPUT|SELECT|TEXTAREA/.test(active.tagName)) {
      return true;
    }
    return Array.prototype.some.call(box.querySelectorAll("input[type=text]"), function (i) {
      return i.value !== "";
    });
  }
  async function poll() {
    if (busy || typing()) { return; }
    busy = true;
    try {
      var response = await fetch(box.dataset.src, {credentials: "same-origin", cache: "no-store"});
      if (response.status === 401) { window.location.reload(); return; }
      if (response.ok) {
        var html = await response.text();
        if (html !== box.dataset.last) {
          box.dataset.last = html;
          box.innerHTML = html;
          box.querySelectorAll("form[data-confirm]").forEach(function (form) {
            form.addEventListener("submit", function (event) {
              if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
            });
          });
        }
      }
    } catch (e) {
      // the console may be restarting: try again on the next tick
    } finally {
      busy = false;
    }
  }
  setInterval(poll, 500);
})();
