"""The dashboard in a real browser: Debian's chromium driven by Playwright, a real server.

``retail-forecast serve`` runs on 127.0.0.1 over a tiny bundle trained once for this module, with
an API key configured (so every test goes through the login form). Playwright never downloads a
browser: it launches /usr/bin/chromium; where that is missing the tests skip. Each view's
screenshot is written under tests/dashboard/screenshots/ (gitignored).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(
        "the dashboard's browser tests need Debian's chromium: apt-get install chromium",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

sys.path.insert(0, str(Path(__file__).parent))

from bundle_helpers import TinyBundle, build_tiny_bundle  # noqa: E402
from live_server import KEY, Server  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERIES = (2, "BEVERAGES")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return build_tiny_bundle(tmp_path_factory.mktemp("dashboard-bundle"))


@contextmanager
def running(bundle: TinyBundle, workdir: Path) -> Iterator[Server]:
    # alerts after 10 scored rows (12 series: one day of actuals), so a test can seed one
    started = Server(bundle, workdir, RF_MONITORING__MIN_ACCURACY_ROWS="10")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def server(bundle: TinyBundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(bundle, tmp_path_factory.mktemp("dashboard-serve")) as started:
        yield started


@pytest.fixture
def seeded(bundle: TinyBundle, tmp_path: Path) -> Iterator[Server]:
    """A server of its own: seeding actuals moves its history end."""
    with running(bundle, tmp_path / "seeded") as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A logged-in page that records every console error and uncaught exception."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(server.url + "/")
        assert self.page.url.endswith("/dashboard/login")  # no session yet
        self.page.fill("#api_key", KEY)
        self.page.click("button")
        self.page.wait_for_url("**/dashboard/series**")

    def open(self, view: str, query: str = "") -> None:
        self.page.goto(f"{self.server.url}/dashboard/{view}{query}")

    def choose(self, store: int, family: str) -> None:
        draws = self.draws()
        self.page.fill("#series-search", f"{store} · {family}")
        self.page.press("#series-search", "Enter")
        self.wait_draws(draws + 1)

    def draws(self) -> int:
        return int(self.page.evaluate("Number(document.getElementById('chart').dataset.draws||0)"))

    def wait_draws(self, n: int) -> None:
        self.wait(f"Number(document.getElementById('chart').dataset.draws||0) >= {n}")

    def wait(self, expression: str, timeout: float = 20) -> None:
        """Poll ``expression`` (wait_for_function evaluates strings, which the CSP refuses)."""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(expression):
            assert time.monotonic() < deadline, f"never true: {expression}; {self.errors}"
            time.sleep(0.05)

    def traces(self) -> dict[str, dict[str, Any]]:
        data = self.page.evaluate(
            "document.getElementById('chart').data.map(t => ({name: t.name, x: t.x, y: t.y}))"
        )
        return {t["name"]: t for t in data}

    def shot(self, name: str) -> None:
        SHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Page]:
    opened = Page(browser, server)
    yield opened
    opened.close()


def window_rows(server: Server, plan: dict[str, int]) -> list[dict[str, Any]]:
    """The forecast window of ``SERIES`` with ``plan``'s promotions (0 on every other day)."""
    store, family = SERIES
    domain = server.api("/api/v1/models")["domain"]
    start = dt.date.fromisoformat(domain["first_date"])
    dates = [(start + dt.timedelta(days=k)).isoformat() for k in range(domain["horizon"])]
    return [
        {"date": d, "store_nbr": store, "family": family, "onpromotion": plan.get(d, 0)}
        for d in dates
    ]


def test_every_view_loads_without_console_errors(page: Page) -> None:
    page.wait_draws(1)  # the series view draws its first series at once
    page.shot("series-first")
    for view, ready in (
        ("what-if", "Number(document.getElementById('chart').dataset.draws||0) >= 1"),
        ("monitoring", "document.body.dataset.loaded === '1'"),
        ("model", "document.getElementById('backtest') !== null"),
    ):
        page.open(view)
        page.wait(ready)
        page.shot(view)
    assert page.errors == []


def test_choosing_a_series_draws_90_days_and_the_forecast_with_its_bands(
    page: Page, server: Server
) -> None:
    page.wait_draws(1)
    page.choose(*SERIES)
    traces = page.traces()
    page.shot("series")
    assert len(traces["history"]["x"]) == 90
    assert len(traces["history"]["y"]) == 90
    forecast = traces["forecast"]
    assert len(forecast["x"]) == 16
    low, high = traces["forecast 80 % low"]["y"], traces["forecast 80 % interval"]["y"]
    assert len(low) == len(high) == 16
    assert all(lo <= y <= hi for lo, y, hi in zip(low, forecast["y"], high, strict=True))
    assert any(hi > lo for lo, hi in zip(low, high, strict=True))  # a band, not a line
    # the same numbers the API answers for that series and plan
    answer = server.api("/api/v1/predict", {"rows": window_rows(server, {})})
    assert forecast["y"] == [p["sales"] for p in answer["predictions"]]
    assert page.errors == []


