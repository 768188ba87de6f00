// The success page: while the payment is being confirmed, ask the server (never the redirect) every
// second or so; once the order is settled, reload so the page shows the coins and the new balance.
(function () {
  "use strict";
  var box = document.querySelector("[data-poll]");
  if (!box) return;
  var url = box.getAttribute("data-poll");
  var tries = 0;
  function schedule() { setTimeout(check, Math.min(1000 + tries * 250, 5000)); }
  function check() {
    tries += 1;
    if (tries === 40) {
      var slow = box.querySelector(".slow");
      if (slow) slow.hidden = false;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (s) { if (s.done) window.location.reload(); else schedule(); })
      // An error (Stripe unreachable, signed out): reload, and the page says what happened in words.
      .catch(function () { window.location.reload(); });
  }
  schedule();
})();

// After a submit the server refused, the page comes back with the fields marked: put the focus on the first
// invalid field (its error is its description), else on the alert that says what went wrong, so that keyboard
// and screen reader users start where the problem is instead of at the top of the page.
(function () {
  "use strict";
  var target = document.querySelector('[aria-invalid="true"]') || document.querySelector('[role="alert"]');
  if (!target) return;
  if (!target.matches("input, select, textarea, button, a[href]")) target.setAttribute("tabindex", "-1");
  target.focus();
})();
