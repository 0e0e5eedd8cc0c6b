"""Held-out quantiles on backtest folds (fold k never calibrates fold k) and their report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retail_forecast.models.blend import BlendWeights
from retail_forecast.training.backtest import BacktestResult, Fold
from retail_forecast.training.metrics import M5_LEVELS, interval_coverage, pinball_loss
from retail_forecast.training.quantile_scores import (
    REPORT_LEVELS,
    coverage_table,
    heldout_quantiles,
    heldout_report,
    quantile_report,
    served_column,
)

STARTS = ("2017-07-31", "2017-07-15", "2017-06-29", "2017-06-13")
PER_FOLD = 16 * 200
FAMILIES = ("A", "B")


def _result(seed: int = 0, noise: float = 0.4) -> BacktestResult:
    """Four folds x 16 horizon days; actual = point x log-normal noise; some closed rows."""
    rng = np.random.default_rng(seed)
    n = len(STARTS) * PER_FOLD
    point = np.expm1(rng.uniform(0.1, 6, n))
    actual = np.clip(np.expm1(np.log1p(point) + rng.normal(0, noise, n)), 0, None)
    is_open = rng.random(n) > 0.05
    actual[~is_open] = 0.0
    hybrid = point.copy()
    hybrid[~is_open] = 0.0
    frame = pd.DataFrame(
        {
            "fold": np.repeat(STARTS, PER_FOLD),
            "family": rng.choice(FAMILIES, n),
            "horizon_day": np.tile(np.repeat(np.arange(1, 17), 200), len(STARTS)),
            "actual": actual,
            "open": is_open,
            "hybrid": hybrid,
        }
    )
    folds = [Fold(pd.Timestamp(s), pd.Timestamp(s) + pd.Timedelta(days=15)) for s in STARTS]
    return BacktestResult(folds, ["hybrid"], frame)


def _with_actuals_of(result: BacktestResult, fold: str, factor: float) -> BacktestResult:
    frame = result.predictions.copy()
    rows = frame["fold"] == fold
    frame.loc[rows, "actual"] *= factor
    return BacktestResult(result.folds, result.models, frame)


def test_p39_a_fold_is_never_calibrated_on_its_own_actuals() -> None:
    result = _result()
    before = heldout_quantiles(result, "hybrid", (0.1, 0.9))
    changed = heldout_quantiles(_with_actuals_of(result, STARTS[0], 3.0), "hybrid", (0.1, 0.9))
    frame = result.predictions
    scored = (frame["fold"] == STARTS[0]).to_numpy()
    others = ~scored & frame["open"].to_numpy()  # the open rows of the other folds
    for level in (0.1, 0.9):
        # the scored fold's quantiles do not move when only its own actuals change ...
        assert np.array_equal(before[level][scored], changed[level][scored])
        # ... while every other fold's do: they were calibrated on the changed fold
        moved, was = changed[level][others], before[level][others]
        assert (moved >= was).all()
        assert (moved > was).mean() > 0.9


def test_closed_rows_and_zero_points_get_zero_at_every_level() -> None:
    result = _result()
    frame = result.predictions
    frame.loc[frame.index[:50], "hybrid"] = 0.0  # the zero rule: point 0 on open rows
    q = heldout_quantiles(result, "hybrid", M5_LEVELS)
    zero = (~frame["open"] | (frame["hybrid"] <= 0)).to_numpy()
    assert zero[:50].all()
    assert (~frame["open"]).any()
    for level in M5_LEVELS:
        assert (q[level][zero] == 0.0).all()
    assert (q[0.5][frame["hybrid"] > 1] > 0).all()
    stacked = np.column_stack([q[level] for level in M5_LEVELS])
    assert (np.diff(stacked, axis=1) >= 0).all()


def test_held_out_coverage_is_near_nominal_when_folds_are_alike() -> None:
    report = heldout_report(_result(), "hybrid")
    assert report["column"] == "hybrid"
    nominal = {"0.5": 0.5, "0.8": 0.8, "0.95": 0.95}
    for fold in STARTS:
        for interval, target in nominal.items():
            assert abs(report["per_fold"][fold]["coverage"][interval] - target) < 0.03
    assert 0.0 < report["wql"] < 1.0


def test_the_report_scores_open_rows_only_and_matches_the_metrics() -> None:
    result = _result()
    q = heldout_quantiles(result, "hybrid", REPORT_LEVELS)
    report = quantile_report(result, q)
    frame = result.predictions
    is_open = frame["open"].to_numpy()
    actual = frame["actual"].to_numpy()[is_open]
    assert report["rows"] == int(is_open.sum())
    expected = interval_coverage(actual, q[0.1][is_open], q[0.9][is_open])
    assert report["coverage"]["0.8"] == expected
    assert report["pinball"]["0.025"] == pinball_loss(actual, q[0.025][is_open], 0.025)
    assert set(report["per_fold"]) == set(STARTS)
    assert list(report["per_horizon_day"]) == [str(d) for d in range(1, 17)]
    assert set(report["per_family"]) == set(FAMILIES)
    # a closed row's actual does not count: changing it leaves every score as it was
    closed = frame.copy()
    closed.loc[~closed["open"], "actual"] = 1e6
    again = quantile_report(BacktestResult(result.folds, result.models, closed), q)
    assert again == report


def test_wql_needs_all_nine_m5_levels() -> None:
    result = _result()
    report = quantile_report(result, heldout_quantiles(result, "hybrid", (0.1, 0.9)))
    assert report["wql"] is None
    assert list(report["coverage"]) == ["0.8"]


def test_coverage_table_has_a_row_per_fold_and_the_overall() -> None:
    table = coverage_table(heldout_report(_result(), "hybrid"))
    assert table.row_count == len(STARTS) + 1
    assert [c.header for c in table.columns] == ["fold", "50%", "80%", "95%", "WQL (M5 levels)"]


@pytest.mark.parametrize(
    ("weights", "column"),
    [
        (BlendWeights("xgboost", "lstm", global_weight=1.0), "xgboost"),
        (BlendWeights("xgboost", "lstm", global_weight=0.0), "lstm"),
        (BlendWeights("xgboost", "lstm", global_weight=0.6), "hybrid"),
        (BlendWeights("xgboost", "lstm", global_weight=1.0, per_family={"A": 0.5}), "hybrid"),
    ],
)
def test_the_served_column_follows_the_shipped_weights(weights: BlendWeights, column: str) -> None:
    assert served_column(weights) == column
