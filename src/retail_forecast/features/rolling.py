"""Rolling statistics of sales shifted by >= 1 day (no leakage), full-panel and one-day forms.

Rolling and seasonal means read days before day t; trailing means of a column known in
advance (promotions) read days t-w+1 .. t.

Sums are accumulated lag by lag in a fixed order (lag 1, 2, ..., w), in both the full-panel
path used for training and the one-day path used by the recursion, so both give bit-identical
values (a cumulative-sum difference would depend on where the history starts). A window with
any missing day is NaN, as mlforecast's ``RollingMean`` with ``min_samples = window``.
"""

from __future__ import annotations

import numpy as np

from retail_forecast.features.lags import FloatArray, shift_days


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


def rolling_means_at(recent: FloatArray, windows: tuple[int, ...]) -> dict[int, FloatArray]:
    """One-day :func:`rolling_means` from :func:`recent_days` (newest first).

    ``cumsum`` adds lag 1, 2, ..., w one after the other, the order of the full-panel sums.
    """
    sums = np.cumsum(recent[:, : max(windows)], axis=1)
    return {w: sums[:, w - 1] / float(w) for w in windows}


def seasonal_mean(values: FloatArray, season: int, count: int) -> FloatArray:
    """Mean of days t-season, t-2*season, ..., t-count*season (e.g. the last 4 same weekdays)."""
    acc = shift_days(values, season)
    for k in range(2, count + 1):
        lag = k * season
        acc[:, lag:] += values[:, :-lag]
        acc[:, : min(lag, acc.shape[1])] = np.nan
    return acc / float(count)


def seasonal_means_at(
    recent: FloatArray, season: int, counts: tuple[int, ...]
) -> dict[int, FloatArray]:
    """One-day :func:`seasonal_mean` for several counts from :func:`recent_days`."""
    sums = np.cumsum(recent[:, season - 1 : season * max(counts) : season], axis=1)
    return {n: sums[:, n - 1] / float(n) for n in counts}


def trailing_means(values: FloatArray, windows: tuple[int, ...]) -> dict[int, FloatArray]:
    """Mean of days t-w+1 .. t, day t included: for columns known in advance (promotions)."""
    acc = values.copy()
    out: dict[int, FloatArray] = {}
    for lag in range(0, max(windows)):
        if lag > 0:
            acc[:, lag:] += values[:, :-lag]
            acc[:, lag - 1 : lag] = np.nan
        if lag + 1 in windows:
            out[lag + 1] = acc / float(lag + 1)
    return out


def trailing_means_at(recent: FloatArray, windows: tuple[int, ...]) -> dict[int, FloatArray]:
    """One-day :func:`trailing_means` from the days t, t-1, ... (newest first)."""
    sums = np.cumsum(recent[:, : max(windows)], axis=1)
    return {w: sums[:, w - 1] / float(w) for w in windows}
