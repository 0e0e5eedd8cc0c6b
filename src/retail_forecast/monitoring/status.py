"""The serving version's monitoring answers: accuracy vs the backtest, quantile coverage, drift.

What GET /api/v1/monitoring/status and /drift compute, without HTTP: the caller hands over the
prediction log and the model's monitoring sources (as callables, read only when needed) and
maps the result to its response. Every failure becomes a status, never an exception: a missing
reference profile or backtest metrics, an empty window or an unreadable store is
``unavailable`` or ``insufficient_data`` (docs/RELIABILITY.md, promise 26).
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from retail_forecast.config import MonitoringConfig
from retail_forecast.monitoring.accuracy import (
    HORIZON_DAY,
    UNAVAILABLE,
    MonitoringStatus,
    accuracy_table,
    evaluate_status,
)
from retail_forecast.monitoring.coverage import CoverageStatus, coverage_status
from retail_forecast.monitoring.drift import DriftReport, check_drift
from retail_forecast.monitoring.reference import window_features
from retail_forecast.schema import DATE
from retail_forecast.storage.prediction_log_db import PredictionLogDB

logger = logging.getLogger(__name__)

MetricsSource = Callable[[], Mapping[str, Any] | None]
"""Reads the bundle's metrics.json (``BacktestResult.to_dict()``), or None without one."""


@dataclass(frozen=True)
class HorizonAccuracy:
    """Accuracy of the scored forecasts of one horizon day (None where not finite)."""

    horizon_day: int
    rmsle: float | None
    mae: float | None
    bias: float | None
    n: int


@dataclass(frozen=True)
class ServingStatus:
    """The status of one model version, its accuracy per horizon day, its quantile coverage."""

    status: MonitoringStatus
    by_horizon_day: list[HorizonAccuracy]
    coverage: CoverageStatus


@dataclass(frozen=True)
class DriftOutcome:
    """A drift report with its one-line summary, or ``unavailable`` (``report`` None) and why."""

    status: str
    message: str
    report: DriftReport | None = None


# --- status ----------------------------------------------------------------------------------


def serving_status(
    log: PredictionLogDB,
    metrics: MetricsSource | None,
    *,
    model_version: str,
    config: MonitoringConfig,
) -> ServingStatus:
    """Rate ``model_version`` over the last ``config.window_days`` of the log.

    One SQL join for accuracy, one for the coverage of the served quantiles (same window).
    ``metrics`` is read only once the log answered; None: the model has no metrics source.
    """
    try:
        joined = log.joined(window_days=config.window_days, model_version=model_version)
    except (sqlite3.Error, OSError):
        logger.exception("monitoring store unreadable db=%s", log.db_path)
        status = MonitoringStatus(
            UNAVAILABLE,
            False,
            model_version,
            config.degradation_ratio,
            config.window_days,
            message="the monitoring store is unreadable; see the service log",
        )
        coverage = CoverageStatus(
            UNAVAILABLE, False, model_version, config.window_days, message=status.message
        )
        return ServingStatus(status, [], coverage)
    status = rate_version(joined, _read_metrics(metrics), version=model_version, config=config)
    coverage = coverage_status(log, model_version=model_version, window_days=config.window_days)
    return ServingStatus(status, accuracy_by_day(joined), coverage)


def _read_metrics(metrics: MetricsSource | None) -> Mapping[str, Any] | None:
    if metrics is None:
        return None
    try:
        return metrics()
    except Exception:  # a broken bundle file must not break the status
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


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def accuracy_by_day(joined: pd.DataFrame) -> list[HorizonAccuracy]:
    """RMSLE / MAE / bias per horizon day of the window's joined rows."""
    if joined.empty:
        return []
    table = accuracy_table(joined, by=HORIZON_DAY)
    return [
        HorizonAccuracy(
            horizon_day=int(row[HORIZON_DAY]),
            rmsle=_finite(row["rmsle"]),
            mae=_finite(row["mae"]),
            bias=_finite(row["bias"]),
            n=int(row["n"]),
        )
        for row in table.to_dict("records")
    ]


# --- drift -----------------------------------------------------------------------------------


def recent_window(history: pd.DataFrame, *, days: int) -> pd.DataFrame:
    """Features of the last ``days`` days of a canonical frame (earlier days as warm-up)."""
    if history.empty:
        return history
    end = pd.Timestamp(history[DATE].max())
    return window_features(history, start=end - pd.Timedelta(days=days - 1), end=end)


def serving_drift(
    reference_profile: Callable[[], pd.DataFrame | None] | None,
    history_frame: Callable[[], pd.DataFrame] | None,
    *,
    config: MonitoringConfig,
    model_version: str,
) -> DriftOutcome:
    """Drift of the last ``config.drift_window_days`` of the served history vs the reference.

    The two sources are the model's (None: it exposes none); the history is read only when a
    reference profile exists.
    """
    if reference_profile is None or history_frame is None:
        return DriftOutcome(
            UNAVAILABLE, "the serving backend exposes no reference profile or history"
        )
    try:
        reference = reference_profile()
        if reference is None:
            message = "the serving bundle has no reference profile (reference.parquet)"
            return DriftOutcome(UNAVAILABLE, message)
        current = recent_window(history_frame(), days=config.drift_window_days)
        report = check_drift(reference, current, config=config)
    except Exception:
        logger.exception("drift check failed version=%s", model_version)
        return DriftOutcome(UNAVAILABLE, "drift check failed; see the service log")
    return DriftOutcome(report.status, drift_summary(report), report)


def drift_summary(report: DriftReport) -> str:
    """One line: what drifted, or that nothing did, or that the window was too small."""
    if report.status == "drift":
        return f"drift in features {report.drifted_features} and checks {report.drifted_checks}"
    if report.status == "ok":
        return f"no drift over {report.current_rows} rows"
    return f"too little data to test ({report.current_rows} rows in the window)"
