// The layout editor: each template's text box becomes an Ace code editor (line numbers, HTML and
// Jinja highlighting, undo, search), installed from the npm registry (web/package.json) and served by
// us. Its text goes back into the text box on every change, so saving, the preview and the copy kept
// in this browser work as before; without Ace (not installed, or scripts off) the text boxes remain.
// The page's problems are marked in the gutter at their line, and each one beside the editor can take
// you to its line.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  if (!form || !window.ace) { return; }
  var ace = window.ace;
  // Our pages allow no inline styles: Ace's CSS comes from our own files, linked by the page.
  ace.config.set("useStrictCSP", true);
  ace.config.set("basePath", "/static/vendor/ace");
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;

  Array.prototype.forEach.call(form.querySelectorAll("textarea.code"), function (area) {
    var holder = document.createElement("div");
    holder.className = "code-editor";
    area.parentNode.insertBefore(holder, area.nextSibling);
    area.classList.add("replaced");
    var label = form.querySelector('label[for="' + area.id + '"]');
    var editor = ace.edit(holder, {
      value: area.value,
      mode: "ace/mode/django",  // HTML (MJML is HTML-like) with Jinja's tags highlighted
      theme: dark ? "ace/theme/tomorrow_night" : "ace/theme/chrome",
      useWorker: false,
      minLines: Math.max(2, Number(area.getAttribute("rows")) || 10),
      maxLines: 40,
      fontSize: "14px",
      showPrintMargin: false,
      wrap: true,
      tabSize: 2,
      useSoftTabs: true,
      enableKeyboardAccessibility: true  // Tab moves on; Enter goes into the text, Escape leaves it
    });
    var input = editor.textInput.getElement();
    if (label) {
      input.setAttribute("aria-label", label.textContent.trim());
      label.addEventListener("click", function () { editor.focus(); });
    }
    editor.session.on("change", function () {
      area.value = editor.getValue();
      area.dispatchEvent(new Event("input", { bubbles: true }));  // the preview and the kept copy follow
    });

    var problems = [];
    try { problems = JSON.parse(area.getAttribute("data-problems") || "[]"); } catch (error) { problems = []; }
    editor.session.setAnnotations(problems.map(function (problem) {
      return { row: problem.line - 1, column: 0, text: problem.text, type: "error" };
    }));
    var list = document.getElementById(area.id + "-problems");
    if (list) {
      Array.prototype.forEach.call(list.querySelectorAll("li[data-line]"), function (item) {
        var line = Number(item.getAttribute("data-line"));
        var go = document.createElement("button");
        go.type = "button";
        go.className = "secondary small";
        go.textContent = "Go to line " + line;
        go.addEventListener("click", function () {
          editor.gotoLine(line, 0, true);
          editor.focus();
        });
        item.appendChild(document.createTextNode(" "));
        item.appendChild(go);
      });
    }
    if (problems.length) { editor.scrollToLine(problems[0].line - 1, true, false); }
  });
})();
