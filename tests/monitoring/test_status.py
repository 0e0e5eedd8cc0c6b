"""serving_status() and serving_drift(): the monitoring answers are statuses, never exceptions."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retail_forecast.config import MonitoringConfig
from retail_forecast.monitoring.accuracy import DEGRADED, INSUFFICIENT, OK, UNAVAILABLE
from retail_forecast.monitoring.prediction_log import PredictionLog
from retail_forecast.monitoring.reference import reference_from_sales
from retail_forecast.monitoring.status import (
    HorizonAccuracy,
    drift_summary,
    recent_window,
    serving_drift,
    serving_status,
)

ORIGIN = pd.Timestamp("2017-07-30")
FAMILIES = ("BEVERAGES", "BREAD/BAKERY")
METRICS: dict[str, Any] = {
    "mean": {"xgboost": 0.2},
    "per_horizon_day": {str(h): {"xgboost": 0.2} for h in range(1, 17)},
}


def logged(tmp_path: Path, *, actual: float, days: int = 16) -> PredictionLog:
    """A log with v1's 16-day forecast (10.0 everywhere) and ``days`` days of actuals."""
    log = PredictionLog(tmp_path / "monitoring.sqlite")
    rows = [
        (ORIGIN + pd.Timedelta(days=h), s, f, h, 10.0)
        for h in range(1, 17)
        for s in (1, 2)
        for f in FAMILIES
    ]
    forecast = pd.DataFrame(rows, columns=["date", "store_nbr", "family", "horizon_day", "sales"])
    assert log.log_predictions(forecast, model_version="v1", model="xgboost")
    dates = pd.date_range(ORIGIN + pd.Timedelta(days=1), periods=days)
    truth = [(d, s, f, actual) for d in dates for s in (1, 2) for f in FAMILIES]
    assert log.ingest_actuals(pd.DataFrame(truth, columns=["date", "store_nbr", "family", "sales"]))
    return log


def config(**changes: Any) -> MonitoringConfig:
    return MonitoringConfig(**{"min_accuracy_rows": 10, **changes})


def metrics_of(value: Mapping[str, Any] | None) -> Any:
    calls: list[int] = []

    def read() -> Mapping[str, Any] | None:
        calls.append(1)
        return value

    read.calls = calls  # type: ignore[attr-defined]
    return read


def test_status_ok_and_degraded_against_the_backtest(tmp_path: Path) -> None:
    close = serving_status(
        logged(tmp_path / "a", actual=9.0), metrics_of(METRICS), model_version="v1", config=config()
    )
    far = serving_status(
        logged(tmp_path / "b", actual=2.0), metrics_of(METRICS), model_version="v1", config=config()
    )
    assert close.status.status == OK
    assert not close.status.alert
    assert close.status.rmsle == pytest.approx(np.log1p(10.0) - np.log1p(9.0))
    assert far.status.status == DEGRADED
    assert far.status.alert
    assert far.status.window == ("2017-08-09", "2017-08-15")  # the last 7 scored days
    assert [day.horizon_day for day in far.by_horizon_day] == list(range(10, 17))
    assert far.by_horizon_day[0] == HorizonAccuracy(
        horizon_day=10,
        rmsle=pytest.approx(np.log1p(10.0) - np.log1p(2.0)),  # type: ignore[arg-type]
        mae=8.0,
        bias=4.0,
        n=4,
    )


def test_status_needs_enough_rows_of_the_version(tmp_path: Path) -> None:
    log = logged(tmp_path, actual=9.0, days=2)
    few = serving_status(log, metrics_of(METRICS), model_version="v1", config=config())
    other = serving_status(log, metrics_of(METRICS), model_version="v2", config=config())
    assert (few.status.status, few.status.n) == (INSUFFICIENT, 8)
    assert len(few.by_horizon_day) == 2
    assert (other.status.status, other.status.n, other.by_horizon_day) == (INSUFFICIENT, 0, [])


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (None, "no backtest metrics"),
        ({"mean": {"xgboost": "not a number"}, "per_horizon_day": {}}, "status failed"),
    ],
)
def test_status_is_unavailable_without_usable_metrics(
    tmp_path: Path, metrics: dict[str, Any] | None, message: str
) -> None:
    rated = serving_status(
        logged(tmp_path, actual=9.0), metrics_of(metrics), model_version="v1", config=config()
    )
    assert rated.status.status == UNAVAILABLE
    assert not rated.status.alert
    assert message in rated.status.message
    assert rated.by_horizon_day  # the accuracy table does not need the backtest


