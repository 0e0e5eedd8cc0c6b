"""train_bundle: backtest -> blend -> final fit -> a verified bundle that predicts the same."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.artifacts import ModelBundle, resolve_current
from retail_forecast.bundle_contents import HISTORY_FILE
from retail_forecast.config import DataConfig, Settings
from retail_forecast.data_processing.dataset import BuiltDataset, build_dataset
from retail_forecast.data_processing.synthetic import SyntheticConfig, write_dataset
from retail_forecast.errors import ArtifactError
from retail_forecast.models.hybrid import HybridForecaster
from retail_forecast.pipeline.fit import TrainResult, train_bundle
from retail_forecast.schema import DATE, FAMILY, PROMO, STORE, TARGET
from retail_forecast.training.factories import model_factories

TINY = {
    "xgboost": {"n_estimators": 40, "early_stopping_rounds": 10, "nthread": 1},
    "lstm": {
        "epochs": 1,
        "windows_per_epoch": 256,
        "batch_size": 128,
        "hidden_size": 8,
        "window": 28,
        "scaler_days": 60,
        "num_threads": 1,
    },
    "backtest": {"folds": 2},
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> BuiltDataset:
    raw = tmp_path_factory.mktemp("raw")
    write_dataset(raw, SyntheticConfig(n_stores=2, n_families=3, n_days=200, seed=3))
    return build_dataset(raw, DataConfig())


@pytest.fixture(scope="module")
def trained(dataset: BuiltDataset, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("artifacts")
    return train_bundle(dataset, Settings.model_validate(TINY), out_dir=out)


def _future(sales: pd.DataFrame, days: int = 16) -> pd.DataFrame:
    last = sales[DATE].max()
    keys = sales[[STORE, FAMILY]].drop_duplicates()
    dates = pd.date_range(last + pd.Timedelta(days=1), periods=days)
    future = keys.merge(pd.DataFrame({DATE: dates}), how="cross")
    future[PROMO] = 0
    return future[[DATE, STORE, FAMILY, PROMO]]


@pytest.mark.slow
def test_bundle_is_published_and_current(trained: TrainResult) -> None:
    root = trained.path.parent
    assert resolve_current(root) == trained.path
    bundle = ModelBundle.open_current(root)
    names = set(bundle.manifest.files)
    for name in (
        "xgboost/model.ubj",
        "lstm/weights.safetensors",
        "preprocessor_xgboost.json",
        "preprocessor_nn.json",
        "config.json",
        "metrics.json",
        "reference.parquet",
        HISTORY_FILE,
    ):
        assert name in names
    meta = bundle.manifest.metadata
    assert set(meta["blend_weights"]) >= {"first", "second", "global_weight", "per_family"}
    assert meta["domain"]["horizon"] == 16


@pytest.mark.slow
def test_metrics_hold_every_model_and_the_held_out_hybrid(trained: TrainResult) -> None:
    metrics = ModelBundle.open_current(trained.path.parent).read_json("metrics.json")
    assert len(metrics["folds"]) == 2
    for fold in metrics["folds"]:
        assert {"xgboost", "lstm", "hybrid", "seasonal_naive", "mean_14", "zero"} <= set(
            fold["rmsle"]
        )
    assert set(metrics["per_horizon_day"]) == {str(d) for d in range(1, 17)}


@pytest.mark.slow
def test_round_trip_predictions_equal_in_memory_models(
    trained: TrainResult, dataset: BuiltDataset
) -> None:
    bundle = ModelBundle.open(trained.path)
    loaded = HybridForecaster.load(bundle.path, dict(bundle.manifest.metadata))
    future = _future(dataset.sales)
    first = loaded.predict(dataset.sales, future)
    again = HybridForecaster.load(bundle.path, dict(bundle.manifest.metadata)).predict(
        dataset.sales, future
    )
    np.testing.assert_array_equal(first[TARGET].to_numpy(), again[TARGET].to_numpy())
    assert (first[TARGET] >= 0).all()
    assert np.isfinite(first[TARGET]).all()
    assert set(first["model"]) <= {"hybrid", "xgboost", "lstm", "zero_rule"}


@pytest.mark.slow
def test_tampered_bundle_is_refused(trained: TrainResult, tmp_path: Path) -> None:
    copy = tmp_path / trained.path.name
    shutil.copytree(trained.path, copy)
    weights = copy / "lstm" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"weights\.safetensors"):
        ModelBundle.open(copy)


@pytest.mark.slow
def test_side_by_side_fits_give_the_one_at_a_time_result(
    trained: TrainResult, dataset: BuiltDataset, tmp_path: Path
) -> None:
    assert Settings.model_validate(TINY).backtest.parallel_models  # the fixture ran side by side
    one_at_a_time = {**TINY, "backtest": {**TINY["backtest"], "parallel_models": False}}
    again = train_bundle(dataset, Settings.model_validate(one_at_a_time), out_dir=tmp_path)
    pd.testing.assert_frame_equal(again.backtest.predictions, trained.backtest.predictions)
    future = _future(dataset.sales)
    np.testing.assert_array_equal(
        again.forecaster.predict(dataset.sales, future)[TARGET].to_numpy(),
        trained.forecaster.predict(dataset.sales, future)[TARGET].to_numpy(),
    )


def test_xgboost_factory_early_stops_once_then_reuses_the_round_count(
    dataset: BuiltDataset,
) -> None:
    sales = dataset.sales
    oldest = sales[sales[DATE] < sales[DATE].max() - pd.Timedelta(days=31)]
    once = model_factories(Settings.model_validate(TINY), dataset.holidays).xgboost
    first = once()
    assert first.config.rounds is None  # the first model early-stops
    with pytest.raises(RuntimeError, match="fitted before the next"):
        once()
    first.fit(oldest)
    later = [once() for _ in range(2)]
    assert [m.config.rounds for m in later] == [first.booster_.num_boosted_rounds()] * 2
    assert later[0].fit(sales).booster_.num_boosted_rounds() == first.booster_.num_boosted_rounds()

    each_settings = {**TINY, "xgboost": {**TINY["xgboost"], "early_stop_once": False}}
    each = model_factories(Settings.model_validate(each_settings), dataset.holidays).xgboost
    each().fit(oldest)
    assert each().config.rounds is None  # every fit early-stops on its own


def test_final_fit_trains_the_round_count_the_oldest_fold_chose(trained: TrainResult) -> None:
    model = trained.forecaster.xgboost
    assert model.config.rounds == model.booster_.num_boosted_rounds()
