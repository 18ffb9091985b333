// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";

  // On a phone the menu folds behind one button (without this file it stays open).
  document.documentElement.classList.add("js");
  var toggle = document.querySelector(".menu-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var top = toggle.closest(".top");
      var open = !top.classList.contains("open");
      top.classList.toggle("open", open);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // "Thêm trường": clone the last row of a schema table, emptied.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-add-row]");
    if (!btn) return;
    var table = document.getElementById(btn.getAttribute("data-add-row"));
    if (!table) return;
    var rows = table.querySelectorAll("tbody tr");
    var last = rows[rows.length - 1];
    var row = last.cloneNode(true);
    row.querySelectorAll("input").forEach(function (i) { i.value = ""; });
    row.querySelectorAll("select").forEach(function (s) { s.selectedIndex = 0; });
    last.parentNode.appendChild(row);
    var first = row.querySelector("input");
    if (first) first.focus();
  });

  // Suggest a slug from a Vietnamese title while the slug field is untouched.
  function slugify(s) {
    return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "d")
      .toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 100);
  }
  document.querySelectorAll("[data-slug-source]").forEach(function (src) {
    var target = document.getElementById(src.getAttribute("data-slug-source"));
    if (!target) return;
    var touched = target.value !== "";
    target.addEventListener("input", function () { touched = target.value !== ""; });
    src.addEventListener("input", function () { if (!touched) target.value = slugify(src.value); });
  });
})();

// Ask before destructive forms (delete a dataset or a table).
document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) ev.preventDefault();
});

// A sort choice applies at once (the search button does the same without scripts).
document.addEventListener("change", function (ev) {
  if (ev.target.classList && ev.target.classList.contains("auto-submit") && ev.target.form) ev.target.form.submit();
});
