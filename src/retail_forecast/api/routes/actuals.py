"""POST /api/v1/actuals: append observed sales; the history end moves, no retraining."""

from __future__ import annotations

import json
from functools import partial

import pandas as pd
from fastapi import APIRouter, Request, Response

from retail_forecast.api.deps import StateDep, request_deadline
from retail_forecast.api.jsonbody import parse_json_body
from retail_forecast.api.routes.common import error_responses, json_body
from retail_forecast.api.schemas import ActualsResponse, ActualsRow
from retail_forecast.api.validation import (
    Problems,
    RowBatch,
    check_actuals_window,
    check_domain,
    check_duplicates,
    extract_rows,
    raise_if_any,
    validate_types,
)
from retail_forecast.inference.predictor import Predictor
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE, TARGET

router = APIRouter(tags=["actuals"])


@router.post(
    "/actuals",
    response_model=ActualsResponse,
    responses=error_responses(409),
    openapi_extra=json_body("ActualsRequest"),
    summary="Append observed daily sales (idempotent; a conflicting value is a 409)",
)
async def actuals(request: Request, state: StateDep) -> Response:
    """Append rows to the server-side history under the storage package's conflict policy.

    Sending the same rows again changes nothing; a different value for a stored actual is a
    409 naming the rows, and nothing of the request is applied.
    """
    predictor = state.require_predictor()
    body = await request.body()
    work = partial(accept_actuals, body, predictor=predictor, max_rows=state.settings.api.max_rows)
    content, accepted = await state.run(work, deadline=request_deadline(request))
    # The history store took them; monitoring scores forecasts with them, off the request path.
    state.recorder.record_actuals(accepted)
    return Response(content, media_type="application/json")


def answer_actuals(body: bytes, *, predictor: Predictor, max_rows: int) -> bytes:
    return accept_actuals(body, predictor=predictor, max_rows=max_rows)[0]


def accept_actuals(
    body: bytes, *, predictor: Predictor, max_rows: int
) -> tuple[bytes, pd.DataFrame]:
    """Validate and append; return the JSON answer and the accepted rows (for monitoring)."""
    rows = extract_rows(parse_json_body(body), max_rows=max_rows)
    domain = predictor.domain
    problems = Problems()
    batch = validate_types(rows, ActualsRow, problems)
    check_domain(batch, domain, problems, window=False)
    check_actuals_window(batch, domain, problems)
    check_duplicates(batch, problems)
    raise_if_any(problems, domain, len(rows))
    accepted = _frame(batch, predictor)
    appended = predictor.append_actuals(accepted)
    answer = ActualsResponse(
        model_version=predictor.model_version,
        received=len(rows),
        appended=appended,
        history_end=predictor.domain.history_end,
    )
    content = json.dumps(answer.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
    return content, accepted


def _frame(batch: RowBatch, predictor: Predictor) -> pd.DataFrame:
    return pd.DataFrame(
        {
            DATE: pd.to_datetime(batch.date),
            STORE: pd.array(batch.store_nbr, dtype="int64"),
            FAMILY: pd.Categorical(batch.family, categories=sorted(predictor.domain.families)),
            PROMO: pd.array(batch.onpromotion, dtype="int64"),
            TARGET: pd.array(batch.sales, dtype="float64"),
        }
    )
