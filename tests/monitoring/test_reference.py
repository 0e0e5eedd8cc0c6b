from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.errors import DataValidationError
from retail_forecast.features.builder import FeatureBuilder, FeatureSpec, panel_from_frame
from retail_forecast.monitoring.reference import (
    DEFAULT_NUMERIC,
    ReferenceProfile,
    build_reference,
    decode_features,
    reference_from_sales,
    window_features,
)


def test_window_features_lags_read_previous_days(sales: pd.DataFrame) -> None:
    start, end = pd.Timestamp("2017-04-01"), pd.Timestamp("2017-04-30")
    feats = window_features(sales, start=start, end=end)
    assert feats["date"].min() == start
    assert feats["date"].max() == end
    one = sales[(sales["store_nbr"] == 2) & (sales["family"] == "BEVERAGES")].set_index("date")
    row = feats[(feats["store_nbr"] == 2) & (feats["family"] == "BEVERAGES")].set_index("date")
    day = pd.Timestamp("2017-04-10")
    assert row.loc[day, "lag_1"] == pytest.approx(
        np.log1p(one.loc[day - pd.Timedelta(days=1), "sales"]), rel=1e-6
    )
    assert row.loc[day, "lag_14"] == pytest.approx(
        np.log1p(one.loc[day - pd.Timedelta(days=14), "sales"]), rel=1e-6
    )
    week = one.loc[day - pd.Timedelta(days=7) : day - pd.Timedelta(days=1), "sales"]
    assert row.loc[day, "roll_7_mean"] == pytest.approx(np.log1p(week).mean(), rel=1e-5)
    assert row.loc[day, "sales"] == pytest.approx(one.loc[day, "sales"])
    # the warm-up days before the window give the first day complete lags
    assert feats.loc[feats["date"] == start, "lag_14"].notna().all()


def test_window_features_drop_closed_days(sales: pd.DataFrame) -> None:
    feats = window_features(sales, start="2016-12-20", end="2016-12-31")
    assert pd.Timestamp("2016-12-25") not in set(feats["date"])
    assert len(feats) == 11 * sales.groupby(["store_nbr", "family"], observed=True).ngroups


def test_profile_contents(sales: pd.DataFrame, reference: pd.DataFrame) -> None:
    profile = ReferenceProfile.from_frame(reference)
    assert set(profile.numeric) == set(DEFAULT_NUMERIC)
    assert set(profile.categorical) == {"store_nbr", "family"}
    lag = profile.numeric["lag_7"]
    assert len(lag.quantiles) == 100
    assert np.all(np.diff(lag.quantiles) >= 0)
    assert np.all(np.diff(lag.edges) > 0)
    assert len(lag.shares) == len(lag.edges) + 1
    assert lag.shares.sum() == pytest.approx(1.0)
    assert sum(profile.categorical["family"].values()) == pytest.approx(1.0)
    window = sales[(sales["date"] >= "2017-03-01") & (sales["date"] <= "2017-05-31")]
    assert profile.forecast["zero_share"][0] == pytest.approx((window["sales"] == 0).mean())
    assert profile.forecast["promo_share"][0] == pytest.approx((window["onpromotion"] > 0).mean())
    fam = window[window["family"] == "BEVERAGES"]
    assert profile.forecast["promo_mean"][1]["BEVERAGES"] == pytest.approx(
        fam["onpromotion"].mean()
    )
    assert len(profile.series) == 8 * 33
    assert "1|BEVERAGES" in profile.series
    assert (profile.first_date, profile.last_date) == ("2017-03-01", "2017-05-31")


def test_profile_parquet_round_trip(reference: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "reference.parquet"
    reference.to_parquet(path, index=False)
    back = ReferenceProfile.from_frame(pd.read_parquet(path))
    direct = ReferenceProfile.from_frame(reference)
    np.testing.assert_array_equal(
        back.numeric["roll_14_mean"].quantiles, direct.numeric["roll_14_mean"].quantiles
    )
    assert back.categorical == direct.categorical
    assert back.series == direct.series


def test_build_reference_accepts_a_canonical_window(sales: pd.DataFrame) -> None:
    window = sales[sales["date"] >= "2017-07-01"]
    profile = ReferenceProfile.from_frame(build_reference(window))
    assert profile.numeric["lag_14"].nan_share == pytest.approx(14 / 46, abs=1e-9)  # no warm-up
    warm = ReferenceProfile.from_frame(reference_from_sales(sales, days=46))
    assert warm.numeric["lag_14"].nan_share == 0.0


def test_all_nan_feature_is_profiled_without_sketch(sales: pd.DataFrame) -> None:
    feats = window_features(sales, start="2017-05-01", end="2017-05-31").assign(lag_1=np.nan)
    profile = ReferenceProfile.from_frame(build_reference(feats))
    assert profile.numeric["lag_1"].n == 0
    assert profile.numeric["lag_1"].nan_share == 1.0


def test_empty_or_incomplete_input_raises(sales: pd.DataFrame) -> None:
    feats = window_features(sales, start="2017-05-01", end="2017-05-31")
    with pytest.raises(DataValidationError):
        build_reference(feats.iloc[:0])
    with pytest.raises(DataValidationError, match="lacks columns"):
        build_reference(feats.drop(columns=["lag_7"]))


def test_decode_features_matches_window_features(sales: pd.DataFrame) -> None:
    frame = sales[sales["date"] >= "2017-07-01"].reset_index(drop=True)
    builder = FeatureBuilder.from_frame(frame, FeatureSpec.named("required"))
    decoded = decode_features(
        builder.panel_features(panel_from_frame(frame), first_day=14), builder
    )
    expected = window_features(frame, start="2017-07-15")
    assert list(decoded["family"]) == list(expected["family"])
    assert list(decoded["store_nbr"]) == list(expected["store_nbr"])
    np.testing.assert_allclose(decoded["lag_7"], expected["lag_7"], rtol=1e-6)
