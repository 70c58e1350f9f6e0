// invsync console: refreshes the live panels and sends the operator's controls to the JSON
// API with the admin token as a bearer header. The token lives in this tab's sessionStorage
// only: never in a URL, a cookie or the page.
(function () {
  "use strict";
  var KEY = "invsync.adminToken";
  var REFRESH_MS = 3000;

  function byId(id) { return document.getElementById(id); }

  function refresh() {
    document.querySelectorAll("[data-refresh]").forEach(function (panel) {
      fetch(panel.getAttribute("data-refresh"), { headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { panel.innerHTML = html; panel.removeAttribute("data-stale"); })
        .catch(function () { panel.setAttribute("data-stale", "true"); });
    });
  }

  function say(text, isError) {
    byId("control-result").textContent = isError ? "" : text;
    byId("control-error").textContent = isError ? text : "";
  }

  function showToken() {
    var kept = sessionStorage.getItem(KEY) !== null;
    byId("token-ask").hidden = kept;
    byId("token-kept").hidden = !kept;
  }

  function token() {
    var kept = sessionStorage.getItem(KEY);
    if (kept) { return kept; }
    var typed = byId("admin-token").value.trim();
    if (!typed) { return null; }
    sessionStorage.setItem(KEY, typed);
    byId("admin-token").value = "";
    showToken();
    return typed;
  }

  function admin(path, body, done) {
    var bearer = token();
    if (!bearer) {
      say("Enter the admin token first.", true);
      byId("admin-token").focus();
      return;
    }
    var buttons = document.querySelectorAll("#controls button");
    buttons.forEach(function (b) { b.disabled = true; });
    var init = { method: "POST", headers: { Authorization: "Bearer " + bearer } };
    if (body !== null) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    fetch(path, init)
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (json) {
          if (r.status === 401) {
            sessionStorage.removeItem(KEY);
            showToken();
            say("Wrong admin token: the server refused it and nothing was changed. Enter the token again.", true);
            byId("admin-token").focus();
          } else if (!r.ok) {
            say("Refused (" + r.status + "): " + (json.message || "no message"), true);
          } else {
            say(done(json), false);
          }
        });
      })
      .catch(function () { say("The daemon did not answer; nothing is known to have changed.", true); })
      .then(function () {
        buttons.forEach(function (b) { b.disabled = false; });
        refresh();
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (byId("controls")) {
      showToken();
      byId("forget-token").addEventListener("click", function () {
        sessionStorage.removeItem(KEY);
        showToken();
        say("Token forgotten.", false);
        byId("admin-token").focus();
      });
      byId("pause-form").addEventListener("submit", function (event) {
        event.preventDefault();
        var reason = byId("pause-reason").value.trim();
        admin("/api/v1/sync/pause", reason ? { reason: reason } : {}, function (s) {
          byId("pause-reason").value = "";
          return "Paused: " + (s.pauseReason || "");
        });
      });
      byId("resume-button").addEventListener("click", function () {
        admin("/api/v1/sync/resume", null, function () { return "Resumed."; });
      });
      byId("trigger-form").addEventListener("submit", function (event) {
        event.preventDefault();
        var body = {};
        var experience = byId("trigger-experience").value;
        if (experience) { body.experience = Number(experience); }
        if (byId("trigger-from").value) { body.from = byId("trigger-from").value; }
        if (byId("trigger-to").value) { body.to = byId("trigger-to").value; }
        admin("/api/v1/sync/trigger", body, function (r) {
          return "Queued " + r.queued + " product-days, " + r.from + " … " + r.to + ".";
        });
      });
    }
    if (document.querySelector("[data-refresh]")) {
      setInterval(refresh, REFRESH_MS);
    }
  });
})();
