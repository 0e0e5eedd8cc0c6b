import json

import numpy as np
import numpy.typing as npt
import pytest
import xgboost as xgb
from tests.models.test_xgboost import _config, _panel, _split, _xgb

from retail_forecast.errors import ArtifactError
from retail_forecast.models.tree_predictor import WALKER_MAX_ROWS
from retail_forecast.models.tree_walker import NumpyTreeWalker
from retail_forecast.models.xgboost import XGBForecaster

N_FEATURES = 6  # 4 numeric, then two categoricals (like store_nbr and family)


def _data(n: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    x[:, 4] = rng.integers(0, 20, n)
    x[:, 5] = rng.integers(0, 7, n)
    y = x[:, 0] * 2 + np.sin(x[:, 1]) + (x[:, 4] % 5) * 0.3 - (x[:, 5] == 3) + x[:, 2] * x[:, 3]
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take each split's default branch
    return x, y


def _booster(objective: str = "reg:squarederror", rounds: int = 60) -> xgb.Booster:
    x, y = _data(4000, seed=0)
    dtrain = xgb.DMatrix(
        x, label=y, feature_types=["q"] * 4 + ["c", "c"], enable_categorical=True, nthread=1
    )
    params = {"objective": objective, "max_depth": 6, "max_cat_to_onehot": 1, "nthread": 1}
    return xgb.train({**params, "tree_method": "hist", "seed": 0}, dtrain, rounds)


def test_walker_is_bit_identical_to_xgboost_with_categories_and_missing_values() -> None:
    booster = _booster()
    walker = NumpyTreeWalker.from_booster(booster)
    x, _ = _data(2000, seed=1)
    x[:3, 4] = [25.0, -1.0, np.nan]  # unseen category codes and a missing category
    expected = booster.inplace_predict(x, validate_features=False)
    assert walker.n_trees == 60
    assert 1 <= walker.depth <= 6
    assert np.any(walker.cat_row >= 0), "the booster should have categorical splits"
    np.testing.assert_array_equal(walker.predict(x), expected)
    for n in (1, 3, 9):  # rows with and without missing values in one call
        np.testing.assert_array_equal(walker.predict(x[:n]), expected[:n])


def test_complete_layout_rows_reuse_their_categorical_values_only_for_the_same_categories() -> None:
    booster = _booster()
    walker = NumpyTreeWalker.from_booster(booster)
    x, _ = _data(400, seed=2)
    clean = x[~np.isnan(x).any(axis=1)][:40]  # the fast path: no missing value
    assert len(clean) == 40
    for n in (1, 5, 40):
        batch = clean[:n].copy()
        np.testing.assert_array_equal(walker.predict(batch), booster.inplace_predict(batch))
        # the next recursive step: same series (categories), new numeric values
        batch[:, :4] = np.flip(clean[-n:, :4], axis=0)
        np.testing.assert_array_equal(walker.predict(batch), booster.inplace_predict(batch))
        batch[:, 5] = (batch[:, 5] + 1) % 7  # other categories: recomputed, not reused
        np.testing.assert_array_equal(walker.predict(batch), booster.inplace_predict(batch))


def test_walker_refuses_other_objectives_and_wrong_widths() -> None:
    with pytest.raises(ArtifactError, match="reg:absoluteerror"):
        NumpyTreeWalker.from_booster(_booster("reg:absoluteerror", rounds=3))
    walker = NumpyTreeWalker.from_booster(_booster(rounds=3))
    with pytest.raises(ValueError, match="features"):
        walker.predict(np.zeros((2, N_FEATURES + 1), dtype=np.float32))


def test_xgb_forecaster_serving_path_gives_the_same_forecasts() -> None:
    history, future = _split(_panel())
    future = future.drop(columns="sales")
    model: XGBForecaster = _xgb(_config()).fit(history)
    one_series = future[(future.store_nbr == 2) & (future.family == "FAM B")]
    assert len(one_series) <= 16
    assert len(future) // 16 <= WALKER_MAX_ROWS
    plain_one = model.predict(history, one_series)["sales"].to_numpy()
    plain_all = model.predict(history, future)["sales"].to_numpy()
    model.prepare_serving()
    assert model.serving_trees_ is not None
    np.testing.assert_array_equal(model.predict(history, one_series)["sales"], plain_one)
    np.testing.assert_array_equal(model.predict(history, future)["sales"], plain_all)
    model.fit(history)  # a refit drops the walker's copy of the old trees
    assert model.serving_trees_ is None
    np.testing.assert_array_equal(model.predict(history, one_series)["sales"], plain_one)


def test_one_row_fast_path_is_bit_identical_without_missing_values() -> None:
    booster = _booster()
    walker = NumpyTreeWalker.from_booster(booster)
    x, _ = _data(300, seed=2)
    x = x[~np.isnan(x).any(axis=1)]  # rows without NaN take the complete-layout path
    x[:2, 4] = [25.0, -1.0]  # unseen category codes go left, as in XGBoost
    expected = booster.inplace_predict(x, validate_features=False)
    assert len(x) > 100
    got = np.concatenate([walker.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(walker.predict(x[:5]), expected[:5])  # cached decisions too


def test_serving_threads_leave_the_forecasts_unchanged() -> None:
    history, future = _split(_panel())
    future = future.drop(columns="sales")
    model: XGBForecaster = _xgb(_config()).fit(history)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, len(model.builder_.feature_names))).astype(np.float32)
    one_thread = model._predict_rows(x)
    plain = model.predict(history, future)["sales"].to_numpy()
    model.prepare_serving(batch_threads=2)
    config = json.loads(model.booster_.save_config())
    assert config["learner"]["generic_param"]["nthread"] == "2"
    np.testing.assert_array_equal(model._predict_rows(x), one_thread)
    np.testing.assert_array_equal(model.predict(history, future)["sales"], plain)


def test_a_booster_without_any_categorical_split_walks_bit_identical() -> None:
    """Categorical features declared but never split on (a small panel can do that)."""
    x, _ = _data(4000, seed=0)
    y = np.nan_to_num(x[:, 0]) * 2 + np.nan_to_num(x[:, 1])  # numeric features only
    dtrain = xgb.DMatrix(
        x, label=y, feature_types=["q"] * 4 + ["c", "c"], enable_categorical=True, nthread=1
    )
    params = {"max_depth": 3, "max_cat_to_onehot": 1, "nthread": 1, "tree_method": "hist"}
    booster = xgb.train({**params, "seed": 0, "colsample_bytree": 1.0}, dtrain, 10)
    walker = NumpyTreeWalker.from_booster(booster)
    assert not np.any(walker.cat_row >= 0), "the booster should have no categorical split"
    expected = booster.inplace_predict(x[:50], validate_features=False)
    np.testing.assert_array_equal(walker.predict(x[:50]), expected)
    np.testing.assert_array_equal(walker.predict(x[:1]), expected[:1])
