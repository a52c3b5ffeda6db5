// The jobs list: statuses update live by polling GET /jobs (the session cookie authenticates
// it) with the page's own filters.
"use strict";

(function () {
  const table = document.getElementById("jobs");
  const query = table.dataset.apiQuery;
  const PERIOD_MS = 2000;

  function when(iso) {
    return iso ? iso.replace("T", " ").replace("Z", " UTC") : "";
  }

  async function poll() {
    let response;
    try {
      response = await fetch("/jobs?" + query, { headers: { Accept: "application/json" } });
    } catch (_) {
      return true;  // the server may be restarting; try again
    }
    if (response.status === 401) return false;  // signed out elsewhere: stop
    if (!response.ok) return true;
    const body = await response.json();
    const rows = new Map([...table.querySelectorAll("tr[data-job-id]")].map((tr) => [tr.dataset.jobId, tr]));
    let unseen = false;
    for (const job of body.jobs) {
      const row = rows.get(job.id);
      if (!row) { unseen = true; continue; }
      const badge = row.querySelector(".badge");
      badge.textContent = job.status;
      badge.className = "badge status-" + job.status.toLowerCase();
      row.querySelector(".reason").textContent = job.reason || "";
      row.querySelector(".ended").textContent = when(job.end_date);
    }
    document.getElementById("jobs-changed").hidden = !unseen;
    return true;
  }

  async function loop() {
    if (await poll()) setTimeout(loop, PERIOD_MS);
  }
  setTimeout(loop, PERIOD_MS);
})();
