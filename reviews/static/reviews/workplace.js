// Keyboard shortcuts of the reviewer's workplace. The page declares them: an element with data-key="x" is what
// the key x acts on (a form is submitted, a link followed, a field focused), so the legend, the markup and the
// behaviour cannot drift apart. Keys are ignored while typing, except the few that finish the typing.
"use strict";

(function () {
  function isTyping(element) {
    if (element.matches("textarea, select")) return true;
    return element.matches("input") && !["checkbox", "radio", "submit", "button"].includes(element.type);
  }

  function pickReason(select, digit) {
    // The reason codes are numbered 1-6 after an empty first option: digit n picks option n.
    const index = Number(digit);
    if (index >= 1 && index < select.options.length) {
      select.selectedIndex = index;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function act(element) {
    if (element.tagName === "FORM") element.requestSubmit();
    else if (element.matches("a, button")) element.click();
    else {
      element.focus();
      if (typeof element.select === "function" && element.tagName === "INPUT") element.select();
    }
  }

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (isTyping(target)) {
      if (event.key === "Escape") {
        target.blur();
      } else if (target.matches("select[data-reason-select]") && /^[1-9]$/.test(event.key)) {
        event.preventDefault();
        pickReason(target, event.key);
      } else if (event.key === "Enter" && target.form && (target.tagName === "SELECT" || event.ctrlKey || event.metaKey)) {
        // Enter submits from a select (browsers do not), Ctrl+Enter from a textarea (Enter is a new line there).
        event.preventDefault();
        target.form.requestSubmit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const element = document.querySelector('[data-key="' + CSS.escape(event.key) + '"]');
    if (!element) return;
    event.preventDefault(); // the key must not also be typed into the field it focuses
    act(element);
  });

  // "Select all" on a work list.
  document.addEventListener("change", function (event) {
    if (event.target.id !== "select-all") return;
    document.querySelectorAll('#work-list input[name="case"]').forEach(function (box) {
      box.checked = event.target.checked;
    });
  });
})();
