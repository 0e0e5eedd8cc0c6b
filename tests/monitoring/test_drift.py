from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retail_forecast.config import MonitoringConfig
from retail_forecast.monitoring.drift import check_drift, jensen_shannon, psi
from retail_forecast.monitoring.reference import window_features


@pytest.fixture(scope="module")
def in_reference(sales: pd.DataFrame) -> pd.DataFrame:
    """Four weeks inside the reference period: the same distribution."""
    return window_features(sales, start="2017-04-01", end="2017-04-28")


def _by_name(report: object) -> dict[str, object]:
    return {f.feature: f for f in report.features} | {c.name: c for c in report.checks}  # type: ignore[attr-defined]


def test_p26_identical_distribution_reports_no_drift(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    report = check_drift(reference, in_reference, config=config)
    assert report.status == "ok", report.to_dict()
    assert report.drifted_features == []
    assert report.drifted_checks == []
    assert all(f.statistic is not None for f in report.features)
    assert all(f.statistic < f.threshold for f in report.features)


def test_p26_synthetic_mean_shift_is_flagged_on_that_feature_only(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    shifted = in_reference.assign(roll_14_mean=in_reference["roll_14_mean"] + 1.0)
    report = check_drift(reference, shifted, config=config)
    assert report.status == "drift"
    assert report.drifted_features == ["roll_14_mean"]
    assert _by_name(report)["roll_14_mean"].statistic > 0.3


def test_shifted_promotions_drift_promotion_features(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    rng = np.random.default_rng(0)
    promo = in_reference["onpromotion"].to_numpy()
    boosted = np.where(rng.random(len(promo)) < 0.4, promo + rng.integers(1, 20, len(promo)), promo)
    report = check_drift(reference, in_reference.assign(onpromotion=boosted), config=config)
    assert report.drifted_features == ["onpromotion"]
    assert set(report.drifted_checks) == {"promo_share", "promo_mean"}
    assert _by_name(report)["promo_mean"].current > _by_name(report)["promo_mean"].reference


def test_zero_sales_shock_drifts_sales_and_zero_share(
    sales: pd.DataFrame, reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    shocked = sales.copy()
    hit = (shocked["date"] >= "2017-04-01") & shocked["store_nbr"].isin([1, 2, 3, 4])
    shocked.loc[hit, "sales"] = 0.0  # half of the stores sell nothing for four weeks
    report = check_drift(
        reference, window_features(shocked, start="2017-04-15", end="2017-04-28"), config=config
    )
    by_name = _by_name(report)
    assert by_name["zero_share"].drifted
    assert by_name["zero_share"].current > 0.4
    assert by_name["zero_share_by_family"].drifted
    assert by_name["sales_level"].drifted
    assert {"log_sales", "lag_1", "lag_7", "roll_7_mean"} <= set(report.drifted_features)
    assert "onpromotion" not in report.drifted_features
    assert not by_name["promo_share"].drifted


def test_sales_level_shift_missed_by_pooled_tests_is_caught(
    sales: pd.DataFrame, reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    boosted = sales.copy()
    boosted.loc[boosted["date"] >= "2017-04-01", "sales"] *= 1.2  # every series sells 20% more
    current = window_features(boosted, start="2017-04-15", end="2017-04-28")
    by_name = _by_name(check_drift(reference, current, config=config))
    assert by_name["sales_level"].drifted
    assert 0.1 < by_name["sales_level"].statistic < np.log(1.2)  # zeros and small sales move less
    assert not by_name["log_sales"].drifted  # the spread across series hides a level shift
    assert not by_name["zero_share"].drifted


def test_new_store_is_new_category(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    new_store = in_reference[in_reference["store_nbr"] == 1].assign(store_nbr=99)
    report = check_drift(reference, pd.concat([in_reference, new_store]), config=config)
    by_name = _by_name(report)
    assert report.status == "drift"
    assert by_name["store_nbr"].status == "new_category"
    assert by_name["store_nbr"].new_categories == ("99",)
    assert by_name["new_series"].status == "new_category"
    assert by_name["new_series"].details["count"] == 33
    assert by_name["family"].status == "ok"


def test_new_family_is_new_category(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    extra = in_reference[in_reference["family"] == "BEVERAGES"].assign(family="DRONES")
    report = check_drift(reference, pd.concat([in_reference, extra]), config=config)
    assert _by_name(report)["family"].new_categories == ("DRONES",)


def test_vanished_series_are_reported(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    report = check_drift(reference, in_reference[in_reference["store_nbr"] <= 6], config=config)
    gone = _by_name(report)["vanished_series"]
    assert gone.drifted
    assert gone.details["count"] == 2 * 33
    assert gone.statistic == pytest.approx(0.25)


def test_p26_empty_window_is_insufficient_data(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    report = check_drift(reference, in_reference.iloc[:0], config=config)
    assert report.status == "insufficient_data"
    assert {f.status for f in report.features} == {"insufficient_data"}
    assert not any(f.drifted for f in report.features)
    json.dumps(report.to_dict(), allow_nan=False)


def test_p26_all_nan_and_missing_columns_are_statuses(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    current = in_reference.assign(lag_7=np.nan).drop(columns=["roll_7_mean"])
    report = check_drift(reference, current, config=config)
    by_name = _by_name(report)
    assert by_name["lag_7"].status == "all_nan"
    assert not by_name["lag_7"].drifted
    assert by_name["roll_7_mean"].status == "missing"
    assert not by_name["roll_7_mean"].drifted
    assert report.status == "ok"


def test_small_window_is_insufficient_data(
    reference: pd.DataFrame, in_reference: pd.DataFrame
) -> None:
    report = check_drift(reference, in_reference.iloc[:50], config=MonitoringConfig(min_rows=100))
    assert {f.status for f in report.features} == {"insufficient_data"}


def test_served_request_features_without_sales(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    requests = in_reference.drop(columns=["sales", "log_sales"])
    report = check_drift(reference, requests, config=config)
    by_name = _by_name(report)
    assert by_name["log_sales"].status == "missing"
    assert by_name["zero_share"].status == "missing"
    assert report.status == "ok"


def test_per_feature_test_and_threshold_from_config(
    reference: pd.DataFrame, in_reference: pd.DataFrame
) -> None:
    config = MonitoringConfig(
        feature_tests={"onpromotion": "psi", "lag_1": "ks"}, feature_thresholds={"lag_7": 0.001}
    )
    by_name = _by_name(check_drift(reference, in_reference, config=config))
    assert by_name["onpromotion"].test == "psi"
    assert by_name["onpromotion"].statistic == by_name["onpromotion"].stats["psi"]
    assert by_name["lag_1"].test == "ks"
    assert by_name["lag_7"].threshold == 0.001
    assert by_name["lag_7"].drifted


def test_report_to_dict_is_json(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    data = json.loads(
        json.dumps(check_drift(reference, in_reference, config=config).to_dict(), allow_nan=False)
    )
    feature = next(f for f in data["features"] if f["feature"] == "lag_1")
    assert {"test", "statistic", "threshold", "drifted", "status"} <= set(feature)
    assert data["window"] == ["2017-04-01", "2017-04-28"]


def test_distances_on_known_inputs() -> None:
    same = np.array([0.2, 0.3, 0.5])
    assert psi(same, same) == 0.0
    assert jensen_shannon(same, same) == 0.0
    apart = jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert apart == pytest.approx(np.sqrt(np.log(2)))  # scipy's jensenshannon, base e
    assert psi(np.array([0.5, 0.5]), np.array([0.9, 0.1])) == pytest.approx(
        0.4 * np.log(0.9 / 0.5) + (-0.4) * np.log(0.1 / 0.5)
    )


def _spiked(window: pd.DataFrame, sales: float, *, days: int = 1) -> tuple[pd.DataFrame, str]:
    """The window with one series' last ``days`` days set to ``sales`` (as an actual would)."""
    first = window.iloc[0]
    series = (window["store_nbr"] == first["store_nbr"]) & (window["family"] == first["family"])
    last = window.loc[series, "date"].sort_values().iloc[-days:]
    hit = series & window["date"].isin(last)
    out = window.copy()
    out.loc[hit, "sales"] = sales
    out.loc[hit, "log_sales"] = np.log1p(sales)
    return out, f"{int(first['store_nbr'])}|{first['family']}"


def test_p32_one_series_jumping_far_above_its_level_is_drift(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    """A confirmed typo is one value of thousands: the pooled tests barely move, this check does."""
    clean = _by_name(check_drift(reference, in_reference, config=config))["series_jump"]
    assert clean.status == "ok"
    assert clean.statistic < clean.threshold
    spiked, key = _spiked(in_reference, 1e9)
    report = check_drift(reference, spiked, config=config)
    assert report.status == "drift"
    assert report.drifted_checks == ["series_jump"]
    jump = _by_name(report)["series_jump"]
    assert jump.details["count"] == 1
    assert jump.details["examples"][0]["series"] == key
    assert jump.details["examples"][0]["peak_sales"] == pytest.approx(1e9)


def test_p32_a_plateau_above_everything_the_reference_saw_is_drift(
    reference: pd.DataFrame, in_reference: pd.DataFrame, config: MonitoringConfig
) -> None:
    """Weeks of one absurd value move the series' own median; the reference's top does not."""
    spiked, key = _spiked(in_reference, 1e9, days=28)
    jump = _by_name(check_drift(reference, spiked, config=config))["series_jump"]
    assert jump.drifted
    assert jump.details["examples"][0]["series"] == key
    assert jump.details["examples"][0]["median_sales"] == pytest.approx(1e9)
    assert jump.reference is not None
    assert jump.reference < 1e9 / config.series_jump_factor


def test_p32_series_jump_threshold_and_missing_sales(
    reference: pd.DataFrame, in_reference: pd.DataFrame
) -> None:
    spiked, _ = _spiked(in_reference, 1e9)
    lenient = MonitoringConfig(series_jump_factor=1e12)
    assert not _by_name(check_drift(reference, spiked, config=lenient))["series_jump"].drifted
    blind = spiked.drop(columns=["sales", "log_sales"])
    missing = _by_name(check_drift(reference, blind, config=lenient))["series_jump"]
    assert (missing.status, missing.statistic, missing.drifted) == ("missing", None, False)
