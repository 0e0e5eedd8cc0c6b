"""Forecast accuracy metrics: RMSLE (the competition metric), MAE, WAPE, bias."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import DataValidationError

FloatArray = npt.NDArray[np.float64]


def _pair(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if a.shape != f.shape or a.size == 0:
        raise DataValidationError(f"metric needs equal non-empty shapes, got {a.shape}, {f.shape}")
    if np.isnan(f).any() or (f < 0).any() or (a < 0).any():
        raise DataValidationError("metric inputs must be non-negative and not NaN")
    return a, f


def rmsle(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Root mean squared log error: sqrt(mean((log1p(f) - log1p(a))^2))."""
    a, f = _pair(actual, forecast)
    return float(np.sqrt(np.mean((np.log1p(f) - np.log1p(a)) ** 2)))


def mae(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean absolute error in units."""
    a, f = _pair(actual, forecast)
    return float(np.mean(np.abs(f - a)))


def wape(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Weighted absolute percentage error: sum|f - a| / sum a (NaN when no sales at all)."""
    a, f = _pair(actual, forecast)
    total = a.sum()
    return float(np.abs(f - a).sum() / total) if total > 0 else float("nan")


def bias(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Relative bias: (sum f - sum a) / sum a (NaN when no sales at all)."""
    a, f = _pair(actual, forecast)
    total = a.sum()
    return float((f.sum() - total) / total) if total > 0 else float("nan")


def grouped_rmsle(
    frame: pd.DataFrame, *, by: str, actual: str, models: list[str]
) -> dict[str, dict[str, float]]:
    """RMSLE of each model column per value of ``by``: ``{group: {model: rmsle}}``."""
    out: dict[str, dict[str, float]] = {}
    for key, group in frame.groupby(by, observed=True, sort=True):
        out[str(key)] = {m: rmsle(group[actual], group[m]) for m in models}
    return out
