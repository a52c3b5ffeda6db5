// The job page: status, interim results and their plot live from GET /jobs/{id}/stream (the
// session cookie authenticates it), then the final result and the log tail.
"use strict";

(function () {
  const root = document.getElementById("job");
  const api = "/jobs/" + encodeURIComponent(root.dataset.jobId);
  const MAX_ROWS = 200;
  const MAX_SERIES = 6;
  const LOG_LINES = 200;
  const messages = [];
  let lastSeq = 0;
  let finished = false;
  let plotQueued = false;
  let startDate = null;
  let endDate = null;

  const $ = (id) => document.getElementById(id);
  // Plotly reads a little HTML in names and titles; field names come from the program.
  const plotText = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

  function when(iso) {
    return iso ? iso.replace("T", " ").replace("Z", " UTC") : "—";
  }

  function runTime(start, end) {
    if (!start) return "—";
    const seconds = ((end ? Date.parse(end) : Date.now()) - Date.parse(start)) / 1000;
    if (seconds < 60) return seconds.toFixed(1) + " s";
    const minutes = Math.floor(seconds / 60);
    return minutes < 60 ? `${minutes} min ${Math.floor(seconds % 60)} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function showStatus(status, reason) {
    const badge = $("job-status");
    badge.textContent = status;
    badge.className = "badge status-" + status.toLowerCase();
    $("status-text").textContent = status;
    $("reason").textContent = reason || "—";
    root.dataset.status = status;
  }

  async function refreshJob() {
    const response = await fetch(api, { headers: { Accept: "application/json" } });
    if (!response.ok) return null;
    const job = await response.json();
    startDate = job.start_date;
    endDate = job.end_date;
    $("started").textContent = when(job.start_date);
    $("ended").textContent = when(job.end_date);
    $("run-time").textContent = runTime(job.start_date, job.end_date);
    if (job.error_message) {
      $("job-error").textContent = job.error_message;
      $("job-error").hidden = false;
    }
    return job;
  }

  async function refreshLog() {
    const response = await fetch(api + "/logs");
    if (!response.ok) return;
    const lines = (await response.text()).split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    const tail = lines.slice(-LOG_LINES);
    const box = $("log");
    box.textContent = tail.length ? tail.join("\n") : "(no output)";
    box.scrollTop = box.scrollHeight;  // a tail: the newest line in view
  }

  async function showResult(final) {
    const box = $("result");
    if (final.status !== "DONE") {
      box.textContent = `No result: the job ended ${final.status}` + (final.reason ? ` (${final.reason})` : "") + ".";
      return;
    }
    const response = await fetch(api + "/results");
    const text = await response.text();
    let shown = text;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) { /* show it as it came */ }
    box.textContent = shown.length > 200000 ? shown.slice(0, 200000) + "\n… (cut)" : shown;
    box.classList.remove("muted");
  }

  function addInterim(seq, data) {
    if (seq <= lastSeq) return;  // never twice, even across reconnects
    lastSeq = seq;
    messages.push({ seq, data });
    $("interim-count").textContent = String(messages.length);
    const row = document.createElement("tr");
    const number = document.createElement("td");
    number.textContent = String(seq);
    const cell = document.createElement("td");
    const text = JSON.stringify(data);
    cell.textContent = text.length > 400 ? text.slice(0, 400) + " …" : text;
    row.append(number, cell);
    const body = $("interims").tBodies[0];
    body.prepend(row);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    queuePlot();
  }

  function queuePlot() {
    if (plotQueued) return;
    plotQueued = true;
    setTimeout(() => { plotQueued = false; drawPlot(); }, 200);
  }

  function drawPlot() {
    if (typeof Plotly === "undefined") return;
    const drewSeries = drawSeries();
    const drewCounts = drawCounts();
    if (drewSeries || drewCounts) $("plot-empty").hidden = true;
  }

  const plotLayout = {
    margin: { l: 60, r: 20, t: 10, b: 40 },
    showlegend: false,
    font: { family: "system-ui, sans-serif", size: 12 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fafbfc",
  };

  function drawSeries() {
    const { xLabel, series } = window.qruntimeSeries.collectSeries(messages);
    if (!series.length) return false;
    const shown = series.slice(0, MAX_SERIES);
    const traces = shown.map((s, i) => ({
      type: "scatter", mode: "lines+markers", name: plotText(s.name), x: s.x, y: s.y,
      xaxis: "x", yaxis: i ? "y" + (i + 1) : "y", marker: { size: 5 },
    }));
    const layout = {
      ...plotLayout,
      height: 240 + 150 * (shown.length - 1),
      grid: { rows: shown.length, columns: 1, subplots: shown.map((_, i) => [i ? "xy" + (i + 1) : "xy"]), roworder: "top to bottom" },
      xaxis: { title: { text: xLabel } },
    };
    shown.forEach((s, i) => { layout[i ? "yaxis" + (i + 1) : "yaxis"] = { title: { text: plotText(s.name) } }; });
    $("plot").hidden = false;
    Plotly.react($("plot"), traces, layout, { displaylogo: false, responsive: true });
    return true;
  }

  // A histogram of the latest counts dictionary, and its top outcomes' probability over time.
  function drawCounts() {
    const counts = window.qruntimeSeries.collectCounts(messages);
    if (!counts) return false;
    const name = counts.field === "(message)" ? "counts" : plotText(counts.field);
    const traces = [
      { type: "bar", name, x: counts.latest.outcomes, y: counts.latest.values, xaxis: "x", yaxis: "y", showlegend: false },
      ...counts.top.map((s) => ({
        type: "scatter", mode: "lines+markers", name: plotText(s.outcome), x: s.x, y: s.y,
        xaxis: "x2", yaxis: "y2", marker: { size: 5 },
      })),
    ];
    const layout = {
      ...plotLayout,
      height: 480,
      showlegend: true,
      legend: { title: { text: "outcome" } },
      grid: { rows: 2, columns: 1, pattern: "independent", roworder: "top to bottom" },
      xaxis: { type: "category", title: { text: `latest ${name}` } },
      yaxis: { title: { text: name } },
      xaxis2: { title: { text: counts.xLabel } },
      yaxis2: { title: { text: "probability" }, range: [0, 1] },
    };
    $("counts-plot").hidden = false;
    Plotly.react($("counts-plot"), traces, layout, { displaylogo: false, responsive: true });
    return true;
  }

  function finish(final) {
    finished = true;
    showStatus(final.status, final.reason);
    const cancel = $("cancel-form");
    if (cancel) cancel.hidden = true;
    if (final.error_message) {
      $("job-error").textContent = final.error_message;
      $("job-error").hidden = false;
    }
    refreshJob();
    refreshLog();
    showResult(final);
    if (!messages.length) $("plot-empty").textContent = "This job published no interim results.";
    else if ($("plot").hidden && $("counts-plot").hidden) $("plot-empty").textContent = "Its interim results have no numeric fields or counts to plot.";
  }

  const stream = new EventSource(api + "/stream");
  stream.addEventListener("interim", (event) => {
    const message = JSON.parse(event.data);
    addInterim(message.seq, message.data);
  });
  stream.addEventListener("status", (event) => {
    const status = JSON.parse(event.data);
    showStatus(status.status, status.reason);
    refreshJob();
  });
  stream.addEventListener("final", (event) => {
    stream.close();  // the server ends the stream; without this the browser would reconnect
    finish(JSON.parse(event.data));
  });
  stream.addEventListener("error", () => {
    // While open the browser reconnects by itself, resuming after Last-Event-ID.
    if (stream.readyState === EventSource.CLOSED && !finished) {
      $("plot-empty").hidden = false;
      $("plot-empty").textContent = "The live stream was lost; reload the page to resume.";
    }
  });

  refreshLog();
  const logTimer = setInterval(() => { if (finished) clearInterval(logTimer); else refreshLog(); }, 2000);
  const clock = setInterval(() => {
    if (finished) clearInterval(clock);
    else if (startDate && !endDate) $("run-time").textContent = runTime(startDate, null);
  }, 1000);
})();
