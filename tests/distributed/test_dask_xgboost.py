"""The dask engine against the local one on a generated panel, on a real 2-process cluster."""

from __future__ import annotations

import numpy as np

from retail_forecast.config import FeatureConfig, XGBoostConfig
from retail_forecast.data_processing.dataset import BuiltDataset
from retail_forecast.distributed.cluster import DaskEngine
from retail_forecast.distributed.dask_xgboost import DaskXGBForecaster
from retail_forecast.distributed.factories import DaskXGBoostFactory
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE
from retail_forecast.training.backtest import run_backtest
from retail_forecast.training.factories import XGBoostFactory

HORIZON = 16
# no row or column sampling: each worker samples its own rows, so with sampling the two
# engines train on different rows (a different model, not a histogram difference)
CONFIG = XGBoostConfig(rounds=60, subsample=1.0, colsample_bytree=1.0, nthread=1)


def _factory(panel: BuiltDataset) -> XGBoostFactory:
    return XGBoostFactory(CONFIG, FeatureConfig(), panel.holidays, horizon=HORIZON)


def test_dask_backtest_within_0_002_rmsle_of_local(engine: DaskEngine, panel: BuiltDataset) -> None:
    kwargs = {"folds": 2, "horizon": HORIZON, "include_baselines": False}
    local = run_backtest(panel.sales, {"xgboost": _factory(panel)}, **kwargs)  # type: ignore[arg-type]
    dask = run_backtest(
        panel.sales,
        {"xgboost": DaskXGBoostFactory(_factory(panel), engine)},
        **kwargs,  # type: ignore[arg-type]
    )
    gap = dask.mean_rmsle()["xgboost"] - local.mean_rmsle()["xgboost"]
    # measured: +0.0017 (folds 0.3873 -> 0.3859 and 0.3764 -> 0.3813)
    assert abs(gap) <= 0.002, (gap, local.fold_rmsle(), dask.fold_rmsle())
    assert abs(gap) > 0  # a distributed sketch, not the local fit in disguise


def test_dask_forecast_is_the_local_recursion(engine: DaskEngine, panel: BuiltDataset) -> None:
    sales = panel.sales
    origin = sales[DATE].max() - np.timedelta64(HORIZON, "D")
    history, window = sales[sales[DATE] <= origin], sales[sales[DATE] > origin]
    future = window[[DATE, STORE, FAMILY, PROMO]].reset_index(drop=True)
    local = XGBForecaster(CONFIG, FeatureConfig(), horizon=HORIZON).fit(history)
    remote = DaskXGBForecaster.from_fitted(local, engine)
    expected = local.predict(history, future)["sales"].to_numpy()
    got = remote.predict(history, future)["sales"].to_numpy()
    np.testing.assert_array_equal(got, expected)  # bit-identical: the same trees, per series


def test_dask_fit_saves_a_plain_bundle_model(
    engine: DaskEngine, panel: BuiltDataset, tmp_path: object
) -> None:
    from pathlib import Path

    model = DaskXGBForecaster(CONFIG, FeatureConfig(), horizon=HORIZON, engine=engine)
    model.fit(panel.sales)
    model.save(Path(str(tmp_path)))
    loaded = XGBForecaster.load(Path(str(tmp_path)))
    assert loaded.booster_.num_boosted_rounds() == CONFIG.rounds
    assert loaded.builder_.to_dict() == model.builder_.to_dict()


def test_dask_fit_with_early_stopping_and_refit_matches_the_local_split(
    engine: DaskEngine, panel: BuiltDataset
) -> None:
    """No round count: the same train / validation split as the local fit, then the refit."""
    config = CONFIG.model_copy(
        update={"rounds": None, "n_estimators": 400, "early_stopping_rounds": 10}
    )
    local = XGBForecaster(config, FeatureConfig(), horizon=HORIZON).fit(panel.sales)
    model = DaskXGBForecaster(config, FeatureConfig(), horizon=HORIZON, engine=engine)
    model.fit(panel.sales)
    assert model.n_train_rows_ == local.n_train_rows_  # every row, train and validation
    rounds = model.booster_.num_boosted_rounds()
    assert 10 < rounds < 400  # stopped early, refitted on every row with the best count
    # the two engines' histograms differ slightly, and on this small panel's flat validation
    # curve the best round moves by a third or so (45 vs 61 once); a different split would not
    # stop within half of it
    assert abs(rounds - local.booster_.num_boosted_rounds()) <= max(10, rounds // 2)
