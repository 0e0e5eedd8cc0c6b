"""POST /api/v1/predict: rows shaped like Kaggle's test.csv -> one forecast per row."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from retail_forecast.api import predict_service
from retail_forecast.api.deps import StateDep, request_deadline
from retail_forecast.api.routes.common import error_responses, json_body
from retail_forecast.api.schemas import PredictResponse

router = APIRouter(tags=["forecast"])

_RESPONSES = error_responses(409)
_RESPONSES[409]["description"] = (
    "The request names quantiles and the serving model version has no quantile calibration "
    "(error quantiles_unavailable); the same request without quantiles is answered"
)


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=_RESPONSES,
    openapi_extra=json_body("PredictRequest"),
    summary="Forecast daily sales for rows of the forecast window (the bundle's horizon)",
)
async def predict(request: Request, state: StateDep) -> Response:
    """Validate every row, forecast them in request order; a closed day is 0.

    With ``"quantiles": [0.1, 0.9]`` each prediction also carries its quantiles at those levels
    (``"quantiles": {"0.1": 3.2, "0.9": 7.9}``), computed from the point forecasts by the
    bundle's calibration; without it the answer is point forecasts only, as before.

    The work runs in the bounded pool (:mod:`retail_forecast.api.predict_service`).
    """
    received = dt.datetime.now(dt.UTC)
    predictor = state.require_predictor()
    body = await request.body()
    content = await predict_service.serve_request(
        state, predictor, body, deadline=request_deadline(request), received=received
    )
    return Response(content, media_type="application/json")
