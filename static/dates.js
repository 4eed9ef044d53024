// A date poll's grid, improved when JavaScript runs (it works without it, see
// templates/dates_poll.html): times are shown in the browser's own time zone, with the
// poll's zone one click away, and the grid follows answers live. Whole days never move.
(function () {
  "use strict";

  var box = document.querySelector(".live-grid[data-live]");
  var zoneLine = document.getElementById("zone-line");
  var lang = document.documentElement.lang || "en";
  var browserZone = "";
  try {
    browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    browserZone = "";
  }
  // The reader picked a zone with the switch (?tz=): that one stays.
  var picked = !zoneLine || zoneLine.getAttribute("data-picked") === "true";
  var useBrowser = !picked && browserZone !== "";

  function showTimes(root) {
    if (!useBrowser) return;
    var days = new Intl.DateTimeFormat(lang, {
      weekday: "short", year: "numeric", month: "short", day: "numeric", timeZone: browserZone
    });
    var clock = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit", timeZone: browserZone });
    root.querySelectorAll(".day[data-starts-at]").forEach(function (day) {
      var start = new Date(day.getAttribute("data-starts-at"));
      var end = new Date(day.getAttribute("data-ends-at"));
      day.textContent = days.format(start);
      var time = day.nextElementSibling;
      if (time && time.classList.contains("time")) {
        time.textContent = clock.format(start) + " \u2013 " + clock.format(end);
      }
    });
    // The settled date above the grid is said in the same zone as the grid's columns.
    var chosen = document.querySelector("th.settled .day[data-starts-at]");
    var when = document.querySelector(".settled-when");
    if (chosen && when) {
      var from = new Date(chosen.getAttribute("data-starts-at"));
      var to = new Date(chosen.getAttribute("data-ends-at"));
      when.textContent = days.format(from) + ", " + clock.format(from) + " \u2013 " + clock.format(to);
    }
  }

  if (zoneLine && useBrowser) {
    var shown = zoneLine.querySelector(".zone-shown");
    shown.textContent = zoneLine.getAttribute("data-text-zone").replace("{zone}", browserZone);
    var own = zoneLine.querySelector(".own-zone");
    if (own && own.href.indexOf("tz=" + encodeURIComponent(browserZone)) === -1) own.hidden = false;
    var select = document.getElementById("tz");
    if (select) select.value = browserZone;
  }
  showTimes(document);

  if (!box || !("WebSocket" in window) || !window.fetch) return;
  var status = document.createElement("p");
  status.className = "live-status";
  status.setAttribute("aria-live", "polite");
  box.insertBefore(status, box.firstChild);
  var delay = 1000;
  var last = null;
  var closed = null;
  var fetching = false;
  var leaving = false; // a form was sent: its answer is the next page
  document.addEventListener("submit", function () {
    leaving = true;
  });

  function refresh() {
    // Everything but the reader's own row being typed: the columns, the others' rows, the totals.
    if (fetching) return;
    fetching = true;
    window.fetch(window.location.pathname + window.location.search, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        fetching = false;
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var table = document.querySelector("table.grid");
        var next = fresh.querySelector("table.grid");
        if (!table || !next) return;
        ["thead", "tfoot"].forEach(function (part) {
          var old = table.querySelector(part);
          var now = next.querySelector(part);
          if (old && now) old.replaceWith(now);
          else if (now) table.appendChild(now);
          else if (old) old.remove();
        });
        var body = table.querySelector("tbody");
        var form = body.querySelector(".answer-row");
        body.querySelectorAll("tr:not(.answer-row)").forEach(function (row) {
          row.remove();
        });
        next.querySelectorAll("tbody tr:not(.answer-row)").forEach(function (row) {
          body.insertBefore(row, form);
        });
        showTimes(table);
        var total = document.querySelector(".participants-total");
        var newTotal = fresh.querySelector(".participants-total");
        if (total && newTotal) total.textContent = newTotal.textContent;
      }, function () {
        fetching = false;
      });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + box.getAttribute("data-live"));
    socket.onmessage = function (event) {
      delay = 1000;
      status.setAttribute("data-state", "live");
      status.textContent = box.getAttribute("data-text-live");
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (message.deleted || (closed !== null && message.closed !== closed)) {
        // Gone, closed or settled: the page says so (unless a form of it is on its way).
        if (!leaving) window.location.reload();
        return;
      }
      closed = message.closed;
      if (last !== null && event.data !== last) refresh();
      last = event.data;
    };
    socket.onclose = function () {
      status.setAttribute("data-state", "offline");
      status.textContent = box.getAttribute("data-text-offline");
      var wait = delay / 2 + Math.random() * delay / 2;
      delay = Math.min(delay * 2, 30000);
      window.setTimeout(connect, wait);
    };
  }
  connect();
})();
