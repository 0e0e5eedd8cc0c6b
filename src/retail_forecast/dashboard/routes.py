"""The dashboard's routes: ``/`` and ``/dashboard`` redirect, four pages, one data call, assets.

Every asset is served from a fixed path in this package (or Plotly.js from the ``plotly``
package): no route takes a file name from the request. The routes are left out of the OpenAPI
schema: they are pages, not the API.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
from functools import cache, partial
from html import escape
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from retail_forecast.api.deps import ServiceState, StateDep, request_deadline
from retail_forecast.api.errors import ApiError
from retail_forecast.api.explain_request import can_explain
from retail_forecast.dashboard import pages
from retail_forecast.dashboard.data import (
    backtest_table,
    band_levels,
    blend_weights,
    checked_series,
    series_days,
)
from retail_forecast.inference.predictor import Predictor

router = APIRouter(include_in_schema=False)
HERE: Final = Path(__file__).resolve().parent / "static"
_ASSETS: Final = {
    "dashboard.js": (HERE / "dashboard.js", "text/javascript; charset=utf-8"),
    "sketch.js": (HERE / "sketch.js", "text/javascript; charset=utf-8"),
    "dashboard.css": (HERE / "dashboard.css", "text/css; charset=utf-8"),
}


CHART_VIEWS: Final = frozenset({"series", "what-if", "monitoring"})
IMMUTABLE: Final = "public, max-age=31536000, immutable"


def plotly_bundle() -> Path | None:
    """Return the Plotly.js bundle inside the installed ``plotly`` package (found, not imported)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@cache
def plotly_url() -> str:
    """Return the bundle's URL, versioned by the plotly package, so it may be cached for good.

    The query only changes the URL when the package changes; the route ignores it.
    """
    try:
        version = importlib.metadata.version("plotly")
    except importlib.metadata.PackageNotFoundError:
        version = "none"
    return f"{pages.STATIC}/plotly.min.js?v={version}"


@cache
def plotly_gzip() -> bytes | None:
    """Return the bundle gzipped once per process (4.8 MB -> ~1.5 MB on the wire)."""
    path = plotly_bundle()
    return None if path is None else gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=303)


@router.get("/dashboard")
async def dashboard() -> RedirectResponse:
    return RedirectResponse("/dashboard/series", status_code=303)


def _page(state: ServiceState, view: str, title: str, body: str, **data: str) -> HTMLResponse:
    logout = bool(state.settings.api.api_keys)
    chart = plotly_url() if view in CHART_VIEWS else ""
    html = pages.layout(view, title, body, data=data, logout=logout, plotly=chart)
    return HTMLResponse(html, headers=pages.SECURITY_HEADERS)


def _predictor_or_page(state: ServiceState, view: str, title: str) -> Predictor | HTMLResponse:
    try:
        return state.require_predictor()
    except ApiError as exc:  # loading or failed: say so on the page, with the API's status
        body = f'<p class="alert alert-on" id="not-ready">{escape(exc.message)}</p>'
        response = _page(state, view, title, body)
        response.status_code = exc.status
        return response


def _series(predictor: Predictor) -> list[tuple[int, str]]:
    domain = predictor.domain
    return [(store, family) for store in domain.stores for family in domain.families]


def _levels(predictor: Predictor) -> str:
    return ",".join(str(level) for level in band_levels(predictor))


@router.get("/dashboard/series")
async def series_page(state: StateDep) -> HTMLResponse:
    predictor = _predictor_or_page(state, "series", "Series")
    if isinstance(predictor, HTMLResponse):
        return predictor
    body = pages.series_body(_series(predictor))
    # the Why panel asks the API for explain: true, which only the local backend answers
    explain = {"explain": "1"} if can_explain(predictor) else {}
    return _page(state, "series", "Series", body, quantiles=_levels(predictor), **explain)


