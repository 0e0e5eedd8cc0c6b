"""Blend weights: learned in log space on folds, per family only where it helps held out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retail_forecast.errors import DataValidationError
from retail_forecast.models.blend import BlendWeights, learn_blend_weights


def _fold_predictions(*, noise_a: float, noise_b: float, seed: int = 0) -> pd.DataFrame:
    """Two models with independent log-space errors of the given size on 4 folds x 3 families."""
    rng = np.random.default_rng(seed)
    n = 4 * 3 * 200
    log_actual = rng.uniform(0, 6, n)
    return pd.DataFrame(
        {
            "fold": np.repeat(["f1", "f2", "f3", "f4"], n // 4),
            "family": np.tile(np.repeat(["A", "B", "C"], 200), 4),
            "actual": np.expm1(log_actual),
            "xgboost": np.expm1(log_actual + rng.normal(0, noise_a, n)).clip(0),
            "lstm": np.expm1(log_actual + rng.normal(0, noise_b, n)).clip(0),
        }
    )


def _rmsle(pred: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.log1p(pred) - np.log1p(actual)) ** 2)))


def test_equal_independent_errors_blend_near_half() -> None:
    weights = learn_blend_weights(
        _fold_predictions(noise_a=0.3, noise_b=0.3), first="xgboost", second="lstm"
    )
    assert 0.35 <= weights.global_weight <= 0.65


def test_blend_beats_both_parts_when_errors_are_independent() -> None:
    preds = _fold_predictions(noise_a=0.3, noise_b=0.4)
    weights = learn_blend_weights(preds, first="xgboost", second="lstm")
    blended = np.expm1(
        weights.blend_log(preds["family"], np.log1p(preds["xgboost"]), np.log1p(preds["lstm"]))
    )
    actual = preds["actual"].to_numpy()
    assert _rmsle(blended, actual) < _rmsle(preds["xgboost"].to_numpy(), actual)
    assert _rmsle(blended, actual) < _rmsle(preds["lstm"].to_numpy(), actual)


def test_useless_second_model_falls_back_to_first() -> None:
    weights = learn_blend_weights(
        _fold_predictions(noise_a=0.1, noise_b=3.0), first="xgboost", second="lstm"
    )
    assert weights.global_weight >= 0.95
    labels = weights.model_labels(pd.Series(["A", "B"]))
    if weights.global_weight == 1.0:
        assert list(labels) == ["xgboost", "xgboost"]


def test_per_family_weight_kept_only_where_it_helps() -> None:
    preds = _fold_predictions(noise_a=0.3, noise_b=0.3, seed=1)
    # In family C the LSTM is far better: that family should get its own, lower xgboost weight.
    rng = np.random.default_rng(2)
    is_c = preds["family"] == "C"
    log_actual = np.log1p(preds.loc[is_c, "actual"])
    preds.loc[is_c, "lstm"] = np.expm1(log_actual + rng.normal(0, 0.05, is_c.sum())).clip(0)
    weights = learn_blend_weights(preds, first="xgboost", second="lstm")
    assert "C" in weights.per_family
    assert weights.per_family["C"] < weights.global_weight
    assert set(weights.per_family) <= {"A", "B", "C"}


def test_round_trip_through_dict() -> None:
    weights = BlendWeights("xgboost", "lstm", 0.6, {"C": 0.1})
    assert BlendWeights.from_dict(weights.to_dict()) == weights


def test_missing_columns_raise_named_error() -> None:
    with pytest.raises(DataValidationError, match="lstm"):
        learn_blend_weights(
            pd.DataFrame({"fold": [], "family": [], "actual": [], "xgboost": []}),
            first="xgboost",
            second="lstm",
        )
