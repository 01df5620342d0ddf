// The course page: drag an email to its place (SortableJS). Each row holds its hidden "order" field, so the
// form posts the order the rows now stand in, with the next save. Without this script (or with a
// keyboard), each row's buttons move it, and save at once.
(function () {
  "use strict";
  var list = document.querySelector("[data-sortable]");
  var note = document.querySelector("[data-unsaved]");
  if (!list || typeof window.Sortable === "undefined") { return; }
  window.Sortable.create(list, {
    handle: ".drag",
    animation: 150,
    onEnd: function (event) {
      if (note && event.oldIndex !== event.newIndex) { note.hidden = false; }
    }
  });
  Array.prototype.forEach.call(list.querySelectorAll(".drag"), function (handle) { handle.hidden = false; });
})();

// The sign-up form's HTML for the practice's own site: copied with one button.
(function () {
  "use strict";
  var snippet = document.getElementById("embed-snippet");
  var copy = document.getElementById("copy-snippet");
  var said = document.getElementById("copy-said");
  if (!snippet || !copy || !said || !navigator.clipboard) { return; }
  copy.hidden = false;
  copy.addEventListener("click", function () {
    navigator.clipboard.writeText(snippet.value).then(function () {
      said.textContent = "Copied.";
    }, function () {
      snippet.select();
      said.textContent = "Select all and copy it (the browser did not let this page copy).";
    });
  });
})();
