// A chart drawn at once as plain SVG markup from Plotly-style traces, so a view is ready as soon
// as its data is in: Plotly.js (4.8 MB) takes over a chart only when someone points at it.
// Understood: scatter traces (lines, markers: circle, triangle-up, x; dash "dot"; fill
// "tonexty" between a trace and the one before it, i.e. a band) on a date or number x axis,
// and bar traces (vertical, or horizontal with names on y). The element keeps the traces in
// .data, as Plotly does, and each trace's <g> says its name and how many points it drew.
"use strict";

window.rfSketch = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const AXIS = "#9aa5b1";
  const GRID = "#e4e7eb";

  function node(name, attrs, text) {
    const el = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function asNumber(v) { return typeof v === "number" ? v : Date.parse(v); }

  function extent(values, fromZero) {
    const finite = values.filter((v) => v !== null && Number.isFinite(v));
    let lo = Math.min(...finite, fromZero ? 0 : Infinity);
    let hi = Math.max(...finite, fromZero ? 0 : -Infinity);
    if (!finite.length) { lo = 0; hi = 1; }
    if (hi === lo) hi = lo + 1;
    return [lo, hi];
  }

  function ticks(lo, hi, n) { return Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n); }

  function label(v, isDate) {
    if (isDate) return new Date(v).toISOString().slice(5, 10);
    return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(2);
  }

  function frame(el, layout) {
    const m = Object.assign({ t: 20, r: 10, b: 40, l: 60 }, layout.margin || {});
    const width = el.clientWidth || 800;
    const height = layout.height || el.clientHeight || 420;
    const svg = node("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      class: "sketch", "font-size": 11, "font-family": "system-ui, sans-serif" });
    if (layout.title) svg.append(node("text", { x: m.l, y: 16, "font-size": 14 }, layout.title.text));
    return { svg, m, w: width - m.l - m.r, h: height - m.t - m.b - 18 };  // 18: the legend row
  }

  function axes(f, sx, sy, xr, yr, xDates, xCats) {
    const g = node("g", { class: "axes" });
    for (const v of ticks(yr[0], yr[1], 5)) {
      const y = sy(v);
      g.append(node("line", { x1: f.m.l, x2: f.m.l + f.w, y1: y, y2: y, stroke: GRID }));
      g.append(node("text", { x: f.m.l - 6, y: y + 4, "text-anchor": "end" }, label(v, false)));
    }
    const xs = xCats || ticks(xr[0], xr[1], 6);
    xs.forEach((v, i) => {  // the last label ends at the plot's edge, never past it
      const anchor = i === xs.length - 1 ? "end" : "middle";
      g.append(node("text", { x: sx(v), y: f.m.t + f.h + 16, "text-anchor": anchor }, label(v, xDates)));
    });
    g.append(node("line", { x1: f.m.l, x2: f.m.l + f.w, y1: sy(yr[0]), y2: sy(yr[0]), stroke: AXIS }));
    return g;
  }

  function marker(symbol, x, y, size, color) {
    const r = size / 2;
    if (symbol === "triangle-up") {
      return node("polygon", { points: `${x},${y - r} ${x - r},${y + r} ${x + r},${y + r}`, fill: color });
    }
    if (symbol === "x") {
      return node("path", { d: `M${x - r},${y - r}L${x + r},${y + r}M${x - r},${y + r}L${x + r},${y - r}`,
        stroke: color, "stroke-width": 2 });
    }
    return node("circle", { cx: x, cy: y, r, fill: color });
  }

  function scatter(t, prev, sx, sy) {
    const g = node("g", { "data-trace": t.name || "", "data-points": t.x.length });
    const pts = t.x.map((x, i) => [x, t.y[i]]).filter((p) => p[1] !== null && p[1] !== undefined);
    const xy = pts.map(([x, y]) => `${sx(asNumber(x)).toFixed(1)},${sy(y).toFixed(1)}`);
    if (t.fill === "tonexty" && prev) {
      const back = prev.x.map((x, i) => `${sx(asNumber(x)).toFixed(1)},${sy(prev.y[i]).toFixed(1)}`);
      g.append(node("polygon", { points: xy.concat(back.reverse()).join(" "), fill: t.fillcolor || "#ccc" }));
    }
    const mode = t.mode || "lines";
    const line = t.line || {};
    const color = line.color || (t.marker || {}).color || "#444";
    if (mode.includes("lines") && line.width !== 0) {
      g.append(node("polyline", { points: xy.join(" "), fill: "none", stroke: color,
        "stroke-width": line.width || 2, "stroke-dasharray": line.dash === "dot" ? "2,3" : "none" }));
    }
    if (mode.includes("markers")) {
      const mk = t.marker || {};
      for (const [x, y] of pts) g.append(marker(mk.symbol, sx(asNumber(x)), sy(y), mk.size || 6, mk.color || color));
    }
    return g;
  }

  function legend(f, traces) {
    const g = node("g", { class: "legend" });
    let x = f.m.l;
    const y = f.m.t + f.h + f.m.b + 10;
    for (const t of traces.filter((t) => t.showlegend !== false && t.name && t.type !== "bar")) {
      const color = t.fillcolor || (t.line || {}).color || (t.marker || {}).color || "#444";
      g.append(node("rect", { x, y: y - 8, width: 10, height: 10, fill: color }));
      g.append(node("text", { x: x + 14, y: y + 1 }, t.name));
      x += 28 + 7.5 * t.name.length;
    }
    return g;
  }

  function lines(el, traces, layout) {
    const f = frame(el, layout);
    const xDates = traces.some((t) => t.x.length && typeof t.x[0] === "string");
    const xr = extent(traces.flatMap((t) => t.x.map(asNumber)), false);
    const yr = extent(traces.flatMap((t) => t.y), true);
    const sx = (v) => f.m.l + ((v - xr[0]) / (xr[1] - xr[0])) * f.w;
    const sy = (v) => f.m.t + f.h - ((v - yr[0]) / (yr[1] - yr[0])) * f.h;
    f.svg.append(axes(f, sx, sy, xr, yr, xDates, null));
    traces.forEach((t, i) => f.svg.append(scatter(t, traces[i - 1], sx, sy)));
    f.svg.append(legend(f, traces));
    return f.svg;
  }

  function bars(el, trace, layout) {
    const f = frame(el, layout);
    const across = trace.orientation === "h";
    const names = across ? trace.y : trace.x;
    const values = across ? trace.x : trace.y;
    const vr = extent(values, true);
    const band = (across ? f.h : f.w) / Math.max(names.length, 1);
    const at = (v) => (across ? f.m.l + ((v - vr[0]) / (vr[1] - vr[0])) * f.w
      : f.m.t + f.h - ((v - vr[0]) / (vr[1] - vr[0])) * f.h);
    const g = node("g", { "data-trace": trace.name || "", "data-points": values.length });
    const colors = (trace.marker || {}).color;
    values.forEach((v, i) => {
      const a = Math.min(at(0), at(v));
      const size = Math.abs(at(v) - at(0));
      const fill = Array.isArray(colors) ? colors[i] : colors || "#1565c0";
      const c = (across ? f.m.t + f.h - (i + 1) * band : f.m.l + i * band) + band * 0.15;
      g.append(across ? node("rect", { x: a, y: c, width: size, height: band * 0.7, fill })
        : node("rect", { x: c, y: a, width: band * 0.7, height: size, fill }));
      const text = String(names[i]);
      g.append(across ? node("text", { x: f.m.l - 6, y: c + band * 0.45, "text-anchor": "end" }, text)
        : node("text", { x: c + band * 0.35, y: f.m.t + f.h + 16, "text-anchor": "middle" }, text));
    });
    f.svg.append(node("line", { x1: at(0), x2: at(0), y1: f.m.t, y2: f.m.t + f.h, stroke: AXIS }));
    f.svg.append(g);
    return f.svg;
  }

  // Draw ``traces`` into ``el`` (replacing what it showed); synchronous, no library.
  function draw(el, traces, layout) {
    const svg = traces.length === 1 && traces[0].type === "bar" ? bars(el, traces[0], layout || {})
      : lines(el, traces, layout || {});
    el.replaceChildren(svg);
    el.data = traces;
    el.dataset.engine = "svg";
  }

  return { draw };
})();
