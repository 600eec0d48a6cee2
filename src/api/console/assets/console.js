// d2c console: shows every <time datetime data-ago> in the viewer's time zone with how long
// ago it was ("5 min ago"), after each page load and htmx swap, and every 30 s. The rest of
// the console is server-rendered HTML with htmx (htmx.min.js, sse.js).
(function () {
  "use strict";
  var day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
  var clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  // Today: the time only; other days: the date too (the full time is in the tooltip).
  function local(d) {
    var today = new Date();
    var same = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() &&
      d.getDate() === today.getDate();
    return same ? clock.format(d) : day.format(d) + " " + clock.format(d);
  }

  function ago(ms) {
    var s = Math.round(ms / 1000);
    if (s < 0) return "in the future";
    if (s < 45) return "just now";
    var m = Math.round(s / 60);
    if (m < 60) return m + " min ago";
    var h = Math.round(m / 60);
    if (h < 48) return h + " h ago";
    return Math.round(h / 24) + " days ago";
  }

  function render(root) {
    var now = Date.now();
    var list = (root || document).querySelectorAll("time[datetime][data-ago]");
    for (var i = 0; i < list.length; i++) {
      var el = list[i];
      var t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) continue;
      el.textContent = local(new Date(t)) + " (" + ago(now - t) + ")";
      el.title = new Date(t).toString();
    }
  }

  document.addEventListener("DOMContentLoaded", function () { render(document); });
  document.addEventListener("htmx:afterSettle", function (e) { render(e.target); });
  setInterval(function () { render(document); }, 30000);
})();
