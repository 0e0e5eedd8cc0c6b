"""Monitoring in the API: prediction log, actuals join, alert status, drift, promise 26."""

from __future__ import annotations

import datetime as dt
import logging
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from api_helpers import HISTORY_END, all_rows, day, series_rows, wait_ready
from fastapi.testclient import TestClient
from naive_backend import FAMILIES, STORES, SeasonalNaivePredictor, make_history

from retail_forecast.api.deps import ServiceState
from retail_forecast.api.runtime.recorder import ServedForecasts, served_frame
from retail_forecast.app import create_app
from retail_forecast.config import MonitoringConfig, Settings
from retail_forecast.monitoring.prediction_log import PredictionLog
from retail_forecast.monitoring.reference import reference_from_sales

PREDICT, ACTUALS = "/api/v1/predict", "/api/v1/actuals"
STATUS, DRIFT = "/api/v1/monitoring/status", "/api/v1/monitoring/drift"
BACKTEST_RMSLE = 0.1
METRICS: dict[str, Any] = {
    "mean": {"hybrid": BACKTEST_RMSLE},
    "per_horizon_day": {str(h): {"hybrid": BACKTEST_RMSLE} for h in range(1, 17)},
}


class TripledPredictor(SeasonalNaivePredictor):
    """A degraded model: three times the seasonal-naive forecast."""

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        out = super().predict(rows)
        out["sales"] = out["sales"] * 3.0
        return out


def state_of(client: TestClient) -> ServiceState:
    state = client.app.state.service  # type: ignore[attr-defined]
    assert isinstance(state, ServiceState)
    return state


def flush(client: TestClient) -> None:
    assert state_of(client).recorder.flush(10.0), "monitoring writer did not drain"


@contextmanager
def serve_monitored(predictor: SeasonalNaivePredictor, **monitoring: Any) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, monitoring=MonitoringConfig(**monitoring))  # type: ignore[call-arg]
    app = create_app(settings, load_predictor=lambda _settings: predictor)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client


