"""Accuracy of logged forecasts (RMSLE, MAE, bias) and the degradation status vs the backtest.

The alert compares the RMSLE of the last ``window_days`` scored target days of ONE model
version with what the bundle's backtest (metrics.json, ``BacktestResult.to_dict()``) expects
for the same mix of horizon days: ``sqrt(sum_h n_h * rmsle_h**2 / sum_h n_h)`` from
``per_horizon_day`` (days 1..horizon differ a lot), else the ``mean`` RMSLE. Status values:

- ``degraded`` (alert): observed RMSLE > ratio x expected; logged at WARNING;
- ``ok``: within the ratio;
- ``insufficient_data``: fewer than ``min_rows`` scored predictions of that version, e.g.
  right after a retrain (a new version starts with no actuals), so a retrain clears an alert;
- ``no_baseline``: the metrics hold no RMSLE for the producing model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from retail_forecast.schema import DATE
from retail_forecast.storage import prediction_log_db as _log

logger = logging.getLogger(__name__)

PREDICTION, ACTUAL, MODEL, HORIZON_DAY = _log.PREDICTION, _log.ACTUAL, _log.MODEL, _log.HORIZON_DAY
OK, DEGRADED, INSUFFICIENT, NO_BASELINE = "ok", "degraded", "insufficient_data", "no_baseline"
UNAVAILABLE = "unavailable"
FALLBACK_MODELS = ("hybrid", "xgboost", "lstm")


def accuracy_table(joined: pd.DataFrame, *, by: str | Sequence[str] | None) -> pd.DataFrame:
    """Accuracy metrics of joined prediction/actual rows, overall or per group."""
    keys = [by] if isinstance(by, str) else list(by or [])
    work = pd.DataFrame(
        {
            "sq": (np.log1p(joined[PREDICTION]) - np.log1p(joined[ACTUAL])) ** 2,
            "abs": (joined[PREDICTION] - joined[ACTUAL]).abs(),
            "p": joined[PREDICTION],
            "a": joined[ACTUAL],
        }
    )
    for key in keys:
        work[key] = joined[key].to_numpy()
    if keys:
        sums = work.groupby(keys, sort=True).agg(
            sq=("sq", "mean"),
            mae=("abs", "mean"),
            p=("p", "sum"),
            a=("a", "sum"),
            n=("sq", "size"),
        )
    else:
        sums = pd.DataFrame(
            {
                "sq": [work["sq"].mean()],
                "mae": [work["abs"].mean()],
                "p": [work["p"].sum()],
                "a": [work["a"].sum()],
                "n": [len(work)],
            }
        )
    out = pd.DataFrame(
        {
            "rmsle": np.sqrt(sums["sq"]),
            "mae": sums["mae"],
            "bias": (sums["p"] - sums["a"]) / sums["a"].where(sums["a"] > 0),
            "n": sums["n"].astype(np.int64),
        }
    )
    return out.reset_index() if keys else out


@dataclass(frozen=True)
class MonitoringStatus:
    """Degradation status of one model version over the recent window."""

    status: str
    alert: bool
    model_version: str | None
    threshold_ratio: float
    window_days: int
    n: int = 0
    model: str | None = None
    rmsle: float | None = None
    baseline_rmsle: float | None = None
    ratio: float | None = None
    window: tuple[str, str] | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["window"] = list(self.window) if self.window else None
        for key in ("rmsle", "baseline_rmsle", "ratio"):
            value = out[key]
            out[key] = value if value is None or math.isfinite(value) else None
        return out


def _baseline_model(metrics: Mapping[str, Any], model: str | None) -> str | None:
    means = metrics.get("mean", {})
    if model in means:
        return model
    return next((name for name in FALLBACK_MODELS if name in means), None)


def expected_rmsle(
    metrics: Mapping[str, Any], model: str, horizon_counts: Mapping[int, int]
) -> float | None:
    """Backtest RMSLE for the given horizon-day mix (``per_horizon_day``), else the mean."""
    per_day = metrics.get("per_horizon_day", {})
    if horizon_counts and all(model in per_day.get(str(h), {}) for h in horizon_counts):
        total = sum(horizon_counts.values())
        mse = sum(n * float(per_day[str(h)][model]) ** 2 for h, n in horizon_counts.items())
        return math.sqrt(mse / total)
    mean = metrics.get("mean", {}).get(model)
    return None if mean is None else float(mean)


def evaluate_status(
    joined: pd.DataFrame,
    metrics: Mapping[str, Any],
    *,
    model_version: str | None,
    ratio: float,
    window_days: int,
    min_rows: int,
) -> MonitoringStatus:
    """Rate the joined rows of one version (already limited to the recent window)."""
    status = MonitoringStatus(INSUFFICIENT, False, model_version, ratio, window_days, len(joined))
    if len(joined) < min_rows:
        return replace(status, message=f"{len(joined)} scored predictions, {min_rows} needed")
    dates = pd.to_datetime(joined[DATE])
    logged = str(joined[MODEL].mode().iloc[0])
    model = _baseline_model(metrics, logged)
    days, sizes = np.unique(joined[HORIZON_DAY].to_numpy(dtype=np.int64), return_counts=True)
    counts = {int(h): int(n) for h, n in zip(days, sizes, strict=True)}
    baseline = expected_rmsle(metrics, model, counts) if model else None
    observed = float(accuracy_table(joined, by=None)["rmsle"].iloc[0])
    status = replace(
        status,
        model=logged,
        rmsle=observed,
        window=(str(dates.min().date()), str(dates.max().date())),
    )
    if baseline is None or baseline <= 0:
        message = f"no backtest RMSLE for model {logged!r}"
        logger.warning("monitoring status: %s", message)
        return replace(status, status=NO_BASELINE, message=message)
    now = observed / baseline
    status = replace(status, status=OK, baseline_rmsle=baseline, ratio=now)
    message = f"RMSLE {observed:.4f} is {now:.2f}x the backtest {baseline:.4f}"
    if now > ratio:
        message += f" (> {ratio}x)"
        logger.warning("forecast accuracy degraded version=%s %s", model_version, message)
        return replace(status, status=DEGRADED, alert=True, message=message)
    return replace(status, message=message)
