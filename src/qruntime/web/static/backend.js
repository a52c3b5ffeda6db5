// The backend page's coupling map: qubits at server-computed positions, couplings as lines;
// colour is the readout error where the backend has a noise model.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("coupling-data").textContent);
  const { positions, edges, qubits, couplings } = data;
  const fmt = (v, digits) => (v === null || v === undefined ? "—" : v.toExponential(digits));
  const us = (v) => (v === null || v === undefined ? "—" : v.toFixed(1) + " µs");

  const lineX = [], lineY = [], midX = [], midY = [], midText = [];
  for (const [a, b] of edges) {
    const [xa, ya] = positions[a], [xb, yb] = positions[b];
    lineX.push(xa, xb, null);
    lineY.push(ya, yb, null);
    midX.push((xa + xb) / 2);
    midY.push((ya + yb) / 2);
    const error = couplings[`${a}-${b}`];
    midText.push(`q${a} – q${b}` + (error === undefined ? "" : `<br>two-qubit gate error ${fmt(error, 2)}`));
  }
  const n = positions.length;
  const hover = positions.map((_, q) => {
    const noise = qubits[q];
    if (!noise) return `q${q}`;
    return `q${q}<br>T1 ${us(noise.t1)}<br>T2 ${us(noise.t2)}<br>readout error ${fmt(noise.readout, 2)}<br>gate error ${fmt(noise.gate, 2)}`;
  });
  const readout = qubits.length ? qubits.map((q) => q.readout) : null;
  const size = n > 60 ? 11 : 20;
  const traces = [
    { type: "scatter", mode: "lines", x: lineX, y: lineY, hoverinfo: "skip", line: { color: "#9aa5b1", width: 2 } },
    { type: "scatter", mode: "markers", x: midX, y: midY, text: midText, hoverinfo: "text", marker: { size: 6, opacity: 0 } },
    {
      type: "scatter", mode: n <= 40 ? "markers+text" : "markers",
      x: positions.map((p) => p[0]), y: positions.map((p) => p[1]),
      text: positions.map((_, q) => String(q)), textfont: { color: "white", size: 10 },
      hovertext: hover, hoverinfo: "text",
      marker: readout
        ? { size, color: readout, colorscale: "Viridis", showscale: true, colorbar: { title: { text: "readout<br>error" }, thickness: 12 }, line: { width: 1, color: "#333" } }
        : { size, color: "#3b6fd8", line: { width: 1, color: "#333" } },
    },
  ];
  const hidden = { visible: false, showgrid: false, zeroline: false };
  const layout = {
    height: 560,
    margin: { l: 10, r: 10, t: 10, b: 10 },
    showlegend: false,
    xaxis: { ...hidden, range: [-0.05, 1.05] },
    yaxis: { ...hidden, scaleanchor: "x", autorange: "reversed" },
    hovermode: "closest",
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
  };
  Plotly.newPlot(document.getElementById("coupling-map"), traces, layout, { displaylogo: false, responsive: true });
})();
