// The presenter view's "Full screen" button (templates/present.html). Without JavaScript, or
// where the browser cannot go full screen, the button stays hidden: the page works the same.
(function () {
  "use strict";

  var button = document.querySelector("button[data-fullscreen]");
  var root = document.documentElement;
  if (!button || !document.fullscreenEnabled || !root.requestFullscreen) {
    return;
  }

  // Both labels in the page's language: the button's own text, and data-text-exit.
  var enter = button.textContent;
  var exit = button.getAttribute("data-text-exit");

  function showState() {
    var on = Boolean(document.fullscreenElement);
    button.textContent = on ? exit : enter;
    button.setAttribute("aria-pressed", on ? "true" : "false");
  }

  button.addEventListener("click", function () {
    var change = document.fullscreenElement ? document.exitFullscreen() : root.requestFullscreen();
    if (change && change.catch) {
      change.catch(function () {}); // refused (no user gesture, a policy): the page stays as it is
    }
  });
  document.addEventListener("fullscreenchange", showState);
  showState();
  button.hidden = false;
})();
