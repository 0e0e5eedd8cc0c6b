"""Promise 40: served quantiles are logged, their coverage is monitored and alerts when it drifts.

Real SQLite logs written through the recorder's frame (ServedForecasts -> served_frame ->
PredictionLogDB), the coverage computed by hand on a seeded log, the alert on a miscalibrated
log, an old log file without the quantile table, the status route and ``monitor check``.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from retail_forecast.api.runtime.recorder import MonitoringRecorder, ServedForecasts, served_frame
from retail_forecast.app import create_app
from retail_forecast.cli import app
from retail_forecast.config import MonitoringConfig, Settings
from retail_forecast.monitoring.coverage import (
    MISCALIBRATED,
    NO_INTERVALS,
    NO_QUANTILES,
    OK,
    coverage_status,
)
from retail_forecast.monitoring.html_report import QuantileSection, write_report
from retail_forecast.monitoring.prediction_log import PredictionLog

END = dt.date(2017, 7, 31)
FAMILIES = ("BEVERAGES", "BREAD/BAKERY", "DAIRY", "EGGS")
VERSION = "v1"
LEVELS = (0.1, 0.25, 0.75, 0.9)
# The log schema before quantiles were logged (the DDL the old code ran on every connect).
OLD_SCHEMA = """
CREATE TABLE predictions (
    model_version TEXT NOT NULL, store_nbr INTEGER NOT NULL, family TEXT NOT NULL,
    target_date TEXT NOT NULL, horizon_day INTEGER NOT NULL, prediction REAL NOT NULL,
    model TEXT NOT NULL, request_time TEXT NOT NULL,
    PRIMARY KEY (model_version, store_nbr, family, target_date, horizon_day)
) WITHOUT ROWID;
CREATE INDEX predictions_target ON predictions (target_date, model_version);
CREATE TABLE actuals (
    store_nbr INTEGER NOT NULL, family TEXT NOT NULL, date TEXT NOT NULL, sales REAL NOT NULL,
    ingested_at TEXT NOT NULL, PRIMARY KEY (store_nbr, family, date)
) WITHOUT ROWID;
"""


def served(
    store: int,
    family: str,
    point: Sequence[float],
    quantiles: Mapping[float, Sequence[float]] | None,
    *,
    version: str = VERSION,
    models: Sequence[str] | None = None,
) -> ServedForecasts:
    days = [END + dt.timedelta(days=k) for k in range(1, len(point) + 1)]
    return ServedForecasts(
        model_version=version,
        history_end=END,
        request_time=dt.datetime(2017, 8, 1, tzinfo=dt.UTC),
        dates=days,
        stores=[store] * len(point),
        families=[family] * len(point),
        sales=list(point),
        models=list(models or ["xgboost"] * len(point)),
        quantiles=quantiles,
    )


def seeded_log(
    path: Path, *, stores: int, spread: float, seed: int = 0, days: int = 16
) -> tuple[PredictionLog, pd.DataFrame]:
    """Log point 100 with quantiles 100 + spread * z_level for every series; actuals N(100, 10).

    With ``spread`` = 10 the bands are the normal's own: calibrated. Returns the log and the
    frame the served rows became, with their actuals (what a hand computation needs).
    """
    rng = np.random.default_rng(seed)
    z = {0.1: -1.2816, 0.25: -0.6745, 0.75: 0.6745, 0.9: 1.2816}
    group = []
    for store in range(1, stores + 1):
        for family in FAMILIES:
            point = 100.0 + rng.normal(0, 2, days)  # bands move with the point, row by row
            quantiles = {lvl: list(point + spread * z[lvl]) for lvl in LEVELS}
            group.append(served(store, family, point, quantiles))
    frame = served_frame(group)
    log = PredictionLog(path)
    assert log.log_predictions(frame, model_version=VERSION)
    actuals = frame[["date", "store_nbr", "family"]].assign(
        sales=100.0 + rng.normal(0, 10, len(frame))
    )
    assert log.ingest_actuals(actuals).inserted == len(frame)
    return log, frame.assign(actual=actuals["sales"].to_numpy())


def test_p40_quantiles_are_logged_and_read_back(tmp_path: Path) -> None:
    """Each level's values come back exactly; a request without quantiles adds none."""
    asked = served(1, "EGGS", [5.0, 0.0, 7.0], {0.1: [4.0, 0.0, 6.5], 0.9: [6.25, 0.0, 9.0]})
    plain = served(2, "EGGS", [3.0, 4.0, 5.0], None, models=["xgboost", "closed", "xgboost"])
    log = PredictionLog(tmp_path / "mon.sqlite")
    assert log.log_predictions(served_frame([asked, plain]), model_version=VERSION)
    with sqlite3.connect(log.db_path) as conn:
        stored = conn.execute(
            "SELECT store_nbr, target_date, horizon_day, level, value FROM prediction_quantiles"
            " ORDER BY store_nbr, target_date, level"
        ).fetchall()
        points = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    assert points == 5  # the closed day of store 2 is not a forecast
    assert stored == [
        (1, "2017-08-01", 1, 0.1, 4.0),
        (1, "2017-08-01", 1, 0.9, 6.25),
        (1, "2017-08-02", 2, 0.1, 0.0),
        (1, "2017-08-02", 2, 0.9, 0.0),
        (1, "2017-08-03", 3, 0.1, 6.5),
        (1, "2017-08-03", 3, 0.9, 9.0),
    ]
    # logging a key again keeps the latest request's quantiles only (here: none for day 1)
    again = served(1, "EGGS", [5.5], None)
    assert log.log_predictions(served_frame([again]), model_version=VERSION)
    with sqlite3.connect(log.db_path) as conn:
        days = conn.execute("SELECT DISTINCT target_date FROM prediction_quantiles").fetchall()
    assert sorted(days) == [("2017-08-02",), ("2017-08-03",)]


