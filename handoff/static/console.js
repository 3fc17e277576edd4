// Live updates for the caseworker console. The pages work without this file: it only polls
// two small JSON endpoints and inserts HTML fragments the server rendered (and escaped).
(function () {
  "use strict";
  var POLL_MS = 2500;

  function poll(urlOf, onData) {
    function tick() {
      fetch(urlOf(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) {
            window.location.assign("/console/login?notice=expired");
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (data) { if (data) { onData(data); } })
        .catch(function () { /* offline for a moment: try again next tick */ })
        .then(function () { window.setTimeout(tick, POLL_MS); });
    }
    window.setTimeout(tick, POLL_MS);
  }

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  var rows = document.getElementById("queue-rows");
  if (rows) {
    poll(function () {
      return rows.dataset.poll + "?v=" + encodeURIComponent(rows.dataset.version || "");
    }, function (data) {
      rows.dataset.version = data.v;
      if (typeof data.html === "string") { rows.replaceChildren(fragment(data.html)); }
    });
  }

  var thread = document.getElementById("thread");
  if (thread) {
    poll(function () {
      return thread.dataset.poll + "?n=" + encodeURIComponent(thread.dataset.count || "0");
    }, function (data) {
      if (data.reset) { thread.replaceChildren(); }
      if (typeof data.html === "string") {
        thread.appendChild(fragment(data.html));
        var empty = document.getElementById("thread-empty");
        if (empty) { empty.hidden = true; }
        if (thread.lastElementChild) { thread.lastElementChild.scrollIntoView({ block: "nearest" }); }
      }
      thread.dataset.count = String(data.n);
      if (data.status !== thread.dataset.status || data.assignee !== thread.dataset.assignee) {
        document.getElementById("status-changed").hidden = false;
      }
    });
  }

  var canned = document.getElementById("canned");
  var replyText = document.getElementById("reply-text");
  if (canned && replyText) {
    canned.addEventListener("change", function () {
      var option = canned.options[canned.selectedIndex];
      if (option && option.dataset.text) { replyText.value = option.dataset.text; replyText.focus(); }
    });
  }
}());
