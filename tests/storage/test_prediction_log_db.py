"""PredictionLogDB: actuals under the conflict policy, validation, failures reported not raised."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from retail_forecast.errors import DataValidationError
from retail_forecast.storage import IngestResult, PredictionLogDB

DAY = pd.Timestamp("2017-07-31")
FAMILIES = ("BEVERAGES", "BREAD/BAKERY", "LIQUOR,WINE,BEER")


def actual_rows(dates: pd.DatetimeIndex, *, stores: int = 4, value: float = 10.0) -> pd.DataFrame:
    rows = [(d, s, f, value) for d in dates for s in range(1, stores + 1) for f in FAMILIES]
    return pd.DataFrame(rows, columns=["date", "store_nbr", "family", "sales"])


def stored_actuals(log: PredictionLogDB) -> list[tuple[int, str, str, float]]:
    with sqlite3.connect(log.db_path) as conn:
        rows = conn.execute("SELECT store_nbr, family, date, sales FROM actuals ORDER BY 1, 2, 3")
        return [tuple(row) for row in rows]


@pytest.fixture
def log(tmp_path: Path) -> PredictionLogDB:
    return PredictionLogDB(tmp_path / "monitoring.sqlite")


def test_identical_actuals_are_an_idempotent_no_op(log: PredictionLogDB) -> None:
    first = log.ingest_actuals(actual_rows(pd.DatetimeIndex([DAY])))
    before = stored_actuals(log)
    again = log.ingest_actuals(actual_rows(pd.DatetimeIndex([DAY])))
    assert (first.inserted, first.unchanged, first.conflicts) == (12, 0, 0)
    assert (again.inserted, again.unchanged, again.conflicts) == (0, 12, 0)
    assert stored_actuals(log) == before


def test_a_different_value_is_a_conflict_and_never_overwrites(
    log: PredictionLogDB, caplog: pytest.LogCaptureFixture
) -> None:
    log.ingest_actuals(actual_rows(pd.DatetimeIndex([DAY])))
    changed = actual_rows(pd.date_range(DAY, periods=2))  # the stored day, and one new day
    changed.loc[0, "sales"] = 30.0  # store 1, BEVERAGES on the stored day
    changed.loc[1, "sales"] = 10.0 + 1e-12  # within the tolerance: a duplicate
    with caplog.at_level(logging.WARNING, logger="retail_forecast.storage"):
        result = log.ingest_actuals(changed)
    assert result == IngestResult(
        received=24,
        inserted=12,
        unchanged=11,
        conflicts=1,
        conflict_examples=(
            "2017-07-31 store_nbr=1 family='BEVERAGES': recorded sales=10, received sales=30",
        ),
    )
    stored = dict(((s, f, d), v) for s, f, d, v in stored_actuals(log))
    assert len(stored) == 24
    assert stored[(1, "BEVERAGES", "2017-07-31")] == 10.0
    assert stored[(1, "BEVERAGES", "2017-08-01")] == 10.0
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "1 actuals contradict recorded values; the stored values are kept" in warning
    assert "replaced only by a correction" in warning


def test_conflicts_are_all_counted_and_the_first_named(log: PredictionLogDB) -> None:
    log.ingest_actuals(actual_rows(pd.date_range(DAY, periods=3), stores=3))
    result = log.ingest_actuals(actual_rows(pd.date_range(DAY, periods=3), stores=3, value=1.0))
    assert (result.inserted, result.unchanged, result.conflicts) == (0, 0, 27)
    assert len(result.conflict_examples) == 20
    assert {v for *_, v in stored_actuals(log)} == {10.0}


def test_identical_repeats_collapse_and_contradicting_repeats_are_rejected(
    log: PredictionLogDB,
) -> None:
    day = pd.DatetimeIndex([DAY])
    rows = actual_rows(day, stores=2)  # 6 keys
    repeats = rows.copy()
    repeats.loc[repeats["store_nbr"] == 2, "sales"] = 7.0  # 3 keys now disagree in the batch
    bad = pd.DataFrame(
        {
            "date": ["2017-08-01", "not a date", "2017-08-01", "2017-08-01", "2017-08-01"],
            "store_nbr": [1, 1, 1.5, 1, float("inf")],
            "family": ["BEVERAGES"] * 5,
            "sales": [-1.0, 3.0, 3.0, float("inf"), 3.0],
        }
    )
    result = log.ingest_actuals(pd.concat([rows, repeats, bad]))
    assert (result.received, result.inserted, result.rejected, result.conflicts) == (17, 3, 11, 0)
    assert {(s, v) for s, _, _, v in stored_actuals(log)} == {(1, 10.0)}
    with pytest.raises(DataValidationError, match="lack columns"):
        log.ingest_actuals(rows.drop(columns=["sales"]))


def test_a_store_failure_is_returned_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    result = PredictionLogDB(blocker / "m.sqlite").ingest_actuals(
        actual_rows(pd.DatetimeIndex([DAY]))
    )
    assert not result.ok
    assert result.error
    assert result.inserted == 0


def test_a_concurrent_writer_is_waited_for_before_rows_are_judged(tmp_path: Path) -> None:
    """Judging and inserting are one write transaction: a writer in between is never missed."""
    log = PredictionLogDB(tmp_path / "m.sqlite", timeout_s=10.0)
    log.ingest_actuals(actual_rows(pd.DatetimeIndex([DAY])))
    later = actual_rows(pd.DatetimeIndex([DAY + pd.Timedelta(days=1)]), value=1.0)
    holder = sqlite3.connect(log.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.executemany(
        "INSERT INTO actuals VALUES (?, ?, ?, ?, 'now')",
        [(s, f, "2017-08-01", v) for _, s, f, v in later.itertuples(index=False)],
    )
    results: list[IngestResult] = []
    worker = threading.Thread(
        target=lambda: results.append(log.ingest_actuals(later.assign(sales=2.0)))
    )
    worker.start()
    time.sleep(0.3)  # the ingest now waits for the write lock
    holder.execute("COMMIT")
    holder.close()
    worker.join()
    assert results[0].ok, results[0].error
    assert (results[0].inserted, results[0].conflicts) == (0, 12)
    assert {v for _, _, d, v in stored_actuals(log) if d == "2017-08-01"} == {1.0}
