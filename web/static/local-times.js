// The studio's moments in the viewer's own time zone. The server writes each in UTC (what shows without
// JavaScript) inside <time datetime="...Z" data-local>; this shows it as the browser's zone has it, with
// the zone's name, and keeps the UTC text as the tooltip.
(function () {
  "use strict";
  var withYear = new Intl.DateTimeFormat(undefined, {
    day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  var withoutYear = new Intl.DateTimeFormat(undefined, {
    day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  document.querySelectorAll("time[data-local]").forEach(function (element) {
    var moment = new Date(element.getAttribute("datetime"));
    if (isNaN(moment.getTime())) {
      return;
    }
    element.title = element.textContent;
    element.textContent = (element.dataset.local === "year" ? withYear : withoutYear).format(moment);
  });
})();
