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
  // A 429 (too many logins) or a 503 (database unavailable) says in its answer how long to wait: show that.
  var said = (status === 429 || status === 503) ? new DOMParser()
    .parseFromString(event.detail.xhr.responseText || "", "text/html").querySelector("[data-error-message]") : null;
  div.textContent = said ? said.textContent.trim().replace(/\s+/g, " ") :
    status === 403 ? "You are not allowed to do this." :
    status === 404 ? "Not found: it may have been deleted." :
    "Something went wrong (" + status + "). Reload the page and try again.";
  box.replaceChildren(div);
});

// Results charts: each <canvas data-chart="series"> is drawn from the JSON next to it (Chart.js, vendored).
// The day axis of every chart: its labels level, the ones that do not fit skipped, today's partial day on two lines
// ("2026-12-02" over "(today, so far)"), so that no label is cut at a phone's width (a rotated long label ran off
// the canvas); the tooltip keeps the whole label.
var PARTIAL_SUFFIX = " (today, so far)";
function dayAxis(labels, few) {
  return { offset: few, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12, callback: function (_, index) {
    var label = labels[index];
    return label.slice(-PARTIAL_SUFFIX.length) === PARTIAL_SUFFIX ? [label.slice(0, -PARTIAL_SUFFIX.length),
                                                                     PARTIAL_SUFFIX.trim()] : label;
  } } };
}
var CHART_COLOURS = ["#6b7280", "#4f46e5", "#059669", "#d97706", "#db2777", "#0891b2", "#7c3aed", "#65a30d", "#dc2626", "#0f766e"];
function drawResultCharts(root) {
  if (typeof Chart === "undefined") { return; }
  var holder = root.querySelector ? root.querySelector("script.results-daily") : null;
  if (!holder) { return; }
  var daily = JSON.parse(holder.textContent);
  // A few days are a few points: draw them as markers, off the axes (one day would be a dot on the y axis).
  var few = daily.days.length <= 3;
  // Today is still filling (daily.partial_day): its label says so, its point is hollow and the line into it dashed.
  var last = daily.days.length - 1;
  var partial = daily.partial_day && daily.days[last] === daily.partial_day;
  var labels = daily.days.map(function (day, i) { return partial && i === last ? day + PARTIAL_SUFFIX : day; });
  root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var series = canvas.getAttribute("data-chart");
    if (series === "cumulative_lift") { drawLiftChart(canvas, daily, labels, few); return; }
    var percent = canvas.getAttribute("data-format") === "percent";  // a proportion, in percent as in the tables
    if (canvas._chart) { canvas._chart.destroy(); }
    canvas._chart = new Chart(canvas, {
      type: "line",
      data: {
        labels: labels,
        datasets: daily.variants.map(function (v, i) {
          var colour = CHART_COLOURS[i % CHART_COLOURS.length];
          return { label: v.name, data: v[series], borderColor: colour, tension: 0.2,
                   backgroundColor: daily.days.map(function (_, k) { return partial && k === last ? "#fff" : colour; }),
                   segment: partial ? { borderDash: function (ctx) { return ctx.p1DataIndex === last ? [6, 4] : undefined; } }
                                    : undefined,
                   cubicInterpolationMode: "monotone",  // smooth, but never above or below the points it joins
                   // A day without conversations has no metric value: the line stops there rather than draw one.
                   spanGaps: false,
                   pointRadius: few ? 5 : 2, pointHoverRadius: few ? 7 : 4 };
        })
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 plugins: { legend: { position: "bottom" }, tooltip: percent ? { callbacks: { label: function (item) {
                   return item.dataset.label + ": " + (100 * item.parsed.y).toFixed(1) + "%";
                 } } } : {} },
                 scales: { x: dayAxis(labels, few), y: { beginAtZero: true, ticks: percent ? { callback: function (value) {
                   return +(100 * value).toFixed(1) + "%";
                 } } : (series === "cumulative_visitors" ? { precision: 0 } : {}) } } }
    });
    canvas.setAttribute("data-drawn", "true");
  });
}
// The primary metric's cumulative lift with its interval, per treatment arm: a line for the lift and a band from the
// interval's low to its high (Chart.js fills the low dataset up to the high one), around a zero line.
function percentTick(value) { return (value > 0 ? "+" : "") + +(100 * value).toFixed(1) + "%"; }
function drawLiftChart(canvas, daily, labels, few) {
  var lift = daily.cumulative_lift;
  if (!lift) { return; }
  var datasets = [];
  lift.variants.forEach(function (v, i) {
    var colour = CHART_COLOURS[(i + 1) % CHART_COLOURS.length];
    datasets.push({ label: v.name + " interval (high)", data: v.ci_high, borderWidth: 0, pointRadius: 0,
                    borderColor: "transparent", backgroundColor: colour + "33", fill: false, spanGaps: false,
                    interval: true });
    datasets.push({ label: v.name + " interval (low)", data: v.ci_low, borderWidth: 0, pointRadius: 0,
                    borderColor: "transparent", backgroundColor: colour + "33", fill: "-1", spanGaps: false,
                    interval: true });
    datasets.push({ label: v.name, data: v.lift, borderColor: colour, backgroundColor: colour, tension: 0.2,
                    spanGaps: false, pointRadius: few ? 5 : 2, pointHoverRadius: few ? 7 : 4 });
  });
  if (canvas._chart) { canvas._chart.destroy(); }
  canvas._chart = new Chart(canvas, {
    type: "line",
    data: { labels: labels, datasets: datasets },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
               plugins: { legend: { position: "bottom", labels: { filter: function (item, data) {
                            return !data.datasets[item.datasetIndex].interval; } } },
                          tooltip: { callbacks: { label: function (item) {
                            return item.dataset.label + ": " + percentTick(item.parsed.y); } } } },
               scales: { x: dayAxis(labels, few),
                         y: { ticks: { callback: percentTick },
                              grid: { color: function (ctx) { return ctx.tick.value === 0 ? "#6b7280" : "#e5e7eb"; } } } } }
  });
  canvas.setAttribute("data-drawn", "true");
}
document.addEventListener("htmx:afterSwap", function (event) { drawResultCharts(event.detail.target); });
document.addEventListener("DOMContentLoaded", function () { drawResultCharts(document); });

