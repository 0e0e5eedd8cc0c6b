"""Rolling means of sales shifted by >= 1 day (no leakage), full-panel and one-day forms.

Sums are accumulated lag by lag in a fixed order (lag 1, 2, ..., w), in both the full-panel
path used for training and the one-day path used by the recursion, so both give bit-identical
values (a cumulative-sum difference would depend on where the history starts). A window with
any missing day is NaN, as mlforecast's ``RollingMean`` with ``min_samples = window``.
"""

from __future__ import annotations

import numpy as np

from retail_forecast.features.lags import FloatArray, lag_at, shift_days


def rolling_mean(values: FloatArray, window: int) -> FloatArray:
    """Mean of days t-1 .. t-window for every day t of a (series, day) panel."""
    return rolling_means(values, (window,))[window]


def rolling_means(values: FloatArray, windows: tuple[int, ...]) -> dict[int, FloatArray]:
    """Compute rolling means for several windows in one pass (same sums as one by one)."""
    acc = shift_days(values, 1)
    out: dict[int, FloatArray] = {}
    longest = max(windows)
    for lag in range(1, longest + 1):
        if lag > 1:
            acc[:, lag:] += values[:, :-lag]
            acc[:, lag - 1 : lag] = np.nan
        if lag in windows:
            out[lag] = acc / float(lag)
    return out


def rolling_mean_at(values: FloatArray, window: int, day: int) -> FloatArray:
    """Mean of days ``day-1 .. day-window`` of every series (one recursion step)."""
    acc = lag_at(values, 1, day)
    for lag in range(2, window + 1):
        acc = acc + lag_at(values, lag, day)
    return acc / float(window)


def seasonal_mean(values: FloatArray, season: int, count: int) -> FloatArray:
    """Mean of days t-season, t-2*season, ..., t-count*season (e.g. the last 4 same weekdays)."""
    acc = shift_days(values, season)
    for k in range(2, count + 1):
        lag = k * season
        acc[:, lag:] += values[:, :-lag]
        acc[:, : min(lag, acc.shape[1])] = np.nan
    return acc / float(count)


def seasonal_mean_at(values: FloatArray, season: int, count: int, day: int) -> FloatArray:
    """One-day form of :func:`seasonal_mean`."""
    acc = lag_at(values, season, day)
    for k in range(2, count + 1):
        acc = acc + lag_at(values, k * season, day)
    return acc / float(count)
