import numpy as np
import pandas as pd

from retail_forecast.features.lags import recent_days
from retail_forecast.features.rolling import (
    rolling_mean,
    rolling_means,
    rolling_means_at,
    seasonal_mean,
    seasonal_means_at,
)


def _values() -> np.ndarray:
    return np.log1p(np.random.default_rng(1).poisson(20, (4, 40)).astype(np.float64))


def test_rolling_mean_equals_pandas_shifted_rolling_per_series() -> None:
    values = _values()
    for window in (7, 14):
        expected = np.vstack(
            [pd.Series(row).shift(1).rolling(window).mean().to_numpy() for row in values]
        )
        np.testing.assert_allclose(rolling_mean(values, window), expected, rtol=1e-12)


def test_rolling_means_in_one_pass_equal_single_windows_bitwise() -> None:
    values = _values()
    both = rolling_means(values, (7, 14))
    np.testing.assert_array_equal(both[7], rolling_mean(values, 7))
    np.testing.assert_array_equal(both[14], rolling_mean(values, 14))


def test_one_day_forms_equal_full_panel_bitwise() -> None:
    values = _values()
    full = rolling_means(values, (7, 14))
    season = {n: seasonal_mean(values, 7, n) for n in (2, 4)}
    for day in range(values.shape[1]):
        recent = recent_days(values, day, 28)
        for window, values_at in rolling_means_at(recent, (7, 14)).items():
            np.testing.assert_array_equal(values_at, full[window][:, day])
        for count, values_at in seasonal_means_at(recent, 7, (2, 4)).items():
            np.testing.assert_array_equal(values_at, season[count][:, day])


def test_seasonal_mean_reads_same_weekdays() -> None:
    values = _values()
    day = 35
    expected = values[:, [day - 7, day - 14, day - 21, day - 28]].mean(axis=1)
    np.testing.assert_allclose(seasonal_mean(values, 7, 4)[:, day], expected, rtol=1e-12)
    assert np.isnan(seasonal_mean(values, 7, 4)[:, 27]).all()
