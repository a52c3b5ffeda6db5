// Numeric series in a job's interim results, for the live plot on the job page.
// Rule: every top-level field of a dict message whose value is a finite number is a series;
// its x is the message's own "iteration" field when that is a number, else the message number.
"use strict";

function isPlainMessage(data) {
  return data !== null && typeof data === "object" && !Array.isArray(data) && !("__type__" in data);
}

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

// messages: [{seq, data}] in order -> {xLabel, series: [{name, x: [], y: []}]}
function collectSeries(messages) {
  const byName = new Map();
  let byIteration = 0;
  let byIndex = 0;
  for (const { seq, data } of messages) {
    if (!isPlainMessage(data)) continue;
    const hasIteration = isNumber(data.iteration);
    let used = false;
    for (const [name, value] of Object.entries(data)) {
      if (!isNumber(value) || (hasIteration && name === "iteration")) continue;
      if (!byName.has(name)) byName.set(name, { name, x: [], y: [] });
      const series = byName.get(name);
      series.x.push(hasIteration ? data.iteration : seq);
      series.y.push(value);
      used = true;
    }
    if (used) hasIteration ? byIteration++ : byIndex++;
  }
  const xLabel = byIteration && !byIndex ? "iteration" : "message";
  return { xLabel, series: [...byName.values()] };
}

window.qruntimeSeries = { collectSeries };