// Experiment form: each weight's slider and number stay in step, and every share updates live.
// A share reads as the server renders it (_macros.html: share): a positive one never 0.0%, a partial one never 100.0%.
function shareLabel(percent) {
  var label = percent.toFixed(1);
  if (label === "0.0" && percent > 0) { return "<0.1%"; }
  if (label === "100.0" && percent < 100) { return ">99.9%"; }
  return label + "%";
}

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
      total && weights[i] ? shareLabel(100 * weights[i] / total) : "—";
  });
  return weights;
}

// All the form's weight sliders share one range, the first scale that fits the largest weight (as the server renders
// it: views/experiments.py, SLIDER_SCALES), so that thumbs compare; the number input stays the source of truth.
var SLIDER_SCALES = [100, 1000, 10000];
function fitSliders(rows, weights) {
  var largest = Math.max.apply(null, weights.concat([0]));
  var scale = SLIDER_SCALES.find(function (s) { return largest <= s; });
  rows.querySelectorAll(".variant-row").forEach(function (row, i) {
    var slider = row.querySelector("[data-weight-slider]");
    slider.max = scale;
    if (weights[i]) { slider.value = weights[i]; }  // a range that shrank had clamped it
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
  // A blank field keeps the agent's tone (no "tone" key), unless the JSON says "" on purpose: no tone at all.
  if (tone.trim()) { persona.tone = tone; } else if (persona.tone !== "") { delete persona.tone; }
  config.persona = persona;
  area.value = JSON.stringify(config);
}

function configToPersona(row) {
  var name = row.querySelector("[data-persona-name]");
  if (!name || name.closest("[hidden]")) { return; }  // another kind: keep what was typed for a switch back
  var config;
  try { config = JSON.parse(row.querySelector("[data-config]").value); } catch (e) { return; }
  if (config && config.persona && typeof config.persona === "object") {
    name.value = config.persona.name || "";
    row.querySelector("[data-persona-tone]").value = config.persona.tone || "";
  }
}

// CTA and trigger rows: each field (data-config-field="cta.label") is one key of the config JSON's block. A blank
// field removes its key, and an emptied block goes; a whole number is stored as a number (data-number).
function configObject(area) {
  var config;
  try { config = area.value.trim() ? JSON.parse(area.value) : {}; } catch (e) { return null; }
  return config && typeof config === "object" && !Array.isArray(config) ? config : null;
}

function typedFieldToConfig(row, input) {
  var area = row.querySelector("[data-config]");
  var config = configObject(area);
  if (!config) { return; }
  var path = input.getAttribute("data-config-field").split(".");
  var block = config[path[0]] && typeof config[path[0]] === "object" && !Array.isArray(config[path[0]]) ?
    config[path[0]] : {};
  var value = input.value;
  if (!value.trim()) {
    delete block[path[1]];
  } else {
    block[path[1]] = input.hasAttribute("data-number") && /^\s*\d{1,9}\s*$/.test(value) ? parseInt(value, 10) : value;
  }
  if (Object.keys(block).length) { config[path[0]] = block; } else { delete config[path[0]]; }
  area.value = JSON.stringify(config);
}

function configToTypedFields(row) {
  var config = configObject(row.querySelector("[data-config]"));
  if (!config) { return; }
  row.querySelectorAll("[data-config-field]").forEach(function (input) {
    if (input.closest(".row-grid[hidden]")) { return; }  // another kind: keep what was typed for a switch back
    var path = input.getAttribute("data-config-field").split(".");
    var block = config[path[0]];
    var value = block && typeof block === "object" && block[path[1]] !== undefined && block[path[1]] !== null ?
      String(block[path[1]]) : "";
    if (input.tagName === "SELECT" && value && !Array.prototype.some.call(input.options, function (o) {
      return o.value === value;
    })) { return; }  // not one of the choices: the JSON keeps it and the server names it
    input.value = value;
  });
  showTriggerFields(row, false);
}

// A trigger's seconds go with a delay and its percent with scrolling (SPEC §13): a field for another `on` is hidden
// and disabled (not posted), unless it shows an error. Choosing another `on` (drop) also takes the hidden fields'
// keys out of the JSON, and puts a shown field's kept value back in, so a switch back to scrolling restores it.
function showTriggerFields(row, drop) {
  var on = row.querySelector("select[data-config-field='trigger.on']");
  if (!on) { return; }
  row.querySelectorAll("[data-trigger-only]").forEach(function (box) {
    var input = box.querySelector("[data-config-field]");
    var applies = box.getAttribute("data-trigger-only") === on.value || box.classList.contains("has-error");
    var wasHidden = box.hidden;
    box.hidden = !applies;
    input.disabled = !applies;
    if (!drop) { return; }
    if (!applies) {
      var config = configObject(row.querySelector("[data-config]"));
      var key = input.getAttribute("data-config-field").split(".");
      if (config && config[key[0]] && typeof config[key[0]] === "object" && key[1] in config[key[0]]) {
        delete config[key[0]][key[1]];
        row.querySelector("[data-config]").value = JSON.stringify(config);
      }
    } else if (wasHidden && input.value.trim()) {
      typedFieldToConfig(row, input);
    }
  });
}

document.addEventListener("change", function (event) {
  var target = event.target;
  if (target.matches && target.matches("select[data-config-field]")) {
    typedFieldToConfig(target.closest(".variant-row"), target);
    showTriggerFields(target.closest(".variant-row"), true);
  }
});

document.addEventListener("input", function (event) {
  var target = event.target;
  var row = target.closest(".variant-row");
  if (!row) { return; }
  if (target.matches("[data-weight-slider]")) {
    row.querySelector("[data-weight-number]").value = target.value;
  } else if (target.matches("[data-weight-number]")) {
    var rows = row.closest(".variant-rows");
    fitSliders(rows, experimentWeights(rows));
  } else if (target.matches("[data-persona-name], [data-persona-tone]")) {
    personaToConfig(row);
  } else if (target.matches("input[data-config-field], textarea[data-config-field]")) {
    typedFieldToConfig(row, target);
  } else if (target.matches("[data-config]")) {
    configToPersona(row);
    configToTypedFields(row);
  }
  experimentWeights(row.closest(".variant-rows"));
});

// A slider's range is refitted once it is let go, never under the pointer.
document.addEventListener("change", function (event) {
  if (!event.target.matches("[data-weight-slider]")) { return; }
  var rows = event.target.closest(".variant-rows");
  fitSliders(rows, experimentWeights(rows));
});

// Conversations and Leads filter: the variant select offers the keys of the chosen experiment only (all for "All");
// a chosen key the new experiment lacks falls back to "All". Without script the server checks the pair (400).
document.addEventListener("change", function (event) {
  var select = event.target;
  if (!select.matches("form.filters select[name=experiment]")) { return; }
  var variant = select.form.querySelector("select[name=variant]");
  variant.querySelectorAll("optgroup[data-experiment]").forEach(function (group) {
    var other = select.value !== "" && group.getAttribute("data-experiment") !== select.value;
    group.hidden = other;
    group.disabled = other;
  });
  var chosen = variant.selectedOptions[0];
  if (chosen && chosen.parentElement.disabled) {
    var same = Array.prototype.find.call(variant.options, function (option) {
      return option.value === chosen.value && !option.parentElement.disabled;
    });
    (same || variant.options[0]).selected = true;
  }
});

// On a narrow screen the agent tabs scroll in their bar (app.css): bring the current one into view, and mark the
// sides where more tabs hide (data-more="start end"), which the bar fades to show that it scrolls.
function markTabOverflow(bar) {
  var more = [];
  if (bar.scrollLeft > 1) { more.push("start"); }
  if (bar.scrollLeft + bar.clientWidth < bar.scrollWidth - 1) { more.push("end"); }
  bar.setAttribute("data-more", more.join(" "));
}
document.addEventListener("DOMContentLoaded", function () {
  var bar = document.querySelector("nav.tabs");
  if (!bar) { return; }
  var active = bar.querySelector("a.active");
  if (active && bar.scrollWidth > bar.clientWidth) {
    bar.scrollLeft = active.offsetLeft + active.offsetWidth / 2 - bar.clientWidth / 2;
  }
  markTabOverflow(bar);
  bar.addEventListener("scroll", function () { markTabOverflow(bar); }, { passive: true });
  window.addEventListener("resize", function () { markTabOverflow(bar); });
});

// A refused form comes back with its fields marked invalid (aria-invalid, the message tied by aria-describedby): the
// focus goes to the first of them, so that keyboard and screen reader users land on what to fix — an HTMX swap took
// away the focused submit button, and a full page load starts at the top.
function focusFirstInvalid() {
  var field = document.querySelector('form [aria-invalid="true"]');
  if (field) { field.focus(); }
}
document.addEventListener("htmx:afterSettle", function (event) {
  var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
  if (elt && elt.tagName === "FORM") { focusFirstInvalid(); }
});
document.addEventListener("DOMContentLoaded", focusFirstInvalid);

// A form answered with a redirect (HX-Redirect: an experiment created, saved, duplicated or deleted) is done, but the
// page stays clickable until the next one loads: a second click there posted it again (a second draft, a second copy).
// Its buttons stay disabled until then (re-enabled if the browser brings this page back from its back/forward cache).
function formOf(event) {
  var elt = event.detail.elt;
  return elt && elt.closest ? elt.closest("form") : null;
}
document.addEventListener("htmx:beforeRequest", function (event) {
  var form = formOf(event);
  if (form && form.hasAttribute("data-redirecting")) { event.preventDefault(); }
});
document.addEventListener("htmx:afterRequest", function (event) {
  var xhr = event.detail.xhr;
  var form = formOf(event);
  if (!form || !xhr || !xhr.getResponseHeader("HX-Redirect")) { return; }
  form.setAttribute("data-redirecting", "");
  form.querySelectorAll("button:not([disabled])").forEach(function (button) {
    button.disabled = true;
    button.setAttribute("data-disabled-while-leaving", "");
  });
});
window.addEventListener("pageshow", function (event) {
  if (!event.persisted) { return; }
  document.querySelectorAll("form[data-redirecting]").forEach(function (form) { form.removeAttribute("data-redirecting"); });
  document.querySelectorAll("[data-disabled-while-leaving]").forEach(function (button) {
    button.disabled = false;
    button.removeAttribute("data-disabled-while-leaving");
  });
});

// A swap that replaced the focused element (Stop, Resume, Delete…, Cancel, a variant's Remove) dropped the focus to
// <body>, so keyboard users started again from the top of the page. Unless htmx put it back (an element of the same
// id, an autofocus) or a refused form took it (above), the focus goes to the swapped-in component itself.
// Kept per request (on its XMLHttpRequest): the results section's reload can swap between another swap and its settle.
document.addEventListener("htmx:beforeSwap", function (event) {
  var target = event.detail.target;
  var active = document.activeElement;
  if (event.detail.xhr && target && target.id && active && active !== document.body && target.contains(active)) {
    event.detail.xhr.focusedSwapTarget = target.id;
  }
});
document.addEventListener("htmx:afterSettle", function (event) {
  var id = event.detail.xhr && event.detail.xhr.focusedSwapTarget;
  if (!id || (document.activeElement && document.activeElement !== document.body)) { return; }
  var component = document.getElementById(id);
  if (!component) { return; }
  if (!component.hasAttribute("tabindex")) { component.setAttribute("tabindex", "-1"); }
  component.focus();
});

// "Copy" buttons (data-copy="<id>"): the element's text to the clipboard, said in the status element the button
// names (aria-describedby). Without the Clipboard API (a page served over plain HTTP from another host is not a
// secure context) the text is selected instead, for Ctrl+C.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
  if (!button) { return; }
  var source = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById(button.getAttribute("aria-describedby") || "");
  if (!source) { return; }
  function say(text) { if (status) { status.textContent = text; } }
  function select() {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    say("Selected: press Ctrl+C (⌘C) to copy.");
  }
  if (!navigator.clipboard || !window.isSecureContext) { select(); return; }
  navigator.clipboard.writeText(source.textContent.trim()).then(function () { say("Copied."); }, select);
});

