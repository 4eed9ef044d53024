// The new-poll form, improved when JavaScript runs (it works without it):
// "Add another choice" adds a field in place instead of reloading the page, and the
// closing time is read in the browser's own time zone instead of UTC.
(function () {
  "use strict";
  var MAX_CHOICES = 20;
  var form = document.getElementById("new-poll");
  if (!form) return;

  var list = document.getElementById("choice-fields");
  var add = document.getElementById("add-choice");

  function renumber() {
    var items = list.querySelectorAll("li");
    items.forEach(function (item, index) {
      var input = item.querySelector("input");
      var label = item.querySelector("label");
      input.id = "choice-" + index;
      label.htmlFor = input.id;
      label.textContent = form.getAttribute("data-text-choice").replace("{number}", String(index + 1));
    });
    if (add && items.length >= MAX_CHOICES) add.hidden = true;
  }

  if (add && list) {
    add.addEventListener("click", function (event) {
      var items = list.querySelectorAll("li");
      if (items.length >= MAX_CHOICES) return;
      event.preventDefault();
      var item = items[items.length - 1].cloneNode(true);
      var input = item.querySelector("input");
      input.value = "";
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      input.removeAttribute("autofocus");
      var error = item.querySelector(".field-error");
      if (error) error.remove();
      list.appendChild(item);
      renumber();
      input.focus();
    });
  }

  // Read the closing time where the person is, and say so on the form.
  var closesAt = document.getElementById("closes_at");
  var offset = document.getElementById("tz_offset");
  var zoneName = document.getElementById("tz-name");
  if (!closesAt || !offset) return;
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    zone = "";
  }
  if (zoneName) {
    zoneName.textContent = zone
      ? form.getAttribute("data-text-zone").replace("{zone}", zone)
      : form.getAttribute("data-text-your-zone");
  }
  form.addEventListener("submit", function () {
    offset.value = "";
    if (!closesAt.value) return;
    // A date-time without an offset is local time; the offset in force on that day
    // (summer or winter time) goes to the server, in minutes east of UTC.
    var when = new Date(closesAt.value);
    if (!isNaN(when.getTime())) offset.value = String(-when.getTimezoneOffset());
  });
})();
