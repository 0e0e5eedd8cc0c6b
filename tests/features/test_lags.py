import numpy as np
import pytest

from retail_forecast.features.lags import lag_at, shift_days


def test_shift_days_never_crosses_series_start() -> None:
    values = np.arange(12, dtype=np.float64).reshape(2, 6)
    out = shift_days(values, 2)
    assert np.isnan(out[:, :2]).all()
    np.testing.assert_array_equal(out[0, 2:], [0, 1, 2, 3])
    np.testing.assert_array_equal(out[1, 2:], [6, 7, 8, 9])


def test_shift_longer_than_history_is_all_nan() -> None:
    assert np.isnan(shift_days(np.ones((2, 3)), 5)).all()


def test_lag_at_matches_full_shift() -> None:
    values = np.random.default_rng(0).random((3, 10))
    full = shift_days(values, 3)
    for day in range(10):
        np.testing.assert_array_equal(lag_at(values, 3, day), full[:, day])


@pytest.mark.parametrize("lag", [0, -1])
def test_lag_below_one_would_read_day_t_and_is_refused(lag: int) -> None:
    with pytest.raises(ValueError, match="lag must be >= 1"):
        shift_days(np.ones((1, 5)), lag)
    with pytest.raises(ValueError, match="lag must be >= 1"):
        lag_at(np.ones((1, 5)), lag, 3)
