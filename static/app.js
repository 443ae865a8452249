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
