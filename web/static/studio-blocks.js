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

// The merge-tag picker: the reader's first name (with the words for a reader without one) put where the
// cursor was in the last text box of the form; the preview follows as for any typing.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  var picker = document.getElementById("merge-tag");
  var fallback = document.getElementById("merge-tag-fallback");
  var insert = document.getElementById("merge-tag-insert");
  var said = document.getElementById("merge-tag-said");
  if (!form || !picker || !fallback || !insert || !said) { return; }
  picker.hidden = false;
  var last = null;
  form.addEventListener("focusin", function (event) {
    var field = event.target;
    if ((field.tagName === "TEXTAREA" || (field.tagName === "INPUT" && field.type === "text")) &&
        field.name && field.name.indexOf("w.") === 0) {
      last = field;
    }
  });
  insert.addEventListener("click", function () {
    if (!last) {
      said.textContent = "Click in a text box first, where the name should go; then insert it.";
      return;
    }
    var words = fallback.value.replace(/[{}|\r\n]/g, "").trim();
    var tag = "{first_name" + (words ? "|" + words : "") + "}";
    var start = last.selectionStart || 0;
    var end = last.selectionEnd || start;
    last.value = last.value.slice(0, start) + tag + last.value.slice(end);
    last.focus();
    last.setSelectionRange(start + tag.length, start + tag.length);
    last.dispatchEvent(new Event("input", { bubbles: true }));
    said.textContent = "Inserted " + tag + ".";
  });
})();
