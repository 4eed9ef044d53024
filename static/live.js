// Live results: keeps a results list (templates/_results.html) up to date over a WebSocket.
// Progressive enhancement only: without JavaScript the page shows the numbers it was served.
// The server sends the poll's counters on connect and after every change (see aiohttpdemo_polls/live/hub.py):
//   {"question_id": 1, "total": 7, "closed": false, "choices": [{"id": 3, "votes": 4, "percent": 57.1}]}
//   {"question_id": 1, "deleted": true}
//   {"question_id": 1, "deleted": true, "removed": true}  (hidden by the site's operator)
//   {"question_id": 1, "closed": false, "hidden": true, "choices": [{"id": 3}]}  (counts not shown yet)
//   A ranked poll's frame also carries "ranked": its count's version; a ranked count
//   (templates/_ranked_count.html) whose own data-ranked-version differs fetches the page
//   again and takes its tables.
// A page served without counts (data-counts="hidden") reloads when counts may be shown (the
// poll closed), and one served with them when they may no longer be: its layout is stale.
(function () {
  "use strict";

  var list = document.querySelector("ul.results[data-live], [data-ranked-count][data-live]");
  if (!list || !("WebSocket" in window)) {
    return;
  }
  var ranked = list.hasAttribute("data-ranked-count");
  var MIN_DELAY = 1000; // ms before the first reconnect; doubles up to MAX_DELAY, with jitter
  var MAX_DELAY = 30000;
  var delay = MIN_DELAY;
  var socket = null;
  var finished = false;
  var closed = list.getAttribute("data-closed") === "true";
  // Words and numbers in the page's language: the server wrote the words into data-text-*.
  var lang = document.documentElement.lang || "en";
  var plurals = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;
  var counts = window.Intl ? new Intl.NumberFormat(lang) : null;
  var percents = window.Intl
    ? new Intl.NumberFormat(lang, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 })
    : null;

  function text(name) {
    return list.getAttribute("data-text-" + name) || "";
  }

  function count(number) {
    return counts ? counts.format(number) : String(number);
  }

  function percent(number) {
    return percents ? percents.format(number / 100) : number.toFixed(1) + "%";
  }
  var countsShown = list.getAttribute("data-counts") !== "hidden";

  // The mark that says whether numbers are live: data-state is connecting, live, offline or deleted.
  var mark = document.createElement("p");
  mark.className = "live-status";
  mark.setAttribute("aria-live", "polite"); // announced when it changes, like a status
  list.parentNode.insertBefore(mark, list);

  function setState(state, text) {
    mark.setAttribute("data-state", state);
    mark.textContent = text;
  }

  function plural(node, number) {
    // The word after a number (" votes · ") follows its span as plain text: the language's
    // singular or plural, as its rules say (French says "0 vote").
    var word = node && node.nextSibling;
    if (word && word.nodeType === Node.TEXT_NODE) {
      var one = text("one");
      var other = text("other");
      var form = (plurals ? plurals.select(number) === "one" : number === 1) ? one : other;
      var rest = word.nodeValue.replace(/^\s+/, "");
      var old = rest.indexOf(other) === 0 ? other : rest.indexOf(one) === 0 ? one : null;
      if (old !== null) {
        word.nodeValue = " " + form + rest.slice(old.length);
      }
    }
  }

  function setText(node, text) {
    if (node && node.textContent !== text) {
      node.textContent = text;
    }
  }

  function sameChoices(choices) {
    var rows = list.querySelectorAll("li[data-choice]");
    if (rows.length !== choices.length) {
      return false;
    }
    for (var i = 0; i < choices.length; i += 1) {
      if (rows[i].getAttribute("data-choice") !== String(choices[i].id)) {
        return false;
      }
    }
    return true;
  }

  function showClosed(isClosed) {
    if (isClosed === closed) {
      return;
    }
    closed = isClosed;
    var notes = document.querySelectorAll(".closed-note");
    for (var i = 0; i < notes.length; i += 1) {
      notes[i].parentNode.removeChild(notes[i]);
    }
    var voteLinks = document.querySelectorAll(".vote-link");
    for (var j = 0; j < voteLinks.length; j += 1) {
      voteLinks[j].hidden = isClosed;
    }
    if (!isClosed && voteLinks.length) {
      return; // open again, and the page's own link to vote is back
    }
    var note = document.createElement("p");
    note.className = "closed-note";
    if (isClosed) {
      note.textContent = text("closed");
    } else {
      var link = document.createElement("a");
      link.href = list.getAttribute("data-poll");
      link.textContent = text("vote");
      note.appendChild(document.createTextNode(text("reopened") + " "));
      note.appendChild(link);
    }
    mark.parentNode.insertBefore(note, mark.nextSibling);
  }

  function refreshTexts() {
    // The poll changed but no number did: its maker edited the texts (only possible while
    // it has no votes). Take them from a fresh copy of this page.
    window.fetch(window.location.pathname, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html) {
        return;
      }
      var fresh = new DOMParser().parseFromString(html, "text/html");
      var texts = fresh.querySelectorAll("ul.results li[data-choice] .choice-text");
      var current = list.querySelectorAll("li[data-choice] .choice-text");
      if (texts.length === current.length) {
        for (var i = 0; i < texts.length; i += 1) {
          setText(current[i], texts[i].textContent);
        }
      }
      var heading = fresh.querySelector("h1");
      setText(document.querySelector("h1"), heading && heading.textContent);
    }, function () {});
  }

  var fetching = false;
  var wanted = null; // the ranked count's version the newest frame announced

  function refreshRanked(version) {
    // The count changed: take the tables from a fresh copy of this page (one fetch at a time,
    // then again if the count moved on meanwhile).
    wanted = version;
    if (fetching || !window.fetch || list.getAttribute("data-ranked-version") === version) {
      return;
    }
    fetching = true;
    window.fetch(window.location.pathname, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      fetching = false;
      var fresh = html && new DOMParser().parseFromString(html, "text/html").querySelector("[data-ranked-count]");
      if (!fresh) {
        return;
      }
      list.innerHTML = fresh.innerHTML;
      list.setAttribute("data-ranked-version", fresh.getAttribute("data-ranked-version") || "");
      if (wanted !== list.getAttribute("data-ranked-version")) {
        // Another server may not have heard of the change yet: ask again in a moment.
        window.setTimeout(function () {
          refreshRanked(wanted);
        }, 1000);
      }
    }, function () {
      fetching = false;
    });
  }

  function showCounts(message) {
    if (!sameChoices(message.choices)) {
      // The poll's choices were edited: the page's structure is stale, fetch it anew.
      window.location.reload();
      return;
    }
    message.choices.forEach(function (choice) {
      var row = list.querySelector('li[data-choice="' + choice.id + '"]');
      var votes = row.querySelector(".votes");
      setText(votes, count(choice.votes));
      plural(votes, choice.votes);
      setText(row.querySelector(".percent"), percent(choice.percent));
      var fill = row.querySelector(".fill");
      if (fill) {
        // The attribute for the record, the CSS property so the width change transitions.
        fill.setAttribute("width", choice.percent.toFixed(1));
        fill.style.width = choice.percent + "px";
      }
    });
    var total = document.querySelector(".total-votes");
    setText(total, count(message.total));
    plural(total, message.total);
    showClosed(message.closed);
  }

  function showDeleted(removed) {
    finished = true;
    setState("deleted", text(removed ? "removed" : "deleted"));
    var voteLinks = document.querySelectorAll(".vote-link");
    for (var i = 0; i < voteLinks.length; i += 1) {
      voteLinks[i].hidden = true;
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    setState("connecting", text("connecting"));
    socket = new WebSocket(scheme + window.location.host + list.getAttribute("data-live"));
    socket.onmessage = function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (message.deleted) {
        showDeleted(Boolean(message.removed));
        return;
      }
      delay = MIN_DELAY; // a snapshot arrived: the connection works
      if (Boolean(message.hidden) === countsShown) {
        finished = true;
        window.location.reload();
        return;
      }
      setState("live", text("live"));
      if (message.hidden) {
        if (!sameChoices(message.choices)) {
          window.location.reload();
          return;
        }
        showClosed(message.closed);
        return;
      }
      if (ranked) {
        if (message.ranked) {
          refreshRanked(message.ranked);
        }
        showClosed(message.closed);
        return;
      }
      if (event.data === last && message.total === 0 && window.fetch) {
        refreshTexts();
      }
      last = event.data;
      showCounts(message);
    };
    var heard = false;
    var last = null; // the previous frame on this connection
    socket.onopen = function () {
      heard = true;
    };
    socket.onclose = function () {
      socket = null;
      if (finished) {
        return;
      }
      if (!heard && window.fetch) {
        // Refused before the upgrade: if the page itself is gone now, so is the poll.
        window.fetch(window.location.pathname, { method: "HEAD", credentials: "same-origin" }).then(
          function (response) {
            if (response.status === 404) {
              showDeleted();
            }
          },
          function () {}
        );
      }
      setState("offline", text("offline"));
      // Jitter: many pages dropped at once (a server restart) do not all come back at once.
      var wait = delay / 2 + Math.random() * delay / 2;
      delay = Math.min(delay * 2, MAX_DELAY);
      window.setTimeout(function () {
        if (!finished) {
          connect();
        }
      }, wait);
    };
  }

  window.addEventListener("pagehide", function () {
    if (socket) {
      finished = true;
      socket.close(1000);
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !socket && mark.getAttribute("data-state") !== "deleted") {
      // Back from the back-forward cache: take a fresh snapshot.
      finished = false;
      delay = MIN_DELAY;
      connect();
    }
  });
  connect();
})();
