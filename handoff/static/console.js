// The caseworker console, enhanced. Every page works without this file (forms, redirects,
// plain links); with it:
//  * live updates: server-sent events from /events (polling /poll where EventSource is
//    missing), fragments the server rendered and escaped; a count in the tab title; an
//    optional sound and browser notification for new urgent cases and replies on my cases;
//  * forms marked data-fetch are posted with fetch (same fields, same CSRF token) and the
//    page's <main> is swapped for the next page's, without a reload; Ctrl+Enter sends;
//  * "/" (in an empty reply box, or outside a field) searches the canned replies;
//  * reply drafts are kept per case in this browser (cleared on send and on sign-out);
//  * the session is kept alive while the person types or clicks (never by a timer), so an
//    abandoned screen still signs out.
(function () {
  "use strict";
  var POLL_MS = 2500;
  var KEEPALIVE_MS = 60000;
  var DRAFT_PREFIX = "sanad.draft.";
  var ALERTS_KEY = "sanad.alerts";
  var stops = [];
  var baseTitle = document.title;
  var known = null; // what alerts were already given for: {urgent: {id: 1}, replies: {id: at}}

  function csrfToken() {
    var field = document.querySelector("input[name=csrf]");
    return field ? field.value : "";
  }

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  function expired() {
    window.location.assign("/console/login?notice=expired&next=" +
      encodeURIComponent(window.location.pathname + window.location.search));
  }

  // --- live updates ---------------------------------------------------------------------
  function poll(urlOf, onData) {
    var timer = null;
    var stopped = false;
    function tick() {
      fetch(urlOf(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) { expired(); return null; }
          return response.ok ? response.json() : null;
        })
        .then(function (data) { if (data && !stopped) { onData(data); } })
        .catch(function () { /* offline for a moment: try again next tick */ })
        .then(function () { if (!stopped) { timer = window.setTimeout(tick, POLL_MS); } });
    }
    timer = window.setTimeout(tick, POLL_MS);
    return function () { stopped = true; window.clearTimeout(timer); };
  }

  // Server-sent events where the browser has them; a 401 (session over) or a stream that
  // cannot be opened falls back to polling, which then sends the person to the login page.
  function listen(eventsUrl, name, pollUrlOf, onData) {
    if (!window.EventSource || !eventsUrl) { return poll(pollUrlOf, onData); }
    var source = new EventSource(eventsUrl());
    var fallback = null;
    source.addEventListener(name, function (event) { onData(JSON.parse(event.data)); });
    source.addEventListener("expired", function () { source.close(); expired(); });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED && !fallback) {
        fallback = poll(pollUrlOf, onData);
      }
    });
    document.documentElement.dataset.live = "sse";
    return function () { source.close(); if (fallback) { fallback(); } };
  }

  function setCount(count) {
    document.title = (count > 0 ? "(" + count + ") " : "") + baseTitle;
  }

  function alertsOn() {
    try { return window.localStorage.getItem(ALERTS_KEY) === "on"; } catch (e) { return false; }
  }

  function beep() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    try {
      var audio = new Context();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.08;
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.25);
    } catch (e) { /* no sound: the title count still shows */ }
  }

  // No personal data in a notification: it says what happened, never who or what they wrote.
  function alertFor(data) {
    var urgent = {}, replies = data.replies || {};
    var fresh = [];
    (data.urgent || []).forEach(function (id) { urgent[id] = 1; });
    if (known) {
      Object.keys(urgent).forEach(function (id) { if (!known.urgent[id]) { fresh.push("urgent"); } });
      Object.keys(replies).forEach(function (id) {
        if (known.replies[id] !== replies[id]) { fresh.push("reply"); }
      });
    }
    known = { urgent: urgent, replies: replies };
    var toggle = document.getElementById("alerts-toggle");
    if (!fresh.length || !alertsOn() || !toggle) { return; }
    beep();
    if (window.Notification && Notification.permission === "granted") {
      var kind = fresh.indexOf("urgent") >= 0 ? "urgent" : "reply";
      try { new Notification(toggle.dataset[kind] || "", { tag: "sanad-" + kind }); } catch (e) { /* ignore */ }
    }
    document.documentElement.dataset.alerted = String(Number(document.documentElement.dataset.alerted || 0) + 1);
  }

  function startQueue(rows) {
    setCount(Number(rows.dataset.count || 0));
    alertFor({ urgent: (rows.dataset.urgent || "").split(" ").filter(Boolean),
               replies: JSON.parse(rows.dataset.replies || "{}") });
    return listen(function () {
      return rows.dataset.events + "?v=" + encodeURIComponent(rows.dataset.version || "");
    }, "queue", function () {
      return rows.dataset.poll + "?v=" + encodeURIComponent(rows.dataset.version || "");
    }, function (data) {
      rows.dataset.version = data.v;
      if (typeof data.html === "string") { rows.replaceChildren(fragment(data.html)); }
      if (typeof data.count === "number") { setCount(data.count); }
      if (data.urgent) { alertFor(data); }
    });
  }

  function startThread(thread) {
    return listen(function () {
      return thread.dataset.events + "?n=" + encodeURIComponent(thread.dataset.count || "0") +
        "&status=" + encodeURIComponent(thread.dataset.status || "") +
        "&assignee=" + encodeURIComponent(thread.dataset.assignee || "");
    }, "case", function () {
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
        var changed = document.getElementById("status-changed");
        if (changed) { changed.hidden = false; }
      }
    });
  }

  // --- drafts -------------------------------------------------------------------------------
  function draftKey(box) { return DRAFT_PREFIX + box.dataset.draft; }

  function keepDraft(box) {
    try {
      var saved = window.localStorage.getItem(draftKey(box));
      if (saved && !box.value) { box.value = saved; }
    } catch (e) { return; }
    box.addEventListener("input", function () {
      try {
        if (box.value) { window.localStorage.setItem(draftKey(box), box.value); }
        else { window.localStorage.removeItem(draftKey(box)); }
      } catch (e) { /* storage full or blocked: the text is still in the box */ }
    });
  }

  function clearDrafts(form) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-draft]"), function (box) {
      try { window.localStorage.removeItem(draftKey(box)); } catch (e) { /* ignore */ }
    });
  }

  function forgetAllDrafts() {
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i -= 1) {
        var key = window.localStorage.key(i);
        if (key && key.indexOf(DRAFT_PREFIX) === 0) { window.localStorage.removeItem(key); }
      }
    } catch (e) { /* ignore */ }
  }

  // --- actions without a reload ---------------------------------------------------------------
  function swap(url, focusSelector) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.url.indexOf("/console/login") >= 0) { window.location.assign(response.url); return; }
        return response.text().then(function (html) {
          var next = new DOMParser().parseFromString(html, "text/html");
          var main = next.getElementById("main");
          if (!main) { window.location.assign(url); return; }
          stop();
          document.getElementById("main").replaceWith(document.adoptNode(main));
          baseTitle = next.title;
          document.title = baseTitle;
          if (response.url !== window.location.href) { window.history.pushState(null, "", response.url); }
          start();
          var target = (focusSelector && document.querySelector(focusSelector)) ||
            document.querySelector("#main .notice, #main h1");
          if (target) {
            if (!target.hasAttribute("tabindex") && !/^(TEXTAREA|INPUT|SELECT|BUTTON|A)$/.test(target.tagName)) {
              target.setAttribute("tabindex", "-1");
            }
            target.focus();
          }
        });
      });
  }

  function submitWithFetch(form, submitter) {
    if (form.dataset.busy === "1") { return; }
    form.dataset.busy = "1";
    // URL-encoded, exactly as the browser would post the form without this script.
    var body = new URLSearchParams(new FormData(form));
    if (submitter && submitter.name) { body.append(submitter.name, submitter.value); }
    var wasReply = form.classList.contains("reply");
    fetch(form.action, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (response.status === 401 || response.url.indexOf("/console/login") >= 0) { expired(); return; }
      if (type.indexOf("application/json") < 0) { window.location.assign(response.url); return; }
      return response.json().then(function (data) {
        if (!data.ok || !data.location) { window.location.reload(); return; }
        if (wasReply) { clearDrafts(form); }
        var sep = data.location.indexOf("?") >= 0 ? "&" : "?";
        return swap(data.location + (data.notice ? sep + "notice=" + data.notice : ""),
                    wasReply || form.classList.contains("claim") ? "#reply-text" : null);
      });
    }).catch(function () {
      form.dataset.busy = "";
      form.submit(); // the network hiccuped: let the browser post it the plain way
    }).then(function () { form.dataset.busy = ""; });
  }

  // A form marked data-confirm="<dialog id>" (closing a case) asks in that dialog first; the
  // server still refuses without confirm=yes and asks on its own page when this cannot.
  function askToConfirm(form, dialog) {
    var select = form.querySelector("select");
    var chosen = select && select.options[select.selectedIndex];
    var text = dialog.querySelector("p[data-template]");
    if (text) { text.textContent = text.dataset.template.replace("{outcome}", chosen ? chosen.text : ""); }
    dialog.returnValue = "";
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue !== "yes") { if (select) { select.focus(); } return; }
      var confirm = form.querySelector("input[name=confirm]");
      if (!confirm) {
        confirm = document.createElement("input");
        confirm.type = "hidden";
        confirm.name = "confirm";
        form.appendChild(confirm);
      }
      confirm.value = "yes";
      if (window.fetch && window.DOMParser) { submitWithFetch(form, null); } else { form.submit(); }
    });
    dialog.showModal();
  }

  function enhanceForms(root) {
    Array.prototype.forEach.call(root.querySelectorAll("form[data-fetch]"), function (form) {
      form.addEventListener("submit", function (event) {
        var dialog = form.dataset.confirm && document.getElementById(form.dataset.confirm);
        if (dialog && dialog.showModal) {
          event.preventDefault();
          askToConfirm(form, dialog);
          return;
        }
        if (!window.fetch || !window.DOMParser || form.dataset.confirm) { return; }
        event.preventDefault();
        submitWithFetch(form, event.submitter);
      });
      Array.prototype.forEach.call(form.querySelectorAll("textarea"), function (box) {
        box.addEventListener("keydown", function (event) {
          if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
            event.preventDefault();
            if (form.reportValidity()) { form.requestSubmit(); }
          }
        });
      });
    });
    Array.prototype.forEach.call(root.querySelectorAll("textarea[data-draft]"), keepDraft);
    var canned = root.querySelector("#canned");
    var replyText = root.querySelector("#reply-text");
    if (canned && replyText) {
      canned.addEventListener("change", function () {
        var option = canned.options[canned.selectedIndex];
        if (option && option.dataset.text) { useCanned(option, replyText); }
      });
      enhancePicker(root, canned, replyText);
    }
  }

  function useCanned(option, replyText) {
    replyText.value = option.dataset.text;
    replyText.dispatchEvent(new Event("input"));
    replyText.focus();
    replyText.setSelectionRange(replyText.value.length, replyText.value.length);
  }

  // --- canned replies: "/" opens a filterable list (combobox + listbox) ----------------------
  // The <select> stays (and is what a page without this script uses); the list picks from it.
  var openPicker = null;

  function fold(text) {
    // case- and Arabic-diacritic-insensitive matching
    return text.toLowerCase().replace(/[\u064B-\u0652\u0640]/g, "");
  }

  function enhancePicker(root, canned, replyText) {
    var picker = root.querySelector("#canned-picker");
    if (!picker) { return; }
    var search = picker.querySelector("#canned-search");
    var list = picker.querySelector("#canned-list");
    var none = picker.querySelector("#canned-none");
    var status = picker.querySelector("#canned-status");
    var options = Array.prototype.slice.call(list.querySelectorAll("[role=option]"));
    var hint = root.querySelector("#canned-shortcut");
    if (hint) { hint.hidden = false; }
    var active = -1;

    function shown() { return options.filter(function (o) { return !o.hidden; }); }

    function highlight(index) {
      var visible = shown();
      options.forEach(function (o) { o.setAttribute("aria-selected", "false"); });
      active = visible.length ? (index + visible.length) % visible.length : -1;
      if (active < 0) { search.removeAttribute("aria-activedescendant"); return; }
      visible[active].setAttribute("aria-selected", "true");
      search.setAttribute("aria-activedescendant", visible[active].id);
      visible[active].scrollIntoView({ block: "nearest" });
    }

    function filter() {
      var words = fold(search.value).split(/\s+/).filter(Boolean);
      options.forEach(function (o) {
        var text = fold(o.textContent + " " + o.dataset.key);
        o.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      });
      var count = shown().length;
      list.hidden = count === 0;
      none.hidden = count !== 0;
      search.setAttribute("aria-expanded", count ? "true" : "false");
      status.textContent = status.dataset.template.replace("{count}", String(count));
      highlight(0);
    }

    function close(focusReply) {
      picker.hidden = true;
      search.setAttribute("aria-expanded", "false");
      search.removeAttribute("aria-activedescendant");
      if (focusReply) { replyText.focus(); }
    }

    function choose(option) {
      var source = canned.querySelector("option[value='" + option.dataset.key + "']");
      if (!source) { return; }
      canned.value = option.dataset.key;
      close(false);
      useCanned(source, replyText);
    }

    openPicker = function () {
      if (!document.body.contains(picker)) { return false; }
      picker.hidden = false;
      search.value = "";
      filter();
      search.focus();
      return true;
    };

    search.addEventListener("input", filter);
    picker.addEventListener("focusout", function (event) {
      if (!picker.contains(event.relatedTarget)) { close(false); }
    });
    search.addEventListener("keydown", function (event) {
      var visible = shown();
      switch (event.key) {
        case "ArrowDown": highlight(active + 1); break;
        case "ArrowUp": highlight(active - 1); break;
        case "Home": highlight(0); break;
        case "End": highlight(visible.length - 1); break;
        case "Enter": if (active >= 0) { choose(visible[active]); } break;
        case "Escape": close(true); break;
        default: return;
      }
      event.preventDefault();
      event.stopPropagation();
    });
    options.forEach(function (o) {
      o.addEventListener("mousedown", function (event) { event.preventDefault(); });
      o.addEventListener("click", function () { choose(o); });
    });
    replyText.addEventListener("keydown", function (event) {
      if (event.key === "/" && !replyText.value && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        openPicker();
      }
    });
  }

  // --- the page -------------------------------------------------------------------------------
  function stop() {
    while (stops.length) { stops.pop()(); }
  }

  function start() {
    var main = document.getElementById("main");
    if (!main) { return; }
    var rows = document.getElementById("queue-rows");
    if (rows) { known = null; stops.push(startQueue(rows)); }
    var thread = document.getElementById("thread");
    if (thread) { stops.push(startThread(thread)); }
    enhanceForms(main);
  }

  var logout = document.querySelector("form[action='/console/logout']");
  if (logout) { logout.addEventListener("submit", forgetAllDrafts); }

  // Keep-alive: only on the person's own activity, at most once a minute.
  var lastPing = 0;
  function active() {
    if (Date.now() - lastPing < KEEPALIVE_MS || !logout) { return; } // signed in only
    var token = csrfToken();
    if (!token) { return; }
    lastPing = Date.now();
    var body = new URLSearchParams();
    body.append("csrf", token);
    fetch("/console/session/keepalive", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) { if (response.status === 401 || response.redirected) { expired(); } })
      .catch(function () { /* offline: the next activity tries again */ });
  }
  ["keydown", "click", "input"].forEach(function (name) {
    document.addEventListener(name, active, { capture: true, passive: true });
  });


  var toggle = document.getElementById("alerts-toggle");
  if (toggle) {
    toggle.hidden = false;
    var paint = function () { toggle.setAttribute("aria-pressed", alertsOn() ? "true" : "false"); };
    paint();
    toggle.addEventListener("click", function () {
      var on = !alertsOn();
      try { window.localStorage.setItem(ALERTS_KEY, on ? "on" : "off"); } catch (e) { /* ignore */ }
      if (on && window.Notification && Notification.permission === "default") {
        Notification.requestPermission();
      }
      paint();
    });
  }

  // --- keyboard shortcuts (not while typing; "?" lists them) --------------------------------
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function moveInQueue(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("#queue-rows a.alias"));
    if (!links.length) { return; }
    var at = links.indexOf(document.activeElement);
    var next = at < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, at + step));
    links[next].focus();
    links[next].closest("tr").scrollIntoView({ block: "nearest" });
  }

  function press(selector) {
    var element = document.querySelector(selector);
    if (!element) { return false; }
    if (element.tagName === "BUTTON") { element.click(); } else { element.focus(); }
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var help = document.getElementById("shortcuts");
    if (!help || (help.open && event.key !== "?")) { return; }
    var done = true;
    switch (event.key) {
      case "?": if (help.open) { help.close(); } else { help.showModal(); } break;
      case "j": moveInQueue(1); break;
      case "k": moveInQueue(-1); break;
      case "r": done = press("#reply-text"); break;
      case "c": done = press("form.claim button, form[action$='/claim-next'] button"); break;
      case "x": done = press("#outcome"); break;
      case "n": done = press("#note-text"); break;
      case "f": done = press("#service"); break;
      case "t": done = press("#transfer-to"); break;
      case "/": done = (openPicker !== null && openPicker()) || press("#q"); break;
      default: done = false;
    }
    if (done) { event.preventDefault(); }
  });

  window.addEventListener("popstate", function () { window.location.reload(); });
  start();
}());
