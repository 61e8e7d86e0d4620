// SuperServer dashboard: progressive enhancement only; every page works without it.
"use strict";
(function () {
  // Forms that change state ask first when they say so.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });
  // Pages marked data-refresh="N" reload every N seconds while visible.
  var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (every > 0) {
    setInterval(function () {
      if (document.visibilityState === "visible" && !document.querySelector("input:focus, select:focus")) {
        window.location.reload();
      }
    }, every * 1000);
  }
})();

// Commands in a sandbox, their output streamed as it is produced (NDJSON
// from the API, authenticated by the session cookie and the page's CSRF
// token). Output is inserted as text, never as markup.
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  function apiError(res) {
    return res.text().then(function (t) {
      try { return JSON.parse(t).error.message; } catch (e) { return res.status + " " + res.statusText; }
    });
  }
  var exec = document.getElementById("exec");
  if (exec) {
    exec.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var out = document.getElementById("exec-out");
      var status = document.getElementById("exec-status");
      var button = exec.querySelector("button");
      var cmd = document.getElementById("cmd").value;
      var id = exec.getAttribute("data-sandbox");
      out.textContent = "";
      status.textContent = "Running…";
      button.disabled = true;
      fetch("/v1/sandboxes/" + encodeURIComponent(id) + "/exec", {
        method: "POST",
        headers: { "content-type": "application/json", "accept": "application/x-ndjson", "x-csrf-token": csrf },
        body: JSON.stringify({ command: ["sh", "-c", cmd] })
      }).then(function (res) {
        if (!res.ok) return apiError(res).then(function (m) { throw new Error(m); });
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buf = "";
        function line(l) {
          if (!l) return;
          var ev = JSON.parse(l);
          if (ev.type === "stdout" || ev.type === "stderr") {
            var span = document.createElement("span");
            span.className = ev.type;
            span.textContent = ev.data;
            out.appendChild(span);
          } else if (ev.type === "result") {
            var r = ev.result || ev;
            var how = r.timed_out ? "timed out" : r.oom_killed ? "out of memory" :
              (r.exit_code !== null && r.exit_code !== undefined) ? "exit " + r.exit_code : "signal " + r.signal;
            status.textContent = "Done: " + how + " in " + Math.round(r.duration_ms) + " ms";
          } else if (ev.type === "error") {
            status.textContent = "Failed: " + ((ev.error && ev.error.message) || "the command could not run");
          }
        }
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { line(buf); return; }
            buf += decoder.decode(chunk.value, { stream: true });
            var parts = buf.split("\n");
            buf = parts.pop();
            parts.forEach(line);
            return pump();
          });
        }
        return pump();
      }).catch(function (e) {
        status.textContent = "Failed: " + e.message;
      }).finally(function () { button.disabled = false; });
    });
  }
  var upload = document.getElementById("upload");
  if (upload) {
    upload.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var file = document.getElementById("file").files[0];
      var status = document.getElementById("upload-status");
      if (!file) return;
      var id = upload.getAttribute("data-sandbox");
      status.textContent = "Uploading " + file.name + "…";
      fetch("/v1/sandboxes/" + encodeURIComponent(id) + "/files?path=" + encodeURIComponent("/workspace/" + file.name), {
        method: "PUT", headers: { "x-csrf-token": csrf }, body: file
      }).then(function (res) {
        if (!res.ok) return apiError(res).then(function (m) { throw new Error(m); });
        status.textContent = "Uploaded /workspace/" + file.name + " (" + file.size + " bytes)";
      }).catch(function (e) { status.textContent = "Upload failed: " + e.message; });
    });
  }
})();

