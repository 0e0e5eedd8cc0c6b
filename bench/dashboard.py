"""The dashboard's speed in a real browser, and what ``explain`` costs (bounded; not a test).

Serves a bundle with ``retail-forecast serve`` on 127.0.0.1 (no API keys) and drives Debian's
chromium with Playwright (nothing downloaded). Measures, on the same machine:

- page ready per view, ms from navigation start (``performance.now()``). Series and what-if:
  the chart shows the 90 history points, the 16 forecast points and the band (an SVG in the
  chart, its traces in ``chart.data``), AND the controls respond: a real click on the series
  picker, sent once the chart is there, has been handled (its focus event ran on the page's
  main thread; ready is that moment). Monitoring: its tables and chart; model: its backtest
  table. Cold: a fresh browser context each load (no HTTP cache); warm: the same context
  again. Both for the served page (SVG charts at once, Plotly.js fetched only when someone
  points at a chart) and, in the same run, the page as it was (``plotly-first``: Plotly.js
  async in the head and every chart drawn by it, so the first waited for its 4.8 MB to be
  parsed), rewritten in the browser from the served HTML;
- the what-if round trip for one series: ticking a promotion day until the chart is redrawn
  (the page's own POST /api/v1/predict with quantiles, plus drawing), and that call alone;
- ``explain: true`` single-series p99 against the same request without it, interleaved;
- in process, the TreeSHAP of that series' 16 explained rows by the compiled kernel
  (models/tree_shap.py) and by XGBoost's ``pred_contribs`` (the fallback), interleaved, with
  the largest difference between them, the kernel's table build time and table size.

    .venv/bin/retail-forecast data generate --stores 6 --families 8 --out /tmp/D
    .venv/bin/retail-forecast train --data-dir /tmp/D --out /tmp/A
    .venv/bin/python bench/dashboard.py --artifacts /tmp/A [--loads 8] [--requests 300]

Prints a markdown table and writes JSON (``--out``, default bench/dashboard.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
# the chart drawn with its points: 90 of history, 16 of forecast ("forecast" or "this plan")
# and a band (a filled trace of 16 points), in an <svg> of the chart (ours or Plotly's)
CHART_DRAWN = """(() => {
  const c = document.getElementById('chart');
  if (!c || Number(c.dataset.draws || 0) < 1 || !c.querySelector('svg')) return false;
  const t = Object.fromEntries((c.data || []).map((d) => [d.name, d]));
  const point = t['forecast'] || t['this plan'];
  const band = (c.data || []).some((d) => d.fill === 'tonexty' && d.y.length === 16);
  return t['history']?.x.length === 90 && point?.x.length === 16 && band;
})()"""
READY = {
    "series": CHART_DRAWN,
    "what-if": CHART_DRAWN,
    "monitoring": "document.body.dataset.loaded === '1'",
    "model": "document.getElementById('backtest') !== null",
}
PICKER_VIEWS = frozenset({"series", "what-if"})
# where to click the picker, once its focus handler notes the time (read back as rfReadyAt)
LISTEN = """(() => {
  const input = document.getElementById('series-search');
  input.addEventListener('focus', () => { window.rfReadyAt = performance.now(); }, { once: true });
  const box = input.getBoundingClientRect();
  return [box.x + box.width / 2, box.y + box.height / 2];
})()"""


@contextmanager
def served(artifacts: Path, workdir: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **os.environ,
        "RF_LOG_DIR": str(workdir / "logs"),
        "RF_API__HISTORY_DIR": str(workdir / "history"),
        "RF_MONITORING__DB_PATH": str(workdir / "monitoring.sqlite"),
    }
    command = [sys.executable, "-m", "retail_forecast.cli", "serve"]
    command += ["--artifacts", str(artifacts), "--port", str(port)]
    with (workdir / "serve.log").open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"serve did not become ready: see {workdir / 'serve.log'}")
                try:
                    if httpx.get(url + "/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def plotly_first(route: Route) -> None:
    """Serve the page as it was: Plotly.js async in the head, every chart drawn by it."""
    response = route.fetch()
    html = response.text()
    found = re.search(r' data-plotly="([^"]+)"', html)
    if found:
        script = '<script src="/dashboard/static/dashboard.js" defer></script>'
        tag = f'<script id="plotly-js" src="{found.group(1)}" async></script>'
        html = html.replace(script, script + tag).replace("<body ", '<body data-charts="plotly" ')
    route.fulfill(response=response, body=html)


def ready_ms(context: BrowserContext, url: str, view: str) -> float:
    """Load ``view`` in a new tab of ``context``; ms from navigation start until it is ready."""
    page = context.new_page()
    page.goto(f"{url}/dashboard/{view}", wait_until="commit")
    probe = f"({READY[view]}) ? performance.now() : null"
    deadline = time.monotonic() + 60
    while True:
        try:
            value = page.evaluate(probe)
        except Exception:  # the document is still being replaced
            value = None
        if value is not None:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{view} never became ready")
        time.sleep(0.005)
    if view in PICKER_VIEWS:  # the controls respond: a real click on the picker is handled
        x, y = page.evaluate(LISTEN)
        page.mouse.click(x, y)  # raw input events, queued behind whatever the page is running
        value = None
        while value is None:
            value = page.evaluate("window.rfReadyAt ?? null")
            if time.monotonic() > deadline:
                raise SystemExit(f"{view}: the click on the picker was not handled")
    page.close()
    return float(value)


def page_loads(browser: Browser, url: str, loads: int, variant: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for view in READY:
        cold, warm = [], []
        for _ in range(loads):
            context = browser.new_context()
            if variant == "plotly-first":
                context.route("**/dashboard/*", plotly_first)
            cold.append(ready_ms(context, url, view))
            warm.append(ready_ms(context, url, view))
            context.close()
        out[view] = {"cold_ms": summary(cold), "warm_ms": summary(warm)}
    return out


def what_if_ms(browser: Browser, url: str, series: tuple[int, str], toggles: int) -> list[float]:
    """Tick and untick promotion day 3: ms from the click until the chart is redrawn."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/dashboard/what-if?store_nbr={series[0]}&family={series[1]}")
    draws = "Number(document.getElementById('chart').dataset.draws||0)"
    while page.evaluate(draws) < 1:
        time.sleep(0.01)
    times = []
    for _ in range(toggles):
        before = page.evaluate(draws)
        started = time.perf_counter()
        page.click("#promo-3")
        while page.evaluate(draws) <= before:
            time.sleep(0.002)
        times.append((time.perf_counter() - started) * 1000)
    context.close()
    return times


