// The studio editor's live preview: a short while after the typing stops, the text as typed is
// rendered on the server (the same renderer that sends, in its bounded sandbox) and the preview
// panel is replaced; the page itself never reloads.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  var panel = document.getElementById("preview");
  var email = document.getElementById("preview-email");
  var firstName = document.getElementById("preview-first-name");
  if (!form || !panel || !email || !firstName) { return; }
  var timer = null;
  var latest = 0;

  function refresh() {
    var asked = ++latest;
    var data = new FormData(form);
    data.set("email", email.value);
    data.set("first_name", firstName.value);
    panel.setAttribute("aria-busy", "true");
    fetch("/studio/preview", { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected || response.status === 303) {
          throw new Error("Your session has ended: sign in again in another tab; your text is still here.");
        }
        return response.text();
      })
      .then(function (html) {
        if (asked === latest) { panel.innerHTML = html; }
      })
      .catch(function (error) {
        if (asked === latest) { panel.textContent = error.message || "The preview did not load."; }
      })
      .finally(function () { panel.removeAttribute("aria-busy"); });
  }

  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 700);
  }

  form.addEventListener("input", soon);
  email.addEventListener("change", refresh);
  firstName.addEventListener("input", soon);
  refresh();
})();
