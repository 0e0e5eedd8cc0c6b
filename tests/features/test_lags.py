import numpy as np
import pytest

from retail_forecast.features.lags import recent_days, shift_days


def test_shift_days_never_crosses_series_start() -> None:
    values = np.arange(12, dtype=np.float64).reshape(2, 6)
    out = shift_days(values, 2)
    assert np.isnan(out[:, :2]).all()
    np.testing.assert_array_equal(out[0, 2:], [0, 1, 2, 3])
    np.testing.assert_array_equal(out[1, 2:], [6, 7, 8, 9])


def test_shift_longer_than_history_is_all_nan() -> None:
    assert np.isnan(shift_days(np.ones((2, 3)), 5)).all()


def test_recent_days_column_k_is_the_full_shift_by_k_plus_1() -> None:
    values = np.random.default_rng(0).random((3, 10))
    for day in range(10):
        recent = recent_days(values, day, 6)
        for lag in range(1, 7):
            np.testing.assert_array_equal(recent[:, lag - 1], shift_days(values, lag)[:, day])


@pytest.mark.parametrize("lag", [0, -1])
def test_lag_below_one_would_read_day_t_and_is_refused(lag: int) -> None:
    with pytest.raises(ValueError, match="lag must be >= 1"):
        shift_days(np.ones((1, 5)), lag)
