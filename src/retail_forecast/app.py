"""create_app(): FastAPI; its lifespan loads one bundle in the background and warms it up.

Run it with the factory form (settings from env / .env):

    uvicorn retail_forecast.app:create_app --factory --host 127.0.0.1 --port 8000 \
        --timeout-graceful-shutdown 20
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pandas as pd
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from starlette.middleware.cors import CORSMiddleware

from retail_forecast.api.deps import ServiceState
from retail_forecast.api.errors import install_error_handlers
from retail_forecast.api.routes import actuals, health, models, monitoring, predict
from retail_forecast.api.runtime.middleware import (
    API_KEY_HEADER,
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    ConnectionRecycleMiddleware,
    LoadSheddingMiddleware,
    RequestIdMiddleware,
)
from retail_forecast.api.schemas import ActualsRequest, PredictRequest, state_sales_bounds
from retail_forecast.api.validation import actuals_window
from retail_forecast.config import Settings
from retail_forecast.dashboard.routes import router as dashboard_router
from retail_forecast.dashboard.session import DashboardSessionMiddleware
from retail_forecast.errors import ArtifactError, ForecastError
from retail_forecast.inference.postprocess import checked_frame
from retail_forecast.inference.predictor import Predictor, PredictorLoader, ServingDomain
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE
from retail_forecast.utils.log import configure_logging
from retail_forecast.utils.memory import freeze_loaded_objects

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def default_loader(settings: Settings) -> Predictor:
    """Verify and load ``settings.artifacts_dir/current``: in-process or on SageMaker endpoints.

    The backend is ``RF_API__PREDICTOR_BACKEND`` or the plain ``PREDICTOR_BACKEND``
    (``local`` by default, ``sagemaker``: see ``inference/sagemaker.py``).
    """
    from retail_forecast.inference.local import LocalPredictor  # torch/xgboost: load lazily
    from retail_forecast.inference.sagemaker import SageMakerPredictor, resolve_backend

    if resolve_backend(settings) == "sagemaker":
        return SageMakerPredictor.load(settings)
    return LocalPredictor.load(settings)


def create_app(
    settings: Settings | None = None,
    *,
    load_predictor: PredictorLoader | None = None,
    freeze_gc: bool | None = None,
) -> FastAPI:
    """Build the app; with no settings (uvicorn ``--factory``) read env / .env and log.

    ``freeze_gc``: once the model is warm, freeze the objects loaded so far out of the garbage
    collector (:func:`~retail_forecast.utils.memory.freeze_loaded_objects`); for a process that
    is the server (``serve``, and by default the ``--factory`` form), not one that builds apps
    in passing (tests).
    """
    if settings is None:
        settings = Settings()
        configure_logging(settings.log_level, settings.log_dir)
        freeze_gc = True if freeze_gc is None else freeze_gc
    loader = load_predictor or default_loader
    app = FastAPI(
        title="retail_forecast",
        version="1",
        summary="Daily sales per (store_nbr, family), the bundle's horizon ahead.",
        lifespan=_lifespan(settings, loader, freeze_gc=bool(freeze_gc)),
    )
    install_error_handlers(app)
    app.include_router(health.router)
    for module in (predict, actuals, models, monitoring):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(dashboard_router)  # `/` redirects to the planner dashboard
    _add_middleware(app, settings)
    app.openapi = _openapi_builder(app, settings)  # type: ignore[method-assign]
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Added innermost first. Outermost to innermost: RequestId -> connection recycling -> CORS
    # (answers preflights, which carry no key) -> dashboard session -> API key (before any slot
    # is taken or any body byte read, promise 16) -> shedding -> body limit.
    api = settings.api
    json_paths = frozenset({f"{API_PREFIX}/predict", f"{API_PREFIX}/actuals"})
    app.add_middleware(
        BodyLimitMiddleware, max_body_bytes=api.max_body_bytes, json_paths=json_paths
    )
    app.add_middleware(
        LoadSheddingMiddleware, max_in_flight=api.max_in_flight, retry_after_s=api.retry_after_s
    )
    if api.api_keys:
        app.add_middleware(ApiKeyMiddleware, api_keys=api.api_keys)
        # outside the key check: the dashboard's login and its session cookie stand for the key
        app.add_middleware(DashboardSessionMiddleware, api_keys=api.api_keys)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(api.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Api-Key", "X-Request-ID"],
            allow_credentials=api.cors_allow_credentials,
        )
    if api.max_requests_per_connection:
        app.add_middleware(
            ConnectionRecycleMiddleware, max_requests=api.max_requests_per_connection
        )
    app.add_middleware(RequestIdMiddleware, request_timeout_s=api.request_timeout_s)


def _lifespan(
    settings: Settings, loader: PredictorLoader, *, freeze_gc: bool
) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServiceState(settings)
        app.state.service = state
        # Never on the request path: /health answers while the bundle loads (promise 9).
        thread = threading.Thread(
            target=load_and_warm,
            args=(state, loader),
            kwargs={"freeze_gc": freeze_gc},
            name="rf-model-load",
            daemon=True,
        )
        thread.start()
        if settings.api.workers > 1:
            # One of several workers (`serve --workers N`): its socket starts listening only
            # when the lifespan has started, so waiting here keeps a loading or respawned
            # worker out of traffic while the others serve (promise 9).
            await asyncio.to_thread(thread.join)
        try:
            yield
        finally:
            state.close()

    return lifespan


def load_and_warm(state: ServiceState, loader: PredictorLoader, *, freeze_gc: bool = False) -> None:
    """Load (the loader verifies the bundle), run one warm-up prediction, then mark ready."""
    try:
        predictor = loader(state.settings)
        warm_up(predictor)
        if freeze_gc:
            freeze_loaded_objects()
    except ForecastError as exc:
        logger.error("model load failed: %s", exc)
        state.mark_failed(f"model load failed ({type(exc).__name__}); see the service log")
        return
    except Exception:
        logger.exception("model load crashed")
        state.mark_failed("model load crashed; see the service log")
        return
    state.mark_ready(predictor)
    logger.info("model ready version=%s", predictor.model_version)


def warm_up(predictor: Predictor) -> None:
    """One prediction on a fixed row (first store and family, first open day)."""
    domain = predictor.domain
    day = next(d for d in domain.window() if not domain.closures.is_closed(d))
    row = pd.DataFrame(
        {
            DATE: pd.to_datetime([day]),
            STORE: pd.array([domain.stores[0]], dtype="int64"),
            FAMILY: pd.Categorical([domain.families[0]], categories=sorted(domain.families)),
            PROMO: pd.array([0], dtype="int64"),
        }
    )
    try:
        checked_frame(predictor.predict(row), 1)
    except ForecastError as exc:
        raise ArtifactError(f"warm-up prediction failed: {exc}") from exc


def _openapi_builder(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """Build the schema with the loaded bundle's sets and window, so fuzzers test them."""
    base: dict[str, Any] = {}

    def build() -> dict[str, Any]:
        if not base:
            base.update(
                get_openapi(
                    title=app.title, version=app.version, summary=app.summary, routes=app.routes
                )
            )
            _, defs = models_json_schema(
                [(PredictRequest, "validation"), (ActualsRequest, "validation")],
                ref_template="#/components/schemas/{model}",
            )
            base.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
        schema = copy.deepcopy(base)
        components = schema["components"]["schemas"]
        for name in ("PredictRequest", "ActualsRequest"):
            components[name]["properties"]["rows"]["maxItems"] = settings.api.max_rows
        state_sales_bounds(components, settings.actuals)  # the plausibility rule of actuals
        if settings.api.api_keys:
            _state_api_key(schema)
        state = getattr(app.state, "service", None)
        predictor = state.predictor if isinstance(state, ServiceState) else None
        if predictor is not None:
            _state_domain(components, predictor.domain)
        return schema

    return build