def logged(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT * FROM predictions", conn)


def actuals_from(predictions: list[dict[str, Any]], factor: float) -> list[dict[str, Any]]:
    """Actuals for served rows: ``factor`` x the forecast, onpromotion 0."""
    return [
        {
            "date": p["date"],
            "store_nbr": p["store_nbr"],
            "family": p["family"],
            "onpromotion": 0,
            "sales": p["sales"] * factor,
        }
        for p in predictions
    ]


def rmsle(pred: list[float], actual: list[float]) -> float:
    diff = np.log1p(np.asarray(pred)) - np.log1p(np.asarray(actual))
    return float(np.sqrt(np.mean(diff**2)))


# --- prediction log ----------------------------------------------------------------------------


def test_served_predictions_are_logged_with_horizon_days(tmp_path: Path) -> None:
    db = tmp_path / "mon.sqlite"
    with serve_monitored(SeasonalNaivePredictor(make_history()), db_path=db) as client:
        rows = series_rows(store=2, family="GROCERY I", days=16) + series_rows(
            store=1, family="BEVERAGES", days=5
        )
        response = client.post(PREDICT, json={"rows": rows})
        assert response.status_code == 200
        flush(client)
        stats = client.get(STATUS).json()["prediction_log"]
    frame = logged(db)
    assert len(frame) == 21
    assert set(frame["model_version"]) == {"naive-test-1"}
    assert set(frame["model"]) == {"hybrid"}
    grocery = frame[frame["family"] == "GROCERY I"].sort_values("target_date")
    assert grocery["horizon_day"].tolist() == list(range(1, 17))
    assert grocery["target_date"].tolist() == [day(k) for k in range(1, 17)]
    served = {
        (p["store_nbr"], p["family"], p["date"]): p["sales"] for p in response.json()["predictions"]
    }
    for rec in frame.itertuples():
        assert rec.prediction == pytest.approx(served[(rec.store_nbr, rec.family, rec.target_date)])
    assert stats == {"queued_rows": 0, "written_rows": 21, "dropped_rows": 0, "failed_rows": 0}


def test_closed_days_are_not_logged_as_forecasts() -> None:
    served = ServedForecasts(
        model_version="v",
        history_end=dt.date(2016, 12, 23),
        request_time=dt.datetime(2016, 12, 23, tzinfo=dt.UTC),
        dates=[dt.date(2016, 12, 24), dt.date(2016, 12, 25), dt.date(2016, 12, 26)],
        stores=[1, 1, 1],
        families=["BEVERAGES"] * 3,
        sales=[5.0, 0.0, 7.0],
        models=["hybrid", "closed", "zero_rule"],
    )
    frame = served.to_frame()
    assert frame["horizon_day"].tolist() == [1, 3]
    assert frame["model"].tolist() == ["hybrid", "zero_rule"]
    assert frame["prediction"].tolist() == [5.0, 7.0]


def test_a_batch_of_requests_keeps_each_requests_horizon_and_order() -> None:
    def served(end: dt.date, store: int, sales: list[float]) -> ServedForecasts:
        days = [end + dt.timedelta(days=k) for k in range(1, len(sales) + 1)]
        return ServedForecasts(
            model_version="v",
            history_end=end,
            request_time=dt.datetime(2017, 1, 1, tzinfo=dt.UTC),
            dates=days,
            stores=[store] * len(sales),
            families=["BEVERAGES"] * len(sales),
            sales=sales,
            models=["closed" if (d.month, d.day) == (12, 25) else "xgboost" for d in days],
        )

    group = [
        served(dt.date(2016, 12, 23), 1, [1.0, 0.0, 3.0]),
        served(dt.date(2017, 1, 2), 7, [4.0]),
    ]
    frame = served_frame(group)
    assert frame["store_nbr"].tolist() == [1, 1, 7]  # the closed 25 December is left out
    assert frame["horizon_day"].tolist() == [1, 3, 1]
    assert frame["prediction"].tolist() == [1.0, 3.0, 4.0]
    assert [str(d.date()) for d in frame["date"]] == ["2016-12-24", "2016-12-26", "2017-01-03"]


def test_rejected_requests_are_not_logged(tmp_path: Path) -> None:
    db = tmp_path / "mon.sqlite"
    with serve_monitored(SeasonalNaivePredictor(make_history()), db_path=db) as client:
        bad = [*series_rows(days=3), dict(series_rows(days=1)[0], store_nbr=99)]
        assert client.post(PREDICT, json={"rows": bad}).status_code == 422
        flush(client)
        assert state_of(client).recorder.stats().written_rows == 0


# --- actuals join, accuracy and the alert -------------------------------------------------------


def test_actuals_join_and_accuracy_show_in_status(tmp_path: Path) -> None:
    db = tmp_path / "mon.sqlite"
    predictor = SeasonalNaivePredictor(make_history(), metrics=METRICS)
    with serve_monitored(predictor, db_path=db, window_days=16) as client:
        served = client.post(PREDICT, json={"rows": all_rows(16)}).json()["predictions"]
        before = client.get(STATUS).json()
        assert before["status"] == "insufficient_data"
        assert before["n"] == 0
        assert client.post(ACTUALS, json={"rows": actuals_from(served, 1.1)}).status_code == 200
        flush(client)
        body = client.get(STATUS).json()
    assert body["status"] == "ok"
    assert body["alert"] is False
    assert body["n"] == len(served) == 12 * 16
    expected = rmsle([p["sales"] for p in served], [p["sales"] * 1.1 for p in served])
    assert body["rmsle"] == pytest.approx(expected)
    assert body["baseline_rmsle"] == pytest.approx(BACKTEST_RMSLE)
    assert body["window"] == {"first": day(1), "last": day(16)}
    assert [r["horizon_day"] for r in body["by_horizon_day"]] == list(range(1, 17))
    assert all(r["n"] == 12 for r in body["by_horizon_day"])
    assert PredictionLog(db).accuracy(by=None)["n"].iloc[0] == 192


def test_alert_fires_on_a_degraded_model_and_clears_after_retraining(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "mon.sqlite"
    degraded = TripledPredictor(make_history(), version="v1", metrics=METRICS)
    with serve_monitored(degraded, db_path=db, min_accuracy_rows=50) as client:
        served = client.post(PREDICT, json={"rows": all_rows(16)}).json()["predictions"]
        truth = actuals_from(served, 1 / 3)
        assert client.post(ACTUALS, json={"rows": truth}).status_code == 200
        flush(client)
        with caplog.at_level(logging.WARNING, logger="retail_forecast.monitoring"):
            body = client.get(STATUS).json()
    assert body["status"] == "degraded"
    assert body["alert"] is True
    assert body["model_version"] == "v1"
    assert body["ratio"] > 1.2
    assert body["threshold_ratio"] == 1.2
    assert body["window"] == {"first": day(10), "last": day(16)}  # the last 7 scored days
    assert "x the backtest" in body["message"]
    assert any("degraded" in r.getMessage() for r in caplog.records)
    # "retrain": a new version over the same log starts without scored forecasts
    retrained = SeasonalNaivePredictor(make_history(), version="v2", metrics=METRICS)
    with serve_monitored(retrained, db_path=db, min_accuracy_rows=50) as client:
        after = client.get(STATUS).json()
    assert after["status"] == "insufficient_data"
    assert after["alert"] is False


def test_status_is_unavailable_without_backtest_metrics(tmp_path: Path) -> None:
    with serve_monitored(SeasonalNaivePredictor(make_history()), db_path=tmp_path / "m") as client:
        response = client.get(STATUS)
    assert response.status_code == 200
    assert response.json()["status"] == "unavailable"
    assert "backtest metrics" in response.json()["message"]


def test_status_is_unavailable_with_malformed_backtest_metrics(tmp_path: Path) -> None:
    broken = {"mean": {"hybrid": "not a number"}, "per_horizon_day": {}}
    predictor = SeasonalNaivePredictor(make_history(), metrics=broken)
    with serve_monitored(predictor, db_path=tmp_path / "m", min_accuracy_rows=1) as client:
        served = client.post(PREDICT, json={"rows": series_rows(days=1)}).json()["predictions"]
        assert client.post(ACTUALS, json={"rows": actuals_from(served, 1.0)}).status_code == 200
        flush(client)
        response = client.get(STATUS)
    assert response.status_code == 200
    assert response.json()["status"] == "unavailable"
    assert response.json()["by_horizon_day"][0]["n"] == 1


# --- promise 26: monitoring never fails a prediction ------------------------------------------


def unwritable_db(tmp_path: Path, kind: str) -> Path:
    if kind == "directory":
        path = tmp_path / "is_a_dir"
        path.mkdir()
        return path
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    return blocker / "mon.sqlite"


@pytest.mark.parametrize("kind", ["directory", "under_a_file"])
def test_p26_predict_answers_200_when_the_monitoring_store_is_unwritable(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    predictor = SeasonalNaivePredictor(make_history(), metrics=METRICS)
    with (
        caplog.at_level(logging.ERROR),
        serve_monitored(predictor, db_path=unwritable_db(tmp_path, kind)) as client,
    ):
        response = client.post(PREDICT, json={"rows": series_rows(days=16)})
        assert response.status_code == 200
        assert len(response.json()["predictions"]) == 16
        rows = [
            {"date": day(1), "store_nbr": s, "family": f, "onpromotion": 0, "sales": 3.0}
            for s in STORES
            for f in FAMILIES
        ]
        assert client.post(ACTUALS, json={"rows": rows}).status_code == 200
        flush(client)
        stats = state_of(client).recorder.stats()
        status = client.get(STATUS)
        drift = client.get(DRIFT)
    assert stats.written_rows == 0
    assert stats.failed_rows == 16 + 12
    assert status.status_code == 200
    assert status.json()["status"] == "unavailable"
    assert drift.status_code == 200
    assert any("not logged" in r.getMessage() for r in caplog.records)


def test_p26_a_locked_database_drops_the_write_not_the_prediction(tmp_path: Path) -> None:
    db = tmp_path / "mon.sqlite"
    with serve_monitored(
        SeasonalNaivePredictor(make_history()), db_path=db, db_timeout_s=0.05
    ) as client:
        PredictionLog(db).latest_version()  # create the schema
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            response = client.post(PREDICT, json={"rows": series_rows(days=4)})
            assert response.status_code == 200
            flush(client)
            assert state_of(client).recorder.stats().failed_rows == 4
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        again = client.post(PREDICT, json={"rows": series_rows(store=3, days=4)})
        assert again.status_code == 200
        flush(client)
        assert state_of(client).recorder.stats().written_rows == 4
    assert len(logged(db)) == 4


def test_p26_a_crashing_writer_keeps_serving_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "mon.sqlite"
    original = PredictionLog.log_predictions

    def crash(*_args: Any, **_kwargs: Any) -> bool:
        raise MemoryError("injected")

    with serve_monitored(SeasonalNaivePredictor(make_history()), db_path=db) as client:
        monkeypatch.setattr(PredictionLog, "log_predictions", crash)
        assert client.post(PREDICT, json={"rows": series_rows(days=2)}).status_code == 200
        flush(client)
        monkeypatch.setattr(PredictionLog, "log_predictions", original)
        assert client.post(PREDICT, json={"rows": series_rows(days=3)}).status_code == 200
        flush(client)
        stats = state_of(client).recorder.stats()
    assert (stats.failed_rows, stats.written_rows) == (2, 3)


def test_p26_a_full_queue_drops_batches_instead_of_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    original = PredictionLog.log_predictions

    def stuck(self: PredictionLog, *args: Any, **kwargs: Any) -> bool:
        release.wait(10)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PredictionLog, "log_predictions", stuck)
    db = tmp_path / "mon.sqlite"
    with serve_monitored(
        SeasonalNaivePredictor(make_history()), db_path=db, log_queue_rows=20
    ) as client:
        codes = [
            client.post(PREDICT, json={"rows": series_rows(store=s, days=16)}).status_code
            for s in STORES
        ]
        release.set()
        flush(client)
        stats = state_of(client).recorder.stats()
    assert codes == [200, 200, 200]
    # the writer holds the first 16 rows; 16 more would exceed 20 -> both later batches drop
    assert (stats.written_rows, stats.dropped_rows) == (16, 32)


# --- drift ---------------------------------------------------------------------------------------


def test_drift_reports_every_feature_and_no_drift_against_its_own_window(tmp_path: Path) -> None:
    history = make_history()
    reference = reference_from_sales(history, days=28)
    predictor = SeasonalNaivePredictor(history, reference=reference)
    with serve_monitored(predictor, db_path=tmp_path / "m") as client:
        body = client.get(DRIFT).json()
    names = {f["feature"] for f in body["features"]}
    assert {"lag_1", "lag_7", "roll_7_mean", "onpromotion", "store_nbr", "family"} <= names
    assert all(f["statistic"] is not None for f in body["features"])
    assert body["status"] == "ok", body["message"]
    assert body["drifted_features"] == []
    assert body["drifted_checks"] == []
    assert body["window"] == {"first": "2017-07-19", "last": HISTORY_END.isoformat()}
    assert body["current_rows"] == body["reference_rows"] == 12 * 28
    assert {c["name"] for c in body["checks"]} >= {"zero_share", "promo_share", "new_series"}


def test_drift_flags_the_shifted_features(tmp_path: Path) -> None:
    history = make_history()
    shifted = history.copy()
    shifted["sales"] = shifted["sales"] * 4
    shifted["onpromotion"] = shifted["onpromotion"] + 10
    predictor = SeasonalNaivePredictor(history, reference=reference_from_sales(shifted, days=28))
    with serve_monitored(predictor, db_path=tmp_path / "m") as client:
        body = client.get(DRIFT).json()
    assert body["status"] == "drift"
    assert {"lag_1", "onpromotion", "log_sales"} <= set(body["drifted_features"])
    assert "store_nbr" not in body["drifted_features"]
    assert {"sales_level", "promo_mean"} <= set(body["drifted_checks"])


def test_drift_is_a_status_without_reference_or_data(tmp_path: Path) -> None:
    class EmptyHistory(SeasonalNaivePredictor):
        def history_frame(self) -> pd.DataFrame:
            return super().history_frame().iloc[0:0]

    history = make_history()
    missing = SeasonalNaivePredictor(history)
    empty = EmptyHistory(history, reference=reference_from_sales(history, days=28))
    with serve_monitored(missing, db_path=tmp_path / "m") as client:
        none = client.get(DRIFT)
    with serve_monitored(empty, db_path=tmp_path / "m") as client:
        nothing = client.get(DRIFT)
    assert none.status_code == nothing.status_code == 200
    assert none.json()["status"] == "unavailable"
    assert "reference" in none.json()["message"]
    assert none.json()["features"] == []
    assert nothing.json()["status"] == "insufficient_data"
    features = nothing.json()["features"]
    assert features
    assert all(f["statistic"] is None and not f["drifted"] for f in features)
    assert {f["status"] for f in features} <= {"missing", "insufficient_data"}


def test_drift_follows_the_history_end(tmp_path: Path) -> None:
    history = make_history()
    predictor = SeasonalNaivePredictor(history, reference=reference_from_sales(history, days=28))
    with serve_monitored(predictor, db_path=tmp_path / "m") as client:
        first = client.get(DRIFT).json()
        assert client.get(DRIFT).json() == first  # cached per (version, history end)
        rows = [
            {"date": day(1), "store_nbr": s, "family": f, "onpromotion": 0, "sales": 0.0}
            for s in STORES
            for f in FAMILIES
        ]
        assert client.post(ACTUALS, json={"rows": rows}).status_code == 200
        second = client.get(DRIFT).json()
    assert first["history_end"] == HISTORY_END.isoformat()
    assert second["history_end"] == second["window"]["last"] == day(1)
    zero = {c["name"]: c for c in second["checks"]}["zero_share"]
    assert zero["current"] > {c["name"]: c for c in first["checks"]}["zero_share"]["current"]
    assert not math.isnan(zero["current"])
