from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from retail_forecast.cli import app
from retail_forecast.monitoring.prediction_log import PredictionLog

ORIGIN = pd.Timestamp("2017-07-30")
FAMILIES = ("BEVERAGES", "BREAD/BAKERY", "LIQUOR,WINE,BEER")
METRICS = {
    "mean": {"xgboost": 0.40, "zero": 3.1},
    "per_horizon_day": {str(h): {"xgboost": 0.35 + 0.01 * h} for h in range(1, 17)},
}


def forecast_rows(
    *, origin: pd.Timestamp = ORIGIN, stores: int = 4, value: float = 10.0
) -> pd.DataFrame:
    """16-day forecast of stores x 3 families from ``origin`` (constant ``value``)."""
    rows = [
        (origin + pd.Timedelta(days=h), s, f, h, value)
        for h in range(1, 17)
        for s in range(1, stores + 1)
        for f in FAMILIES
    ]
    return pd.DataFrame(rows, columns=["date", "store_nbr", "family", "horizon_day", "sales"])


def actual_rows(dates: pd.DatetimeIndex, *, stores: int = 4, value: float = 10.0) -> pd.DataFrame:
    rows = [(d, s, f, value) for d in dates for s in range(1, stores + 1) for f in FAMILIES]
    return pd.DataFrame(rows, columns=["date", "store_nbr", "family", "sales"])


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    return PredictionLog(tmp_path / "monitoring.sqlite")


def test_join_with_late_actuals_day_by_day(log: PredictionLog) -> None:
    assert log.log_predictions(forecast_rows(), model_version="v1", model="xgboost")
    assert log.joined().empty  # no actuals yet
    days = pd.date_range(ORIGIN + pd.Timedelta(days=1), periods=5)
    for day in days:  # actuals arrive one day at a time, after the forecast
        result = log.ingest_actuals(actual_rows(pd.DatetimeIndex([day]), value=9.0))
        assert result.ok
        assert result.inserted == 12
    joined = log.joined()
    assert len(joined) == 5 * 12
    assert sorted(joined["horizon_day"].unique()) == [1, 2, 3, 4, 5]
    overall = log.accuracy(by=None)
    assert overall["rmsle"].iloc[0] == pytest.approx(np.log1p(10.0) - np.log1p(9.0))
    assert overall["mae"].iloc[0] == pytest.approx(1.0)
    assert overall["bias"].iloc[0] == pytest.approx(1 / 9)
    by_day = log.accuracy(by="horizon_day")
    assert list(by_day["horizon_day"]) == [1, 2, 3, 4, 5]
    assert (by_day["n"] == 12).all()


def test_actuals_before_predictions_also_join(log: PredictionLog) -> None:
    log.ingest_actuals(actual_rows(pd.date_range("2017-07-31", periods=3), value=20.0))
    log.log_predictions(forecast_rows(), model_version="v1")
    assert len(log.joined()) == 3 * 12


def test_a_conflicting_actual_leaves_the_scored_value(log: PredictionLog) -> None:
    """The conflict policy: accuracy keeps scoring with the actual stored first."""
    log.log_predictions(forecast_rows(), model_version="v1")
    day = pd.DatetimeIndex([ORIGIN + pd.Timedelta(days=1)])
    assert log.ingest_actuals(actual_rows(day, value=10.0)).inserted == 12
    changed = actual_rows(day, value=10.0)
    changed.loc[0, "sales"] = 30.0
    result = log.ingest_actuals(changed)
    assert (result.inserted, result.unchanged, result.conflicts) == (0, 11, 1)
    joined = log.joined()
    assert len(joined) == 12
    assert set(joined["actual"]) == {10.0}
    assert log.accuracy(by=None)["rmsle"].iloc[0] == 0.0


def test_repeated_prediction_keeps_one_row_per_key(log: PredictionLog) -> None:
    log.log_predictions(forecast_rows(value=10.0), model_version="v1")
    log.log_predictions(forecast_rows(value=12.0), model_version="v1")
    log.ingest_actuals(actual_rows(pd.date_range("2017-07-31", periods=1)))
    joined = log.joined()
    assert len(joined) == 12
    assert set(joined["prediction"]) == {12.0}


