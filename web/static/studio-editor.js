// The studio editor's live preview: a short while after the typing stops, the text as typed is
// rendered on the server (the same renderer that sends, in its bounded sandbox) and the preview
// panel is replaced; the page itself never reloads.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  var panel = document.getElementById("preview");
  var email = document.getElementById("preview-email");
  var firstName = document.getElementById("preview-first-name");
  var reader = document.getElementById("preview-reader");
  if (!form || !panel || !email || !firstName) { return; }
  var answers = Array.prototype.slice.call(document.querySelectorAll("select[data-answer]"));
  var view = document.getElementById("preview-view");
  var timer = null;
  var latest = 0;
  var editing = null;  // the place in the email's body of the block being edited (none: the top)

  // The view chosen (a phone, a desktop, dark mode, the plain text, or all), kept in this browser.
  function showView() {
    if (!view) { return; }
    panel.setAttribute("data-view", view.value);
    var text = panel.querySelector("details[data-view=text]");
    if (text && view.value === "text") { text.open = true; }
  }
  if (view) {
    var kept = window.localStorage && window.localStorage.getItem("studio-preview-view");
    if (kept) { view.value = kept; }
    view.addEventListener("change", function () {
      if (window.localStorage) { window.localStorage.setItem("studio-preview-view", view.value); }
      showView();
    });
    showView();
  }

  // Which block is being edited: its place among the blocks as they now stand (after any drag).
  form.addEventListener("focusin", function (event) {
    var block = event.target.closest ? event.target.closest("fieldset.block") : null;
    if (!block) { editing = null; return; }
    var blocks = Array.prototype.slice.call(form.querySelectorAll("fieldset.block"));
    editing = blocks.indexOf(block);
  });

  // The frames open at the block being edited (each block of the email carries id="part-N").
  function atBlock() {
    if (editing === null || editing < 0) { return; }
    Array.prototype.forEach.call(panel.querySelectorAll("iframe"), function (frame) {
      frame.src = frame.getAttribute("src").split("#")[0] + "#part-" + editing;
    });
  }

  var inFlight = null;  // the preview being fetched: a newer one cancels it (the server stops it too)
  // This page's name for itself, by which the server orders its previews.
  var page = Array.prototype.map.call(
    window.crypto.getRandomValues(new Uint8Array(16)), function (byte) { return ("0" + byte.toString(16)).slice(-2); }
  ).join("");

  function refresh() {
    var asked = ++latest;
    if (inFlight) { inFlight.abort(); }
    inFlight = window.AbortController ? new AbortController() : null;
    var data = new FormData(form);
    // Images go with a save, not with every preview (the preview shows those already uploaded).
    Array.prototype.forEach.call(form.querySelectorAll("input[type=file]"), function (input) {
      data.delete(input.name);
    });
    data.set("email", email.value);
    data.set("first_name", firstName.value);
    if (reader) { data.set("reader", reader.value); }
    // This page and its own order: the server lets the newest asked win, whichever order the requests reach
    // it (a counter of this page, never a clock: the server compares no browser's clock with its own).
    data.set("page", page);
    data.set("asked", String(asked));
    answers.forEach(function (answer) { data.set("answer." + answer.getAttribute("data-answer"), answer.value); });
    panel.setAttribute("aria-busy", "true");
    // The course the editor is about: the same ?course= as the form it previews.
    fetch("/studio/preview" + new URL(form.action, window.location.href).search,
          { method: "POST", body: data, credentials: "same-origin", redirect: "manual",
            signal: inFlight ? inFlight.signal : undefined })
      .then(function (response) {
        // Never follow the way to the sign-in page: rendered for this script, it would start a session
        // that races the one the person signs in with in the page.
        if (response.type === "opaqueredirect" || response.status === 401 || response.redirected) {
          throw new Error("Your session has ended: sign in again in another tab; your text is still here.");
        }
        return response.text();
      })
      .then(function (html) {
        if (asked === latest) { panel.innerHTML = html; showView(); atBlock(); }
      })
      .catch(function (error) {
        if (asked === latest && error.name !== "AbortError") {
          panel.textContent = error.message || "The preview did not load.";
        }
      })
      .finally(function () { panel.removeAttribute("aria-busy"); });
  }

  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);  // bench/studio.py PAUSE_MS: the newest preview wins
  }

  form.addEventListener("input", soon);
  email.addEventListener("change", refresh);
  firstName.addEventListener("input", soon);
  if (reader) { reader.addEventListener("change", refresh); }
  answers.forEach(function (answer) { answer.addEventListener("change", refresh); });
  refresh();
})();

// Typed text is kept in this browser until it is saved, so that a session that ends mid-edit (or a
// closed tab) loses nothing: signing in again and coming back to the editor brings the text back.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  if (!form || !window.localStorage) { return; }
  var item = form.elements.namedItem("item").value;
  var key = "studio-unsaved:" + item;
  var fields = Array.prototype.slice.call(form.querySelectorAll("textarea, input[type=text]"));
  var saved = document.body.getAttribute("data-saved") === "yes";

  function current() {
    var values = {};
    fields.forEach(function (field) { values[field.name] = field.value; });
    return values;
  }

  if (saved) {
    window.localStorage.removeItem(key);  // the server has it now
  } else {
    var kept = null;
    try { kept = JSON.parse(window.localStorage.getItem(key) || "null"); } catch (error) { kept = null; }
    var now = current();
    var differs = kept && fields.some(function (field) {
      return typeof kept[field.name] === "string" && kept[field.name] !== now[field.name];
    });
    if (differs) {
      fields.forEach(function (field) {
        if (typeof kept[field.name] === "string") { field.value = kept[field.name]; }
      });
      var notice = document.getElementById("restored");
      if (notice) { notice.hidden = false; }
      form.dispatchEvent(new Event("input"));  // and preview it
    }
  }
  form.addEventListener("input", function () {
    window.localStorage.setItem(key, JSON.stringify(current()));
  });
  var discard = document.getElementById("discard-unsaved");
  if (discard) {
    discard.addEventListener("click", function () {
      window.localStorage.removeItem(key);
      window.location.reload();
    });
  }
})();