// A form with data-confirm asks first, in the page (as Stop, Delete and Promote do, never the browser's
// confirm()): the form gives way to its question in a role=alertdialog box, with the form's own button to go on and
// Cancel (or Escape) to bring the form back. Here rather than in onsubmit attributes, which the
// Content-Security-Policy refuses.
var confirmations = 0;
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute ? form.getAttribute("data-confirm") : null;
  if (!question) { return; }
  if (form.getAttribute("data-confirmed") === "true") { form.removeAttribute("data-confirmed"); return; }
  event.preventDefault();
  var open = form.nextElementSibling;
  var submit = form.querySelector("button[type=submit], button:not([type])");
  var box = document.createElement("div");
  var text = document.createElement("p");
  var go = document.createElement("button");
  var cancel = document.createElement("button");
  confirmations += 1;
  box.className = "confirm inline-confirm";
  box.setAttribute("role", "alertdialog");
  text.id = "inline-confirm-" + confirmations;
  box.setAttribute("aria-labelledby", text.id);
  text.textContent = question;
  go.type = cancel.type = "button";
  go.className = submit ? submit.className : "";
  go.textContent = submit ? submit.textContent.trim() : "Confirm";
  cancel.textContent = "Cancel";
  function close() { box.remove(); form.hidden = false; if (submit) { submit.focus(); } }
  go.addEventListener("click", function () {
    form.setAttribute("data-confirmed", "true");
    go.disabled = cancel.disabled = true;
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  });
  cancel.addEventListener("click", close);
  box.addEventListener("keydown", function (key) { if (key.key === "Escape") { close(); } });
  box.appendChild(text);
  box.appendChild(go);
  box.appendChild(document.createTextNode(" "));
  box.appendChild(cancel);
  form.insertAdjacentElement("afterend", box);
  form.hidden = true;
  go.focus();
});

