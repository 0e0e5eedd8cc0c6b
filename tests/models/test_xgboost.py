import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.base import BaseEstimator

from retail_forecast.config import FEATURE_PRESETS, FeatureConfig, XGBoostConfig
from retail_forecast.errors import ArtifactError, DataValidationError, UnknownSeriesError
from retail_forecast.features.builder import panel_from_frame
from retail_forecast.models.xgboost import XGBForecaster
from retail_forecast.training.backtest import run_backtest

HORIZON = 16  # the default forecast.horizon

N_DAYS = 150


def _panel(n_days: int = N_DAYS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end="2017-08-15", periods=n_days, freq="D")
    parts = []
    for store in (1, 2, 3):
        for f, family in enumerate(("FAM A", "FAM B")):
            promo = rng.poisson(2.0, n_days) * (rng.random(n_days) < 0.3)
            weekly = 1.0 + 0.4 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
            level = 5.0 + 10.0 * store * (f + 1)
            sales = rng.poisson(level * weekly * (1 + 0.05 * promo)).astype(np.float64)
            parts.append(
                pd.DataFrame(
                    {
                        "date": dates,
                        "store_nbr": np.int64(store),
                        "family": family,
                        "sales": sales,
                        "onpromotion": promo.astype(np.int64),
                        "is_closed": False,
                    }
                )
            )
    frame = pd.concat(parts, ignore_index=True)
    frame["family"] = pd.Categorical(frame["family"], categories=["FAM A", "FAM B"])
    return frame


def _config(**overrides: Any) -> XGBoostConfig:
    base: dict[str, Any] = {
        "n_estimators": 40,
        "learning_rate": 0.3,
        "max_depth": 4,
        "early_stopping_rounds": 10,
        "nthread": 1,
        "dead_series_days": 21,
    }
    base.update(overrides)
    return XGBoostConfig(**base)


def _xgb(
    config: XGBoostConfig, features: FeatureConfig | None = None, **kwargs: Any
) -> XGBForecaster:
    """The tests pin the seed's feature set unless they say otherwise (the default may change)."""
    kwargs.setdefault("horizon", HORIZON)
    return XGBForecaster(config, features or FEATURE_PRESETS["required"], **kwargs)


