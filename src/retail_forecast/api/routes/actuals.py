"""POST /api/v1/actuals: append observed sales; the history end moves, no retraining.

A row may say ``"confirm_spike": true`` (its value is real although far above the series'
history) and ``"correction": true`` (it replaces a different stored value, audited in both
stores); storage.conflict_policy and storage.plausibility hold the rules, the history store
applies them, and a row it refuses by rule is a 422 naming ``rows[i].<field>`` and the bound.
A row with ``"open": 0`` is a day the store was closed: its sales must be 0, and it is stored
as a closed day (``is_closed``), which the lags carry the last open day over (promise 37).
"""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request, Response

from retail_forecast.api.deps import StateDep, request_deadline
from retail_forecast.api.errors import request_id_of
from retail_forecast.api.jsonbody import parse_json_body
from retail_forecast.api.routes.common import error_responses, json_body
from retail_forecast.api.schemas import ActualsResponse, ActualsRow
from retail_forecast.api.validation import (
    Problems,
    RowBatch,
    check_actuals_window,
    check_closed_actuals,
    check_domain,
    check_duplicates,
    extract_rows,
    raise_if_any,
    refused_rows,
    validate_types,
)
from retail_forecast.inference.predictor import Predictor
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.storage.conflict_policy import CORRECTION
from retail_forecast.storage.corrections import REQUEST_ID
from retail_forecast.storage.plausibility import CONFIRM_SPIKE, RefusedRowsError

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
    409 naming the rows, unless the row says ``"correction": true`` (it replaces the stored
    value in the history and the prediction log, audited with this request's id). A value far
    above the series' history is a 422 naming the row and its bound, unless the row says
    ``"confirm_spike": true``. Nothing of a refused request is applied.
    """
    predictor = state.require_predictor()
    body = await request.body()
    work = partial(
        accept_actuals,
        body,
        predictor=predictor,
        max_rows=state.settings.api.max_rows,
        request_id=request_id_of(request),
    )
    content, accepted = await state.run(work, deadline=request_deadline(request))
    if accepted[CORRECTION].any():  # drift is cached per history end, which did not move
        state.drift_cache.clear()
    # The history store took them; monitoring scores forecasts with them, off the request path.
    state.recorder.record_actuals(accepted)
    return Response(content, media_type="application/json")


def answer_actuals(body: bytes, *, predictor: Predictor, max_rows: int) -> bytes:
    return accept_actuals(body, predictor=predictor, max_rows=max_rows)[0]


def accept_actuals(
    body: bytes, *, predictor: Predictor, max_rows: int, request_id: str | None = None
) -> tuple[bytes, pd.DataFrame]:
    """Validate and append; return the JSON answer and the accepted rows (for monitoring)."""
    rows = extract_rows(parse_json_body(body), max_rows=max_rows)
    domain = predictor.domain
    problems = Problems()
    batch = validate_types(rows, ActualsRow, problems)
    check_domain(batch, domain, problems, window=False)
    check_actuals_window(batch, domain, problems)
    check_duplicates(batch, problems)
    check_closed_actuals(batch, problems)
    raise_if_any(problems, domain, len(rows))
    accepted = _frame(batch, predictor, request_id)
    try:
        appended = predictor.append_actuals(accepted)
    except RefusedRowsError as exc:
        raise refused_rows(exc, batch, domain, len(rows)) from None
    answer = ActualsResponse(
        model_version=predictor.model_version,
        received=len(rows),
        appended=appended,
        history_end=predictor.domain.history_end,
    )
    content = json.dumps(answer.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
    return content, accepted


def _frame(batch: RowBatch, predictor: Predictor, request_id: str | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            DATE: pd.to_datetime(batch.date),
            STORE: pd.array(batch.store_nbr, dtype="int64"),
            FAMILY: pd.Categorical(batch.family, categories=sorted(predictor.domain.families)),
            PROMO: pd.array(batch.onpromotion, dtype="int64"),
            TARGET: pd.array(batch.sales, dtype="float64"),
            IS_CLOSED: np.asarray(batch.closed, dtype=bool),  # open 0: stored as a closed day
            CONFIRM_SPIKE: np.asarray(batch.confirm_spike, dtype=bool),
            CORRECTION: np.asarray(batch.correction, dtype=bool),
            REQUEST_ID: request_id,  # recorded with corrections (audit)
        }
    )