def test_accuracy_window_counts_the_last_scored_days(log: PredictionLog) -> None:
    log.log_predictions(forecast_rows(), model_version="v1")
    log.ingest_actuals(actual_rows(pd.date_range("2017-07-31", periods=10)))
    per_date = log.accuracy(by="date", window_days=7)
    assert list(per_date["date"]) == list(pd.date_range("2017-08-03", periods=7))


def _truth(dates: pd.Series, stores: pd.Series) -> np.ndarray:
    """Deterministic 'true' sales per (date, store): the same value whenever it is asked for."""
    day = (pd.to_datetime(dates) - ORIGIN).dt.days.to_numpy()
    return 20.0 + 10.0 * np.sin(day / 3.0) + 3.0 * stores.to_numpy()


def _run_production(
    log: PredictionLog, *, version: str, factor: float, days: int = 10, served_from: int = 0
) -> None:
    """Forecast 16 days from each origin, then ingest that day's actuals (a replay)."""
    rng = np.random.default_rng(1)
    for k in range(days):
        origin = ORIGIN + pd.Timedelta(days=k)
        rows = forecast_rows(origin=origin)
        truth = _truth(rows["date"], rows["store_nbr"])
        rows["sales"] = truth * factor * np.exp(rng.normal(0, 0.2, len(truth)))
        stamp = dt.datetime(2017, 7, 31, tzinfo=dt.UTC) + dt.timedelta(days=served_from + k)
        log.log_predictions(rows, model_version=version, model="xgboost", request_time=stamp)
        actual = rows[["date", "store_nbr", "family"]].assign(sales=truth)
        log.ingest_actuals(actual[actual["date"] == origin + pd.Timedelta(days=1)])


def test_alert_fires_on_a_degraded_model_and_clears_after_retraining(
    log: PredictionLog, caplog: pytest.LogCaptureFixture
) -> None:
    _run_production(log, version="v1", factor=1.0)
    healthy = log.status(METRICS, window_days=7)
    assert healthy.status == "ok"
    assert not healthy.alert
    assert healthy.model_version == "v1"
    assert healthy.model == "xgboost"
    # the backtest RMSLE for the window's horizon-day mix (days 1..10 here), not the 16-day mean
    assert 0.36 < healthy.baseline_rmsle < 0.46
    assert healthy.n == sum(12 * (k + 1) for k in range(3, 10))  # last 7 scored target days
    _run_production(log, version="v2", factor=3.0, served_from=20)  # a bad deployment
    with caplog.at_level(logging.WARNING, logger="retail_forecast.monitoring"):
        degraded = log.status(METRICS, window_days=7)
    assert degraded.status == "degraded"
    assert degraded.alert
    assert degraded.model_version == "v2"
    assert degraded.ratio > 1.2
    assert any("degraded" in r.getMessage() for r in caplog.records)
    # retrain: v3 is deployed; until its forecasts are scored there is no alert
    log.log_predictions(
        forecast_rows(origin=ORIGIN + pd.Timedelta(days=30)),
        model_version="v3",
        request_time=dt.datetime(2017, 9, 1, tzinfo=dt.UTC),
    )
    fresh = log.status(METRICS, window_days=7)
    assert fresh.model_version == "v3"
    assert fresh.status == "insufficient_data"
    assert not fresh.alert
    log2 = PredictionLog(log.db_path.with_name("other.sqlite"))
    _run_production(log2, version="v3", factor=1.0)
    assert not log2.status(METRICS, window_days=7).alert


def test_status_without_a_backtest_rmsle_for_the_model(log: PredictionLog) -> None:
    _run_production(log, version="v1", factor=1.0)
    status = log.status({"mean": {"zero": 3.0}}, window_days=7)
    assert status.status == "no_baseline"
    assert not status.alert
    assert log.status({"mean": {"xgboost": 0.4}}, window_days=7).baseline_rmsle == 0.4