def _split(frame: pd.DataFrame, horizon: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    origin = frame["date"].max() - pd.Timedelta(days=horizon)
    history = frame[frame["date"] <= origin].reset_index(drop=True)
    future = frame[frame["date"] > origin].reset_index(drop=True)
    return history, future


@pytest.fixture(scope="module")
def fitted() -> tuple[XGBForecaster, pd.DataFrame, pd.DataFrame]:
    history, future = _split(_panel())
    return _xgb(_config()).fit(history), history, future


def test_predict_keeps_rows_order_and_adds_non_negative_sales(
    fitted: tuple[XGBForecaster, pd.DataFrame, pd.DataFrame],
) -> None:
    model, history, future = fitted
    shuffled = future.drop(columns="sales").sample(frac=1.0, random_state=1)
    out = model.predict(history, shuffled)
    assert list(out.index) == list(shuffled.index)
    assert (out["sales"] >= 0).all()
    assert out["sales"].notna().all()
    in_order = model.predict(history, future.drop(columns="sales")).set_index(["date", "store_nbr"])
    assert in_order["sales"].gt(0).mean() > 0.9


def test_forecast_is_better_than_zero_on_a_learnable_panel(
    fitted: tuple[XGBForecaster, pd.DataFrame, pd.DataFrame],
) -> None:
    model, history, future = fitted
    pred = model.predict(history, future.drop(columns="sales"))["sales"]
    err = np.sqrt(np.mean((np.log1p(pred) - np.log1p(future["sales"])) ** 2))
    zero = np.sqrt(np.mean(np.log1p(future["sales"]) ** 2))
    assert err < 0.5 * zero


def test_no_leakage_sales_after_the_origin_never_change_predictions(
    fitted: tuple[XGBForecaster, pd.DataFrame, pd.DataFrame],
) -> None:
    model, history, future = fitted
    base = model.predict(history, future)["sales"].to_numpy()
    rng = np.random.default_rng(7)
    for _ in range(5):  # any true sales value after T, including one big jump
        perturbed = future.copy()
        idx = rng.integers(0, len(future), size=10)
        perturbed.loc[idx, "sales"] = rng.random(10) * 1e5
        np.testing.assert_array_equal(model.predict(history, perturbed)["sales"], base)
    earlier = history.copy()
    row = earlier.index[(earlier.store_nbr == 2) & (earlier.family == "FAM B")][-3]
    earlier.loc[row, "sales"] *= 20
    changed = model.predict(earlier, future)["sales"].to_numpy()
    series = ((future.store_nbr == 2) & (future.family == "FAM B")).to_numpy()
    assert not np.array_equal(changed[series], base[series])
    np.testing.assert_array_equal(changed[~series], base[~series])


def test_no_leakage_in_the_backtest_window_sales_only_reach_the_actual_column() -> None:
    frame = _panel(n_days=120)
    factories = {"xgboost": lambda: _xgb(_config(n_estimators=10))}
    base = run_backtest(
        frame, factories, folds=2, horizon=HORIZON, include_baselines=True
    ).predictions
    perturbed = frame.copy()
    window = perturbed["date"] > perturbed["date"].max() - pd.Timedelta(days=16)
    perturbed.loc[window, "sales"] = perturbed.loc[window, "sales"] * 3 + 50
    again = run_backtest(
        perturbed, factories, folds=2, horizon=HORIZON, include_baselines=True
    ).predictions
    last_fold = again["fold"] == "2017-07-31"
    for column in ("xgboost", "seasonal_naive", "mean_14", "last_value", "zero"):
        np.testing.assert_array_equal(again.loc[last_fold, column], base.loc[last_fold, column])
    assert not np.array_equal(again.loc[last_fold, "actual"], base.loc[last_fold, "actual"])
    # the earlier fold's window ends before the perturbed days but its refit sees none of them
    first = again["fold"] == "2017-07-15"
    np.testing.assert_array_equal(again.loc[first, "xgboost"], base.loc[first, "xgboost"])


def test_dead_series_rule_zeroes_and_reports(
    fitted: tuple[XGBForecaster, pd.DataFrame, pd.DataFrame],
) -> None:
    model, history, future = fitted
    dead = history.copy()
    mask = (dead.store_nbr == 3) & (dead.family == "FAM A")
    mask &= dead["date"] > dead["date"].max() - pd.Timedelta(days=21)
    dead.loc[mask, "sales"] = 0.0
    out = model.predict(dead, future.drop(columns="sales"))
    series = (out.store_nbr == 3) & (out.family == "FAM A")
    assert (out.loc[series, "sales"] == 0).all()
    assert (out.loc[~series, "sales"] > 0).mean() > 0.9
    assert model.n_dead_zeroed_ == 1
    model.predict(history, future.drop(columns="sales"))
    assert model.n_dead_zeroed_ == 0


def test_dead_series_rule_can_be_disabled() -> None:
    history, future = _split(_panel())
    mask = (history.store_nbr == 3) & (history.family == "FAM A")
    mask &= history["date"] > history["date"].max() - pd.Timedelta(days=21)
    history.loc[mask, "sales"] = 0.0
    model = _xgb(_config(dead_series_days=0)).fit(history)
    out = model.predict(history, future.drop(columns="sales"))
    assert model.n_dead_zeroed_ == 0
    assert (out.loc[(out.store_nbr == 3) & (out.family == "FAM A"), "sales"] > 0).any()


def test_p11_bundle_round_trip_gives_identical_predictions(
    fitted: tuple[XGBForecaster, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    model, history, future = fitted
    files = model.save(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in files) == [
        "preprocessor_xgboost.json",
        "xgboost/model.ubj",
    ]
    meta = json.loads((tmp_path / "preprocessor_xgboost.json").read_text())
    assert meta["builder"]["categories"] == {"store_nbr": [1, 2, 3], "family": ["FAM A", "FAM B"]}
    assert meta["builder"]["feature_names"][-2:] == ["store_nbr", "family"]
    assert meta["dead_series_days"] == 21
    loaded = XGBForecaster.load(tmp_path)
    future_x = future.drop(columns="sales")
    np.testing.assert_array_equal(
        loaded.predict(history, future_x)["sales"], model.predict(history, future_x)["sales"]
    )


def test_load_refuses_missing_or_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        XGBForecaster.load(tmp_path)
    (tmp_path / "xgboost").mkdir()
    (tmp_path / "xgboost" / "model.ubj").write_bytes(b"\x80\x04not a model")
    (tmp_path / "preprocessor_xgboost.json").write_text('{"format_version": 1}')
    with pytest.raises(ArtifactError):
        XGBForecaster.load(tmp_path)


def test_p24_seeded_training_is_deterministic() -> None:
    history, _ = _split(_panel())
    a = _xgb(_config(subsample=0.7)).fit(history)
    b = _xgb(_config(subsample=0.7)).fit(history)
    assert a.booster_.save_raw("json") == b.booster_.save_raw("json")


def test_fixed_rounds_train_every_row_and_equal_the_refit_after_early_stopping() -> None:
    history, _ = _split(_panel())
    stopped = _xgb(_config()).fit(history)  # early stopping, then the refit on every row
    rounds = stopped.booster_.num_boosted_rounds()
    fixed = _xgb(_config(rounds=rounds)).fit(history)
    assert fixed.n_train_rows_ == stopped.n_train_rows_  # the validation days are trained on
    assert fixed.booster_.save_raw("json") == stopped.booster_.save_raw("json")
    assert _xgb(_config(rounds=3)).fit(history).booster_.num_boosted_rounds() == 3


def test_unknown_series_and_out_of_horizon_dates_are_refused(
    fitted: tuple[XGBForecaster, pd.DataFrame, pd.DataFrame],
) -> None:
    model, history, future = fitted
    bad = future.head(3).copy()
    bad["store_nbr"] = 99
    with pytest.raises(UnknownSeriesError):
        model.predict(history, bad)
    late = future.head(3).copy()
    late["date"] = late["date"] + pd.Timedelta(days=30)
    with pytest.raises(DataValidationError, match="within 16 days"):
        model.predict(history, late)


def test_subset_of_series_and_days_gives_the_same_values(
    fitted: tuple[XGBForecaster, pd.DataFrame, pd.DataFrame],
) -> None:
    model, history, future = fitted
    full = model.predict(history, future.drop(columns="sales"))
    subset = future[(future.store_nbr == 2)].drop(columns="sales")
    part = model.predict(history, subset)
    np.testing.assert_allclose(part["sales"], full.loc[subset.index, "sales"], rtol=1e-6)


class _BoosterAsModel(BaseEstimator):  # type: ignore[misc]
    """sklearn-like wrapper so that mlforecast drives our trained booster."""

    def __init__(self, model: XGBForecaster) -> None:
        self.model = model

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> "_BoosterAsModel":
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        builder = self.model.builder_
        renamed = x.rename(
            columns={
                "lag1": "lag_1",
                "lag7": "lag_7",
                "lag14": "lag_14",
                "rolling_mean_lag1_window_size7": "roll_7_mean",
                "rolling_mean_lag1_window_size14": "roll_14_mean",
                "dayofweek": "day_of_week",
            }
        )
        codes = builder.encode(renamed[["store_nbr", "family"]].astype({"store_nbr": np.int64}))
        renamed = renamed.assign(store_nbr=codes[0], family=codes[1])
        matrix = renamed[builder.feature_names].to_numpy(dtype=np.float32)
        return np.asarray(self.model.booster_.inplace_predict(matrix), dtype=np.float64)


def test_recursive_forecast_equals_mlforecast_recursive_predict_with_the_same_booster() -> None:
    mlforecast = pytest.importorskip("mlforecast")
    from mlforecast.lag_transforms import RollingMean

    history, future = _split(_panel())
    model = _xgb(_config(dead_series_days=0)).fit(history)
    ours = model.predict(history, future.drop(columns="sales"))

    def frame(part: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "unique_id": part.store_nbr.astype(str) + "|" + part.family.astype(str),
                "ds": part.date,
                "store_nbr": part.store_nbr,
                "family": part.family.astype(str),
                "onpromotion": part.onpromotion.astype(np.float64),
            }
        )

    train = frame(history).assign(y=np.log1p(history.sales.to_numpy()))
    fcst = mlforecast.MLForecast(
        models={"xgb": _BoosterAsModel(model)},
        freq="D",
        lags=[1, 7, 14],
        lag_transforms={1: [RollingMean(window_size=7), RollingMean(window_size=14)]},
        date_features=["dayofweek", "month", "year"],
    )
    fcst.fit(train, static_features=["store_nbr", "family"])
    x_df = frame(future)[["unique_id", "ds", "onpromotion"]]
    theirs = x_df.merge(fcst.predict(h=16, X_df=x_df), on=["unique_id", "ds"])
    np.testing.assert_allclose(
        ours["sales"].to_numpy(), np.clip(np.expm1(theirs["xgb"].to_numpy()), 0, None), rtol=1e-5
    )
    # the oracle is not vacuous: the forecasts vary across days and series
    assert ours["sales"].std() > 1.0
    assert panel_from_frame(history).n_series == 6


def test_extended_feature_set_fits_predicts_and_keeps_its_holidays(tmp_path: Path) -> None:
    history, future = _split(_panel())
    holidays = pd.DataFrame(
        {
            "date": ["2017-08-10", "2017-08-11"],
            "type": ["Holiday", "Transfer"],
            "locale": ["National", "National"],
            "locale_name": ["Ecuador", "Ecuador"],
            "description": ["Grito", "Traslado Grito"],
            "transferred": [True, False],
        }
    )
    model = _xgb(_config(), FEATURE_PRESETS["extended"], holidays=holidays)
    out = model.fit(history).predict(history, future.drop(columns="sales"))
    assert model.builder_.spec.lookback == 56
    assert (out["sales"] >= 0).all()
    model.save(tmp_path)
    loaded = XGBForecaster.load(tmp_path)
    assert loaded.builder_.holiday_dates == ["2017-08-11"]
    again = loaded.predict(history, future.drop(columns="sales"))
    np.testing.assert_array_equal(again["sales"], out["sales"])


def test_training_rows_leave_out_excluded_days_and_days_before_the_first_sale() -> None:
    history, _ = _split(_panel())
    base = _xgb(_config(n_estimators=5)).fit(history)
    n_series, n_days = 6, history["date"].nunique()
    assert base.n_train_rows_ == n_series * (n_days - 14)  # all lags known from day 15 on
    quake = _config(n_estimators=5, exclude_ranges=(("2017-05-01", "2017-05-10"),))
    assert _xgb(quake).fit(history).n_train_rows_ == base.n_train_rows_ - 6 * 10
    late = history.copy()
    first = (late.store_nbr == 1) & (late.family == "FAM A")
    late.loc[first & (late["date"] < "2017-05-01"), "sales"] = 0.0  # store opened in May
    opened = _xgb(_config(n_estimators=5)).fit(late)
    skipped = int((first & (late["date"] < "2017-05-01")).sum()) - 14
    assert opened.n_train_rows_ == base.n_train_rows_ - skipped


RICH = FeatureConfig(
    lags=(1, 7),
    rolling_means=(7, 28),
    seasonal_means=(4,),
    date_features=("day_of_week",),
    promo_means=(3, 14),
)


def test_promo_means_serve_as_they_train(tmp_path: Path) -> None:
    """Day 1 of the recursion equals the booster on the training matrix; the bundle keeps it."""
    frame = _panel()
    history, future = _split(frame)
    model = _xgb(_config(), RICH).fit(history)
    out = model.predict(history, future.drop(columns="sales"))
    panel = panel_from_frame(frame)
    day_1 = panel.dates.get_loc(future["date"].min())
    matrix = model.builder_.panel_features(panel).reshape(panel.n_series, len(panel.dates), -1)
    trained = xgb.DMatrix(
        matrix[:, day_1, :],
        feature_names=model.builder_.feature_names,
        feature_types=model.builder_.spec.feature_types,
        enable_categorical=True,
    )
    first = out[out["date"] == future["date"].min()].sort_values(["store_nbr", "family"])
    expected = np.clip(np.expm1(model.booster_.predict(trained)), 0, None)
    np.testing.assert_allclose(first["sales"].to_numpy(), expected, rtol=1e-5)
    # future promotions are read (known in advance), future sales never
    promoted = future.drop(columns="sales").assign(onpromotion=future["onpromotion"] + 40)
    assert not np.array_equal(model.predict(history, promoted)["sales"], out["sales"])
    noisy = future.assign(sales=future["sales"] * 50)
    np.testing.assert_array_equal(model.predict(history, noisy)["sales"], out["sales"])
    model.save(tmp_path)
    loaded = XGBForecaster.load(tmp_path)
    assert loaded.builder_.spec.promo_means == (3, 14)
    again = loaded.predict(history, future.drop(columns="sales"))
    np.testing.assert_array_equal(again["sales"], out["sales"])
