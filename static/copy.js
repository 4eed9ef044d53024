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
      var label = document.querySelector('label[for="' + input.id + '"]');
      var name = label ? label.textContent.split(":")[0] : "Link";
      copyFrom(input).then(
        function () {
          say(name + " copied.");
        },
        function () {
          input.select();
          say("Copying did not work here; the link is selected, copy it with your keyboard.");
        }
      );
    });
  });
})();
