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

// A case held on its review page: renew the claim while the reviewer works on it, let it go when they leave
// without deciding. "At work" is typing or editing in a field, a click that is not a link or a button, a scroll:
// what someone reading the case does. Shortcut keys and links are left out on purpose: they leave the page, and a
// renewal racing the leave could outlive it. A form of this page (a decision, claim, release, skip) is no leave:
// its own answer says what became of the claim. A reload leaves too; the server lets a left claim lapse only after
// a few seconds, and the reloaded page renews it at once.
(function () {
  const page = document.querySelector("[data-claim-keep]");
  if (!page) return;
  const RENEW_EVERY_MS = 30000;
  // A renewal waits this long and is dropped if the page is left or a form sent meanwhile: it never races the
  // leave it would outlive, nor the decision that the same keystroke sends.
  const SETTLE_MS = 1000;
  let lastRenewal = 0;
  let pending = null;
  let leaving = true;
  let done = false;

  function body() {
    const data = new FormData();
    const token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (token) data.append("csrfmiddlewaretoken", token.value);
    return data;
  }

  function renew(force) {
    if (done || pending !== null) return;
    if (!force && Date.now() - lastRenewal < RENEW_EVERY_MS) return;
    pending = window.setTimeout(function () {
      pending = null;
      if (done) return;
      lastRenewal = Date.now();
      fetch(page.dataset.claimKeep, { method: "POST", body: body(), credentials: "same-origin" });
    }, SETTLE_MS);
  }

  function stop() {
    done = true;
    if (pending !== null) window.clearTimeout(pending);
    pending = null;
  }

  document.addEventListener("submit", function () { leaving = false; stop(); }, true);
  document.addEventListener("input", function () { renew(false); }, true);
  document.addEventListener("wheel", function () { renew(false); }, { passive: true, capture: true });
  document.addEventListener("pointerdown", function (event) {
    if (!event.target.closest("a, button, [type=submit]")) renew(false);
  }, true);
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (target.matches && target.matches("input, textarea, select")) renew(false);
  }, true);

  window.addEventListener("pagehide", function () {
    stop();
    if (leaving) navigator.sendBeacon(page.dataset.claimLeave, body());
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload(); // back from the cache: the claim may have lapsed meanwhile
  });
  const navigation = performance.getEntriesByType("navigation")[0];
  if (navigation && navigation.type === "reload") renew(true);
})();

// Correct: a label the category does not know needs "new label" ticked (the server refuses it otherwise); say so
// as it is typed. Reassign: offer only the people who may work the queue the case would go to.
(function () {
  document.querySelectorAll("input[data-known-label]").forEach(function (input) {
    const list = input.list;
    const box = input.form && input.form.querySelector("input[name=new_label]");
    if (!list || !box) return;
    const known = new Set(Array.from(list.options).map(function (option) { return option.value; }));
    const hint = box.closest("label");
    function update() {
      const fresh = input.value.trim() !== "" && !known.has(input.value.trim());
      hint.classList.toggle("hitl-needed", fresh);
      input.setCustomValidity(fresh && !box.checked ? "A new label: tick “new label” to add it, or pick a known one." : "");
    }
    input.addEventListener("input", update);
    box.addEventListener("change", update);
    update();
  });

  document.querySelectorAll("form[data-reassign]").forEach(function (form) {
    const queue = form.querySelector("select[name=queue]");
    const person = form.querySelector("select[name=assignee]");
    if (!queue || !person) return;
    function update(initial) {
      const target = queue.value || form.dataset.currentQueue;
      Array.from(person.options).forEach(function (option) {
        if (!option.value) return;
        // The page back from a refusal keeps the person picked, even one the server has just said no to.
        const fits = (option.dataset.queues || "").split(" ").includes(target) || (initial && option.selected);
        option.hidden = !fits;
        option.disabled = !fits;
        if (!fits && option.selected) person.value = "";
      });
    }
    queue.addEventListener("change", function () { update(false); });
    update(true);
  });
})();
