// Throughline cabinet: progressive enhancement only. Every page works
// without this script; with it, tables sort in place, selects apply on
// change, charts show values on hover, and secrets copy with a click.
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  function ready(fn) {
    if (document.readyState !== 'loading') fn(); else document.addEventListener('DOMContentLoaded', fn);
  }

  // Selects and checkboxes marked data-autosubmit submit their form.
  function autosubmit() {
    document.querySelectorAll('[data-autosubmit]').forEach(function (el) {
      el.addEventListener('change', function () {
        if (el.hasAttribute('data-custom-toggle') && el.value === 'custom') { toggleCustom(el); return; }
        if (el.form) el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
      });
    });
    // The period picker shows its dates only for a custom period.
    document.querySelectorAll('[data-custom-toggle]').forEach(toggleCustom);
  }
  function toggleCustom(sel) {
    var range = sel.form && sel.form.querySelector('.custom-range');
    if (range) range.hidden = sel.value !== 'custom';
  }

  // Buttons marked data-confirm ask first.
  function confirms() {
    document.addEventListener('click', function (e) {
      var b = e.target.closest('[data-confirm]');
      if (b && !window.confirm(b.getAttribute('data-confirm'))) e.preventDefault();
    });
  }

  // Tables marked data-sortable sort by a header's column on click (the
  // rows of this page; server-paged lists sort through their URL instead).
  function sortable() {
    document.querySelectorAll('table[data-sortable]').forEach(function (table) {
      var heads = table.tHead ? table.tHead.rows[table.tHead.rows.length - 1].cells : [];
      Array.prototype.forEach.call(heads, function (th, col) {
        th.setAttribute('data-sort', '');
        th.tabIndex = 0;
        var run = function () { sortBy(table, th, col); };
        th.addEventListener('click', run);
        th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); run(); } });
      });
    });
  }
  function cellValue(td) {
    var v = td.getAttribute('data-value');
    if (v !== null) { var n = parseFloat(v); return isNaN(n) ? v : n; }
    return td.textContent.trim().toLowerCase();
  }
  function sortBy(table, th, col) {
    var body = table.tBodies[0];
    if (!body) return;
    var desc = th.getAttribute('aria-sort') !== 'descending';
    Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
    var rows = Array.prototype.filter.call(body.rows, function (r) { return !r.classList.contains('total'); });
    var totals = Array.prototype.filter.call(body.rows, function (r) { return r.classList.contains('total'); });
    rows.sort(function (a, b) {
      var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
      if (x === y) return 0;
      var less = (typeof x === 'number' && typeof y === 'number') ? x < y : String(x) < String(y);
      return (less ? -1 : 1) * (desc ? -1 : 1);
    });
    rows.concat(totals).forEach(function (r) { body.appendChild(r); });
  }

  // A filter box (input[data-filter="table-id"]) hides the rows that do
  // not contain its text.
  function filters() {
    document.querySelectorAll('input[data-filter]').forEach(function (input) {
      var table = document.getElementById(input.getAttribute('data-filter'));
      if (!table) return;
      input.hidden = false;
      input.addEventListener('input', function () {
        var q = input.value.trim().toLowerCase();
        Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
          if (r.classList.contains('total')) return;
          r.hidden = q !== '' && r.textContent.toLowerCase().indexOf(q) < 0;
        });
      });
    });
  }

  // Chart points and bars carry their values in data-tip: shown beside the
  // pointer (the SVG's own <title> already shows them without script).
  function charts() {
    var tip = null;
    document.addEventListener('mouseover', function (e) {
      var g = e.target.closest && e.target.closest('[data-tip]');
      if (!g) { if (tip) tip.hidden = true; return; }
      if (!tip) { tip = document.createElement('div'); tip.className = 'chart-tip'; document.body.appendChild(tip); }
      tip.textContent = g.getAttribute('data-tip');
      tip.hidden = false;
    });
    document.addEventListener('mousemove', function (e) {
      if (tip && !tip.hidden) { tip.style.left = (e.pageX + 12) + 'px'; tip.style.top = (e.pageY + 12) + 'px'; }
    });
  }

  // Secrets and snippets (code.copy) copy themselves on click.
  function copies() {
    document.querySelectorAll('code.copy').forEach(function (code) {
      code.title = code.title || 'Click to copy';
      code.style.cursor = 'copy';
      code.addEventListener('click', function () {
        if (navigator.clipboard) navigator.clipboard.writeText(code.textContent);
        var r = document.createRange(); r.selectNodeContents(code);
        var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
      });
    });
  }

  ready(function () { autosubmit(); confirms(); sortable(); filters(); charts(); copies(); });
})();
