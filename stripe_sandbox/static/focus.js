// After a submit the sandbox refused (an empty field, a declined card), the page comes back with the problem
// marked: the focus goes to the first invalid field, else to the alert, not to the top of the page.
(function () {
  "use strict";
  var target = document.querySelector('[aria-invalid="true"]') || document.querySelector('[role="alert"]');
  if (!target) return;
  if (!target.matches("input, select, textarea, button, a[href]")) target.setAttribute("tabindex", "-1");
  target.focus();
})();
