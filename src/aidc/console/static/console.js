// aidc console: the live parts. An element with data-refresh="URL" is fetched again every data-every seconds
// (same origin, the session cookie) and replaced, until the answer says it is over: a run status that is no longer
// running, or an element marked data-ended (a job's log once the job ended). A log keeps its newest line in view.
"use strict";
const LIVE = ["running", "queued", "preempted"];
function follow(root) {
  root.querySelectorAll("pre.log").forEach((log) => { log.scrollTop = log.scrollHeight; });
}
function refresh(el) {
  const every = Math.max(1, Number(el.dataset.every || 5)) * 1000;
  const tick = async () => {
    try {
      const answer = await fetch(el.dataset.refresh, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok) {
        el.innerHTML = await answer.text();
        follow(el);
        if (el.querySelector("[data-ended]")) return;
        const status = el.querySelector("#run-status");
        if (status && !LIVE.includes(status.textContent.trim())) {
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
document.addEventListener("DOMContentLoaded", () => {
  follow(document);
  document.querySelectorAll("[data-refresh]").forEach(refresh);
});