// The workspace switcher (select[data-navigate]) goes to the chosen page.
document.addEventListener("change", function (event) {
  var select = event.target;
  if (select.matches && select.matches("select[data-navigate]") && select.value) { window.location = select.value; }
});

// The Connect page's API reference: Swagger UI (vendored) renders the OpenAPI document the element names. No
// validator badge (it would load an image from another site), no deep links (the page's own anchors stay).
document.addEventListener("DOMContentLoaded", function () {
  var holder = document.getElementById("api-reference");
  if (!holder || typeof SwaggerUIBundle === "undefined") { return; }
  SwaggerUIBundle({ url: holder.getAttribute("data-openapi-url"), domNode: holder, validatorUrl: null,
                    deepLinking: false, defaultModelsExpandDepth: 0, docExpansion: "list",
                    onComplete: function () { holder.setAttribute("data-rendered", "true"); } });
});

// A variant row just added (data-added, from the server) takes the focus on its name, so that keyboard and screen
// reader users land where they type next rather than on the page's top (the Add button they pressed was replaced).
document.addEventListener("htmx:afterSettle", function () {
  var row = document.querySelector(".variant-row[data-added]");
  if (!row) { return; }
  row.removeAttribute("data-added");  // once
  var name = row.querySelector("input[name$='-name']");
  if (name) { name.focus(); }
});

// Times: the server writes each moment in UTC (<time datetime="…" title="… UTC">); here it is shown in the viewer's
// own time zone, its UTC form kept on hover (the title). A date-only <time data-day> shows the local date.
var TIME_FORMAT = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric",
                                                      hour: "2-digit", minute: "2-digit" });
var DAY_FORMAT = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
function localTimes(root) {
  if (!root.querySelectorAll) { return; }
  root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (time) {
    var moment = new Date(time.getAttribute("datetime"));
    if (isNaN(moment.getTime())) { return; }
    time.textContent = (time.hasAttribute("data-day") ? DAY_FORMAT : TIME_FORMAT).format(moment);
    time.setAttribute("data-local", "");
  });
}
document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
document.addEventListener("htmx:load", function (event) { localTimes(event.detail.elt.parentElement || document); });