def window_rows(url: str, series: tuple[int, str]) -> list[dict[str, Any]]:
    domain = httpx.get(url + "/api/v1/models", timeout=30).json()["domain"]
    days = np.datetime64(domain["first_date"]) + np.arange(domain["horizon"])
    return [
        {"date": str(d), "store_nbr": series[0], "family": series[1], "onpromotion": 0}
        for d in days
    ]


def request_ms(client: httpx.Client, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    answer = client.post("/api/v1/predict", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(answer.text)
    return elapsed


def api_latency(url: str, rows: list[dict[str, Any]], n: int) -> dict[str, dict[str, float]]:
    """Interleaved: plain, explain, and the what-if page's call (with quantiles), ``n`` each."""
    bodies: dict[str, dict[str, Any]] = {
        "plain": {"rows": rows},
        "explain": {"rows": rows, "explain": True},
        "what_if_call": {"rows": rows, "quantiles": [0.025, 0.1, 0.5, 0.9, 0.975]},
    }
    times: dict[str, list[float]] = {name: [] for name in bodies}
    with httpx.Client(base_url=url, timeout=30) as client:
        for body in bodies.values():  # warm-up
            for _ in range(5):
                request_ms(client, body)
        for _ in range(n):
            for name, body in bodies.items():
                times[name].append(request_ms(client, body))
    return {name: summary(values) for name, values in times.items()}


def treeshap_engines(
    artifacts: Path, workdir: Path, series: tuple[int, str], n: int
) -> dict[str, Any]:
    """One series' explained rows, in process: the kernel vs ``pred_contribs``, interleaved."""
    from retail_forecast.artifacts import ModelBundle
    from retail_forecast.config import settings_for
    from retail_forecast.inference.local import LocalPredictor
    from retail_forecast.inference.preprocess import (
        canonical_rows,
        panel_from_snapshot,
        requested_series,
    )
    from retail_forecast.models.explain import feature_rows, xgboost_contributions

    threads = settings_for().api.xgboost_threads  # as the service sets it
    predictor = LocalPredictor.from_bundle(
        ModelBundle.open_current(artifacts),
        history_db=workdir / "engines.sqlite",
        xgboost_threads=threads,
    )
    try:
        assert predictor.store is not None
        domain = predictor.domain
        frame = pd.DataFrame(
            {"date": pd.to_datetime(domain.window()), "store_nbr": series[0], "family": series[1]}
        ).assign(onpromotion=0)
        request = canonical_rows(frame, domain.families)
        panel = panel_from_snapshot(predictor.store.snapshot(), requested_series(request))
        forecaster = predictor.model.xgboost
        x, _ = feature_rows(forecaster, panel, request)
        started = time.perf_counter()
        shap = forecaster.tree_shap()
        build_s = time.perf_counter() - started
        if shap is None:
            raise SystemExit("the TreeSHAP kernel is not built: pip install -e . with gcc")
        kernel_ms: list[float] = []
        xgboost_ms: list[float] = []
        for _ in range(n):
            started = time.perf_counter()
            ours = shap.contributions(x, threads=threads)
            kernel_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            theirs = xgboost_contributions(forecaster.booster_, x, forecaster.builder_)
            xgboost_ms.append((time.perf_counter() - started) * 1000)
        return {
            "rows": len(x),
            "threads": threads,
            "trees": len(shap.roots),
            "leaves": len(shap.leaf_value),
            "table_mib": round(shap.table_bytes / 2**20, 1),
            "build_s": round(build_s, 2),
            "max_abs_difference": float(np.abs(ours - theirs).max()),
            "kernel_ms": summary(kernel_ms),
            "pred_contribs_ms": summary(xgboost_ms),
        }
    finally:
        predictor.close()


def summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "p99": round(float(np.percentile(a, 99)), 1),
        "max": round(float(a.max()), 1),
    }


def table(result: dict[str, Any]) -> str:
    lines = ["| measure | p50 ms | p95 ms | p99 ms | n |", "|---|---|---|---|---|"]

    def row(name: str, s: dict[str, float]) -> None:
        lines.append(f"| {name} | {s['p50']} | {s['p95']} | {s['p99']} | {s['n']} |")

    for variant, views in result["page_ready"].items():
        for view, s in views.items():
            row(f"{view} ready, cold ({variant})", s["cold_ms"])
            row(f"{view} ready, warm ({variant})", s["warm_ms"])
    row("what-if tick -> chart redrawn (browser)", result["what_if_browser_ms"])
    for name, s in result["api_ms"].items():
        row(f"POST /predict one series: {name}", s)
    engines = result["treeshap"]
    for engine in ("kernel", "pred_contribs"):
        row(f"TreeSHAP of {engines['rows']} rows in process: {engine}", engines[f"{engine}_ms"])
    lines.append(f"\nexplain p99 / plain p99 = {result['explain_p99_ratio']:.2f} (target <= 2)")
    lines.append(
        f"kernel: {engines['trees']} trees, {engines['leaves']} leaves, tables "
        f"{engines['table_mib']} MiB built in {engines['build_s']} s; largest difference from "
        f"pred_contribs {engines['max_abs_difference']:.2e}"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with served(args.artifacts, workdir) as url, sync_playwright() as driver:
        domain = httpx.get(url + "/api/v1/models", timeout=30).json()["domain"]
        series = (int(domain["stores"][0]), str(domain["families"][0]))
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        loads: Callable[[str], dict[str, Any]] = lambda v: page_loads(  # noqa: E731
            browser, url, args.loads, v
        )
        page_ready = {"served": loads("served"), "plotly-first": loads("plotly-first")}
        what_if = summary(what_if_ms(browser, url, series, args.toggles))
        browser.close()
        api = api_latency(url, window_rows(url, series), args.requests)
    engines = treeshap_engines(args.artifacts, workdir, series, args.requests)
    return {
        "artifacts": str(args.artifacts),
        "cores": os.cpu_count(),
        "series": list(series),
        "page_ready": page_ready,
        "what_if_browser_ms": what_if,
        "api_ms": api,
        "explain_p99_ratio": api["explain"]["p99"] / api["plain"]["p99"],
        "treeshap": engines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--loads", type=int, default=8, help="cold and warm loads per view")
    parser.add_argument("--toggles", type=int, default=40, help="what-if ticks in the browser")
    parser.add_argument("--requests", type=int, default=300, help="API requests of each kind")
    parser.add_argument("--out", type=Path, default=HERE / "dashboard.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rf-dashboard-bench-") as tmp:
        result = run(args, Path(tmp))
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
