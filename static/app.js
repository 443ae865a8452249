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

// Results charts: each <canvas data-chart="series"> is drawn from the JSON next to it (Chart.js, vendored).
var CHART_COLOURS = ["#6b7280", "#4f46e5", "#059669", "#d97706", "#db2777", "#0891b2", "#7c3aed", "#65a30d", "#dc2626", "#0f766e"];
function drawResultCharts(root) {
  if (typeof Chart === "undefined") { return; }
  var holder = root.querySelector ? root.querySelector("script.results-daily") : null;
  if (!holder) { return; }
  var daily = JSON.parse(holder.textContent);
  root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var series = canvas.getAttribute("data-chart");
    if (canvas._chart) { canvas._chart.destroy(); }
    canvas._chart = new Chart(canvas, {
      type: "line",
      data: {
        labels: daily.days,
        datasets: daily.variants.map(function (v, i) {
          return { label: v.name, data: v[series], borderColor: CHART_COLOURS[i % CHART_COLOURS.length],
                   backgroundColor: CHART_COLOURS[i % CHART_COLOURS.length], spanGaps: true, tension: 0.2, pointRadius: 2 };
        })
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 plugins: { legend: { position: "bottom" } }, scales: { y: { beginAtZero: true } } }
    });
    canvas.setAttribute("data-drawn", "true");
  });
}
document.addEventListener("htmx:afterSwap", function (event) { drawResultCharts(event.detail.target); });
document.addEventListener("DOMContentLoaded", function () { drawResultCharts(document); });
