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
