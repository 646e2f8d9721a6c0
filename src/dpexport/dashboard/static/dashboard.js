// dpexport dashboard: reloads <main> from /main every data-refresh seconds, so the page
// stays current without losing the scroll position. No library; nothing leaves the host.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  var main = document.getElementById("main");
  var updated = document.getElementById("updated");
  if (!seconds || !main) {
    return;
  }
  function mark(text, failed) {
    if (!updated) {
      return;
    }
    updated.textContent = text;
    updated.classList.toggle("offline", failed);
  }
  function refresh() {
    fetch("/main", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        var asOf = document.getElementById("as-of");
        mark("as of " + (asOf ? asOf.textContent : "?") + " · refreshes every " + seconds + " s", false);
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function (error) {
        mark("not refreshed (" + error.message + "): retrying in " + seconds + " s", true);
      });
  }
  window.setInterval(refresh, seconds * 1000);
})();
