import math

import numpy as np
import pytest

from retail_forecast.errors import DataValidationError
from retail_forecast.training.metrics import bias, mae, rmsle, wape


def test_rmsle_matches_the_competition_formula() -> None:
    actual = np.array([0.0, 10.0, 100.0])
    forecast = np.array([1.0, 10.0, 50.0])
    expected = math.sqrt(((math.log(2) - 0) ** 2 + 0 + (math.log(51) - math.log(101)) ** 2) / 3)
    assert rmsle(actual, forecast) == pytest.approx(expected, rel=1e-12)
    assert rmsle(actual, actual) == 0.0


def test_other_metrics() -> None:
    actual = np.array([10.0, 30.0])
    forecast = np.array([20.0, 30.0])
    assert mae(actual, forecast) == 5.0
    assert wape(actual, forecast) == pytest.approx(0.25)
    assert bias(actual, forecast) == pytest.approx(0.25)


@pytest.mark.parametrize("forecast", [[1.0, np.nan], [1.0, -1.0], [1.0]])
def test_bad_inputs_are_refused(forecast: list[float]) -> None:
    with pytest.raises(DataValidationError):
        rmsle([1.0, 2.0], forecast)


def test_quantile_metrics_by_hand() -> None:
    from retail_forecast.training.metrics import (
        interval_coverage,
        pinball_loss,
        weighted_quantile_loss,
    )

    actual = np.array([10.0, 0.0, 4.0])
    q = np.array([8.0, 1.0, 4.0])
    # level 0.9: under-forecast 2 costs 0.9 x 2, over-forecast 1 costs 0.1 x 1
    assert pinball_loss(actual, q, 0.9) == pytest.approx((1.8 + 0.1 + 0.0) / 3)
    assert pinball_loss(actual, q, 0.5) == pytest.approx((1.0 + 0.5) / 3)
    # at the median alone the weighted quantile loss is the WAPE of that forecast
    assert weighted_quantile_loss(actual, {0.5: q}) == pytest.approx(3.0 / 14.0)
    assert interval_coverage(actual, q - 1, q + 1) == pytest.approx(2 / 3)
    with pytest.raises(DataValidationError, match="level"):
        pinball_loss(actual, q, 1.0)
