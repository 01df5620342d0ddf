// The email form's blocks: drag one to its place (SortableJS). Each block holds its hidden "w.@order"
// field, so the form (and the live preview) follows the order the blocks now stand in; saving keeps it.
// Without this script, or with a keyboard, each block's Up and Down buttons move it (and save at once).
// After a block button, the page opens at the block it moved, added or stood beside.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  var list = document.getElementById("blocks");
  if (list && form && typeof window.Sortable !== "undefined") {
    window.Sortable.create(list, {
      handle: ".drag-handle",
      draggable: "fieldset.block",
      animation: 150,
      onEnd: function (event) {
        if (event.oldIndex !== event.newIndex) { form.dispatchEvent(new Event("input")); }
      }
    });
  }
  var focus = document.body.getAttribute("data-focus");
  var block = focus ? document.getElementById(focus) : null;
  if (block) {
    block.scrollIntoView({ block: "start" });
    var first = block.querySelector("input:not([type=hidden]), textarea, select, button");
    if (first) { first.focus({ preventScroll: true }); }
  }
})();
