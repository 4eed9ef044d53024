// The new date poll form, improved when JavaScript runs (it works without it): the time zone
// is the browser's own on a fresh form, and "Add another day" / "Copy the last day's times to
// the next day" add a row in place instead of reloading the page.
(function () {
  "use strict";
  var MAX_DAYS = 100;
  var form = document.getElementById("new-poll");
  var list = document.getElementById("day-fields");
  if (!form || !list) return;

  var select = document.getElementById("timezone");
  if (select && form.getAttribute("data-fresh") === "true") {
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      zone = "";
    }
    for (var i = 0; i < select.options.length; i += 1) {
      if (select.options[i].value === zone) {
        select.value = zone;
        break;
      }
    }
  }

  function label(name, number) {
    return form.getAttribute("data-text-" + name).replace("{number}", String(number));
  }

  function renumber() {
    var rows = list.querySelectorAll("li");
    rows.forEach(function (row, index) {
      var inputs = row.querySelectorAll("input");
      var labels = row.querySelectorAll("label");
      inputs[0].id = "day-" + index;
      inputs[1].id = "times-" + index;
      labels[0].htmlFor = inputs[0].id;
      labels[1].htmlFor = inputs[1].id;
      labels[0].textContent = label("day", index + 1);
      labels[1].textContent = label("times", index + 1);
    });
  }

  function nextDay(value) {
    var match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    if (!match) return "";
    var day = new Date(Date.UTC(+match[1], +match[2] - 1, +match[3] + 1));
    return day.toISOString().slice(0, 10);
  }

  function addRow(copy) {
    var rows = list.querySelectorAll("li");
    var last = rows[rows.length - 1];
    var filled = null;
    var at = 0; // the row after the last one filled
    for (var i = rows.length - 1; i >= 0; i -= 1) {
      var inputs = rows[i].querySelectorAll("input");
      if (inputs[0].value || inputs[1].value) {
        filled = inputs;
        at = i + 1;
        break;
      }
    }
    if (copy && filled && at < rows.length) {
      // As the server does: the copy goes into the first empty row after the last filled one.
      var next = rows[at].querySelectorAll("input");
      next[0].value = nextDay(filled[0].value);
      next[1].value = filled[1].value;
      next[0].focus();
      return true;
    }
    if (rows.length >= MAX_DAYS) return false;
    var row = last.cloneNode(true);
    row.querySelectorAll(".field-error").forEach(function (error) {
      error.remove();
    });
    var fresh = row.querySelectorAll("input");
    fresh.forEach(function (input) {
      input.value = "";
      input.removeAttribute("aria-invalid");
      input.removeAttribute("autofocus");
    });
    if (copy && filled) {
      fresh[0].value = nextDay(filled[0].value);
      fresh[1].value = filled[1].value;
    }
    list.appendChild(row);
    renumber();
    fresh[0].focus();
    return true;
  }

  ["add-day", "copy-day"].forEach(function (id) {
    var button = document.getElementById(id);
    if (!button) return;
    button.addEventListener("click", function (event) {
      if (addRow(id === "copy-day")) event.preventDefault();
    });
  });
})();
