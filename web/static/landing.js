// The landing page: fill in the reader's time zone from the device, unless they already chose one.
(function () {
  "use strict";
  var field = document.getElementById("timezone");
  if (!field) { return; }
  try {
    if (!field.value) { field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; }
  } catch (error) { /* an old browser: the reader types it */ }
})();
