// The ranking form of a ranked poll (templates/ranked_detail.html), improved when JavaScript
// runs: the place selects (which work without it) give way to two lists, "Your ranking" with
// move-up, move-down and "leave unranked" buttons, and "Not ranked" with "add" buttons. Every
// button works from the keyboard and keeps the focus on the choice it moved; a live region
// reads out what changed and the whole ranking. The selects stay in the form, hidden, and
// are set from the lists, so the form sends what it always sent.
(function () {
  "use strict";

  var form = document.querySelector("form.ranked-vote");
  var list = form && form.querySelector("[data-rank-list]");
  if (!list) {
    return;
  }
  var fieldset = form.querySelector("fieldset");
  if (fieldset && fieldset.disabled) {
    return; // a locked ballot: the selects show it, nothing can change
  }

  function text(name) {
    return form.getAttribute("data-text-" + name) || "";
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return key in values ? values[key] : whole;
    });
  }

  // Each choice: its id, text and select, in the page's order.
  var choices = {};
  var order = [];
  Array.prototype.forEach.call(list.querySelectorAll("li[data-choice]"), function (item) {
    var id = item.getAttribute("data-choice");
    choices[id] = {
      id: id,
      text: item.querySelector(".choice-text").textContent,
      select: item.querySelector("select"),
    };
    order.push(id);
  });
  var anySelect = choices[order[0]].select;

  function placeName(place) {
    // The select's own option, already in the page's language ("2nd", "2.", "2e").
    var option = anySelect.querySelector('option[value="' + place + '"]');
    return option ? option.textContent : String(place);
  }

  // The ranking as the selects hold it (a form shown again keeps what was chosen).
  var ranked = order
    .filter(function (id) {
      return /^[0-9]+$/.test(choices[id].select.value);
    })
    .sort(function (a, b) {
      return Number(choices[a].select.value) - Number(choices[b].select.value);
    });

  var panel = document.createElement("div");
  panel.className = "ranking-panel";
  var rankedTitle = document.createElement("h2");
  rankedTitle.id = "ranking-title";
  rankedTitle.textContent = text("ranking");
  var rankedList = document.createElement("ol");
  rankedList.className = "ranking";
  rankedList.setAttribute("aria-labelledby", "ranking-title");
  var emptyNote = document.createElement("p");
  emptyNote.className = "hint";
  emptyNote.textContent = text("empty");
  var unrankedTitle = document.createElement("h2");
  unrankedTitle.id = "unranked-title";
  unrankedTitle.textContent = text("unranked");
  var unrankedList = document.createElement("ul");
  unrankedList.className = "unranked";
  unrankedList.setAttribute("aria-labelledby", "unranked-title");
  var status = document.createElement("p");
  status.className = "ranking-status visually-hidden";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  panel.appendChild(rankedTitle);
  panel.appendChild(rankedList);
  panel.appendChild(emptyNote);
  panel.appendChild(unrankedTitle);
  panel.appendChild(unrankedList);
  panel.appendChild(status);
  list.parentNode.insertBefore(panel, list);
  list.hidden = true;

  function button(label, choice, action, disabled) {
    var node = document.createElement("button");
    node.type = "button";
    node.className = "secondary-button rank-button";
    node.textContent = label;
    node.setAttribute("aria-label", label + ": " + choice.text);
    node.setAttribute("data-action", action);
    node.setAttribute("data-choice", choice.id);
    if (disabled) {
      // Not `disabled`: a focused button that becomes disabled would lose the focus.
      node.setAttribute("aria-disabled", "true");
    }
    return node;
  }

  function row(choice, place) {
    var item = document.createElement("li");
    item.className = "rank-row";
    item.setAttribute("data-choice", choice.id);
    var name = document.createElement("span");
    name.className = "choice-text";
    name.textContent = choice.text;
    if (place) {
      var mark = document.createElement("span");
      mark.className = "place";
      mark.textContent = placeName(place);
      item.appendChild(mark);
    }
    item.appendChild(name);
    var actions = document.createElement("span");
    actions.className = "rank-actions";
    if (place) {
      actions.appendChild(button(text("up"), choice, "up", place === 1));
      actions.appendChild(button(text("down"), choice, "down", place === ranked.length));
      actions.appendChild(button(text("remove"), choice, "remove", false));
    } else {
      actions.appendChild(button(text("add"), choice, "add", false));
    }
    item.appendChild(actions);
    return item;
  }

  function render() {
    rankedList.textContent = "";
    unrankedList.textContent = "";
    ranked.forEach(function (id, index) {
      rankedList.appendChild(row(choices[id], index + 1));
    });
    order.forEach(function (id) {
      if (ranked.indexOf(id) < 0) {
        unrankedList.appendChild(row(choices[id], 0));
      }
    });
    emptyNote.hidden = ranked.length > 0;
    unrankedTitle.hidden = unrankedList.children.length === 0;
    // The selects the form sends: a place for each ranked choice, "" for the others.
    order.forEach(function (id) {
      var place = ranked.indexOf(id);
      choices[id].select.value = place < 0 ? "" : String(place + 1);
    });
  }

  function whole() {
    if (!ranked.length) {
      return text("empty");
    }
    return (
      text("now") +
      " " +
      ranked
        .map(function (id, index) {
          return fill(text("place"), { place: placeName(index + 1), choice: choices[id].text });
        })
        .join(", ") +
      "."
    );
  }

  function announce(message) {
    // Emptied first, so that the same words said twice are read twice.
    status.textContent = "";
    window.setTimeout(function () {
      status.textContent = message + " " + whole();
    }, 50);
  }

  function focus(id, actions) {
    for (var i = 0; i < actions.length; i += 1) {
      var target = panel.querySelector(
        'button[data-choice="' + id + '"][data-action="' + actions[i] + '"]:not([aria-disabled])'
      );
      if (target) {
        target.focus();
        return;
      }
    }
  }

  panel.addEventListener("click", function (event) {
    var target = event.target.closest("button[data-action]");
    if (!target || target.getAttribute("aria-disabled") === "true") {
      return;
    }
    var id = target.getAttribute("data-choice");
    var action = target.getAttribute("data-action");
    var at = ranked.indexOf(id);
    var choice = choices[id].text;
    var message;
    if (action === "up" && at > 0) {
      ranked.splice(at, 1);
      ranked.splice(at - 1, 0, id);
      message = fill(text("moved"), { choice: choice, place: placeName(at) });
    } else if (action === "down" && at >= 0 && at < ranked.length - 1) {
      ranked.splice(at, 1);
      ranked.splice(at + 1, 0, id);
      message = fill(text("moved"), { choice: choice, place: placeName(at + 2) });
    } else if (action === "remove" && at >= 0) {
      ranked.splice(at, 1);
      message = fill(text("removed"), { choice: choice });
    } else if (action === "add" && at < 0) {
      ranked.push(id);
      message = fill(text("added"), { choice: choice, place: placeName(ranked.length) });
    } else {
      return;
    }
    render();
    focus(id, action === "remove" ? ["add"] : action === "add" ? ["remove", "up"] : [action, "up", "down"]);
    announce(message);
  });

  render();
})();
