"""POST /api/v1/predict: rows shaped like Kaggle's test.csv -> one forecast per row."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from retail_forecast.api import predict_service
from retail_forecast.api.deps import StateDep, request_deadline
from retail_forecast.api.routes.common import error_responses, json_body
from retail_forecast.api.schemas import PredictResponse

router = APIRouter(tags=["forecast"])


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=error_responses(),
    openapi_extra=json_body("PredictRequest"),
    summary="Forecast daily sales for rows of the forecast window (the bundle's horizon)",
)
async def predict(request: Request, state: StateDep) -> Response:
    """Validate every row, forecast them in request order; 25 December is closed (sales 0).

    The work runs in the bounded pool (:mod:`retail_forecast.api.predict_service`).
    """
    received = dt.datetime.now(dt.UTC)
    predictor = state.require_predictor()
    body = await request.body()
    content = await predict_service.serve_request(
        state, predictor, body, deadline=request_deadline(request), received=received
    )
    return Response(content, media_type="application/json")