@router.get("/dashboard/what-if")
async def what_if_page(state: StateDep) -> HTMLResponse:
    predictor = _predictor_or_page(state, "what-if", "What-if: planned promotions")
    if isinstance(predictor, HTMLResponse):
        return predictor
    body = pages.what_if_body(_series(predictor))
    return _page(
        state, "what-if", "What-if: planned promotions", body, quantiles=_levels(predictor)
    )


@router.get("/dashboard/monitoring")
async def monitoring_page(state: StateDep) -> HTMLResponse:
    return _page(state, "monitoring", "Monitoring", pages.monitoring_body())


@router.get("/dashboard/model")
async def model_page(state: StateDep) -> HTMLResponse:
    predictor = _predictor_or_page(state, "model", "Model")
    if isinstance(predictor, HTMLResponse):
        return predictor
    return _page(state, "model", "Model", model_body(predictor))


def model_body(predictor: Predictor) -> str:
    """Version, training window, the backtest table and the blend weights, from the bundle."""
    details = predictor.describe()
    window = details.get("train_window") or {}
    history = details.get("history") or {}
    body = pages.facts(
        [
            ("version", predictor.model_version),
            ("backend", details.get("backend")),
            ("model", details.get("model_type")),
            ("created", details.get("created_at")),
            ("training window", f"{window.get('start', '?')} .. {window.get('end', '?')}"),
            ("horizon (days)", details.get("horizon")),
            ("history end", history.get("end")),
        ]
    )
    models, rows = backtest_table(predictor)
    body += "<h2>Backtest (RMSLE per fold)</h2>"
    body += (
        pages.table(
            ["fold", *models],
            ([r["label"], *(r[m] for m in models)] for r in rows),
            table_id="backtest",
        )
        if rows
        else "<p>The bundle has no backtest table.</p>"
    )
    weights = blend_weights(predictor)
    body += "<h2>Blend weights (XGBoost's share in log space)</h2>"
    if weights is None:
        blend = details.get("blend") or {}
        return body + pages.facts([("global XGBoost weight", blend.get("global_xgboost_weight"))])
    per_family = [[family, w, 1.0 - w] for family, w in weights["per_family"].items()]
    global_w = float(weights["global_weight"])
    rows_w = [["every other family", global_w, 1.0 - global_w], *per_family]
    header = ["family", f"{weights['first']} weight", f"{weights['second']} weight"]
    return body + pages.table(header, rows_w, table_id="weights")


@router.get("/dashboard/data/series")
async def series_data(request: Request, state: StateDep) -> JSONResponse:
    """One series' last 90 days and the forecast window: what the charts draw besides forecasts."""
    predictor = state.require_predictor()
    params = request.query_params
    store, family = checked_series(predictor.domain, params.get("store_nbr"), params.get("family"))
    work = partial(series_days, predictor, store, family)
    days = await state.run(work, deadline=request_deadline(request))
    return JSONResponse(days.to_dict(), headers={"Cache-Control": "no-store"})


@router.get("/dashboard/static/plotly.min.js")
async def plotly_js(request: Request, state: StateDep) -> Response:
    """Plotly.js, gzipped when the browser accepts it; cached for a year (versioned URL)."""
    path = plotly_bundle()
    if path is None:
        raise ApiError(404, "Plotly.js is not installed: pip install 'retail-forecast[dashboard]'")
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = await state.run(plotly_gzip, deadline=request_deadline(request))
        if body is not None:
            headers["Content-Encoding"] = "gzip"
            return Response(body, media_type="text/javascript", headers=headers)
    return FileResponse(path, media_type="text/javascript", headers=headers)


@router.get("/dashboard/static/dashboard.js")
async def dashboard_js() -> FileResponse:
    return _asset("dashboard.js")


@router.get("/dashboard/static/sketch.js")
async def sketch_js() -> FileResponse:
    return _asset("sketch.js")


@router.get("/dashboard/static/dashboard.css")
async def dashboard_css() -> FileResponse:
    return _asset("dashboard.css")


def _asset(name: str) -> FileResponse:
    path, media_type = _ASSETS[name]  # a fixed name from the route, never from the request
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})
