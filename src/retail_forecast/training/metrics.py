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


M5_LEVELS: tuple[float, ...] = (0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995)
"""The nine quantile levels of the M5 uncertainty competition: the weighted quantile loss's."""

CENTRAL_INTERVALS: tuple[float, ...] = (0.5, 0.8, 0.95)
"""Central intervals whose coverage is reported: 0.8 is the (0.1, 0.9) quantile pair."""


def pinball_loss(actual: npt.ArrayLike, quantile: npt.ArrayLike, level: float) -> float:
    """Mean pinball (quantile) loss of ``quantile`` as the ``level`` quantile of ``actual``."""
    if not 0.0 < level < 1.0:
        raise DataValidationError(f"quantile level must be in (0, 1), got {level}")
    a, q = _pair(actual, quantile)
    diff = a - q
    return float(np.mean(np.maximum(level * diff, (level - 1.0) * diff)))


def weighted_quantile_loss(actual: npt.ArrayLike, quantiles: dict[float, npt.ArrayLike]) -> float:
    """Weighted quantile loss: mean over levels of 2 x sum of pinball losses / sum of |y|.

    GluonTS's ``mean_wQuantileLoss`` (the scale of a WAPE: 0 is perfect, the point forecast's
    WAPE at the median alone); NaN when the actuals sum to 0.
    """
    a = np.asarray(actual, dtype=np.float64)
    total = np.abs(a).sum()
    if total <= 0:
        return float("nan")
    losses = [2.0 * pinball_loss(a, q, level) * a.size / total for level, q in quantiles.items()]
    return float(np.mean(losses))


def interval_coverage(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> float:
    """Share of ``actual`` inside [lower, upper] (both ends included)."""
    a, lo = _pair(actual, lower)
    _, hi = _pair(actual, upper)
    return float(np.mean((a >= lo) & (a <= hi)))
