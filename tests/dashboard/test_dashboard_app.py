"""The dashboard's routes in process (no browser): redirects, the data call, assets, the login.

The app runs its real lifespan over the seasonal-naive predictor of the API tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from api_helpers import serve
from naive_backend import SeasonalNaivePredictor, make_history

from retail_forecast.dashboard.routes import router
from retail_forecast.dashboard.session import COOKIE, session_token

KEY = "planner-key-0123456789"
SERIES = "/dashboard/data/series"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the monitoring log's relative default path


@pytest.fixture
def client() -> Iterator[TestClient]:
    with serve(SeasonalNaivePredictor(make_history())) as started:
        yield started


@pytest.fixture
def keyed() -> Iterator[TestClient]:
    with serve(SeasonalNaivePredictor(make_history()), api_keys=(KEY,)) as started:
        yield started


def test_root_redirects_to_the_dashboard_and_the_dashboard_to_the_series_view(
    client: TestClient,
) -> None:
    root = client.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (303, "/dashboard")
    home = client.get("/dashboard", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/dashboard/series")


@pytest.mark.parametrize("view", ["series", "what-if", "monitoring", "model"])
def test_each_view_is_a_page_with_a_strict_content_security_policy(
    client: TestClient, view: str
) -> None:
    page = client.get(f"/dashboard/{view}")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-eval" not in csp
    # no Plotly.js tag: the charts are SVG first; the script fetches the versioned bundle (named
    # on the views that draw charts) only when someone points at a chart
    assert '<script id="plotly-js"' not in page.text
    plotly = 'data-plotly="/dashboard/static/plotly.min.js?v='
    assert (plotly in page.text) == (view != "model")
    assert '<script src="/dashboard/static/sketch.js" defer>' in page.text
    assert '<script src="/dashboard/static/dashboard.js" defer>' in page.text
    assert "<script>" not in page.text  # no inline code: the policy would refuse it


def test_series_page_lists_every_served_series_escaped(client: TestClient) -> None:
    page = client.get("/dashboard/series").text
    assert '<option value="1 · BEVERAGES">' in page
    assert 'data-quantiles="' in page


def test_series_data_has_the_last_days_and_the_forecast_window(client: TestClient) -> None:
    answer = client.get(SERIES, params={"store_nbr": 1, "family": "BEVERAGES"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    history = body["history"]
    # the naive backend keeps 70 days: all of them (the browser tests see 90 of a real bundle's)
    assert len(history["dates"]) == len(history["sales"]) == len(history["closed"]) == 70
    assert history["dates"][-1] == "2017-08-15"
    assert next(d["date"] for d in body["window"]) == "2017-08-16"
    assert len(body["window"]) == 16
    assert body["promo_value"] >= 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"store_nbr": "99", "family": "BEVERAGES"}, "store_nbr"),
        ({"store_nbr": "1e3", "family": "BEVERAGES"}, "store_nbr"),
        ({"store_nbr": "²", "family": "BEVERAGES"}, "store_nbr"),
        ({"family": "BEVERAGES"}, "store_nbr"),
        ({"store_nbr": "1", "family": "../../etc/passwd"}, "family"),
        ({"store_nbr": "1"}, "family"),
    ],
)
def test_a_bad_series_is_422_naming_the_field_and_the_allowed_values(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    answer = client.get(SERIES, params=params)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["field"] == field
    assert body["allowed"][field]
    assert field in body["message"]


def test_assets_are_fixed_paths_and_plotly_comes_from_the_plotly_package(
    client: TestClient,
) -> None:
    paths = [r.path for r in router.routes if isinstance(r, APIRoute)]
    assert "/dashboard/static/plotly.min.js" in paths
    assert all("{" not in path for path in paths)  # no path parameter: no name from a request
    plotly = client.get("/dashboard/static/plotly.min.js")
    assert plotly.status_code == 200
    assert plotly.headers["content-type"].startswith("text/javascript")
    assert b"plotly.js" in plotly.content[:2000]
    # the URL is versioned by the plotly package: cached for a year, gzipped when accepted
    assert plotly.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plotly.headers["content-encoding"] == "gzip"  # httpx sends Accept-Encoding: gzip
    raw = client.get("/dashboard/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert raw.content == plotly.content  # httpx decoded the gzip: the same bundle
    assert client.get("/dashboard/static/dashboard.js").status_code == 200
    sketch = client.get("/dashboard/static/sketch.js")
    assert sketch.status_code == 200
    assert sketch.headers["content-type"].startswith("text/javascript")
    assert client.get("/dashboard/static/../app.py").status_code == 404
    assert client.get("/dashboard/static/routes.py").status_code == 404


def test_with_keys_a_page_redirects_to_the_login_and_data_calls_are_401(keyed: TestClient) -> None:
    for path in ("/", "/dashboard/series", "/dashboard/model"):
        page = keyed.get(path, follow_redirects=False)
        assert (page.status_code, page.headers["location"]) == (303, "/dashboard/login"), path
    data = keyed.get(
        SERIES,
        params={"store_nbr": 1, "family": "BEVERAGES"},
        headers={"X-Rf-Dashboard": "1"},
        follow_redirects=False,
    )
    assert data.status_code == 401
    assert keyed.get("/dashboard/static/plotly.min.js", follow_redirects=False).status_code == 401
    login = keyed.get("/dashboard/login")
    assert login.status_code == 200
    assert 'name="api_key"' in login.text
    # a client with the key in the header (curl) reads the dashboard as it reads the API
    assert keyed.get("/dashboard/model", headers={"X-Api-Key": KEY}).status_code == 200


def test_login_sets_a_strict_http_only_session_that_never_holds_the_key(keyed: TestClient) -> None:
    wrong = keyed.post("/dashboard/login", data={"api_key": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    assert COOKIE not in wrong.headers.get("set-cookie", "")
    right = keyed.post("/dashboard/login", data={"api_key": KEY}, follow_redirects=False)
    assert (right.status_code, right.headers["location"]) == (303, "/dashboard")
    cookie = right.headers["set-cookie"]
    assert f"{COOKIE}={session_token(KEY)}" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert KEY not in cookie
    # the session opens the pages and the dashboard's own data calls
    assert keyed.get("/dashboard/model").status_code == 200
    series = keyed.get(SERIES, params={"store_nbr": 1, "family": "BEVERAGES"})
    assert series.status_code == 200
    # the API itself only with the script's header: a cross-site form or link cannot send it
    assert keyed.get("/api/v1/models").status_code == 401
    assert keyed.get("/api/v1/models", headers={"X-Rf-Dashboard": "1"}).status_code == 200
    # a forged cookie is no session; logging out ends it
    keyed.cookies.set(COOKIE, session_token("guess"))
    assert keyed.get("/dashboard/model", follow_redirects=False).status_code == 303
    keyed.cookies.set(COOKIE, session_token(KEY))
    out = keyed.post("/dashboard/logout", follow_redirects=False)
    assert out.status_code == 303
    assert "Max-Age=0" in out.headers["set-cookie"]


def test_a_login_body_past_4_kb_is_refused_unread(keyed: TestClient) -> None:
    answer = keyed.post("/dashboard/login", data={"api_key": "k" * 5000}, follow_redirects=False)
    assert answer.status_code == 401