def test_toggling_a_promotion_changes_that_day_as_the_api_answers_the_same_plan(
    page: Page, server: Server
) -> None:
    store, family = SERIES
    page.open("what-if", f"?store_nbr={store}&family={family}")
    page.wait_draws(1)
    baseline = page.traces()["this plan"]["y"]
    day = 3
    draws = page.draws()
    page.page.check(f"#promo-{day}")
    page.wait_draws(draws + 1)
    traces = page.traces()
    page.shot("what-if-promoted")
    scenario = traces["this plan"]["y"]
    assert traces["baseline plan"]["y"] == baseline
    value = int(page.page.input_value("#promo-value"))
    rows = window_rows(server, {})
    rows[day]["onpromotion"] = value
    answer = server.api("/api/v1/predict", {"rows": rows, "quantiles": [0.1, 0.9]})
    served = [p["sales"] for p in answer["predictions"]]
    assert scenario == served
    assert scenario[day] != baseline[day]
    assert scenario[:day] == baseline[:day]  # the days before it cannot know of it
    cells = page.page.locator("#plan tbody tr").nth(day).locator("td")
    assert cells.nth(3).inner_text() == f"{served[day]:.1f}"
    assert page.errors == []


def test_the_monitoring_view_shows_the_alert_of_a_degraded_model(
    browser: Any, seeded: Server
) -> None:
    """Seeded through the API: forecasts served for every series, then actuals of 0 sales."""
    server = seeded
    domain = server.api("/api/v1/models")["domain"]
    first = domain["first_date"]
    rows = [
        {"date": first, "store_nbr": s, "family": f, "onpromotion": 0}
        for s in domain["stores"]
        for f in domain["families"]
    ]
    server.api("/api/v1/predict", {"rows": rows})
    server.api("/api/v1/actuals", {"rows": [{**r, "sales": 0.0} for r in rows]})
    deadline = time.monotonic() + 30
    while server.api("/api/v1/monitoring/status")["status"] != "degraded":
        assert time.monotonic() < deadline, server.api("/api/v1/monitoring/status")
        time.sleep(0.2)
    page = Page(browser, server)
    page.open("monitoring")
    page.wait("document.body.dataset.loaded === '1'")
    page.shot("monitoring-degraded")
    alert = page.page.locator("#alert")
    assert alert.get_attribute("data-status") == "degraded"
    assert "alert-on" in (alert.get_attribute("class") or "")
    assert "degraded (ALERT)" in alert.inner_text()
    rmsle = page.page.locator("#accuracy tr").nth(1).locator("td").nth(1).inner_text()
    status = server.api("/api/v1/monitoring/status")
    assert math.isclose(float(rmsle), status["by_horizon_day"][0]["rmsle"], abs_tol=1e-4)
    assert page.errors == []
    page.close()


def test_the_why_panel_adds_up_to_the_tree_models_log_space_prediction(
    page: Page, server: Server
) -> None:
    """Each forecast day: bias + the listed contributions + the rest = the API's tree_log1p."""
    store, family = SERIES
    page.open("series", f"?store_nbr={store}&family={family}")
    page.wait("document.getElementById('why').dataset.shown !== undefined")
    answer = server.api("/api/v1/predict", {"rows": window_rows(server, {}), "explain": True})
    served = {p["date"]: p for p in answer["predictions"]}
    for day in (0, 9):
        page.page.select_option("#why-day", str(day))
        date = answer["predictions"][day]["date"]
        page.wait(f"document.getElementById('why').dataset.shown === '{date}'")
        values = [
            float(v)
            for v in page.page.locator("#why-table tr").evaluate_all(
                "rows => rows.map(r => r.dataset.value)"
            )
        ]
        explanation = served[date]["explanation"]
        assert len(values) == 1 + 8 + 1 + 1  # bias, 8 features, the rest, the prediction
        assert values[-1] == explanation["tree_log1p"]
        assert math.isclose(sum(values[:-1]), values[-1], abs_tol=1e-5)
        bars = page.page.evaluate("document.getElementById('why-chart').data[0].x.length")
        assert bars == 9
        note = page.page.inner_text("#why-weights")
        assert "XGBoost 1.00" in note
        assert "LSTM 0.00" in note
    page.shot("series-why")
    assert page.errors == []


def test_the_chart_is_ready_before_plotly_is_fetched_and_plotly_takes_over_on_pointing(
    page: Page,
) -> None:
    """The first chart is SVG from the page's own script: the 4.8 MB Plotly.js waits for a
    pointer on the chart (bench/dashboard.py: ready <= 1 s on two cores), then redraws it."""
    fetched: list[str] = []
    page.page.on("request", lambda r: fetched.append(r.url) if "plotly" in r.url else None)
    store, family = SERIES
    page.open("series", f"?store_nbr={store}&family={family}")
    page.wait_draws(1)
    page.wait("document.getElementById('why').dataset.shown !== undefined")
    chart = page.page.locator("#chart")
    assert chart.get_attribute("data-engine") == "svg"
    drawn = {
        name: chart.locator(f'svg g[data-trace="{name}"]').get_attribute("data-points")
        for name in ("history", "forecast", "forecast 80 % interval")
    }
    assert drawn == {"history": "90", "forecast": "16", "forecast 80 % interval": "16"}
    assert chart.locator('svg g[data-trace="forecast 80 % interval"] polygon').count() == 1
    assert page.page.locator("#why-chart svg rect").count() == 9  # the why bars: SVG too
    assert fetched == []  # nothing waited for Plotly.js
    before = page.traces()
    page.page.hover("#chart")
    page.wait("document.getElementById('chart').dataset.engine === 'plotly'")
    page.wait("document.querySelector('#chart .main-svg') !== null")
    assert len(fetched) == 1
    assert page.traces()["forecast"]["y"] == before["forecast"]["y"]
    page.shot("series-plotly")
    assert page.errors == []
