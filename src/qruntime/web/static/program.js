// The run form's quick check while typing: the inputs must be a JSON object; obvious misses of
// the parameters schema are pointed out. The server still validates everything on submit.
"use strict";

(function () {
  const form = document.getElementById("run-form");
  if (!form) return;
  const inputs = document.getElementById("inputs");
  const note = document.getElementById("inputs-check");
  const schema = JSON.parse(document.getElementById("parameters-schema").textContent) || {};
  const TYPES = {
    integer: (v) => Number.isInteger(v),
    number: (v) => typeof v === "number",
    string: (v) => typeof v === "string",
    boolean: (v) => typeof v === "boolean",
    array: (v) => Array.isArray(v),
    object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
    null: (v) => v === null,
  };

  function schemaHints(value) {
    const hints = [];
    for (const name of schema.required || []) {
      if (!(name in value)) hints.push(`${name} is required`);
    }
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      if (!(name in value) || !prop || typeof prop !== "object") continue;
      const v = value[name];
      const types = [].concat(prop.type || []);
      const isEnvelope = TYPES.object(v) && "__type__" in v;
      if (types.length && !isEnvelope && !types.some((t) => TYPES[t] && TYPES[t](v))) {
        hints.push(`${name} should be ${types.join(" or ")}`);
      } else if (typeof v === "number") {
        if (typeof prop.minimum === "number" && v < prop.minimum) hints.push(`${name} should be ≥ ${prop.minimum}`);
        if (typeof prop.maximum === "number" && v > prop.maximum) hints.push(`${name} should be ≤ ${prop.maximum}`);
      }
      if (Array.isArray(prop.enum) && !prop.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) {
        hints.push(`${name} should be one of ${prop.enum.map((e) => JSON.stringify(e)).join(", ")}`);
      }
    }
    return hints;
  }

  // Returns false when the text cannot be sent at all (not a JSON object).
  function check() {
    let value;
    try {
      value = JSON.parse(inputs.value.trim() || "{}");
    } catch (error) {
      note.textContent = "Not valid JSON: " + error.message;
      note.className = "hint bad";
      return false;
    }
    if (!TYPES.object(value)) {
      note.textContent = "The inputs must be a JSON object: {\"name\": value, …}";
      note.className = "hint bad";
      return false;
    }
    const hints = schemaHints(value);
    note.textContent = hints.length ? "Check: " + hints.join("; ") + " (the server decides)." : "";
    note.className = hints.length ? "hint warn" : "hint";
    return true;
  }

  inputs.addEventListener("input", check);
  form.addEventListener("submit", (event) => { if (!check()) event.preventDefault(); });
  check();
})();