// Live pages (data-live="services"): the server pushes health changes and
// anomalies over server-sent events; the page's main content is then
// re-fetched and swapped in (it is our own escaped HTML), at most every
// second. Without the stream the page stays as it is.
(function () {
  var live = document.body.getAttribute("data-live");
  if ((live !== "services" && live !== "egress") || !window.EventSource) return;
  var pending = null;
  function refresh() {
    pending = null;
    if (document.querySelector("input:focus, select:focus")) return;
    fetch(window.location.href, { headers: { "accept": "text/html" } }).then(function (res) {
      if (!res.ok) return;
      return res.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main) {
          main.replaceWith(document.importNode(fresh, true));
          document.dispatchEvent(new CustomEvent("superserver:refreshed"));
        }
      });
    });
  }
  function soon() { if (!pending) pending = setTimeout(refresh, live === "egress" ? 200 : 1000); }
  var source;
  if (live === "egress") {
    source = new EventSource("/v1/approvals?follow=true");
    source.addEventListener("approval", soon);
  } else {
    source = new EventSource("/v1/services/stream");
    source.addEventListener("health", soon);
    source.addEventListener("anomaly", soon);
    source.addEventListener("alert", soon);
  }
  window.addEventListener("beforeunload", function () { source.close(); });
})();

// The egress page's events, streamed in newest first (server-sent events of
// /v1/egress/events with follow=true). Cells are set as text. At most 500
// rows are kept; a row already shown (after a refresh) is not added twice.
(function () {
  var table = document.getElementById("egress-events");
  if (!table || !window.EventSource) return;
  var params = new URLSearchParams({ follow: "true", after: table.getAttribute("data-after") || "0" });
  if (table.getAttribute("data-sandbox")) params.set("sandbox", table.getAttribute("data-sandbox"));
  if (table.getAttribute("data-decision")) params.set("decision", table.getAttribute("data-decision"));
  var source = new EventSource("/v1/egress/events?" + params.toString());
  source.addEventListener("egress", function (ev) {
    var body = document.querySelector("#egress-events tbody");
    if (!body) return;
    var e = JSON.parse(ev.data);
    if (body.querySelector('tr[data-id="' + Number(e.id) + '"]')) return;
    var host = e.name || e.address || "?";
    if (e.port) host += ":" + e.port;
    var cells = [
      new Date(e.at_ms).toISOString(), e.decision, e.sandbox_id, e.protocol, host,
      e.method && e.path ? e.method + " " + e.path : "", e.rule, e.bytes_out + " / " + e.bytes_in
    ];
    var tr = document.createElement("tr");
    tr.setAttribute("data-id", String(Number(e.id)));
    cells.forEach(function (text, i) {
      var td = document.createElement("td");
      if (i === 1) {
        var span = document.createElement("span");
        span.className = "badge " + (e.decision === "allow" ? "ok" : "bad");
        span.textContent = text;
        td.appendChild(span);
      } else {
        td.textContent = text;
      }
      if (i === 7) td.className = "num";
      tr.appendChild(td);
    });
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
  });
  window.addEventListener("beforeunload", function () { source.close(); });
})();

// A service's log lines, tailed live (server-sent events of /v1/logs with
// follow=true). Lines are inserted as text. At most 1,000 lines are kept.
(function () {
  var pre = document.getElementById("log-lines");
  if (!pre || pre.getAttribute("data-live") !== "tail" || !window.EventSource) return;
  var service = pre.getAttribute("data-service");
  var source = new EventSource("/v1/logs?follow=true&service=" + encodeURIComponent(service));
  var levels = { fatal: "fatal", error: "error", warn: "warn" };
  source.addEventListener("line", function (ev) {
    var target = document.getElementById("log-lines");
    if (!target) return;
    var l = JSON.parse(ev.data);
    var span = document.createElement("span");
    span.className = levels[l.level] || "info";
    span.title = l.template;
    span.textContent = new Date(l.at_ms).toISOString() + " " + l.line + "\n";
    var atBottom = target.scrollTop + target.clientHeight >= target.scrollHeight - 4;
    target.appendChild(span);
    while (target.childNodes.length > 1000) target.removeChild(target.firstChild);
    if (atBottom) target.scrollTop = target.scrollHeight;
  });
  window.addEventListener("beforeunload", function () { source.close(); });
})();