def test_p26_log_predictions_on_unwritable_path_returns_false(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    log = PredictionLog(blocker / "monitoring.sqlite")
    with caplog.at_level(logging.ERROR):
        assert log.log_predictions(forecast_rows(), model_version="v1") is False
    assert any("not logged" in r.getMessage() for r in caplog.records)
    status = log.status(METRICS)
    assert status.status == "unavailable"
    assert not status.alert


def test_p26_log_predictions_on_locked_database_returns_false(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "m.sqlite", timeout_s=0.05)
    assert log.log_predictions(forecast_rows(), model_version="v1")
    holder = sqlite3.connect(log.db_path)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        assert log.log_predictions(forecast_rows(value=3.0), model_version="v1") is False
    finally:
        holder.rollback()
        holder.close()
    assert log.log_predictions(forecast_rows(value=3.0), model_version="v1") is True


def test_p26_log_predictions_with_bad_rows_returns_false(log: PredictionLog) -> None:
    assert log.log_predictions(pd.DataFrame({"date": ["2017-08-01"]}), model_version="v1") is False
    rows = forecast_rows()
    rows.loc[0, "sales"] = np.nan
    assert log.log_predictions(rows, model_version="v1") is False


def test_cli_ingest_actuals_names_conflicts_keeps_stored_values_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_MONITORING__DB_PATH", str(tmp_path / "monitoring.sqlite"))
    first_day, next_day = ORIGIN + pd.Timedelta(days=1), ORIGIN + pd.Timedelta(days=2)
    csv = tmp_path / "actuals.csv"
    actual_rows(pd.DatetimeIndex([first_day]), value=10.0).to_csv(csv, index=False)
    runner = CliRunner()
    ingest = ["monitor", "ingest-actuals", "--file", str(csv)]
    first = runner.invoke(app, ingest)
    assert first.exit_code == 0, first.output
    assert "inserted 12, unchanged 0, corrected 0, conflicts 0" in first.output
    changed = actual_rows(pd.DatetimeIndex([first_day, next_day]), value=10.0)
    changed.loc[(changed["store_nbr"] == 2) & (changed["family"] == "BEVERAGES"), "sales"] = 12.5
    changed.to_csv(csv, index=False)
    second = runner.invoke(app, [*ingest, "--json"])
    assert second.exit_code == 1
    body = json.loads(second.stdout)
    assert (body["inserted"], body["unchanged"], body["conflicts"]) == (12, 11, 1)
    assert body["conflict_examples"] == [
        "2017-07-31 store_nbr=2 family='BEVERAGES': recorded sales=10, received sales=12.5"
    ]
    assert "1 actuals contradict recorded values; the stored values are kept" in second.stderr
    assert "store_nbr=2 family='BEVERAGES'" in second.stderr
    assert "replaced only by a correction" in second.stderr  # and what to do instead
    stored = PredictionLog(tmp_path / "monitoring.sqlite")
    with sqlite3.connect(stored.db_path) as conn:
        kept = conn.execute(
            "SELECT sales FROM actuals WHERE store_nbr = 2 AND family = 'BEVERAGES' ORDER BY date"
        ).fetchall()
    assert kept == [(10.0,), (12.5,)]  # the stored day kept its value; the new day was stored


def test_p33_cli_ingest_actuals_applies_a_correction_column_and_audits_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_MONITORING__DB_PATH", str(tmp_path / "monitoring.sqlite"))
    first_day = ORIGIN + pd.Timedelta(days=1)
    csv = tmp_path / "actuals.csv"
    actual_rows(pd.DatetimeIndex([first_day]), value=10.0).to_csv(csv, index=False)
    ingest = ["monitor", "ingest-actuals", "--file", str(csv), "--json"]
    assert CliRunner().invoke(app, ingest).exit_code == 0
    fixed = actual_rows(pd.DatetimeIndex([first_day]), value=10.0)
    target = (fixed["store_nbr"] == 2) & (fixed["family"] == "BEVERAGES")
    fixed["correction"] = target
    fixed.loc[target, "sales"] = 12.5
    fixed.loc[~target, "sales"] = 11.0  # unflagged and different: conflicts, the stored value stays
    fixed.to_csv(csv, index=False)
    second = CliRunner().invoke(app, ingest)
    assert second.exit_code == 1  # the unflagged rows conflict
    body = json.loads(second.stdout)
    assert (body["corrected"], body["conflicts"], body["inserted"]) == (1, 11, 0)
    log = PredictionLog(tmp_path / "monitoring.sqlite")
    audit = log.corrections()
    assert audit[["date", "store_nbr", "family", "old_sales", "new_sales"]].values.tolist() == [
        ["2017-07-31", 2, "BEVERAGES", 10.0, 12.5]
    ]
    with sqlite3.connect(log.db_path) as conn:
        stored = dict(conn.execute("SELECT store_nbr || family, sales FROM actuals").fetchall())
    assert stored["2BEVERAGES"] == 12.5
    assert {v for k, v in stored.items() if k != "2BEVERAGES"} == {10.0}