def test_p40_a_quantile_list_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match=r"quantiles\[0.1\]: 2 values for 3 rows"):
        served_frame([served(1, "EGGS", [1.0, 2.0, 3.0], {0.1: [1.0, 2.0]})])


def test_p40_coverage_equals_the_hand_computation_on_a_seeded_log(tmp_path: Path) -> None:
    log, rows = seeded_log(tmp_path / "mon.sqlite", stores=4, spread=10.0)
    report = log.coverage(model_version=VERSION, window_days=16, min_rows=10)
    by_nominal = {round(i.nominal, 2): i for i in report.intervals}
    assert sorted(by_nominal) == [0.5, 0.8]
    for lo, hi, nominal in ((0.1, 0.9, 0.8), (0.25, 0.75, 0.5)):
        lower, upper = rows[f"quantile_{lo}"], rows[f"quantile_{hi}"]
        inside = (rows["actual"] >= lower) & (rows["actual"] <= upper)
        interval = by_nominal[nominal]
        assert interval.n == len(rows) == 4 * 4 * 16
        assert interval.coverage == pytest.approx(inside.mean(), abs=1e-12)
        assert interval.below == pytest.approx((rows["actual"] < lower).mean(), abs=1e-12)
    assert report.window == ("2017-08-01", "2017-08-16")


def test_p40_the_window_is_the_accuracy_window(tmp_path: Path) -> None:
    """window_days=4: only the last 4 scored target days count, as for accuracy."""
    log, rows = seeded_log(tmp_path / "mon.sqlite", stores=2, spread=10.0)
    report = log.coverage(model_version=VERSION, window_days=4, min_rows=10)
    last = rows[rows["date"] >= pd.Timestamp("2017-08-13")]
    assert {i.n for i in report.intervals} == {len(last)} == {len(log.joined(window_days=4))}


def test_p40_alert_for_too_narrow_bands_not_for_calibrated_ones(tmp_path: Path) -> None:
    narrow, _ = seeded_log(tmp_path / "narrow.sqlite", stores=16, spread=4.0, seed=1)
    calibrated, _ = seeded_log(tmp_path / "calibrated.sqlite", stores=16, spread=10.0, seed=1)
    bad = narrow.coverage(model_version=VERSION, window_days=16)
    good = calibrated.coverage(model_version=VERSION, window_days=16)
    assert all(i.n == 16 * 4 * 16 >= 1000 for i in (*bad.intervals, *good.intervals))
    assert (bad.status, bad.alert) == (MISCALIBRATED, True)
    assert all(
        i.alert and i.coverage is not None and i.coverage < i.nominal - 0.05 for i in bad.intervals
    )
    assert (good.status, good.alert) == (OK, False), good.message
    assert all(abs(i.coverage - i.nominal) <= 0.05 for i in good.intervals if i.coverage)


def test_p40_no_alert_below_the_minimum_row_count(tmp_path: Path) -> None:
    narrow, _ = seeded_log(tmp_path / "mon.sqlite", stores=2, spread=4.0)  # 128 rows
    report = narrow.coverage(model_version=VERSION, window_days=16)
    assert (report.status, report.alert) == ("insufficient_data", False)
    assert all(i.n == 128 and i.status == "insufficient_data" for i in report.intervals)


def test_p40_levels_without_a_pair_form_no_interval(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "mon.sqlite")
    frame = served_frame([served(1, "EGGS", [5.0, 6.0], {0.5: [5.0, 6.0], 0.9: [7.0, 8.0]})])
    assert log.log_predictions(frame, model_version=VERSION)
    log.ingest_actuals(frame[["date", "store_nbr", "family"]].assign(sales=5.0))
    assert log.coverage(model_version=VERSION).status == NO_INTERVALS


