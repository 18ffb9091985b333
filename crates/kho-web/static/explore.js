// The dataset page's data explorer: a paged, sortable, filterable table of a table's rows, a bar
// or line chart of one column against another, and, for tables with a province or commune code,
// a choropleth map drawn from kho's own boundary files (no tile server). Everything is read
// through the public rows API, so what a visitor sees is exactly what the API gives them.
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
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return v.toLocaleString("vi-VN");
    return String(v);
  }

  function Explorer(root) {
    this.root = root;
    this.url = root.getAttribute("data-rows");
    this.filters = [];
    this.sort = "";
    this.offset = 0;
    this.fields = [];
    this.status = el("p", { class: "small muted", role: "status" });
    root.appendChild(this.status);
    this.load();
  }

  Explorer.prototype.query = function (limit, offset, fields) {
    var p = new URLSearchParams();
    this.filters.forEach(function (f) { p.append("filter", f.field + ":" + f.op + ":" + f.value); });
    if (this.q) p.set("q", this.q);
    if (this.sort) p.set("sort", this.sort);
    if (fields) p.set("fields", fields.join(","));
    p.set("limit", String(limit));
    p.set("offset", String(offset || 0));
    return this.url + "?" + p.toString();
  };

  Explorer.prototype.fetch = function (url) {
    var self = this;
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.message || r.statusText);
        return body;
      });
    }).catch(function (e) {
      self.status.textContent = T.error + ": " + e.message;
      throw e;
    });
  };

  Explorer.prototype.load = function () {
    var self = this;
    this.fetch(this.query(PAGE, this.offset)).then(function (body) {
      if (!self.table) {
        self.fields = body.fields;
        self.build();
      }
      self.render(body);
    });
  };

  Explorer.prototype.build = function () {
    var self = this;
    var names = this.fields.map(function (f) { return [f.name, f.name]; });
    var numeric = this.fields.filter(function (f) { return NUMERIC[f.type]; }).map(function (f) { return [f.name, f.name]; });

    // Filters.
    var field = select(names), op = select(OPS, "eq"), value = el("input", { type: "text" });
    var q = el("input", { type: "search" });
    var add = el("button", { type: "submit", text: T.filter });
    var form = el("form", { class: "explore-filter" }, [
      labelled(T.search_rows, q), labelled(T.field, field), labelled(T.operator, op), labelled(T.value, value), add,
    ]);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      self.q = q.value.trim();
      if (value.value.trim() !== "") {
        self.filters.push({ field: field.value, op: op.value, value: value.value.trim() });
        value.value = "";
      }
      self.offset = 0;
      self.load();
    });
    this.chips = el("ul", { class: "chips", "aria-label": T.active_filters });
    this.root.appendChild(form);
    this.root.appendChild(this.chips);

    // Table.
    this.table = el("table", { class: "small preview" });
    var head = el("tr");
    this.fields.forEach(function (f) {
      var b = el("button", { type: "button", class: "link sort", text: f.name, "aria-label": T.sort_by + " " + f.name });
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
    var csv = el("a", { class: "button secondary", href: this.root.getAttribute("data-csv"), text: T.download_csv });
    this.root.appendChild(el("div", { class: "pager" }, [this.prev, this.next, csv]));

    // Chart.
    if (numeric.length) {
      var x = select(names, names[0][0]), y = select(numeric, numeric[0][0]);
      var kind = select([["bar", T.bar], ["line", T.line]], "bar");
      var draw = el("button", { type: "submit", text: T.draw_chart });
      var chartForm = el("form", { class: "explore-chart" }, [
        labelled(T.x_axis, x), labelled(T.y_axis, y), labelled(T.chart_kind, kind), draw,
      ]);
      this.chart = el("figure", { class: "chart" });
      chartForm.addEventListener("submit", function (ev) {
        ev.preventDefault();
        self.drawChart(x.value, y.value, kind.value);
      });
      this.root.appendChild(el("h5", { text: T.chart }));
      this.root.appendChild(chartForm);
      this.root.appendChild(this.chart);
    }

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
        tr.appendChild(el("td", { class: NUMERIC[f.type] ? "num" : "", text: fmt(r[f.name]) }));
      });
      self.tbody.appendChild(tr);
    });
    var total = body.total === undefined ? body.records.length : body.total;
    var from = total === 0 ? 0 : this.offset + 1;
    this.status.textContent = T.rows + " " + from + "–" + (this.offset + body.records.length) + " / " + total;
    this.prev.disabled = this.offset === 0;
    this.next.disabled = this.offset + PAGE >= total;
    this.table.querySelectorAll("th").forEach(function (th) {
      var f = th.getAttribute("data-field");
      th.setAttribute("aria-sort", self.sort === f ? "ascending" : self.sort === "-" + f ? "descending" : "none");
    });
    this.chips.textContent = "";
    this.filters.forEach(function (f, i) {
      var op = OPS.filter(function (o) { return o[0] === f.op; })[0][1];
      var rm = el("button", { type: "button", class: "link", text: "×", "aria-label": T.remove_filter + " " + f.field });
      rm.addEventListener("click", function () { self.filters.splice(i, 1); self.offset = 0; self.load(); });
      self.chips.appendChild(el("li", {}, [el("span", { text: f.field + " " + op + " " + f.value + " " }), rm]));
    });
  };

  // Up to 1,000 rows of the current filter, in the current order (a line chart: by x).
  Explorer.prototype.drawChart = function (x, y, kind) {
    var self = this;
    var saved = this.sort;
    if (kind === "line") this.sort = x;
    var url = this.query(1000, 0, [x, y]);
    this.sort = saved;
    this.fetch(url).then(function (body) {
      var pts = body.records.filter(function (r) { return typeof r[y] === "number"; });
      if (kind === "bar" && pts.length > 40) pts = pts.slice(0, 40);
      self.chart.textContent = "";
      if (!pts.length) { self.chart.appendChild(el("p", { text: T.no_numbers })); return; }
      var W = 760, H = 320, L = 70, B = kind === "bar" ? 110 : 40, top = 10;
      var max = Math.max.apply(null, pts.map(function (p) { return p[y]; }).concat([0]));
      var min = Math.min.apply(null, pts.map(function (p) { return p[y]; }).concat([0]));
      var span = max - min || 1;
      var sy = function (v) { return top + (H - top - B) * (1 - (v - min) / span); };
      var s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "chart-svg" });
      var title = svg("title", {});
      title.textContent = (kind === "bar" ? T.bar : T.line) + ": " + y + " / " + x;
      s.appendChild(title);
      [min, (min + max) / 2, max].forEach(function (v) {
        s.appendChild(svg("line", { x1: L, x2: W, y1: sy(v), y2: sy(v), stroke: "#d9dee5" }));
        var t = svg("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", "font-size": "11" });
        t.textContent = fmt(Math.round(v * 100) / 100);
        s.appendChild(t);
      });
      var step = (W - L) / pts.length;
      if (kind === "bar") {
        pts.forEach(function (p, i) {
          var r = svg("rect", { x: L + i * step + 1, y: Math.min(sy(p[y]), sy(0)), width: Math.max(1, step - 2), height: Math.abs(sy(0) - sy(p[y])), fill: "#0b5cad", class: "bar" });
          var tip = svg("title", {});
          tip.textContent = fmt(p[x]) + ": " + fmt(p[y]);
          r.appendChild(tip);
          s.appendChild(r);
          var t = svg("text", { x: L + i * step + step / 2, y: H - B + 12, "font-size": "10", transform: "rotate(45 " + (L + i * step + step / 2) + " " + (H - B + 12) + ")" });
          t.textContent = String(fmt(p[x])).slice(0, 18);
          s.appendChild(t);
        });
      } else {
        var d = pts.map(function (p, i) { return (i ? "L" : "M") + (L + i * step + step / 2).toFixed(1) + " " + sy(p[y]).toFixed(1); }).join(" ");
        s.appendChild(svg("path", { d: d, fill: "none", stroke: "#0b5cad", "stroke-width": "1.5", class: "line" }));
        [0, pts.length - 1].forEach(function (i) {
          var t = svg("text", { x: L + i * step + step / 2, y: H - B + 16, "font-size": "11", "text-anchor": i ? "end" : "start" });
          t.textContent = fmt(pts[i][x]);
          s.appendChild(t);
        });
      }
      self.chart.appendChild(s);
      self.chart.appendChild(el("figcaption", { class: "small muted", text: y + " / " + x + " — " + pts.length + " " + T.points }));
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
      title.textContent = T.map + ": " + valueField;
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
        tip.textContent = ft.properties.fullName + ": " + (v === undefined ? T.no_value : fmt(v));
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
      self.map.appendChild(el("figcaption", { class: "small muted", text: valueField + " — " + matched + "/" + geo.features.length + " " + T.areas_with_data }));
    }).catch(function (e) {
      self.map.textContent = "";
      self.map.appendChild(el("p", { text: e.message }));
    });
  };

  document.querySelectorAll(".explorer[data-rows]").forEach(function (root) { new Explorer(root); });
})();
