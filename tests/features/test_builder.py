import dataclasses
from collections.abc import Callable
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from retail_forecast.config import FEATURE_PRESETS, DateFeature, FeatureConfig, Settings
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
EXTENDED = [
    *("lag_1", "lag_2", "lag_3", "lag_4", "lag_5", "lag_6", "lag_7", "lag_14", "lag_21", "lag_28"),
    *("roll_7_mean", "roll_14_mean", "roll_28_mean", "roll_56_mean", "dow_mean_4", "dow_mean_8"),
    *("promo_mean_7", "promo_mean_28"),
    *("day_of_week", "month", "year", "day_of_month", "is_national_holiday"),
    *("onpromotion", "store_nbr", "family"),
]
# Declared as data: odd lags and windows, date features in another order than the presets'.
DECLARED = FeatureSpec(
    lags=(3, 9),
    rolling_means=(5,),
    seasonal_means=(2,),
    date_features=("is_national_holiday", "day_of_month", "month"),
)

# With the known-future promotion means (days t-w+1 .. t) of two windows.
RICH = FeatureSpec(
    lags=(1, 7),
    rolling_means=(7, 28),
    seasonal_means=(4,),
    date_features=("day_of_week", "day_of_month"),
    promo_means=(3, 14),
)


def _features(frame: pd.DataFrame, name: str = "required") -> pd.DataFrame:
    builder = FeatureBuilder.from_frame(frame, FeatureSpec.named(name))
    panel = panel_from_frame(frame)
    return pd.DataFrame(builder.panel_features(panel), columns=builder.feature_names)


def test_required_feature_set_is_exactly_the_seeds() -> None:
    spec = FeatureSpec.named("required")
    assert spec.feature_names == REQUIRED
    assert spec.feature_types[-2:] == ["c", "c"]  # store_nbr and family are categorical
    assert spec.feature_types[:-2] == ["q"] * 9


def test_default_settings_are_the_extended_preset_in_its_column_order() -> None:
    assert FeatureConfig() == FEATURE_PRESETS["extended"]
    spec = FeatureSpec.from_config(FeatureConfig())
    assert spec == FeatureSpec.named("extended")
    assert spec.feature_names == EXTENDED
    assert spec.lookback == 56


def test_columns_follow_the_declaration() -> None:
    assert DECLARED.feature_names == [
        *("lag_3", "lag_9", "roll_5_mean", "dow_mean_2"),
        *("is_national_holiday", "day_of_month", "month", "onpromotion", "store_nbr", "family"),
    ]
    assert DECLARED.lookback == 14  # two same weekdays back
    assert FeatureSpec.from_dict(DECLARED.to_dict()) == DECLARED
    assert FeatureSpec.from_config(DECLARED.to_config()) == DECLARED


