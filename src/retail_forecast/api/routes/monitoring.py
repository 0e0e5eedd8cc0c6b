"""GET /api/v1/monitoring/status (accuracy vs the backtest) and /drift (history vs reference).

Both answer 200 with a status whenever the model is ready: a missing reference profile or
backtest metrics, an empty window or an unreadable monitoring store is ``unavailable`` or
``insufficient_data``, never an error (RELIABILITY promise 26). The work runs in the bounded
pool under the request deadline; drift is cached per (model version, history end).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from typing import Any

import pandas as pd
from fastapi import APIRouter, Request

from retail_forecast.api.deps import StateDep, request_deadline
from retail_forecast.api.monitoring_schemas import (
    AccuracyRow,
    DateWindow,
    DriftResponse,
    MonitoringStatusResponse,
    PredictionLogStats,
)
from retail_forecast.api.routes.common import error_responses
from retail_forecast.api.runtime.recorder import RecorderStats
from retail_forecast.config import MonitoringConfig
from retail_forecast.inference.predictor import MonitoringSource, Predictor
from retail_forecast.monitoring.accuracy import (
    HORIZON_DAY,
    UNAVAILABLE,
    MonitoringStatus,
    accuracy_table,
    evaluate_status,
)
from retail_forecast.monitoring.drift import DriftReport, check_drift
from retail_forecast.monitoring.prediction_log import PredictionLog
from retail_forecast.monitoring.reference import window_features
from retail_forecast.schema import DATE

logger = logging.getLogger(__name__)
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
    """``degraded`` (alert) when the recent RMSLE exceeds the configured ratio x the backtest."""
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


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _backtest_metrics(predictor: Predictor) -> Mapping[str, Any] | None:
    if not isinstance(predictor, MonitoringSource):
        return None
    try:
        return predictor.backtest_metrics()
    except Exception:  # a broken bundle file must not break the status endpoint
        logger.exception("reading the bundle's backtest metrics failed")
        return None


def rate_version(
    joined: pd.DataFrame,
    metrics: Mapping[str, Any] | None,
    *,
    version: str,
    config: MonitoringConfig,
) -> MonitoringStatus:
    """MonitoringStatus of the window's joined rows; ``unavailable`` without metrics."""
    ratio, days = config.degradation_ratio, config.window_days
    if metrics is None:
        message = "the serving bundle has no backtest metrics to compare with"
        return MonitoringStatus(
            UNAVAILABLE, False, version, ratio, days, len(joined), message=message
        )
    try:
        return evaluate_status(
            joined,
            metrics,
            model_version=version,
            ratio=ratio,
            window_days=days,
            min_rows=config.min_accuracy_rows,
        )
    except Exception:  # e.g. malformed metrics.json: a status, not a 500
        logger.exception("monitoring status failed version=%s", version)
        message = "monitoring status failed; see the service log"
        return MonitoringStatus(UNAVAILABLE, False, version, ratio, days, message=message)


def accuracy_by_day(joined: pd.DataFrame) -> list[AccuracyRow]:
    """RMSLE / MAE / bias per horizon day of the window's joined rows."""
    if joined.empty:
        return []
    table = accuracy_table(joined, by=HORIZON_DAY)
    return [
        AccuracyRow(
            horizon_day=int(row[HORIZON_DAY]),
            rmsle=_finite(row["rmsle"]),
            mae=_finite(row["mae"]),
            bias=_finite(row["bias"]),
            n=int(row["n"]),
        )
        for row in table.to_dict("records")
    ]


def build_status(
    predictor: Predictor, *, log: PredictionLog, config: MonitoringConfig, stats: RecorderStats
) -> MonitoringStatusResponse:
    """Answer /monitoring/status for the serving version (runs in the pool; one SQL join)."""
    version = predictor.model_version
    by_day: list[AccuracyRow] = []
    try:
        joined = log.joined(window_days=config.window_days, model_version=version)
    except (sqlite3.Error, OSError):
        logger.exception("monitoring store unreadable db=%s", log.db_path)
        status = MonitoringStatus(
            UNAVAILABLE,
            False,
            version,
            config.degradation_ratio,
            config.window_days,
            message="the monitoring store is unreadable; see the service log",
        )
    else:
        status = rate_version(joined, _backtest_metrics(predictor), version=version, config=config)
        by_day = accuracy_by_day(joined)
    body = status.to_dict()
    window = body.pop("window")
    body["model_version"] = version
    return MonitoringStatusResponse(
        **body,
        window=DateWindow(first=window[0], last=window[1]) if window else None,
        by_horizon_day=by_day,
        prediction_log=PredictionLogStats(**asdict(stats)),
    )


# --- drift -----------------------------------------------------------------------------------


def recent_window(history: pd.DataFrame, *, days: int) -> pd.DataFrame:
    """Features of the last ``days`` days of a canonical frame (earlier days as warm-up)."""
    if history.empty:
        return history
    end = pd.Timestamp(history[DATE].max())
    return window_features(history, start=end - pd.Timedelta(days=days - 1), end=end)


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

    def unavailable(message: str) -> DriftResponse:
        return DriftResponse(
            status="unavailable",
            model_version=version,
            message=message,
            history_end=end,
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

    if not isinstance(predictor, MonitoringSource):
        return unavailable("the serving backend exposes no reference profile or history")
    try:
        reference = predictor.reference_profile()
        if reference is None:
            return unavailable("the serving bundle has no reference profile (reference.parquet)")
        current = recent_window(predictor.history_frame(), days=config.drift_window_days)
        report = check_drift(reference, current, config=config)
    except Exception:
        logger.exception("drift check failed version=%s", version)
        return unavailable("drift check failed; see the service log")
    return drift_response(report, model_version=version, history_end=end)


def _date_window(pair: list[str | None] | None) -> DateWindow | None:
    if not pair or pair[0] is None or pair[1] is None:
        return None
    return DateWindow.model_validate({"first": pair[0], "last": pair[1]})


def drift_response(
    report: DriftReport, *, model_version: str, history_end: dt.date
) -> DriftResponse:
    """Render a DriftReport with a one-line summary."""
    body = report.to_dict()
    if report.status == "drift":
        message = f"drift in features {report.drifted_features} and checks {report.drifted_checks}"
    elif report.status == "ok":
        message = f"no drift over {report.current_rows} rows"
    else:
        message = f"too little data to test ({report.current_rows} rows in the window)"
    body.update(
        model_version=model_version,
        message=message,
        history_end=history_end,
        window=_date_window(body["window"]),
        reference_window=_date_window(body["reference_window"]),
    )
    return DriftResponse.model_validate(body)
