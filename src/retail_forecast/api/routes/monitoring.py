"""GET /api/v1/monitoring/status (accuracy vs the backtest) and /drift (history vs reference).

Both answer 200 with a status whenever the model is ready (promise 26, docs/RELIABILITY.md): the
computations are :mod:`retail_forecast.monitoring.status`'s; this module gathers their inputs,
runs them in the bounded pool under the request deadline and maps the results to the response
schemas. Drift answers are cached per (model version, history end).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from functools import partial
from typing import Any

from fastapi import APIRouter, Request

from retail_forecast.api.deps import StateDep, request_deadline
from retail_forecast.api.monitoring_schemas import (
    AccuracyRow,
    DateWindow,
    DriftResponse,
    MonitoringStatusResponse,
    PredictionLogStats,
    QuantileCoverage,
)
from retail_forecast.api.routes.common import error_responses
from retail_forecast.api.runtime.recorder import RecorderStats
from retail_forecast.config import MonitoringConfig
from retail_forecast.inference.predictor import MonitoringSource, Predictor
from retail_forecast.monitoring.accuracy import UNAVAILABLE
from retail_forecast.monitoring.status import DriftOutcome, serving_drift, serving_status
from retail_forecast.storage.prediction_log_db import PredictionLogDB

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    k: v for k, v in error_responses().items() if k in (401, 500, 503, 504)
}


@router.get(
    "/status",
    response_model=MonitoringStatusResponse,
    responses=_RESPONSES,
    summary="Recent forecast accuracy of the serving version vs its backtest; alert if degraded",
)
async def monitoring_status(request: Request, state: StateDep) -> MonitoringStatusResponse:
    """``degraded`` (alert) when the recent RMSLE exceeds the configured ratio x the backtest.

    ``coverage``: the served quantiles' central intervals over the same window; its own
    ``alert`` (``miscalibrated``) when one leaves nominal +/- 5 points.
    """
    predictor = state.require_predictor()
    work = partial(
        build_status,
        predictor,
        log=state.recorder.log,
        config=state.settings.monitoring,
        stats=state.recorder.stats(),
    )
    return await state.run(work, deadline=request_deadline(request))


@router.get(
    "/drift",
    response_model=DriftResponse,
    responses=_RESPONSES,
    summary="Drift of the recent history window vs the bundle's reference profile",
)
async def monitoring_drift(request: Request, state: StateDep) -> DriftResponse:
    """Per-feature tests and forecast checks over the last ``drift_window_days`` of history."""
    predictor = state.require_predictor()
    work = partial(
        cached_drift, predictor, config=state.settings.monitoring, cache=state.drift_cache
    )
    return await state.run(work, deadline=request_deadline(request))


# --- status ----------------------------------------------------------------------------------


def build_status(
    predictor: Predictor, *, log: PredictionLogDB, config: MonitoringConfig, stats: RecorderStats
) -> MonitoringStatusResponse:
    """Answer /monitoring/status for the serving version (runs in the pool)."""
    version = predictor.model_version
    metrics = predictor.backtest_metrics if isinstance(predictor, MonitoringSource) else None
    rated = serving_status(log, metrics, model_version=version, config=config)
    body = rated.status.to_dict()
    window = body.pop("window")
    body["model_version"] = version
    coverage = rated.coverage.to_dict()
    coverage.pop("model_version")
    coverage.pop("window_days")
    coverage["window"] = _date_window(coverage["window"])
    return MonitoringStatusResponse(
        **body,
        window=DateWindow(first=window[0], last=window[1]) if window else None,
        by_horizon_day=[AccuracyRow(**asdict(day)) for day in rated.by_horizon_day],
        coverage=QuantileCoverage.model_validate(coverage),
        prediction_log=PredictionLogStats(**asdict(stats)),
    )


# --- drift -----------------------------------------------------------------------------------


def cached_drift(
    predictor: Predictor, *, config: MonitoringConfig, cache: dict[tuple[str, str], Any]
) -> DriftResponse:
    """Compute drift once per (version, history end); failures are answered, not cached."""
    key = (predictor.model_version, predictor.domain.history_end.isoformat())
    hit = cache.get(key)
    if isinstance(hit, DriftResponse):
        return hit
    answer = compute_drift(predictor, config=config)
    if answer.status != UNAVAILABLE:
        cache.clear()  # one entry: the newest history end is the only one asked for
        cache[key] = answer
    return answer


def compute_drift(predictor: Predictor, *, config: MonitoringConfig) -> DriftResponse:
    """Drift of the last ``config.drift_window_days`` of the served history (runs in the pool)."""
    version, end = predictor.model_version, predictor.domain.history_end
    if isinstance(predictor, MonitoringSource):
        outcome = serving_drift(
            predictor.reference_profile,
            predictor.history_frame,
            config=config,
            model_version=version,
        )
    else:
        outcome = serving_drift(None, None, config=config, model_version=version)
    return drift_response(outcome, model_version=version, history_end=end)


def _date_window(pair: list[str | None] | None) -> DateWindow | None:
    if not pair or pair[0] is None or pair[1] is None:
        return None
    return DateWindow.model_validate({"first": pair[0], "last": pair[1]})


def drift_response(
    outcome: DriftOutcome, *, model_version: str, history_end: dt.date
) -> DriftResponse:
    """Map a drift outcome to its response: the report's tables, or an empty ``unavailable``."""
    if outcome.report is None:
        return DriftResponse(
            status="unavailable",
            model_version=model_version,
            message=outcome.message,
            history_end=history_end,
            window=None,
            reference_window=None,
            current_rows=0,
            reference_rows=0,
            drifted_features=[],
            drifted_checks=[],
            share_drifted=0.0,
            features=[],
            checks=[],
        )
    body = outcome.report.to_dict()
    body.update(
        model_version=model_version,
        message=outcome.message,
        history_end=history_end,
        window=_date_window(body["window"]),
        reference_window=_date_window(body["reference_window"]),
    )
    return DriftResponse.model_validate(body)
