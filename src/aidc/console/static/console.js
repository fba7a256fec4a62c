// aidc console: the live parts. An element with data-refresh="URL" is fetched again every data-every seconds
// (same origin, the session cookie) and replaced, until the answer no longer asks to be refreshed.
"use strict";
function refresh(el) {
  const every = Math.max(1, Number(el.dataset.every || 5)) * 1000;
  const tick = async () => {
    try {
      const answer = await fetch(el.dataset.refresh, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok) {
        el.innerHTML = await answer.text();
        const status = el.querySelector("#run-status");
        if (status && !["running", "queued", "preempted"].includes(status.textContent.trim())) {
          const report = document.querySelector("iframe.report");
          if (report) report.src = report.src; // the run ended: its report has everything now
          return;
        }
      }
    } catch (e) { /* the server restarting: try again next tick */ }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}
document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("[data-refresh]").forEach(refresh));