def test_a_model_without_metrics_or_with_a_broken_file_is_unavailable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = logged(tmp_path, actual=9.0)

    def broken() -> Mapping[str, Any] | None:
        raise OSError("metrics.json unreadable")

    none = serving_status(log, None, model_version="v1", config=config())
    with caplog.at_level(logging.ERROR):
        failed = serving_status(log, broken, model_version="v1", config=config())
    assert none.status.status == failed.status.status == UNAVAILABLE
    assert "backtest metrics failed" in caplog.text


def test_an_unreadable_store_is_a_status_and_the_metrics_are_not_read(tmp_path: Path) -> None:
    directory = tmp_path / "is_a_directory"
    directory.mkdir()
    read = metrics_of(METRICS)
    rated = serving_status(PredictionLog(directory), read, model_version="v1", config=config())
    assert rated.status.status == UNAVAILABLE
    assert "unreadable" in rated.status.message
    assert rated.by_horizon_day == []
    assert read.calls == []


# --- drift -----------------------------------------------------------------------------------


def test_drift_of_the_recent_window(sales: pd.DataFrame) -> None:
    reference = reference_from_sales(sales, days=28)
    shifted = sales.assign(sales=sales["sales"] * 4, onpromotion=sales["onpromotion"] + 10)
    same = serving_drift(
        lambda: reference, lambda: sales, config=MonitoringConfig(), model_version="v1"
    )
    moved = serving_drift(
        lambda: reference, lambda: shifted, config=MonitoringConfig(), model_version="v1"
    )
    assert same.report is not None
    assert same.status == same.report.status == OK
    assert same.message == f"no drift over {same.report.current_rows} rows"
    assert moved.status == "drift"
    assert moved.message.startswith("drift in features ['lag_1'")


def test_drift_is_unavailable_without_a_reference_and_reads_no_history(
    sales: pd.DataFrame,
) -> None:
    read: list[int] = []

    def history() -> pd.DataFrame:
        read.append(1)
        return sales

    none = serving_drift(None, None, config=MonitoringConfig(), model_version="v1")
    missing = serving_drift(lambda: None, history, config=MonitoringConfig(), model_version="v1")
    assert (none.status, none.report) == (UNAVAILABLE, None)
    assert "exposes no reference profile" in none.message
    assert (missing.status, missing.report) == (UNAVAILABLE, None)
    assert "reference.parquet" in missing.message
    assert read == []


def test_a_failing_source_is_a_status_and_an_empty_window_too_little_data(
    sales: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    reference = reference_from_sales(sales, days=28)

    def broken() -> pd.DataFrame:
        raise OSError("history store unreadable")

    with caplog.at_level(logging.ERROR):
        failed = serving_drift(
            lambda: reference, broken, config=MonitoringConfig(), model_version="v9"
        )
    empty = serving_drift(
        lambda: reference, lambda: sales.iloc[0:0], config=MonitoringConfig(), model_version="v1"
    )
    assert (failed.status, failed.report) == (UNAVAILABLE, None)
    assert "drift check failed version=v9" in caplog.text
    assert empty.status == INSUFFICIENT
    assert empty.report is not None
    assert empty.message == drift_summary(empty.report)
    assert empty.message == "too little data to test (0 rows in the window)"


def test_recent_window_keeps_the_last_days(sales: pd.DataFrame) -> None:
    window = recent_window(sales, days=7)
    assert window["date"].nunique() == 7
    assert window["date"].max() == sales["date"].max()
    assert recent_window(sales.iloc[0:0], days=7).empty
