"""A data set's own closures (an open flag, Closed holidays): closed, not demand, forecast 0.

Promise 37 (docs/RELIABILITY.md). Real files: a generated ``closed-sundays`` / ``regional``
panel written to disk and read back through build_dataset, as ``train`` and ``forecast`` do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.config import DataConfig, XGBoostConfig
from retail_forecast.data_processing.dataset import BuiltDataset, build_dataset
from retail_forecast.data_processing.synthetic import shaped_config, write_dataset
from retail_forecast.features.builder import FeatureBuilder, FeatureSpec, panel_from_frame
from retail_forecast.models.baselines import BaselineForecaster
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.schema import DATE, IS_CLOSED, TARGET

SIZE = {"n_stores": 3, "n_families": 2, "n_days": 200, "seed": 3}


@pytest.fixture(scope="module")
def sundays(tmp_path_factory: pytest.TempPathFactory) -> BuiltDataset:
    out = tmp_path_factory.mktemp("closed_sundays")
    write_dataset(out, shaped_config("closed-sundays", **SIZE))  # type: ignore[arg-type]
    return build_dataset(out, DataConfig(), horizon=16)


def _sunday(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(dates).dayofweek == 6)


def test_p37_open_0_rows_and_future_sundays_are_closed(sundays: BuiltDataset) -> None:
    sales = sundays.sales
    assert (sales[IS_CLOSED].to_numpy() == _sunday(sales[DATE])).all()
    assert sundays.test is not None
    assert (sundays.test[IS_CLOSED].to_numpy() == _sunday(sundays.test[DATE])).all()


def test_p37_closed_regional_holiday_is_closed_for_its_stores(tmp_path: Path) -> None:
    write_dataset(tmp_path, shaped_config("regional", **SIZE))  # type: ignore[arg-type]
    built = build_dataset(tmp_path, DataConfig(), horizon=16)
    holidays, stores = built.holidays, built.stores
    assert holidays is not None
    assert stores is not None
    shut = holidays[holidays["type"] == "Closed"]
    sales = built.sales
    in_range = shut[pd.to_datetime(shut[DATE]).between(sales[DATE].min(), sales[DATE].max())]
    assert len(in_range) > 0
    for row in in_range.itertuples():
        hit = stores.loc[stores["state"] == row.locale_name, "store_nbr"]
        on = sales[sales[DATE] == pd.Timestamp(row.date)]
        assert (on[IS_CLOSED] == on["store_nbr"].isin(hit)).all()
    assert built.report.filled_closed_rows == int(sales[IS_CLOSED].sum())


def test_p37_monday_lag_1_is_saturday_not_the_closed_sunday(sundays: BuiltDataset) -> None:
    panel = panel_from_frame(sundays.sales)
    spec = FeatureSpec.named("required")
    x = FeatureBuilder.from_frame(sundays.sales, spec).panel_features(panel)
    lag_1 = x[:, spec.feature_names.index("lag_1")].reshape(panel.n_series, -1)
    monday = np.flatnonzero(panel.dates.dayofweek == 0)
    monday = monday[monday >= 2]
    saturday = np.log1p(panel.sales[:, monday - 2]).astype(np.float32)
    assert (saturday > 0).mean() > 0.5  # the check is not on zeros
    np.testing.assert_array_equal(lag_1[:, monday], saturday)
    np.testing.assert_array_equal(panel.sales, sundays.sales[TARGET].to_numpy().reshape(3 * 2, -1))


def test_p37_no_sunday_is_trained_and_sundays_forecast_0(sundays: BuiltDataset) -> None:
    config = XGBoostConfig(rounds=5, nthread=1, max_depth=3)
    model = XGBForecaster(config, horizon=16)
    panel = panel_from_frame(sundays.sales)
    keep = model._train_mask(panel, 0).reshape(panel.n_series, -1)
    assert not keep[:, _sunday(panel.dates)].any()
    assert keep[:, ~_sunday(panel.dates)].any()
    assert sundays.test is not None
    future = model.fit(sundays.sales).predict(sundays.sales, sundays.test)
    sunday = _sunday(future[DATE])
    assert sunday.any()
    assert (future.loc[sunday, TARGET] == 0).all()
    assert (future.loc[~sunday, TARGET] > 0).mean() > 0.5


def test_p37_baselines_forecast_0_on_closures_and_skip_them(sundays: BuiltDataset) -> None:
    assert sundays.test is not None
    for kind in ("seasonal_naive", "last_value", "mean"):
        out = BaselineForecaster(kind).predict(sundays.sales, sundays.test)
        sunday = _sunday(out[DATE])
        assert (out.loc[sunday, TARGET] == 0).all(), kind
    # a history that ends on a closed Sunday: the last value is Saturday's sales, not the 0
    sales = sundays.sales
    end = sorted(set(sales.loc[_sunday(sales[DATE]), DATE]))[-2]
    history = sales[sales[DATE] <= end]
    week = sales[(sales[DATE] > end) & (sales[DATE] <= end + pd.Timedelta(days=6))]
    out = BaselineForecaster("last_value").predict(history, week.drop(columns=[TARGET]))
    saturday = history[history[DATE] == end - pd.Timedelta(days=1)]
    expected = np.repeat(saturday[TARGET].to_numpy(), 6)  # series-major, like ``week``
    assert (expected > 0).any()
    np.testing.assert_allclose(out[TARGET].to_numpy(), expected, rtol=1e-12)


def test_p37_backtest_forecasts_known_closures_as_0(sundays: BuiltDataset) -> None:
    """The backtest's future rows carry the closures known in advance, as test.csv does."""
    from functools import partial

    from retail_forecast.config import FeatureConfig
    from retail_forecast.training.backtest import run_backtest

    factory = partial(
        XGBForecaster, XGBoostConfig(rounds=5, nthread=1), FeatureConfig(), horizon=16
    )
    result = run_backtest(sundays.sales, {"xgboost": factory}, folds=1, horizon=16)
    rows = result.predictions
    sunday = _sunday(rows[DATE])
    assert sunday.any()
    for name in ["xgboost", "seasonal_naive", "mean_14", "last_value"]:
        assert (rows.loc[sunday, name] == 0.0).all(), name
        assert (rows.loc[~sunday, name] > 0.0).any(), name
    # the scores cover the open days only: a closed Sunday (0 against 0) is not a free hit
    assert not rows.loc[sunday, "open"].any()
    assert rows.loc[~sunday, "open"].all()
    open_rows = rows[~sunday]
    for name in ["xgboost", "seasonal_naive"]:
        expected = np.sqrt(
            np.mean((np.log1p(open_rows[name]) - np.log1p(open_rows["actual"])) ** 2)
        )
        assert result.fold_rmsle()[result.folds[0].name][name] == pytest.approx(expected)
    assert result.to_dict()["closed_rows_unscored"] == int(sunday.sum())
