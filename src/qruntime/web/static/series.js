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

// Counts dictionaries in a job's interim results ({"00101": 68, ...}, or quasi-probabilities):
// the message itself, or its first top-level field, whose keys are all bitstrings (or 0x-hex)
// and whose values are all finite numbers >= 0. The plot shows a histogram of the latest one
// and the probability of its top outcomes in every message that has one.
const OUTCOME = /^(0x[0-9a-fA-F]+|[01][01 ]*)$/;
const TOP_OUTCOMES = 4;
const MAX_BARS = 32;

function isCounts(value) {
  if (!isPlainMessage(value)) return false;
  const entries = Object.entries(value);
  return entries.length > 0 && entries.every(([key, v]) => OUTCOME.test(key) && isNumber(v) && v >= 0);
}

function countsIn(data) {
  if (isCounts(data)) return { field: "(message)", counts: data };
  if (!isPlainMessage(data)) return null;
  for (const [name, value] of Object.entries(data)) {
    if (isCounts(value)) return { field: name, counts: value };
  }
  return null;
}

// messages: [{seq, data}] -> null, or {field, xLabel, latest: {outcomes, values}, top: [{outcome, x, y}]}
function collectCounts(messages) {
  const found = [];
  for (const { seq, data } of messages) {
    const hit = countsIn(data);
    if (hit) found.push({ x: isPlainMessage(data) && isNumber(data.iteration) ? data.iteration : seq, byIteration: isPlainMessage(data) && isNumber(data.iteration), ...hit });
  }
  if (!found.length) return null;
  const last = found[found.length - 1];
  const sorted = Object.entries(last.counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = sorted.slice(0, MAX_BARS);
  const top = sorted.slice(0, TOP_OUTCOMES).map(([outcome]) => ({ outcome, x: [], y: [] }));
  for (const { x, counts } of found) {
    const total = Object.values(counts).reduce((sum, v) => sum + v, 0);
    for (const series of top) {
      series.x.push(x);
      series.y.push(total > 0 ? (counts[series.outcome] || 0) / total : 0);
    }
  }
  return {
    field: last.field,
    xLabel: found.every((f) => f.byIteration) ? "iteration" : "message",
    latest: { outcomes: shown.map(([k]) => k), values: shown.map(([, v]) => v) },
    top,
  };
}

window.qruntimeSeries.collectCounts = collectCounts;
