"""XGBoost's training window: all history by default, the last train_days when set (issue 15).

No date is a default any more: data that starts before 2015 (Favorita's old train_start) is
trained on from its first day with all lags known.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from retail_forecast.config import FEATURE_PRESETS, XGBoostConfig
from retail_forecast.features.builder import FeatureSpec
from retail_forecast.models.xgboost import XGBForecaster

N_SERIES = 4
N_DAYS = 200  # 2014-09-01 .. 2015-03-19: across the old default start (2015-01-01)
FEATURES = FEATURE_PRESETS["required"]
LOOKBACK = FeatureSpec.from_config(FEATURES).lookback


def _history() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2014-09-01", periods=N_DAYS, freq="D")
    frames = [
        pd.DataFrame(
            {
                "date": dates,
                "store_nbr": np.int64(store),
                "family": family,
                "sales": rng.poisson(20.0 * store, N_DAYS).astype(np.float64) + 1.0,
                "onpromotion": np.int64(0),
                "is_closed": False,
            }
        )
        for store in (1, 2)
        for family in ("FAM A", "FAM B")
    ]
    frame = pd.concat(frames, ignore_index=True)
    frame["family"] = pd.Categorical(frame["family"], categories=["FAM A", "FAM B"])
    return frame


def _rows(**window: Any) -> int:
    config = XGBoostConfig(n_estimators=3, nthread=1, early_stopping_rounds=2, **window)
    model = XGBForecaster(config, FEATURES, horizon=16).fit(_history())
    return int(model.n_train_rows_)


def test_p35_xgboost_trains_on_all_history_by_default() -> None:
    assert _rows() == N_SERIES * (N_DAYS - LOOKBACK)


@pytest.mark.parametrize("days", [30, 120])
def test_xgboost_trains_on_the_last_train_days(days: int) -> None:
    assert _rows(train_days=days) == N_SERIES * days


def test_a_window_longer_than_the_history_is_all_history_and_the_later_start_wins() -> None:
    assert _rows(train_days=10_000) == N_SERIES * (N_DAYS - LOOKBACK)
    start = pd.Timestamp("2015-01-01")
    from_start = N_DAYS - int((start - pd.Timestamp("2014-09-01")).days)
    assert _rows(train_start="2015-01-01") == N_SERIES * from_start
    assert _rows(train_start="2015-01-01", train_days=30) == N_SERIES * 30
    assert _rows(train_start="2015-01-01", train_days=150) == N_SERIES * from_start
