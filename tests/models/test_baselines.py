from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.errors import DataValidationError
from retail_forecast.models.baselines import BaselineForecaster, baseline_factories


def _frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.date_range("2017-12-01", periods=24, freq="D")  # origin 12-24, Dec 25 ahead
    sales = np.arange(24, dtype=np.float64)  # day i sells i units
    history = pd.DataFrame(
        {
            "date": dates,
            "store_nbr": np.int64(1),
            "family": pd.Categorical(["A"] * 24),
            "sales": sales,
            "onpromotion": np.int64(0),
            "is_closed": False,
        }
    )
    future = pd.DataFrame(
        {
            "date": pd.date_range("2017-12-25", periods=9, freq="D"),
            "store_nbr": np.int64(1),
            "family": pd.Categorical(["A"] * 9),
            "onpromotion": np.int64(0),
            "is_closed": np.arange(9) == 0,  # 25 December closed, as the data marks it
        }
    )
    return history, future


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zero", [0.0] * 9),
        ("last_value", [0.0] + [23.0] * 8),
        ("mean_14", [0.0] + [float(np.mean(np.arange(10, 24)))] * 8),
        # day 12-26 is h=2 -> one week before it is 12-19 = 18 units; h=8 -> 12-24 again 23
        ("seasonal_naive", [0.0, 18, 19, 20, 21, 22, 23, 17, 18]),
    ],
)
def test_baseline_values(name: str, expected: list[float]) -> None:
    history, future = _frame()
    model = baseline_factories()[name]()
    out = model.fit(history).predict(history, future)
    np.testing.assert_allclose(out["sales"], expected, rtol=1e-12)  # Dec 25 is closed -> 0


def test_unknown_kind_is_refused() -> None:
    history, _ = _frame()
    with pytest.raises(DataValidationError):
        BaselineForecaster("median").fit(history)


def test_baseline_round_trip(tmp_path: Path) -> None:
    model = BaselineForecaster("mean", window=7)
    model.save(tmp_path)
    loaded = BaselineForecaster.load(tmp_path)
    assert (loaded.kind, loaded.window) == ("mean", 7)
