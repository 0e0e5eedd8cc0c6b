from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from retail_forecast.errors import DataValidationError, UnknownSeriesError
from retail_forecast.features.builder import (
    FeatureBuilder,
    FeatureSpec,
    panel_from_frame,
)

REQUIRED = [
    "lag_1",
    "lag_7",
    "lag_14",
    "roll_7_mean",
    "roll_14_mean",
    "day_of_week",
    "month",
    "year",
    "onpromotion",
    "store_nbr",
    "family",
]


def _features(frame: pd.DataFrame, name: str = "required") -> pd.DataFrame:
    builder = FeatureBuilder.from_frame(frame, FeatureSpec.named(name))
    panel = panel_from_frame(frame)
    return pd.DataFrame(builder.panel_features(panel), columns=builder.feature_names)


def test_required_feature_set_is_exactly_the_seeds() -> None:
    spec = FeatureSpec.named("required")
    assert spec.feature_names == REQUIRED
    assert spec.feature_types[-2:] == ["c", "c"]  # store_nbr and family are categorical
    assert spec.feature_types[:-2] == ["q"] * 9


def test_holiday_flag_is_built_from_the_saved_dates(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    frame = panel_factory()
    spec = FeatureSpec.named("extended")
    builder = FeatureBuilder.from_frame(frame, spec, holiday_dates=["2017-08-11"])
    again = FeatureBuilder.from_dict(builder.to_dict())
    feats = pd.DataFrame(again.panel_features(panel_from_frame(frame)), columns=again.feature_names)
    flagged = frame.loc[feats["is_national_holiday"] == 1, "date"].unique()
    assert [str(pd.Timestamp(d).date()) for d in flagged] == ["2017-08-11"]


def test_unknown_feature_set_is_refused() -> None:
    with pytest.raises(DataValidationError, match="unknown feature_set"):
        FeatureSpec.named("magic")


def test_rows_follow_the_sorted_panel_and_shuffling_does_not_matter(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    frame = panel_factory()
    shuffled = frame.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(_features(frame), _features(shuffled))


def test_lag_features_are_log1p_sales_of_earlier_days(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    frame = panel_factory()
    feats = _features(frame)
    series = frame[(frame.store_nbr == 2) & (frame.family == "FAM B")].index
    log_sales = np.log1p(frame.loc[series, "sales"].to_numpy())
    got = feats.loc[series]
    np.testing.assert_allclose(got["lag_7"].to_numpy()[7:], log_sales[:-7].astype(np.float32))
    assert got["lag_7"].iloc[:7].isna().all()
    expected_roll = pd.Series(log_sales).shift(1).rolling(14).mean().to_numpy()
    np.testing.assert_allclose(got["roll_14_mean"], expected_roll.astype(np.float32), rtol=1e-6)


def test_features_of_day_t_never_read_sales_of_day_t(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    frame = panel_factory()
    before = _features(frame, "extended")
    changed = frame.copy()
    row = 60 + 120  # store 1, family B, day 60
    changed.loc[row, "sales"] += 1000.0
    after = _features(changed, "extended")
    pd.testing.assert_series_equal(before.loc[row], after.loc[row])
    assert not before.loc[row + 1].equals(after.loc[row + 1])  # day t+1 does read day t


@pytest.mark.parametrize("name", ["required", "extended"])
def test_p25_train_serve_parity_incremental_equals_one_pass(
    panel_factory: Callable[..., pd.DataFrame], name: str
) -> None:
    frame = panel_factory(n_days=150)
    spec = FeatureSpec.named(name)
    builder = FeatureBuilder.from_frame(frame, spec, holiday_dates=["2017-08-11", "2017-05-24"])
    panel = panel_from_frame(frame)
    one_pass = builder.panel_features(panel).reshape(panel.n_series, len(panel.dates), -1)
    origin = len(panel.dates) - 17  # index of the origin day; 16 days follow
    lookback = spec.lookback
    window = np.full((panel.n_series, lookback + 16), np.nan)
    window[:, :lookback] = panel.log_sales[:, origin + 1 - lookback : origin + 1]
    codes = builder.encode(panel.keys)
    for h in range(1, 17):
        day = lookback + h - 1
        t = origin + h
        row = builder.day_features(
            window, day=day, date=panel.dates[t], promo=panel.promo[:, t], codes=codes
        )
        np.testing.assert_array_equal(row, one_pass[:, t, :])
        window[:, day] = panel.log_sales[:, t]  # feed the "prediction" (here: the truth)


def test_unknown_series_is_refused(panel_factory: Callable[..., pd.DataFrame]) -> None:
    frame = panel_factory()
    builder = FeatureBuilder.from_frame(frame, FeatureSpec.named("required"))
    keys = pd.DataFrame({"store_nbr": [99], "family": ["FAM A"]})
    with pytest.raises(UnknownSeriesError, match="store_nbr=99"):
        builder.encode(keys)
    store = builder.stores[0]
    for family in (["NOPE"], pd.Categorical(["NOPE"], categories=["NOPE", "FAM A"])):
        with pytest.raises(UnknownSeriesError, match="family='NOPE'"):
            builder.encode(pd.DataFrame({"store_nbr": [store], "family": family}))


def test_encode_gives_vocabulary_positions_whatever_the_family_dtype(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    builder = FeatureBuilder.from_frame(panel_factory(), FeatureSpec.named("required"))
    stores = [builder.stores[-1], builder.stores[0]]
    names = [builder.families[-1], builder.families[0]]
    expected = (
        np.array([len(builder.stores) - 1, 0], dtype=np.float64),
        np.array([len(builder.families) - 1, 0], dtype=np.float64),
    )
    reordered = pd.Categorical(names, categories=list(reversed(builder.families)))
    for family in (names, reordered):
        codes = builder.encode(pd.DataFrame({"store_nbr": stores, "family": family}))
        np.testing.assert_array_equal(codes[0], expected[0])
        np.testing.assert_array_equal(codes[1], expected[1])


def test_builder_round_trips_through_json_dict(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    frame = panel_factory()
    builder = FeatureBuilder.from_frame(frame, FeatureSpec.named("extended"))
    again = FeatureBuilder.from_dict(builder.to_dict())
    panel = panel_from_frame(frame)
    np.testing.assert_array_equal(builder.panel_features(panel), again.panel_features(panel))


def test_panel_with_gaps_is_refused(panel_factory: Callable[..., pd.DataFrame]) -> None:
    frame = panel_factory().drop(index=5)
    with pytest.raises(DataValidationError):
        panel_from_frame(frame)


def test_lag_and_rolling_features_equal_mlforecast_preprocess(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    mlforecast = pytest.importorskip("mlforecast")
    from mlforecast.lag_transforms import RollingMean

    frame = panel_factory(n_days=90)
    ours = _features(frame)
    df = pd.DataFrame(
        {
            "unique_id": frame.store_nbr.astype(str) + "|" + frame.family.astype(str),
            "ds": frame.date,
            "y": np.log1p(frame.sales),
        }
    )
    fcst = mlforecast.MLForecast(
        models={},
        freq="D",
        lags=[1, 7, 14],
        lag_transforms={1: [RollingMean(window_size=7), RollingMean(window_size=14)]},
        date_features=["dayofweek", "month", "year"],
    )
    theirs = fcst.preprocess(df, dropna=False)
    assert len(theirs) == len(ours)
    pairs = {
        "lag_1": "lag1",
        "lag_7": "lag7",
        "lag_14": "lag14",
        "roll_7_mean": "rolling_mean_lag1_window_size7",
        "roll_14_mean": "rolling_mean_lag1_window_size14",
        "day_of_week": "dayofweek",
        "month": "month",
        "year": "year",
    }
    # mlforecast sorts by unique_id then ds; ours by store_nbr (int) then family: align on keys
    theirs = theirs.set_index(["unique_id", "ds"]).loc[list(zip(df.unique_id, df.ds, strict=True))]
    for mine, other in pairs.items():
        np.testing.assert_allclose(
            ours[mine].to_numpy(dtype=np.float64),
            theirs[other].to_numpy(dtype=np.float64),
            rtol=1e-6,
            equal_nan=True,
            err_msg=mine,
        )
