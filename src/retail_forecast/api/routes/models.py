"""GET /api/v1/models: the serving bundle's version, domain, train window and metrics."""

from __future__ import annotations

from fastapi import APIRouter

from retail_forecast.api.deps import PredictorDep
from retail_forecast.api.routes.common import error_responses
from retail_forecast.api.schemas import DomainResponse, ModelsResponse

router = APIRouter(tags=["models"])


@router.get(
    "/models",
    response_model=ModelsResponse,
    responses={k: v for k, v in error_responses().items() if k in (401, 500, 503)},
)
def models(predictor: PredictorDep) -> ModelsResponse:
    """Describe the model now serving and the exact window and sets a request may use."""
    domain = predictor.domain
    return ModelsResponse(
        model_version=predictor.model_version,
        domain=DomainResponse(
            stores=list(domain.stores),
            families=list(domain.families),
            history_end=domain.history_end,
            first_date=domain.first_date,
            last_date=domain.last_date,
            horizon=domain.horizon,
            onpromotion_cap=domain.onpromotion_cap,
        ),
        details=predictor.describe(),
    )
