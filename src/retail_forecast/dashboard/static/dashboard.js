// The dashboard's one script: it reads the page's data- attributes and the API's answers
// (POST /api/v1/predict, GET /api/v1/monitoring/*), and draws them.
// Requests carry X-Rf-Dashboard so that, behind a login, the session cookie stands for the key.
// A chart is drawn at once as SVG (sketch.js) from the same traces; Plotly.js (4.8 MB, whose
// parse held the first chart back by ~1 s on two cores) is fetched only when someone points at
// a chart, and then takes it over (hover, zoom). data-charts="plotly" on the body draws with
// Plotly.js only, as the page did before (bench/dashboard.py compares both in one run).
"use strict";

(function () {
  const page = document.body;
  const levels = (page.dataset.quantiles || "").split(",").filter(Boolean).map(Number);
  const HEADERS = { "X-Rf-Dashboard": "1" };
  const COLORS = { history: "#4c5b6b", forecast: "#1565c0", scenario: "#c62828", promo: "#ef6c00" };

  function $(id) { return document.getElementById(id); }

  let plotly = null;
  function plotlyReady() {  // resolves with window.Plotly; adds the bundle's script at most once
    if (plotly) return plotly;
    plotly = window.Plotly ? Promise.resolve(window.Plotly) : new Promise((resolve, reject) => {
      const missing = () => reject(new Error("Interactive charts need Plotly.js: pip install 'retail-forecast[dashboard]'"));
      let tag = $("plotly-js");  // a page may carry it already (bench/dashboard.py's "plotly-first")
      if (!tag && !page.dataset.plotly) { missing(); return; }
      if (!tag) {
        tag = document.createElement("script");  // the app's own fixed URL, as the policy wants
        tag.id = "plotly-js";
        tag.src = page.dataset.plotly;
        document.head.append(tag);
      }
      tag.addEventListener("load", () => (window.Plotly ? resolve(window.Plotly) : missing()));
      tag.addEventListener("error", missing);
    });
    return plotly;
  }

  const plotlyFirst = page.dataset.charts === "plotly";
  const CONFIG = { displaylogo: false, responsive: true };
  const drawn = new Map();  // chart element -> the traces and layout it shows

  // Draw into ``el``: SVG now, unless Plotly.js has taken this chart over (or draws them all).
  async function plot(el, traces, layout) {
    drawn.set(el, { traces, layout });
    if (plotlyFirst || el.dataset.engine === "plotly") {
      const Plotly = await plotlyReady();
      await Plotly.react(el, traces, layout, CONFIG);
      el.dataset.engine = "plotly";
      return;
    }
    window.rfSketch.draw(el, traces, layout);
    if (!el.dataset.lazy) {
      el.dataset.lazy = "1";
      el.addEventListener("pointerenter", () => takeOver(el), { once: true });
    }
  }

  function takeOver(el) {  // the chart as it is now, redrawn by Plotly.js once it has loaded
    plotlyReady().then((Plotly) => {
      const last = drawn.get(el);
      if (!last || el.dataset.engine === "plotly") return undefined;
      el.replaceChildren();
      el.dataset.engine = "plotly";
      return Plotly.react(el, last.traces, last.layout, CONFIG);
    }).catch((err) => say(err.message, true));
  }

  function clear(el) {
    drawn.delete(el);
    if (el.dataset.engine === "plotly" && window.Plotly) window.Plotly.purge(el);
    el.replaceChildren();
    el.data = [];
  }

  function say(text, isError) {
    const status = $("status");
    if (status) { status.textContent = text; status.classList.toggle("error", Boolean(isError)); }
  }

  async function call(url, body) {
    const init = { headers: { ...HEADERS }, credentials: "same-origin" };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    const answer = await response.json();
    if (!response.ok) {
      const detail = (answer.detail || []).map((d) => d.field + ": " + d.msg).join("; ");
      throw new Error((answer.message || response.statusText) + (detail ? " (" + detail + ")" : ""));
    }
    return answer;
  }

  // -- one series: its history and forecasts -------------------------------------------------

  function chosenSeries() {
    const value = $("series-search").value.trim();
    const match = /^(\d+)\s*·\s*(.+)$/.exec(value);
    const known = Array.from($("series-list").options).some((o) => o.value === value);
    return match && known ? { store_nbr: Number(match[1]), family: match[2] } : null;
  }

  async function loadSeries(series) {
    const query = new URLSearchParams({ store_nbr: series.store_nbr, family: series.family });
    return call("/dashboard/data/series?" + query.toString());
  }

  function planRows(series, days, plan) {
    return days.map((d) => ({
      date: d.date, store_nbr: series.store_nbr, family: series.family,
      onpromotion: plan[d.date] || 0,
    }));
  }

  async function forecast(series, days, plan, extra) {
    const body = { rows: planRows(series, days, plan), ...(extra || {}) };
    if (levels.length) body.quantiles = levels;
    return (await call("/api/v1/predict", body)).predictions;
  }

  function level(p, q) {
    if (!p.quantiles) return null;
    const key = Object.keys(p.quantiles).find((k) => Number(k) === q);
    return key === undefined ? null : p.quantiles[key];
  }

  function bandTraces(predictions, name, color) {
    const x = predictions.map((p) => p.date);
    const traces = [];
    const pairs = [[0.025, 0.975, "95 %", 0.15], [0.1, 0.9, "80 %", 0.3]];
    for (const [lo, hi, label, alpha] of pairs) {
      if (!levels.includes(lo) || !levels.includes(hi)) continue;
      const fill = color.replace("#", "");
      const rgba = "rgba(" + [0, 2, 4].map((i) => parseInt(fill.slice(i, i + 2), 16)).join(",") +
        "," + alpha + ")";
      traces.push({ x, y: predictions.map((p) => level(p, lo)), name: name + " " + label + " low",
        mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" });
      traces.push({ x, y: predictions.map((p) => level(p, hi)), name: name + " " + label + " interval",
        mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: rgba });
    }
    return traces;
  }

  function historyTraces(days) {
    const h = days.history;
    const pick = (flags) => h.dates.map((d, i) => (flags[i] ? i : -1)).filter((i) => i >= 0);
    const promo = pick(h.onpromotion.map((v) => v > 0));
    const shut = pick(h.closed);
    const shutAhead = days.window.filter((d) => d.closed).map((d) => d.date);
    return [
      { x: h.dates, y: h.sales, name: "history", mode: "lines+markers",
        line: { color: COLORS.history, width: 1.5 }, marker: { size: 3 } },
      { x: promo.map((i) => h.dates[i]), y: promo.map((i) => h.sales[i]), name: "promotion days",
        mode: "markers", marker: { symbol: "triangle-up", size: 8, color: COLORS.promo } },
      { x: shut.map((i) => h.dates[i]).concat(shutAhead), y: shut.map(() => 0).concat(shutAhead.map(() => 0)),
        name: "closed days", mode: "markers", marker: { symbol: "x", size: 9, color: "#000" } },
    ];
  }

  function pointTrace(predictions, name, color, dash) {
    return { x: predictions.map((p) => p.date), y: predictions.map((p) => p.sales), name,
      mode: "lines+markers", line: { color, width: 2, dash: dash || "solid" }, marker: { size: 5 } };
  }

  async function draw(traces, title) {
    const chart = $("chart");
    const layout = { title: { text: title }, margin: { t: 40, r: 10, b: 40, l: 60 },
      yaxis: { title: { text: "sales" }, rangemode: "tozero" }, legend: { orientation: "h" } };
    await plot(chart, traces, layout);
    chart.dataset.draws = String(Number(chart.dataset.draws || 0) + 1);
  }

  function seriesTitle(s) { return "store " + s.store_nbr + " · " + s.family; }

  // -- the series view -----------------------------------------------------------------------

  async function showSeries(series) {
    say("Forecasting " + seriesTitle(series) + "…");
    const days = await loadSeries(series);
    const predictions = await forecast(series, days.window, {});
    const traces = historyTraces(days)
      .concat(bandTraces(predictions, "forecast", COLORS.forecast))
      .concat([pointTrace(predictions, "forecast", COLORS.forecast)]);
    await draw(traces, seriesTitle(series));
    say(days.history.dates.length + " days of history, " + predictions.length + " forecast days.");
    if (page.dataset.explain) await explain(series, days);
  }

  async function explain(series, days) {
    const answer = await forecast(series, days.window, {}, { explain: true });
    const select = $("why-day");
    select.replaceChildren(...answer.map((p, i) => new Option(p.date + " · " + p.model, String(i))));
    const first = answer.findIndex((p) => p.explanation.explained);
    select.value = String(Math.max(first, 0));
    const show = () => drawWhy(answer[Number(select.value)]).catch((err) => say(err.message, true));
    select.onchange = show;
    $("why").hidden = false;
    await drawWhy(answer[Number(select.value)]);
  }

  // One forecast day: its top contributions as bars, then a table that adds up to tree_log1p.
  async function drawWhy(p) {
    const e = p.explanation;
    const note = $("why-weights");
    const table = $("why-table");
    const why = $("why");
    if (!e.explained) {
      note.textContent = "No contributions for " + p.date + ": " + e.reason + ".";
      table.replaceChildren();
      clear($("why-chart"));
      why.dataset.shown = p.date;
      return;
    }
    note.textContent = "Hybrid weights in log space: XGBoost " + e.xgboost_weight.toFixed(2) +
      ", LSTM " + e.lstm_weight.toFixed(2) + ". Note: " + e.note + ".";
    const items = e.contributions.map((c) => ({ name: c.feature + " = " + fmt(c.value), value: c.contribution }))
      .concat([{ name: "all other features", value: e.other }]);
    const rows = [["bias (the trees' mean)", e.bias]].concat(items.map((c) => [c.name, c.value]))
      .concat([["= tree model's log1p prediction", e.tree_log1p]]);
    table.replaceChildren(...rows.map(([name, value]) => {
      const tr = document.createElement("tr");
      tr.dataset.value = String(value);
      tr.append(cell(name), cell(value.toFixed(4)));
      return tr;
    }));
    const bars = items.slice().reverse();
    await plot($("why-chart"), [{ type: "bar", orientation: "h",
      x: bars.map((c) => c.value), y: bars.map((c) => c.name),
      marker: { color: bars.map((c) => (c.value >= 0 ? COLORS.forecast : COLORS.scenario)) } }],
    { margin: { t: 10, r: 10, b: 30, l: 200 }, height: 320,
      xaxis: { title: { text: "contribution to log1p(sales)" } } });
    why.dataset.shown = p.date;
  }

  function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

  // -- the what-if view ----------------------------------------------------------------------

  const whatIf = { series: null, days: null, baseline: null, plan: {} };

  async function showWhatIf(series) {
    say("Forecasting " + seriesTitle(series) + "…");
    whatIf.series = series;
    whatIf.days = await loadSeries(series);
    whatIf.plan = {};
    $("promo-value").value = String(whatIf.days.promo_value);
    whatIf.baseline = await forecast(series, whatIf.days.window, {});
    buildPlanTable();
    await redrawScenario();
  }

  function buildPlanTable() {
    const tbody = $("plan").tBodies[0];
    tbody.replaceChildren(...whatIf.days.window.map((d, i) => {
      const tr = document.createElement("tr");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = "promo-" + i;
      box.disabled = d.closed;
      box.setAttribute("aria-label", "promote on " + d.date);
      box.onchange = () => {
        if (box.checked) whatIf.plan[d.date] = Number($("promo-value").value) || 1;
        else delete whatIf.plan[d.date];
        redrawScenario().catch((err) => say(err.message, true));
      };
      const promote = document.createElement("td");
      promote.append(box);
      tr.append(cell(d.date + (d.closed ? " (closed)" : "")), promote, cell(""), cell(""), cell(""));
      return tr;
    }));
  }

  async function redrawScenario() {
    const scenario = await forecast(whatIf.series, whatIf.days.window, whatIf.plan);
    const rows = $("plan").tBodies[0].rows;
    scenario.forEach((p, i) => {
      const base = whatIf.baseline[i].sales;
      rows[i].cells[2].textContent = base.toFixed(1);
      rows[i].cells[3].textContent = p.sales.toFixed(1);
      rows[i].cells[4].textContent = (p.sales - base >= 0 ? "+" : "") + (p.sales - base).toFixed(1);
    });
    const traces = historyTraces(whatIf.days).slice(0, 1)
      .concat(bandTraces(whatIf.baseline, "baseline", COLORS.forecast))
      .concat(bandTraces(scenario, "this plan", COLORS.scenario))
      .concat([pointTrace(whatIf.baseline, "baseline plan", COLORS.forecast, "dot"),
        pointTrace(scenario, "this plan", COLORS.scenario)]);
    await draw(traces, seriesTitle(whatIf.series));
    const promoted = Object.keys(whatIf.plan).length;
    say(promoted + " promoted day" + (promoted === 1 ? "" : "s") + " in this plan.");
  }

  // -- the monitoring view -------------------------------------------------------------------

  function fillTable(id, headers, rows) {
    const head = document.createElement("tr");
    head.append(...headers.map((h) => { const th = document.createElement("th"); th.textContent = h; return th; }));
    const body = rows.map((r) => { const tr = document.createElement("tr"); tr.append(...r.map((v) => cell(fmt(v)))); return tr; });
    $(id).replaceChildren(head, ...body);
  }

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(4);
    return String(v);
  }

  async function showMonitoring() {
    const [status, drift] = await Promise.all([
      call("/api/v1/monitoring/status"), call("/api/v1/monitoring/drift")]);
    const alert = $("alert");
    const cov = status.coverage;
    const on = status.alert || cov.alert || drift.status === "drift";
    alert.classList.toggle("alert-on", on);
    alert.dataset.status = status.status;
    alert.textContent = "Accuracy: " + status.status + (status.alert ? " (ALERT)" : "") +
      " — " + status.message + ". Coverage: " + cov.status + (cov.alert ? " (ALERT)" : "") +
      ". Drift: " + drift.status + ".";
    fillTable("accuracy", ["horizon day", "RMSLE", "MAE", "bias", "n"],
      status.by_horizon_day.map((r) => [r.horizon_day, r.rmsle, r.mae, r.bias, r.n]));
    $("accuracy-chart").hidden = !status.by_horizon_day.length;
    if (status.by_horizon_day.length) {
      await plot($("accuracy-chart"), [{ type: "bar", name: "RMSLE",
        x: status.by_horizon_day.map((r) => r.horizon_day), y: status.by_horizon_day.map((r) => r.rmsle) }],
      { margin: { t: 10, r: 10, b: 40, l: 50 }, height: 260, xaxis: { title: { text: "horizon day" }, dtick: 1 } });
    }
    $("coverage-state").textContent = cov.status + ": " + cov.message;
    fillTable("coverage", ["interval", "nominal", "coverage", "below", "above", "n", "status"],
      cov.intervals.map((c) => [c.lower_level + "–" + c.upper_level, c.nominal, c.coverage, c.below, c.above, c.n, c.status]));
    $("drift-state").textContent = drift.status + ": " + drift.message;
    fillTable("drift", ["feature", "test", "statistic", "threshold", "drifted", "status"],
      drift.features.map((f) => [f.feature, f.test, f.statistic, f.threshold, f.drifted ? "yes" : "no", f.status]));
    page.dataset.loaded = "1";
  }

  // -- start ---------------------------------------------------------------------------------

  function startPicker(show) {
    const form = $("picker");
    let shown = "";  // Enter fires both change and submit: one forecast per choice
    const submit = () => {
      const series = chosenSeries();
      if (!series) { say("Choose a store and family from the list.", true); return; }
      if ($("series-search").value === shown) return;
      shown = $("series-search").value;
      history.replaceState(null, "", "?" + new URLSearchParams(series).toString());
      show(series).catch((err) => say(err.message, true));
    };
    form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
    $("series-search").addEventListener("change", submit);
    const query = new URLSearchParams(location.search);
    const first = query.has("store_nbr") ? query.get("store_nbr") + " · " + query.get("family")
      : ($("series-list").options[0] || {}).value;
    if (first) { $("series-search").value = first; submit(); }
  }

  const views = {
    "series": () => startPicker(showSeries),
    "what-if": () => startPicker(showWhatIf),
    "monitoring": () => showMonitoring().catch((err) => { $("alert").textContent = err.message; }),
  };
  if ($("not-ready") === null && views[page.dataset.view]) views[page.dataset.view]();
})();
