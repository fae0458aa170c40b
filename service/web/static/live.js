// Live progress of a running request: re-fetch the fragment every 2 s and swap it in, until the
// server sends one without data-live (the request finished). Without JavaScript the page still
// shows the progress as of loading it.
(function () {
  "use strict";
  function poll(node) {
    var url = node.getAttribute("data-live");
    if (!url) { return; }
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#progress");
          if (!fresh) { return; }
          node.replaceWith(fresh);
          if (fresh.getAttribute("data-live")) { poll(fresh); } else { window.location.reload(); }
        })
        .catch(function () { poll(node); });
    }, 2000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("progress");
    if (node) { poll(node); }
  });
})();
