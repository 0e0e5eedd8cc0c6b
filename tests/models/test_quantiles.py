"""QuantileCalibration: no crossing, >= 0, zeros by rule, exact JSON round trip; check_levels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retail_forecast.errors import ArtifactError, DataValidationError
from retail_forecast.models.quantiles import (
    CALIBRATION_FILE,
    DEFAULT_LEVELS,
    QuantileCalibration,
    check_levels,
    zero_rows,
)

HORIZON = 16


def _calibration(seed: int = 0, n: int = 40000) -> QuantileCalibration:
    """Log-normal actuals around the point, noisier at long horizons and low volume."""
    rng = np.random.default_rng(seed)
    point = np.expm1(rng.uniform(0.05, 7, n))
    day = rng.integers(1, HORIZON + 1, n)
    sd = 0.2 + 0.02 * day + 0.3 / (1 + np.log1p(point))
    actual = np.clip(np.expm1(np.log1p(point) + rng.normal(0, sd)), 0, None)
    return QuantileCalibration.fit(actual, point, day)


CAL = _calibration()
LEVEL = st.floats(min_value=1e-6, max_value=1 - 1e-6, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    points=st.lists(
        st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=40,
    ),
    day_seed=st.integers(0, 2**32 - 1),
    levels=st.lists(LEVEL, min_size=1, max_size=9, unique=True),
)
def test_p38_quantiles_never_cross_and_are_never_negative(
    points: list[float], day_seed: int, levels: list[float]
) -> None:
    point = np.asarray(points)
    days = np.random.default_rng(day_seed).integers(1, HORIZON + 1, point.size)
    ordered = sorted(levels)
    q = CAL.quantiles(point, days, ordered)
    assert q.shape == (point.size, len(levels))
    assert q.dtype == np.float64
    assert np.isfinite(q).all()
    assert (q >= 0).all()
    assert (np.diff(q, axis=1) >= 0).all()  # non-decreasing in the level: no crossing
    # the order of the request is kept: columns follow the levels as given
    unordered = CAL.quantiles(point, days, levels)
    for k, level in enumerate(levels):
        assert np.array_equal(unordered[:, k], q[:, ordered.index(level)])


@settings(max_examples=60, deadline=None)
@given(
    mask=st.lists(st.booleans(), min_size=1, max_size=30),
    levels=st.lists(LEVEL, min_size=1, max_size=9, unique=True),
)
def test_p38_rows_marked_zero_are_zero_at_every_level(
    mask: list[bool], levels: list[float]
) -> None:
    zero = np.asarray(mask)
    point = np.full(zero.size, 50.0)
    q = CAL.quantiles(point, np.ones(zero.size, dtype=int), sorted(levels), zero=zero)
    assert (q[zero] == 0.0).all()
    assert (q[~zero] > 0).all()


def test_zero_rows_are_zero_points_and_the_closed_and_zero_rule_labels() -> None:
    labels = np.array(["hybrid", "zero_rule", "closed", "xgboost", "lstm"], dtype=object)
    point = np.array([3.0, 0.0, 0.0, 0.0, 2.0])
    assert zero_rows(point, labels).tolist() == [False, True, True, True, False]


def test_the_median_is_close_to_the_point_and_intervals_widen_with_the_horizon() -> None:
    point = np.full(HORIZON, 100.0)
    q = CAL.quantiles(point, np.arange(1, HORIZON + 1), (0.1, 0.5, 0.9))
    assert np.allclose(q[:, 1], 100.0, rtol=0.1)
    width = np.log1p(q[:, 2]) - np.log1p(q[:, 0])
    assert width[-1] > width[0]


def test_calibrated_intervals_cover_fresh_draws_of_the_same_process() -> None:
    rng = np.random.default_rng(99)
    n = 20000
    point = np.expm1(rng.uniform(0.05, 7, n))
    day = rng.integers(1, HORIZON + 1, n)
    sd = 0.2 + 0.02 * day + 0.3 / (1 + np.log1p(point))
    actual = np.clip(np.expm1(np.log1p(point) + rng.normal(0, sd)), 0, None)
    q = CAL.quantiles(point, day, (0.1, 0.9))
    coverage = np.mean((actual >= q[:, 0]) & (actual <= q[:, 1]))
    assert 0.77 <= coverage <= 0.83


def test_bundle_file_round_trip_gives_identical_quantiles(tmp_path: Path) -> None:
    path = CAL.save(tmp_path)
    assert path == tmp_path / CALIBRATION_FILE
    loaded = QuantileCalibration.load(tmp_path)
    rng = np.random.default_rng(1)
    point, day = np.expm1(rng.uniform(0, 8, 500)), rng.integers(1, HORIZON + 1, 500)
    levels = (0.005, 0.1, 0.5, 0.9, 0.995)
    assert np.array_equal(loaded.quantiles(point, day, levels), CAL.quantiles(point, day, levels))
    assert loaded.horizon == HORIZON


def test_a_malformed_or_unsorted_file_is_refused(tmp_path: Path) -> None:
    path = CAL.save(tmp_path)
    data = json.loads(path.read_text())
    data["offsets"][0][0][5], data["offsets"][0][0][6] = 9.0, -9.0  # crossing offsets
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="not sorted"):
        QuantileCalibration.load(tmp_path)
    path.write_text(json.dumps({"format": 1}))
    with pytest.raises(ArtifactError, match="malformed"):
        QuantileCalibration.load(tmp_path)


def test_horizon_days_outside_the_calibration_are_refused() -> None:
    with pytest.raises(DataValidationError, match=r"1\.\.16"):
        CAL.quantiles(np.array([1.0]), np.array([17]), DEFAULT_LEVELS)


def test_a_thin_cell_borrows_its_bucket_and_still_answers() -> None:
    # one horizon day has two rows only: its cell uses the bucket's residuals over all days
    rng = np.random.default_rng(2)
    point = np.expm1(rng.uniform(1, 5, 400))
    day = np.r_[np.full(398, 1), 2, 2]
    actual = point * np.exp(rng.normal(0, 0.3, 400))
    cal = QuantileCalibration.fit(actual, point, day, buckets=2)
    q = cal.quantiles(np.array([20.0, 20.0]), np.array([1, 2]), (0.1, 0.9))
    assert np.allclose(q[0], q[1], rtol=0.2)


def test_check_levels_accepts_valid_levels() -> None:
    assert check_levels([0.1, 0.5, 0.9]) == DEFAULT_LEVELS
    assert check_levels((0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995))[0] == 0.005


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ([0.1, 1.0], r"quantiles\[1\] must be a number strictly between 0 and 1"),
        ([0.1, 0.0], r"quantiles\[1\] must be a number strictly between 0 and 1"),
        ([0.5, float("nan")], r"quantiles\[1\]"),
        ([0.5, "a"], r"quantiles\[1\]"),
        ([0.5, True], r"quantiles\[1\]"),
        ([0.1, 0.1], r"quantiles\[1\] repeats the level 0.1"),
        ([0.1] + [0.1 + k / 100 for k in range(1, 10)], "at most 9"),
        ([], "at least one"),
        ("0.1", "list"),
    ],
)
def test_check_levels_names_the_position_and_the_rule(levels: object, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        check_levels(levels)  # type: ignore[arg-type]