def test_settings_read_a_feature_set_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RF_FEATURES__LAGS", "[1,7]")
    monkeypatch.setenv("RF_FEATURES__ROLLING_MEANS", "[]")
    monkeypatch.setenv("RF_FEATURES__DATE_FEATURES", '["month"]')
    features = Settings(_env_file=None).features  # type: ignore[call-arg]
    assert (features.lags, features.rolling_means, features.seasonal_means) == ((1, 7), (), (4, 8))
    assert FeatureSpec.from_config(features).feature_names[-7:-3] == [
        *("dow_mean_8", "promo_mean_7", "promo_mean_28", "month")
    ]
    monkeypatch.setenv("RF_FEATURES__HORIZON", "16")  # not a feature setting: forecast.horizon
    with pytest.raises(ValidationError, match="horizon"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lags", (0, 7), r"lags\.0\W+Input should be greater than or equal to 1"),
        ("rolling_means", (7, -1), r"rolling_means\.1\W+Input should be greater than or equal"),
        ("seasonal_means", (0,), r"seasonal_means\.0\W+Input should be greater than or equal"),
        ("date_features", ("weekday",), r"date_features\.0\W+Input should be 'day_of_week', 'mo"),
        ("lags", (7, 1, 7), r"lags\W+.*repeats 7: one column per value"),
        ("date_features", ("month", "month"), r"date_features\W+.*repeats month"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeatureConfig(**{field: value})
    data = {**FeatureSpec.named("required").to_dict(), field: value}
    with pytest.raises(DataValidationError, match=message):
        FeatureSpec(**data)
    with pytest.raises(DataValidationError, match=message):
        FeatureSpec.from_dict(data)


def test_a_spec_must_read_some_history() -> None:
    with pytest.raises(DataValidationError, match="all empty"):
        FeatureSpec(lags=(), rolling_means=(), seasonal_means=(), date_features=("month",))


def test_every_date_feature_name_is_built(panel_factory: Callable[..., pd.DataFrame]) -> None:
    frame = panel_factory(n_days=30)
    names = get_args(DateFeature)
    spec = FeatureSpec(lags=(1,), rolling_means=(), seasonal_means=(), date_features=names)
    builder = FeatureBuilder.from_frame(frame, spec, holiday_dates=["2017-08-10"])
    feats = pd.DataFrame(
        builder.panel_features(panel_from_frame(frame)), columns=builder.feature_names
    )
    dates = pd.DatetimeIndex(frame["date"])
    np.testing.assert_array_equal(feats["day_of_week"], dates.dayofweek)
    np.testing.assert_array_equal(feats["month"], dates.month)
    np.testing.assert_array_equal(feats["year"], dates.year)
    np.testing.assert_array_equal(feats["day_of_month"], dates.day)
    np.testing.assert_array_equal(feats["is_national_holiday"], dates == "2017-08-10")


@pytest.mark.parametrize("name", ["required", "extended"])
def test_a_spec_saved_by_set_name_reads_as_the_same_data(name: str) -> None:
    """Bundles written before specs were data hold the set's name and its lists."""
    earlier: dict[str, dict[str, Any]] = {
        "required": {"lags": [1, 7, 14], "windows": [7, 14], "dow_counts": []},
        "extended": {
            "lags": [1, 2, 3, 4, 5, 6, 7, 14, 21, 28],
            "windows": [7, 14, 28, 56],
            "dow_counts": [4, 8],
            "calendar_extras": ["day_of_month", "is_national_holiday"],
        },
    }
    spec = FeatureSpec.from_dict({"name": name, **earlier[name]})
    assert spec == dataclasses.replace(FeatureSpec.named(name), promo_means=())  # none then


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


def test_unknown_feature_preset_is_refused() -> None:
    with pytest.raises(DataValidationError, match=r"unknown feature preset 'magic'; use \['ext"):
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


@pytest.mark.parametrize("name", ["required", "extended", "declared", "rich"])
def test_p25_train_serve_parity_incremental_equals_one_pass(
    panel_factory: Callable[..., pd.DataFrame], name: str
) -> None:
    frame = panel_factory(n_days=150)
    specs = {"declared": DECLARED, "rich": RICH}
    spec = specs[name] if name in specs else FeatureSpec.named(name)
    builder = FeatureBuilder.from_frame(frame, spec, holiday_dates=["2017-08-11", "2017-05-24"])
    panel = panel_from_frame(frame)
    one_pass = builder.panel_features(panel).reshape(panel.n_series, len(panel.dates), -1)
    origin = len(panel.dates) - 17  # index of the origin day; 16 days follow
    lookback = spec.lookback
    window = np.full((panel.n_series, lookback + 16), np.nan)
    window[:, :lookback] = panel.log_sales[:, origin + 1 - lookback : origin + 1]
    promo = panel.promo[:, origin + 1 - lookback : origin + 17]
    codes = builder.encode(panel.keys)
    for h in range(1, 17):
        day = lookback + h - 1
        t = origin + h
        row = builder.day_features(
            window,
            day=day,
            date=panel.dates[t],
            promo=panel.promo[:, t],
            codes=codes,
            promo_window=promo,
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


def _rich(frame: pd.DataFrame) -> pd.DataFrame:
    builder = FeatureBuilder.from_frame(frame, RICH)
    return pd.DataFrame(builder.panel_features(panel_from_frame(frame)), columns=RICH.feature_names)


def test_promo_means_equal_pandas_rolling_with_day_t_included(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    frame = panel_factory(n_days=120)
    feats = _rich(frame)
    series = frame[(frame.store_nbr == 2) & (frame.family == "FAM B")].index
    promo = pd.Series(frame.loc[series, "onpromotion"].to_numpy(dtype=np.float64))
    got = feats.loc[series].reset_index(drop=True)
    assert got["promo_mean_14"].iloc[:13].isna().all()
    assert got["promo_mean_14"].iloc[13:].notna().all()
    promo_14 = promo.rolling(14).mean()  # day t included: promotions are known in advance
    np.testing.assert_allclose(got["promo_mean_14"], promo_14.astype(np.float32), rtol=1e-6)


def test_promo_means_read_promotions_up_to_day_t_and_never_sales_of_day_t(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    frame = panel_factory(n_days=120)
    before = _rich(frame)
    row = 60 + 120  # store 1, family B, day 60
    changed = frame.copy()
    changed.loc[row, "sales"] += 1000.0
    after = _rich(changed)
    pd.testing.assert_series_equal(before.loc[row], after.loc[row])
    assert before.loc[row + 1, "roll_7_mean"] != after.loc[row + 1, "roll_7_mean"]
    promoted = frame.copy()
    promoted.loc[row, "onpromotion"] += 30
    later = _rich(promoted)
    assert later.loc[row, "promo_mean_3"] != before.loc[row, "promo_mean_3"]
    pd.testing.assert_series_equal(  # a later day's promotion is not read by day t
        _rich(frame.assign(onpromotion=np.where(frame.index == row + 1, 99, frame.onpromotion)))
        .loc[row]
        .drop("onpromotion"),
        before.loc[row].drop("onpromotion"),
    )


def test_a_spec_with_promo_means_needs_the_promo_window(
    panel_factory: Callable[..., pd.DataFrame],
) -> None:
    frame = panel_factory(n_days=60)
    builder = FeatureBuilder.from_frame(frame, RICH)
    panel = panel_from_frame(frame)
    window = panel.log_sales[:, -RICH.lookback :]
    with pytest.raises(ValueError, match="promo_window"):
        builder.day_features(
            window,
            day=RICH.lookback - 1,
            date=panel.dates[-1],
            promo=panel.promo[:, -1],
            codes=builder.encode(panel.keys),
        )


def test_promo_means_round_trip_and_a_spec_without_them_reads_unchanged() -> None:
    assert FeatureSpec.from_dict(RICH.to_dict()) == RICH
    saved_before = {k: v for k, v in RICH.to_dict().items() if k != "promo_means"}
    assert FeatureSpec.from_dict(saved_before).promo_means == ()  # not today's default
    assert RICH.lookback == 28
    assert FeatureSpec.from_dict({**RICH.to_dict(), "promo_means": [56]}).lookback == 55
    assert RICH.feature_names[-7:-5] == ["promo_mean_3", "promo_mean_14"]
