// Every HTMX request carries the CSRF token from <meta name="csrf-token"> (SPEC §8).
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRFToken"] = meta.content; }
});

// A refused HTMX request (403, 404, 500…) is not swapped; say so in the flash area.
document.addEventListener("htmx:responseError", function (event) {
  var box = document.getElementById("flashes");
  if (!box) { return; }
  var status = event.detail.xhr.status;
  var div = document.createElement("div");
  div.className = "flash flash-error";
  div.setAttribute("role", "alert");
  div.textContent = status === 403 ? "You are not allowed to do this." :
    status === 404 ? "Not found: it may have been deleted." :
    "Something went wrong (" + status + "). Reload the page and try again.";
  box.replaceChildren(div);
});

// Experiment form: each weight's slider and number stay in step, and every share updates live.
function experimentWeights(rows) {
  var all = rows.querySelectorAll(".variant-row");
  var weights = Array.prototype.map.call(all, function (row) {
    var raw = row.querySelector("[data-weight-number]").value.trim();
    var n = /^\d+$/.test(raw) ? parseInt(raw, 10) : 0;
    return n >= 1 && n <= 10000 ? n : 0;
  });
  var total = weights.reduce(function (a, b) { return a + b; }, 0);
  all.forEach(function (row, i) {
    row.querySelector("[data-share]").textContent =
      total && weights[i] ? (100 * weights[i] / total).toFixed(1) + "%" : "—";
  });
}

// Persona rows: the name and tone fields and the raw config JSON describe the same thing; keep them in step.
function personaToConfig(row) {
  var area = row.querySelector("[data-config]");
  var config;
  try { config = area.value.trim() ? JSON.parse(area.value) : {}; } catch (e) { return; }
  if (!config || typeof config !== "object" || Array.isArray(config)) { return; }
  var persona = config.persona && typeof config.persona === "object" ? config.persona : {};
  persona.name = row.querySelector("[data-persona-name]").value;
  var tone = row.querySelector("[data-persona-tone]").value;
  if (tone.trim()) { persona.tone = tone; } else { delete persona.tone; }
  config.persona = persona;
  area.value = JSON.stringify(config);
}

function configToPersona(row) {
  var name = row.querySelector("[data-persona-name]");
  if (!name) { return; }
  var config;
  try { config = JSON.parse(row.querySelector("[data-config]").value); } catch (e) { return; }
  if (config && config.persona && typeof config.persona === "object") {
    name.value = config.persona.name || "";
    row.querySelector("[data-persona-tone]").value = config.persona.tone || "";
  }
}

document.addEventListener("input", function (event) {
  var target = event.target;
  var row = target.closest(".variant-row");
  if (!row) { return; }
  if (target.matches("[data-weight-slider]")) {
    row.querySelector("[data-weight-number]").value = target.value;
  } else if (target.matches("[data-weight-number]")) {
    var slider = row.querySelector("[data-weight-slider]");
    var n = parseInt(target.value, 10);
    if (n > Number(slider.max)) { slider.max = 10000; }
    if (n >= 1) { slider.value = n; }
  } else if (target.matches("[data-persona-name], [data-persona-tone]")) {
    personaToConfig(row);
  } else if (target.matches("[data-config]")) {
    configToPersona(row);
  }
  experimentWeights(row.closest(".variant-rows"));
});
