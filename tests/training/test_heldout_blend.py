"""add_hybrid: held-out hybrid scores, and the weights a bundle ships."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retail_forecast.training.backtest import BacktestResult, Fold
from retail_forecast.training.heldout_blend import add_hybrid

STARTS = ("2017-07-31", "2017-07-15", "2017-06-29", "2017-06-13")
PER_FOLD = 3 * 300


def _result(noise_a: tuple[float, ...], noise_b: tuple[float, ...]) -> BacktestResult:
    """Four folds x 3 families; per fold, independent log noise of each model."""
    rng = np.random.default_rng(0)
    n = len(STARTS) * PER_FOLD
    log_actual = rng.uniform(0, 6, n)
    log_a, log_b = log_actual.copy(), log_actual.copy()
    for k in range(len(STARTS)):
        rows = slice(k * PER_FOLD, (k + 1) * PER_FOLD)
        log_a[rows] += rng.normal(0, noise_a[k], PER_FOLD)
        log_b[rows] += rng.normal(0, noise_b[k], PER_FOLD)
    frame = pd.DataFrame(
        {
            "fold": np.repeat(STARTS, PER_FOLD),
            "family": np.tile(np.repeat(["A", "B", "C"], 300), len(STARTS)),
            "actual": np.expm1(log_actual),
            "xgboost": np.expm1(log_a).clip(0),
            "lstm": np.expm1(log_b).clip(0),
        }
    )
    folds = [Fold(pd.Timestamp(s), pd.Timestamp(s) + pd.Timedelta(days=15)) for s in STARTS]
    return BacktestResult(folds, ["xgboost", "lstm"], frame)


def test_a_blend_that_beats_both_models_held_out_is_shipped() -> None:
    scored, weights = add_hybrid(_result((0.3,) * 4, (0.35,) * 4))
    mean = scored.mean_rmsle()
    assert mean["hybrid"] < min(mean["xgboost"], mean["lstm"])
    assert 0.3 < weights.global_weight < 0.8


def test_a_blend_that_loses_held_out_ships_the_better_single_model() -> None:
    # One window where xgboost breaks dominates the squared errors, so the weights learned on
    # all folds blend the lstm in; held out, that blend loses to xgboost on the mean fold RMSLE.
    scored, weights = add_hybrid(_result((1.5, 0.1, 0.1, 0.1), (0.5,) * 4))
    mean = scored.mean_rmsle()
    assert mean["hybrid"] > mean["xgboost"] + 0.1
    assert (weights.global_weight, weights.per_family) == (1.0, {})
    assert list(weights.model_labels(pd.Series(["A", "C"]))) == ["xgboost", "xgboost"]
