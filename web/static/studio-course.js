// The course page: drag an email to its place (SortableJS). Each row holds its hidden "order" field, so the
// form posts the order the rows now stand in. Without this script, each row's buttons move it.
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
      var moved = event.item.querySelector(".drag");
      if (moved) { moved.focus(); }
    }
  });
  Array.prototype.forEach.call(list.querySelectorAll(".drag"), function (handle) { handle.hidden = false; });
})();
