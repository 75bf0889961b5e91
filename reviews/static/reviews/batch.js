// Batch selection by keyboard on a work list: j/k move the focused row, x selects or unselects it. The rows
// are focusable (tabindex=-1) so the browser's own focus is the cursor: it scrolls into view, shows an outline
// and is read out by screen readers. shift+a is not here: the batch form declares data-key="A" and
// workplace.js submits it, as it does every declared key. Loaded only on the work lists of batch queues.
"use strict";

(function () {
  const rows = () => Array.from(document.querySelectorAll("#work-list tr[data-batch-row]"));

  function isTyping(element) {
    if (element.matches("textarea, select")) return true;
    return element.matches("input") && !["checkbox", "radio", "submit", "button"].includes(element.type);
  }

  function currentRow() {
    const active = document.activeElement;
    return active && active.closest ? active.closest("#work-list tr[data-batch-row]") : null;
  }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const index = all.indexOf(currentRow());
    const next = index < 0 ? 0 : Math.min(all.length - 1, Math.max(0, index + step));
    all[next].focus();
  }

  function showSelection() {
    const form = document.getElementById("batch-form");
    const count = document.getElementById("batch-count");
    let selected = 0;
    rows().forEach(function (row) {
      const box = row.querySelector('input[name="case"]');
      row.classList.toggle("hitl-selected", Boolean(box && box.checked));
      if (box && box.checked) selected += 1;
    });
    if (!count || !form) return;
    // The cap is the server's rule (the policy's batch_max); this only says so before the request is refused.
    const max = Number(form.dataset.batchMax || 0);
    count.textContent = selected ? selected + " selected" : "None selected";
    if (max && selected > max) count.textContent += " (more than " + max + ": the batch will be refused)";
    count.classList.toggle("hitl-overdue", Boolean(max && selected > max));
  }

  document.addEventListener("keydown", function (event) {
    if (isTyping(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j" || event.key === "k") {
      event.preventDefault();
      move(event.key === "j" ? 1 : -1);
    } else if (event.key === "x") {
      const row = currentRow();
      const box = row && row.querySelector('input[name="case"]');
      if (!box) return;
      event.preventDefault();
      box.checked = !box.checked;
      box.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });

  // A click on a row (not on its link or box) puts the cursor there, so keys and mouse can be mixed.
  document.addEventListener("click", function (event) {
    const row = event.target.closest && event.target.closest("#work-list tr[data-batch-row]");
    if (row && !event.target.closest("a, input, button")) row.focus();
  });

  // Any change of a box (x, a click, "select all") redraws the selection; after the page loads, the cursor
  // starts on the first row, so x works at once.
  document.addEventListener("change", function (event) {
    if (event.target.closest && event.target.closest("#work-list")) showSelection();
  });
  document.addEventListener("DOMContentLoaded", function () {
    // A browser restoring the boxes on "back" restores the selection too.
    showSelection();
    const first = rows()[0];
    if (first && (document.activeElement === document.body || !document.activeElement)) first.focus();
  });
})();