def test_p40_an_old_log_file_opens_keeps_its_rows_and_reports_no_quantiles(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript(OLD_SCHEMA)
        conn.execute(
            "INSERT INTO predictions VALUES ('v0', 1, 'EGGS', '2017-08-01', 1, 5.0, 'xgboost',"
            " '2017-07-31T00:00:00.000+00:00')"
        )
        conn.execute("INSERT INTO actuals VALUES (1, 'EGGS', '2017-08-01', 6.0, 'x')")
    log = PredictionLog(db)
    report = log.coverage(window_days=7)
    assert (report.status, report.alert, report.model_version) == (NO_QUANTILES, False, "v0")
    assert "no quantiles served" in report.message
    assert len(log.joined()) == 1  # the old rows are still there and still join
    assert log.log_predictions(
        served_frame([served(1, "EGGS", [5.0], {0.1: [4.0], 0.9: [6.0]}, version="v0")]),
        model_version="v0",
    )
    assert len(log.joined_quantiles(model_version="v0")[0]) == 2


def test_p40_an_unreadable_store_is_unavailable_not_an_exception(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    report = coverage_status(PredictionLog(directory), model_version=VERSION, window_days=7)
    assert (report.status, report.alert) == ("unavailable", False)


def test_p40_monitor_check_exits_1_on_a_coverage_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"mean": {"xgboost": 0.5}}))
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_MONITORING__WINDOW_DAYS", "16")
    args = ["monitor", "check", "--metrics", str(metrics), "--model-version", VERSION, "--json"]
    for name, spread, code in (("good", 10.0, 0), ("narrow", 4.0, 1)):
        db = tmp_path / f"{name}.sqlite"
        seeded_log(db, stores=16, spread=spread, seed=2)
        monkeypatch.setenv("RF_MONITORING__DB_PATH", str(db))
        result = CliRunner().invoke(app, args)
        assert result.exit_code == code, result.output
        body = json.loads(result.stdout)
        assert body["status"] == "ok"  # accuracy is fine: the point is unbiased either way
        assert body["coverage"]["alert"] is bool(code)
        assert [i["n"] for i in body["coverage"]["intervals"]] == [1024, 1024]


def test_p40_report_draws_bands_offline(tmp_path: Path) -> None:
    log, _ = seeded_log(tmp_path / "mon.sqlite", stores=4, spread=4.0)
    section = QuantileSection(
        coverage=log.coverage(model_version=VERSION, window_days=16, min_rows=10),
        bands=log.bands(model_version=VERSION, n=2),
    )
    page = write_report(
        tmp_path / "r.html", drift=None, accuracy=None, worst_series=None, quantiles=section
    ).read_text()
    assert page.count("<polygon") == 2 * 2  # two series, the 50 % and 80 % bands each
    assert "miscalibrated" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    plain = write_report(tmp_path / "p.html", drift=None, accuracy=None, worst_series=None)
    assert "<polygon" not in plain.read_text()


def test_p40_status_route_reports_coverage_and_its_alert(tmp_path: Path) -> None:
    """GET /api/v1/monitoring/status over the app (lifespan and pool, as the route tests)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
    from api_helpers import wait_ready
    from naive_backend import SeasonalNaivePredictor, make_history

    for name, spread, alert in (("good", 10.0, False), ("narrow", 4.0, True)):
        db = tmp_path / f"{name}.sqlite"
        seeded_log(db, stores=16, spread=spread, seed=3)
        predictor = SeasonalNaivePredictor(make_history(), version=VERSION, metrics=None)
        monitoring = MonitoringConfig(db_path=db, window_days=16)
        settings = Settings(_env_file=None, monitoring=monitoring)  # type: ignore[call-arg]
        application = create_app(settings, load_predictor=lambda _s, p=predictor: p)
        with TestClient(application, raise_server_exceptions=False) as client:
            wait_ready(client)
            response = client.get("/api/v1/monitoring/status")
        assert response.status_code == 200
        coverage = response.json()["coverage"]
        assert coverage["alert"] is alert
        assert coverage["status"] == ("miscalibrated" if alert else "ok")
        assert coverage["window"] == {"first": "2017-08-01", "last": "2017-08-16"}
        assert coverage["min_rows"] == 1000
        assert [(i["lower_level"], i["upper_level"], i["n"]) for i in coverage["intervals"]] == [
            (0.25, 0.75, 1024),
            (0.1, 0.9, 1024),
        ]
        expected = PredictionLog(db).coverage(model_version=VERSION, window_days=16)
        assert [i["coverage"] for i in coverage["intervals"]] == [
            i.coverage for i in expected.intervals
        ]


def test_p40_the_recorder_writes_the_quantiles_it_is_handed(tmp_path: Path) -> None:
    """The serving path: MonitoringRecorder -> its writer thread -> the SQLite log."""
    log = PredictionLog(tmp_path / "mon.sqlite")
    recorder = MonitoringRecorder(log, max_pending_rows=1000, linger_s=0.0)
    try:
        assert recorder.record_predictions(served(1, "EGGS", [5.0], {0.1: [4.0], 0.9: [6.0]}))
        assert recorder.record_predictions(served(2, "EGGS", [3.0], None))
        assert recorder.flush(10.0)
    finally:
        recorder.close(10.0)
    assert recorder.stats().written_rows == 2
    with sqlite3.connect(log.db_path) as conn:
        rows = conn.execute("SELECT store_nbr, level, value FROM prediction_quantiles").fetchall()
    assert sorted(rows) == [(1, 0.1, 4.0), (1, 0.9, 6.0)]
