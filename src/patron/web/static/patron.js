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
// "Go back" on error pages: a listener rather than a javascript: link, which the Content
// Security Policy (script-src 'self') refuses to run.
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a[data-back]");
  if (link && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});
// The other inline handlers the pages used to carry, for the same reason.
document.addEventListener("click", function (event) {
  var target = event.target.closest ? event.target : null;
  if (!target) return;
  var lang = target.closest("a[data-lang]");
  if (lang) document.cookie = "patron_lang=" + lang.dataset.lang + ";path=/;SameSite=Lax";
  if (target.closest("[data-print]")) window.print();
});
document.addEventListener("change", function (event) {
  if (event.target.matches && event.target.matches("select[data-autosubmit]")) {
    event.target.form.submit();
  }
});
// Lists with a selection: a "select all" box ticks every row's box of the same name, and a
// counter says how many are ticked.
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!box.matches) return;
  if (box.matches("input[data-select-all]")) {
    document.querySelectorAll('input[type=checkbox][name="' + box.dataset.selectAll + '"]')
      .forEach(function (row) { row.checked = box.checked; });
  }
  if (box.matches("input[type=checkbox]")) {
    document.querySelectorAll("[data-selected-count]").forEach(function (out) {
      var name = out.dataset.selectedCount;
      out.textContent = document.querySelectorAll(
        'input[type=checkbox][name="' + name + '"]:checked').length;
    });
  }
});
// Copy buttons: copy the text of the element named by data-copy, then say so on the button.
// The async clipboard refuses when the window is not focused (or the page is not a secure
// context); then the text is selected and copied the old way, and if that fails too it stays
// selected and the button asks the person to press Ctrl+C.
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.dataset.copy);
  if (!source) return;
  var say = function (text) { if (text) button.textContent = text; };
  var byHand = function () {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    say(done ? button.dataset.copied : button.dataset.copyByHand);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent.trim()).then(
      function () { say(button.dataset.copied); }, byHand);
  } else {
    byHand();
  }
});
// The main menu below 1,280 px wide: a button opens and closes it.
document.addEventListener("click", function (event) {
  var toggle = event.target.closest && event.target.closest("button[data-menu-toggle]");
  if (!toggle) return;
  var menu = document.getElementById(toggle.getAttribute("aria-controls"));
  var open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  if (menu) menu.classList.toggle("open", open);
});
