// The checklist page: the live score as the reader ticks. Without JavaScript the button shows the
// same answer. The bands come from the form's data-bands attribute (no inline script: see the CSP).
(function () {
  "use strict";
  var form = document.getElementById("checklist");
  var output = document.getElementById("live-score");
  if (!form || !output) { return; }
  var bands = JSON.parse(form.getAttribute("data-bands") || "[]");
  function update() {
    var score = form.querySelectorAll("input[name=items]:checked").length;
    var band = bands.filter(function (b) { return score >= b.min && (b.max === null || score <= b.max); })[0];
    output.textContent = score + " checked. " + (band ? band.text : "");
  }
  form.addEventListener("change", update);
  update();
})();
