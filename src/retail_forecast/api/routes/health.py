"""GET /health (alive) and GET /ready (bundle loaded, verified and warmed up)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from retail_forecast.api.deps import ServiceState
from retail_forecast.api.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "The model load failed"}},
)
async def health(request: Request) -> JSONResponse:
    """Liveness: 200 while loading or serving; 503 once the load has failed (promise 1).

    The load is never retried in a process, so a failed one never serves again: only a
    restart (which re-reads ``current``) can help, and that is what a failed liveness asks for.
    """
    state = getattr(request.app.state, "service", None)
    if isinstance(state, ServiceState) and state.status == "failed":
        return JSONResponse(HealthResponse(status="failed").model_dump(mode="json"), 503)
    return JSONResponse(HealthResponse(status="ok").model_dump(mode="json"))


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "Loading, or the load failed"}},
)
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 only once the bundle is loaded, verified and one prediction has passed.

    A predictor that serves with less than its full contract (a history store that cannot be
    written: forecasts yes, actuals no) is still 200, so orchestrators keep routing forecasts
    to it; the body says ``"degraded"`` and why.
    """
    state = getattr(request.app.state, "service", None)
    if not isinstance(state, ServiceState):
        body = ReadyResponse(status="loading")
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    predictor = state.predictor
    if predictor is None:
        body = ReadyResponse(status=state.status, reason=state.reason)
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    degraded = getattr(predictor, "degraded_reason", None)  # optional: LocalPredictor's
    if isinstance(degraded, str):
        body = ReadyResponse(
            status="degraded", model_version=predictor.model_version, reason=degraded
        )
        return JSONResponse(body.model_dump(mode="json"))
    body = ReadyResponse(status="ready", model_version=predictor.model_version)
    return JSONResponse(body.model_dump(mode="json"))
