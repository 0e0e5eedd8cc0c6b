"""GET /health (alive) and GET /ready (bundle loaded, verified and warmed up)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from retail_forecast.api.deps import ServiceState
from retail_forecast.api.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """Liveness: 200 whenever the process answers HTTP, model or not."""
    return HealthResponse(status="ok")


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "Loading, or the load failed"}},
)
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 only once the bundle is loaded, verified and one prediction has passed."""
    state = getattr(request.app.state, "service", None)
    if not isinstance(state, ServiceState):
        body = ReadyResponse(status="loading")
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    predictor = state.predictor
    if predictor is None:
        body = ReadyResponse(status=state.status, reason=state.reason)
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    body = ReadyResponse(status="ready", model_version=predictor.model_version)
    return JSONResponse(body.model_dump(mode="json"))
