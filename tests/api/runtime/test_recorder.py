"""MonitoringRecorder: batching within the linger, versions apart, drain on close, drops."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from retail_forecast.api.runtime.recorder import MonitoringRecorder, ServedForecasts
from retail_forecast.monitoring.prediction_log import PredictionLog

END = dt.date(2017, 8, 15)


class CountingLog(PredictionLog):
    def __init__(self, db_path: Path) -> None:
        super().__init__(db_path, timeout_s=0.5)
        self.calls: list[tuple[str, int]] = []

    def log_predictions(self, rows: pd.DataFrame, **kwargs: Any) -> bool:
        self.calls.append((kwargs["model_version"], len(rows)))
        return super().log_predictions(rows, **kwargs)


def served(store: int, *, version: str = "v1", second: int = 0, days: int = 16) -> ServedForecasts:
    return ServedForecasts(
        model_version=version,
        history_end=END,
        request_time=dt.datetime(2017, 8, 16, 8, 0, second, tzinfo=dt.UTC),
        dates=[END + dt.timedelta(days=k) for k in range(1, days + 1)],
        stores=[store] * days,
        families=["BEVERAGES"] * days,
        sales=[float(store * k) for k in range(1, days + 1)],
        models=["hybrid"] * days,
    )


def rows_in(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT * FROM predictions ORDER BY store_nbr, horizon_day", conn)


def test_batches_within_the_linger_share_one_write(tmp_path: Path) -> None:
    log = CountingLog(tmp_path / "m.sqlite")
    recorder = MonitoringRecorder(log, max_pending_rows=1000, linger_s=1.0)
    try:
        for store in (1, 2, 3):
            assert recorder.record_predictions(served(store, second=store))
        assert recorder.flush(10)
    finally:
        recorder.close(5)
    assert log.calls == [("v1", 48)]
    frame = rows_in(log.db_path)
    assert (
        frame.groupby("store_nbr")["horizon_day"].apply(list).tolist() == [list(range(1, 17))] * 3
    )
    assert frame.loc[frame["store_nbr"] == 3, "prediction"].tolist() == [
        3.0 * k for k in range(1, 17)
    ]
    assert set(frame["request_time"]) == {"2017-08-16T08:00:03.000+00:00"}  # the latest


def test_versions_are_written_apart(tmp_path: Path) -> None:
    log = CountingLog(tmp_path / "m.sqlite")
    recorder = MonitoringRecorder(log, max_pending_rows=1000, linger_s=1.0)
    try:
        recorder.record_predictions(served(1, version="old"))
        recorder.record_predictions(served(1, version="new", days=4))
        assert recorder.flush(10)
    finally:
        recorder.close(5)
    assert sorted(log.calls) == [("new", 4), ("old", 16)]


def test_close_drains_what_is_queued_then_refuses(tmp_path: Path) -> None:
    log = CountingLog(tmp_path / "m.sqlite")
    recorder = MonitoringRecorder(log, max_pending_rows=1000, linger_s=30.0)
    recorder.record_predictions(served(1))
    recorder.close(10)  # does not wait out the 30 s linger
    assert len(rows_in(log.db_path)) == 16
    assert recorder.record_predictions(served(2)) is False
    stats = recorder.stats()
    assert (stats.written_rows, stats.dropped_rows, stats.queued_rows) == (16, 16, 0)


def test_p33_a_correction_queued_behind_its_original_is_applied_after_it(tmp_path: Path) -> None:
    """Both in one linger: written as two batches in queue order, never judged together."""
    log = PredictionLog(tmp_path / "m.sqlite")
    recorder = MonitoringRecorder(log, max_pending_rows=1000, linger_s=1.0)

    def actual(sales: float, store: int = 1, **flags: object) -> pd.DataFrame:
        row = {"date": pd.Timestamp("2017-08-16"), "store_nbr": store, "family": "BEVERAGES"}
        return pd.DataFrame([{**row, "onpromotion": 0, "sales": sales, **flags}])

    try:
        assert recorder.record_actuals(actual(10.0))
        assert recorder.record_actuals(actual(7.0, store=2))  # another request in between
        assert recorder.record_actuals(actual(12.0, correction=True, request_id="fix-1"))
        assert recorder.flush(10)
    finally:
        recorder.close(5)
    with sqlite3.connect(log.db_path) as conn:
        stored = conn.execute("SELECT store_nbr, sales FROM actuals ORDER BY store_nbr")
        assert stored.fetchall() == [(1, 12.0), (2, 7.0)]
    assert log.corrections()[["old_sales", "new_sales", "request_id"]].values.tolist() == [
        [10.0, 12.0, "fix-1"]
    ]
    assert recorder.stats().failed_rows == 0
