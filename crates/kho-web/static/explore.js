// The dataset page's data explorer: a paged, sortable, filterable table of a table's rows, a bar
// or line chart of a count, sum or average by group (aggregated on the server over every
// matching row), downloads of exactly the rows in view, and, for tables with a province or
// commune code, a choropleth map drawn from kho's own boundary files (no tile server).
// Everything is read through the public API, so what a visitor sees is what the API gives them.
// Columns are shown by their labels, numbers and dates as Vietnamese readers write them.
(function () {
  "use strict";
  var textEl = document.getElementById("explorer-text");
  if (!textEl) return;
  var T = JSON.parse(textEl.textContent);
  var PAGE = 20;
  var NUMERIC = { integer: 1, number: 1 };
  var OPS = [["eq", "="], ["ne", "≠"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["contains", T.contains]];
  var SVGNS = "http://www.w3.org/2000/svg";
  var uid = 0;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function labelled(text, control) {
    var id = "x" + (++uid);
    control.id = id;
    return el("span", { class: "control" }, [el("label", { for: id, text: text }), control]);
  }
  function select(options, value) {
    var s = el("select");
    options.forEach(function (o) {
      var opt = el("option", { value: o[0], text: o[1] });
      if (o[0] === value) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }
  var LANG = document.documentElement.lang === "en" ? "en-GB" : "vi-VN";
  // A value as people read it: numbers grouped by thousands (codes and years not), dates as
  // dd/mm/yyyy.
  function fmt(v, field) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return field && field.plain ? String(v) : v.toLocaleString(LANG, { maximumFractionDigits: 6 });
    var s = String(v);
    var m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?/.exec(s);
    if (m && field && (field.type === "date" || field.type === "datetime")) {
      return m[3] + "/" + m[2] + "/" + m[1] + (m[4] && field.type === "datetime" ? " " + m[4] + ":" + m[5] : "");
    }
    return s;
  }
  // The message of a refused request: the Vietnamese one of its first detail on a Vietnamese page.
  function message(body, fallback) {
    var d = body && body.details && body.details[0];
    if (d && d.message_vi && LANG === "vi-VN") return d.message_vi;
    return (body && body.message) || fallback;
  }

  function Explorer(root) {
    this.root = root;
    this.url = root.getAttribute("data-rows");
    this.dataUrl = root.getAttribute("data-data");
    this.aggUrl = root.getAttribute("data-aggregate");
    this.meta = {};
    var self = this;
    JSON.parse(root.getAttribute("data-fields") || "[]").forEach(function (f) { self.meta[f.name] = f; });
    this.filters = [];
    this.sort = "";
    this.offset = 0;
    this.fields = [];
    this.status = el("p", { class: "small muted", role: "status" });
    root.appendChild(this.status);
    // Personal fields come masked; a reader who states why they need them reads them whole
    // (the server checks the purpose and records each such read in the audit log).
    this.purpose = "";
    var form = root.querySelector("form[data-purpose]");
    if (form) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var before = self.purpose;
        self.purpose = form.elements.purpose.value.trim();
        self.offset = 0;
        self.load().then(function () {
          form.querySelector("[data-unmasked]").hidden = !self.purpose;
        }, function () { self.purpose = before; });
      });
    }
    this.load();
  }

  // The filters, search and order in view, as query parameters.
  Explorer.prototype.selection = function () {
    var p = new URLSearchParams();
    this.filters.forEach(function (f) { p.append("filter", f.field + ":" + f.op + ":" + f.value); });
    if (this.q) p.set("q", this.q);
    if (this.sort) p.set("sort", this.sort);
    if (this.purpose) p.set("purpose", this.purpose);
    return p;
  };

  Explorer.prototype.label = function (name) {
    var f = this.meta[name];
    return (f && f.label) || name;
  };

  Explorer.prototype.query = function (limit, offset, fields) {
    var p = this.selection();
    if (fields) p.set("fields", fields.join(","));
    p.set("limit", String(limit));
    p.set("offset", String(offset || 0));
    return this.url + "?" + p.toString();
  };

  Explorer.prototype.fetch = function (url) {
    var self = this;
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(message(body, r.statusText));
        return body;
      });
    }).catch(function (e) {
      self.status.textContent = T.error + ": " + e.message;
      throw e;
    });
  };

  Explorer.prototype.load = function () {
    var self = this;
    return this.fetch(this.query(PAGE, this.offset)).then(function (body) {
      if (!self.table) {
        self.fields = body.fields.map(function (f) {
          var m = self.meta[f.name] || {};
          return { name: f.name, type: f.type, label: m.label || f.name, plain: !!m.plain };
        });
        self.build();
      }
      self.render(body);
    });
  };

  Explorer.prototype.build = function () {
    var self = this;
    var names = this.fields.map(function (f) { return [f.name, f.label]; });
    var numeric = this.fields.filter(function (f) { return NUMERIC[f.type] && !f.plain; }).map(function (f) { return [f.name, f.label]; });

    // Filters.
    var field = select(names), op = select(OPS, "eq"), value = el("input", { type: "text" });
    var q = el("input", { type: "search" });
    var add = el("button", { type: "submit", text: T.filter });
    var form = el("form", { class: "explore-filter" }, [
      labelled(T.search_rows, q), labelled(T.field, field), labelled(T.operator, op), labelled(T.value, value), add,
    ]);
    this.problem = el("p", { class: "error small", role: "alert", hidden: "hidden" });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var before = { q: self.q, offset: self.offset };
      self.q = q.value.trim();
      var added = null;
      if (value.value.trim() !== "") {
        added = { field: field.value, op: op.value, value: value.value.trim() };
        self.filters.push(added);
      }
      self.offset = 0;
      self.problem.hidden = true;
      // A refused filter is taken back at once, so the table, chart, map and downloads go on
      // working with the filters that do apply; the value stays in the box to be corrected.
      self.load().then(function () {
        if (added) value.value = "";
      }, function (e) {
        if (added) self.filters.pop();
        self.q = before.q;
        self.offset = before.offset;
        self.problem.textContent = T.filter_refused + (added ? " «" + self.label(added.field) + "»" : "") + ": " + e.message;
        self.problem.hidden = false;
        self.load();
      });
    });
    this.chips = el("ul", { class: "chips", "aria-label": T.active_filters });
    // On a phone the filters fold away behind one line; on a wide screen they are open.
    var fold = el("details", { class: "explore-tools" }, [el("summary", { text: T.show_filters }), form]);
    if (window.matchMedia && window.matchMedia("(min-width: 700px)").matches) fold.open = true;
    this.root.appendChild(fold);
    this.root.appendChild(this.problem);
    this.root.appendChild(this.chips);

    // Table.
    this.table = el("table", { class: "small preview" });
    var head = el("tr");
    this.fields.forEach(function (f) {
      var b = el("button", { type: "button", class: "link sort", text: f.label, "aria-label": T.sort_by + " " + f.label });
      b.addEventListener("click", function () {
        self.sort = self.sort === f.name ? "-" + f.name : f.name;
        self.offset = 0;
        self.load();
      });
      head.appendChild(el("th", { scope: "col", "data-field": f.name }, [b]));
    });
    this.table.appendChild(el("thead", {}, [head]));
    this.tbody = el("tbody");
    this.table.appendChild(this.tbody);
    this.root.appendChild(el("div", { class: "table-wrap" }, [this.table]));
    this.prev = el("button", { type: "button", class: "secondary", text: "← " + T.previous });
    this.next = el("button", { type: "button", class: "secondary", text: T.next + " →" });
    this.prev.addEventListener("click", function () { self.offset = Math.max(0, self.offset - PAGE); self.load(); });
    this.next.addEventListener("click", function () { self.offset += PAGE; self.load(); });
    this.root.appendChild(el("div", { class: "pager" }, [this.prev, this.next]));
    // Downloads of exactly what is in view: the filters, the search and the order.
    this.csv = el("a", { class: "button secondary", text: T.download_csv });
    this.xlsx = el("a", { class: "button secondary", text: T.download_xlsx });
    this.scope = el("span", { class: "small muted" });
    this.root.appendChild(el("p", { class: "explore-downloads" }, [this.xlsx, this.csv, this.scope]));

    // Chart: a measure by group, computed on the server over every matching row.
    // Group by default by the first text column that is not a code (a name, a category).
    var named = this.fields.filter(function (f) { return f.type === "string" && !/^ma(_|$)/.test(f.name); })[0];
    var group = select(names, named ? named.name : names[0][0]);
    var measures = [["count", T.measure_count]];
    if (numeric.length) measures = measures.concat([["sum", T.measure_sum], ["avg", T.measure_avg], ["min", T.measure_min], ["max", T.measure_max]]);
    var measure = select(measures, numeric.length ? "sum" : "count");
    var ofField = numeric.length ? select(numeric, numeric[0][0]) : null;
    var kind = select([["bar", T.bar], ["line", T.line]], "bar");
    var draw = el("button", { type: "submit", text: T.draw_chart });
    var controls = [labelled(T.group_by, group), labelled(T.measure, measure)];
    if (ofField) controls.push(labelled(T.of_field, ofField));
    controls.push(labelled(T.chart_kind, kind), draw);
    var chartForm = el("form", { class: "explore-chart" }, controls);
    var sync = function () { if (ofField) ofField.disabled = measure.value === "count"; };
    measure.addEventListener("change", sync);
    sync();
    this.chart = el("figure", { class: "chart" });
    chartForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      self.drawChart(group.value, measure.value, ofField ? ofField.value : null, kind.value);
    });
    this.root.appendChild(el("h5", { text: T.chart }));
    this.root.appendChild(chartForm);
    this.root.appendChild(this.chart);

    // Map.
    var geoKind = this.root.getAttribute("data-geo-kind");
    if (geoKind && numeric.length) {
      var mv = select(numeric, numeric[0][0]);
      var mapDraw = el("button", { type: "submit", text: T.draw_map });
      var controls = [labelled(T.map_value, mv)];
      var province = null;
      if (geoKind === "commune") {
        province = el("input", { type: "text", value: this.root.getAttribute("data-province"), size: "3", inputmode: "numeric" });
        controls.push(labelled(T.province_code, province));
      }
      controls.push(mapDraw);
      var mapForm = el("form", { class: "explore-map" }, controls);
      this.map = el("figure", { class: "map" });
      mapForm.addEventListener("submit", function (ev) {
        ev.preventDefault();
        self.drawMap(geoKind, self.root.getAttribute("data-geo-field"), mv.value, province ? province.value.trim() : null);
      });
      this.root.appendChild(el("h5", { text: T.map }));
      this.root.appendChild(mapForm);
      this.root.appendChild(this.map);
    }
  };

  Explorer.prototype.render = function (body) {
    var self = this;
    this.tbody.textContent = "";
    body.records.forEach(function (r) {
      var tr = el("tr");
      self.fields.forEach(function (f) {
        tr.appendChild(el("td", { class: NUMERIC[f.type] ? "num" : "", text: fmt(r[f.name], f) }));
      });
      self.tbody.appendChild(tr);
    });
    var total = body.total === undefined ? body.records.length : body.total;
    this.total = total;
    var from = total === 0 ? 0 : this.offset + 1;
    this.status.textContent = T.rows + " " + fmt(from) + "–" + fmt(this.offset + body.records.length) + " / " + fmt(total);
    var sel = this.selection().toString();
    var filtered = this.filters.length > 0 || !!this.q;
    this.csv.href = this.dataUrl + "?format=csv&bom=true" + (sel ? "&" + sel : "");
    this.xlsx.href = this.dataUrl + "?format=xlsx" + (sel ? "&" + sel : "");
    this.scope.textContent = " " + fmt(total) + " " + T.all_rows + (filtered ? " " + T.filtered : "");
    this.prev.disabled = this.offset === 0;
    this.next.disabled = this.offset + PAGE >= total;
    this.table.querySelectorAll("th").forEach(function (th) {
      var f = th.getAttribute("data-field");
      th.setAttribute("aria-sort", self.sort === f ? "ascending" : self.sort === "-" + f ? "descending" : "none");
    });
    this.chips.textContent = "";
    this.filters.forEach(function (f, i) {
      var op = OPS.filter(function (o) { return o[0] === f.op; })[0][1];
      var rm = el("button", { type: "button", class: "link", text: "×", "aria-label": T.remove_filter + " " + self.label(f.field) });
      rm.addEventListener("click", function () { self.filters.splice(i, 1); self.offset = 0; self.load(); });
      self.chips.appendChild(el("li", {}, [el("span", { text: self.label(f.field) + " " + op + " " + f.value + " " }), rm]));
    });
  };

  // A measure by group over every row matching the filters, aggregated by the server. A bar
  // chart shows the largest groups (and says how many there are); a line chart follows the
  // groups in order.
  Explorer.prototype.drawChart = function (group, func, field, kind) {
    var self = this;
    var col = func === "count" ? "count" : func + "_" + field;
    var p = this.selection();
    p.delete("sort");
    p.set("group_by", group);
    p.set("measure", func === "count" ? "count" : func + ":" + field);
    p.set("sort", kind === "bar" ? "-" + col : group);
    p.set("limit", "10000");
    var gf = this.meta[group] || { name: group, label: group };
    var vf = func === "count" || func === "sum" ? null : this.meta[field];
    this.fetch(this.aggUrl + "?" + p.toString()).then(function (body) {
      var all = body.records.filter(function (r) { return typeof r[col] === "number"; });
      var pts = kind === "bar" ? all.slice(0, 30) : all;
      self.chart.textContent = "";
      if (!pts.length) { self.chart.appendChild(el("p", { text: T.no_numbers })); return; }
      var narrow = self.root.clientWidth < 560;
      var max = Math.max.apply(null, pts.map(function (p) { return p[col]; }).concat([0]));
      var min = Math.min.apply(null, pts.map(function (p) { return p[col]; }).concat([0]));
      // The left margin fits the longest axis label.
      var widest = Math.max(fmt(Math.round(max * 100) / 100, vf).length, fmt(Math.round(min * 100) / 100, vf).length);
      var W = narrow ? 380 : 760, H = narrow ? 300 : 320, L = 12 + widest * 6.5, B = kind === "bar" ? (narrow ? 96 : 110) : 40, top = 10;
      var span = max - min || 1;
      var sy = function (v) { return top + (H - top - B) * (1 - (v - min) / span); };
      var name = (func === "count" ? T.measure_count : T["measure_" + func] + " " + self.label(field)) + " / " + gf.label;
      var s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "chart-svg" });
      var title = svg("title", {});
      title.textContent = (kind === "bar" ? T.bar : T.line) + ": " + name;
      s.appendChild(title);
      [min, (min + max) / 2, max].forEach(function (v) {
        s.appendChild(svg("line", { x1: L, x2: W, y1: sy(v), y2: sy(v), stroke: "#d9dee5" }));
        var t = svg("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", "font-size": "11" });
        t.textContent = fmt(Math.round(v * 100) / 100, vf);
        s.appendChild(t);
      });
      var step = (W - L) / pts.length;
      var key = function (p) { var v = fmt(p[group], gf); return v === "" ? T.empty : v; };
      if (kind === "bar") {
        // Labels are thinned out when bars are narrower than a line of text.
        var every = Math.max(1, Math.ceil(12 / step));
        pts.forEach(function (p, i) {
          var r = svg("rect", { x: L + i * step + 1, y: Math.min(sy(p[col]), sy(0)), width: Math.max(1, step - 2), height: Math.abs(sy(0) - sy(p[col])), fill: "#0b5cad", class: "bar" });
          var tip = svg("title", {});
          tip.textContent = key(p) + ": " + fmt(p[col], vf);
          r.appendChild(tip);
          s.appendChild(r);
          if (i % every) return;
          var t = svg("text", { x: L + i * step + step / 2, y: H - B + 12, "font-size": "10", transform: "rotate(45 " + (L + i * step + step / 2) + " " + (H - B + 12) + ")" });
          t.textContent = key(p).slice(0, 18);
          s.appendChild(t);
        });
      } else {
        var d = pts.map(function (p, i) { return (i ? "L" : "M") + (L + i * step + step / 2).toFixed(1) + " " + sy(p[col]).toFixed(1); }).join(" ");
        s.appendChild(svg("path", { d: d, fill: "none", stroke: "#0b5cad", "stroke-width": "1.5", class: "line" }));
        [0, pts.length - 1].forEach(function (i) {
          var t = svg("text", { x: L + i * step + step / 2, y: H - B + 16, "font-size": "11", "text-anchor": i ? "end" : "start" });
          t.textContent = key(pts[i]);
          s.appendChild(t);
        });
      }
      self.chart.appendChild(s);
      var scope = kind === "bar" && all.length > pts.length
        ? pts.length + " " + T.top_groups + " " + fmt(all.length) + " " + T.groups
        : fmt(pts.length) + " " + T.groups;
      var filtered = self.filters.length > 0 || !!self.q;
      self.chart.appendChild(el("figcaption", { class: "small muted", text: name + " — " + scope + ", " + T.over_rows + " " + fmt(self.total) + " " + (filtered ? T.matching_rows : T.all_rows) }));
    });
  };

  // Equirectangular projection, scaled by cos(latitude) so shapes look right at Viet Nam's latitudes.
  Explorer.prototype.drawMap = function (kind, codeField, valueField, province) {
    var self = this;
    var geoUrl = kind === "province" ? "/geo/provinces.json" : "/geo/communes/" + encodeURIComponent(province) + ".json";
    var rowsUrl = this.query(10000, 0, [codeField, valueField]);
    Promise.all([
      fetch(geoUrl).then(function (r) { if (!r.ok) throw new Error(T.no_boundaries); return r.json(); }),
      this.fetch(rowsUrl),
    ]).then(function (res) {
      var geo = res[0], rows = res[1].records;
      var values = {};
      rows.forEach(function (r) { if (typeof r[valueField] === "number") values[String(r[codeField])] = r[valueField]; });
      var nums = Object.keys(values).map(function (k) { return values[k]; }).sort(function (a, b) { return a - b; });
      var colors = ["#deebf7", "#9ecae1", "#6baed6", "#3182bd", "#08519c"];
      var breaks = [1, 2, 3, 4].map(function (i) { return nums[Math.floor(nums.length * i / 5)]; });
      var color = function (v) {
        if (v === undefined) return "#eeeeee";
        var c = 0;
        breaks.forEach(function (b) { if (v >= b) c++; });
        return colors[Math.min(c, 4)];
      };
      var minX = 180, maxX = -180, minY = 90, maxY = -90;
      var walk = function (coords, f) { if (typeof coords[0] === "number") f(coords); else coords.forEach(function (c) { walk(c, f); }); };
      geo.features.forEach(function (ft) {
        walk(ft.geometry.coordinates, function (p) {
          minX = Math.min(minX, p[0]); maxX = Math.max(maxX, p[0]); minY = Math.min(minY, p[1]); maxY = Math.max(maxY, p[1]);
        });
      });
      var k = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
      var W = 600, scale = W / ((maxX - minX) * k || 1), H = Math.min(900, (maxY - minY) * scale + 2);
      if ((maxY - minY) * scale > 900) { scale = 900 / (maxY - minY); W = (maxX - minX) * k * scale + 2; }
      var px = function (p) { return ((p[0] - minX) * k * scale).toFixed(1) + "," + ((maxY - p[1]) * scale).toFixed(1); };
      var s = svg("svg", { viewBox: "0 0 " + Math.ceil(W) + " " + Math.ceil(H), role: "img", class: "map-svg" });
      var title = svg("title", {});
      title.textContent = T.map + ": " + self.label(valueField);
      s.appendChild(title);
      var matched = 0;
      geo.features.forEach(function (ft) {
        var code = ft.properties.code, v = values[code];
        if (v !== undefined) matched++;
        var polys = ft.geometry.type === "Polygon" ? [ft.geometry.coordinates] : ft.geometry.coordinates;
        var d = polys.map(function (poly) {
          return poly.map(function (ring) { return "M" + ring.map(px).join("L") + "Z"; }).join("");
        }).join("");
        var path = svg("path", { d: d, fill: color(v), stroke: "#ffffff", "stroke-width": "0.5", "data-code": code, class: "area" });
        var tip = svg("title", {});
        tip.textContent = ft.properties.fullName + ": " + (v === undefined ? T.no_value : fmt(v, self.meta[valueField]));
        path.appendChild(tip);
        s.appendChild(path);
      });
      self.map.textContent = "";
      self.map.appendChild(s);
      var legend = el("ul", { class: "legend small" });
      var edges = [nums[0]].concat(breaks).concat([nums[nums.length - 1]]);
      colors.forEach(function (c, i) {
        var sw = el("span", { class: "swatch" });
        sw.style.background = c;
        legend.appendChild(el("li", {}, [sw, el("span", { text: " " + fmt(edges[i]) + " – " + fmt(edges[i + 1]) })]));
      });
      self.map.appendChild(legend);
      self.map.appendChild(el("figcaption", { class: "small muted", text: self.label(valueField) + " — " + matched + "/" + geo.features.length + " " + T.areas_with_data }));
    }).catch(function (e) {
      self.map.textContent = "";
      self.map.appendChild(el("p", { text: e.message }));
    });
  };

  document.querySelectorAll(".explorer[data-rows]").forEach(function (root) { new Explorer(root); });
})();
