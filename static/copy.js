// Copy buttons for the manage page's links. Without JavaScript the buttons stay hidden
// and the links are plain selectable text.
(function () {
  "use strict";
  var status = document.getElementById("copy-status");

  function say(text) {
    if (status) status.textContent = text;
  }

  function copyFrom(input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(input.value);
    }
    // Plain http on another host: the older way, from a selection.
    input.focus();
    input.select();
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    button.hidden = false;
    input.addEventListener("focus", function () {
      input.select();
    });
    button.addEventListener("click", function () {
      // The messages come in the page's language from the server (data-text-*).
      copyFrom(input).then(
        function () {
          say(button.getAttribute("data-text-copied"));
        },
        function () {
          input.select();
          say(status ? status.getAttribute("data-text-failed") : "");
        }
      );
    });
  });
})();