def _state_domain(components: dict[str, Any], domain: ServingDomain) -> None:
    for name in ("PredictRow", "ActualsRow"):
        props = components[name]["properties"]
        if domain.is_contiguous_stores():
            props["store_nbr"].update(minimum=domain.stores[0], maximum=domain.stores[-1])
        else:
            props["store_nbr"]["enum"] = list(domain.stores)
        props["family"]["enum"] = list(domain.families)
        props["onpromotion"]["maximum"] = domain.onpromotion_cap
    window = [d.isoformat() for d in domain.window()]
    components["PredictRow"]["properties"]["date"]["enum"] = window
    # JSON Schema has no bounds for date strings (minimum/maximum are for numbers), so the
    # accepted days are listed: fuzzers and clients can generate rows the service accepts.
    first, last = actuals_window(domain)
    days = [(first + dt.timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]
    components["ActualsRow"]["properties"]["date"].update(
        enum=days, description=f"From {first} to {last}."
    )


def _state_api_key(schema: dict[str, Any]) -> None:
    """Every operation needs the key header, except the probes (promise 16)."""
    schema["components"]["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
    }
    schema["security"] = [{"ApiKey": []}]
    for path in ("/health", "/ready"):
        schema["paths"][path]["get"]["security"] = []


app = create_app
"""``uvicorn retail_forecast.app:app --factory`` works too (same factory)."""
