// Shared by the console and the portal: send the CSRF token with every htmx request, and let
// htmx swap form responses that carry field errors (422) or a refusal (401/403/409).
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
});
document.addEventListener("DOMContentLoaded", function () {
  if (!window.htmx) return;
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "(401|403|404|409|422|429)", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];
});
