"""The compiled exact-TreeSHAP kernel gives XGBoost's own ``pred_contribs``.

Boosters trained here with numeric and categorical features (one-hot and partition splits),
missing values, unseen category codes, deep and shallow trees and single-leaf trees; the
kernel's contributions must equal ``pred_contribs`` up to float32 rounding and add up to the
margin. Without the kernel, ``explain`` falls back to ``pred_contribs``.
"""

from __future__ import annotations

import shutil
import sysconfig

import numpy as np
import numpy.typing as npt
import pytest
import xgboost as xgb
from tests.models.test_tree_walker import N_FEATURES, _data
from tests.models.test_xgboost import _config, _panel, _split, _xgb

from retail_forecast.models import explain, tree_shap
from retail_forecast.models.tree_shap import kernel

TYPES = ["q"] * 4 + ["c", "c"]
ATOL = 2e-5  # XGBoost accumulates its TreeSHAP in float32

needs_kernel = pytest.mark.skipif(
    kernel() is None,
    reason="the TreeSHAP kernel was not built (no C compiler at install): "
    "pip install -e . with gcc builds it",
)


def _booster(rounds: int = 40, **params: object) -> xgb.Booster:
    x, y = _data(4000, seed=0)
    dtrain = xgb.DMatrix(x, label=y, feature_types=TYPES, enable_categorical=True, nthread=1)
    base = {"max_depth": 6, "max_cat_to_onehot": 1, "nthread": 1, "tree_method": "hist"}
    return xgb.train({**base, "seed": 0, **params}, dtrain, rounds)


def _reference(booster: xgb.Booster, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    matrix = xgb.DMatrix(x, feature_types=TYPES, enable_categorical=True, nthread=1)
    return np.asarray(booster.predict(matrix, pred_contribs=True))


def _margin(booster: xgb.Booster, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    matrix = xgb.DMatrix(x, feature_types=TYPES, enable_categorical=True, nthread=1)
    return np.asarray(booster.predict(matrix, output_margin=True))


def test_the_kernel_is_built_where_a_compiler_is() -> None:
    if shutil.which(str(sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler here: the install goes on without the kernel")
    assert kernel() is not None, "pip install -e . should have built models/_treeshap"


@needs_kernel
@pytest.mark.parametrize(
    "params",
    [
        {},  # depth 6, partition splits on both categoricals
        {"max_depth": 8, "max_cat_to_onehot": 64},  # one-hot categorical splits
        {"max_depth": 2},
        {"grow_policy": "lossguide", "max_depth": 0, "max_leaves": 200},  # paths past 8 splits
        {"max_depth": 6, "base_score": 3.5, "eta": 0.5},
    ],
    ids=["partition", "onehot-depth8", "stumps", "lossguide", "base-score"],
)
def test_kernel_equals_pred_contribs(params: dict[str, object]) -> None:
    booster = _booster(**params)
    shap = tree_shap.tree_shap(booster)
    assert shap is not None
    x, _ = _data(300, seed=1)
    x[:4, 4] = [25.0, -1.0, np.nan, 19.0]  # unseen codes, a missing category, the largest one
    x[4] = np.nan  # a row with every value missing
    got = shap.contributions(x)
    np.testing.assert_allclose(got, _reference(booster, x), rtol=0, atol=ATOL)
    np.testing.assert_allclose(got.sum(axis=1), _margin(booster, x), rtol=0, atol=ATOL)


@needs_kernel
def test_single_leaf_trees_only_move_the_bias() -> None:
    x, _ = _data(500, seed=2)
    constant = np.full(len(x), 2.0)
    dtrain = xgb.DMatrix(x, label=constant, feature_types=TYPES, enable_categorical=True)
    booster = xgb.train({"max_depth": 4, "base_score": 0.0, "nthread": 1}, dtrain, 5)
    shap = tree_shap.tree_shap(booster)
    assert shap is not None
    got = shap.contributions(x[:16])
    np.testing.assert_allclose(got, _reference(booster, x[:16]), rtol=0, atol=ATOL)
    assert np.all(got[:, :-1] == 0.0)


@needs_kernel
def test_one_row_and_many_rows_agree_bit_for_bit() -> None:
    booster = _booster()
    shap = tree_shap.tree_shap(booster)
    assert shap is not None
    x, _ = _data(64, seed=3)
    x[:, 4:] = x[0, 4:]  # one store and family, as a series' 16 rows: many leaves alike
    together = shap.contributions(x, threads=2)
    alone = np.vstack([shap.contributions(x[i : i + 1], threads=2) for i in range(len(x))])
    # bit for bit: a row's values never depend on the other rows of the call (the API answers
    # a series alone as it answers it among all series)
    assert np.array_equal(together, alone)
    with pytest.raises(ValueError, match="features"):
        shap.contributions(x[:, :3])


def test_explain_falls_back_to_pred_contribs_without_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    train, _ = _split(_panel())
    forecaster = _xgb(_config()).fit(train)
    monkeypatch.setattr("retail_forecast.models.xgboost.tree_shap", lambda booster: None)
    assert forecaster.tree_shap() is None
    rng = np.random.default_rng(4)
    x = rng.normal(size=(16, len(forecaster.builder_.feature_names))).astype(np.float32)
    categorical = [t == "c" for t in forecaster.builder_.spec.feature_types]
    x[:, categorical] = 1.0  # a valid store and family code
    fallback = explain.contributions(forecaster, x)
    booster = forecaster.booster_
    assert np.array_equal(fallback, explain.xgboost_contributions(booster, x, forecaster.builder_))
    if kernel() is not None:
        monkeypatch.undo()
        forecaster.tree_shap_ = None  # built again, with the kernel this time
        assert forecaster.tree_shap() is not None
        np.testing.assert_allclose(explain.contributions(forecaster, x), fallback, atol=ATOL)


@needs_kernel
@pytest.mark.parametrize("threads", [2, 3, 500])
def test_threads_split_the_trees_and_give_the_same_values(threads: int) -> None:
    booster = _booster(rounds=30)
    shap = tree_shap.tree_shap(booster)
    assert shap is not None
    x, _ = _data(32, seed=5)
    np.testing.assert_allclose(
        shap.contributions(x, threads=threads), shap.contributions(x), rtol=0, atol=1e-12
    )


@needs_kernel
@pytest.mark.parametrize(
    "params", [{"objective": "reg:pseudohubererror"}, {"booster": "dart"}], ids=["huber", "dart"]
)
def test_models_the_kernel_does_not_cover_are_left_to_pred_contribs(
    params: dict[str, object],
) -> None:
    assert tree_shap.tree_shap(_booster(rounds=5, **params)) is None


@needs_kernel
def test_no_rows_no_contributions() -> None:
    shap = tree_shap.tree_shap(_booster(rounds=5))
    assert shap is not None
    assert shap.contributions(np.empty((0, N_FEATURES), np.float32)).shape == (0, N_FEATURES + 1)
