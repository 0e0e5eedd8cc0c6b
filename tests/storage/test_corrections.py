"""Corrections (promise 33): explicit, applied to both stores alike, audited, inside the window."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from retail_forecast.closed_days import YearlyClosures
from retail_forecast.errors import ConflictError
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.storage import (
    CONFIRM_SPIKE,
    CORRECTION,
    REQUEST_ID,
    HistoryStore,
    PredictionLogDB,
    RefusedRowsError,
)

END = pd.Timestamp("2016-12-24")  # the window holds 25 December once a later day completes
SERIES = [(1, "BEVERAGES"), (2, "BEVERAGES")]
N_DAYS = 7

CHRISTMAS = YearlyClosures(((12, 25),))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    dates = pd.date_range(END - pd.Timedelta(days=N_DAYS - 1), END)
    frame = pd.DataFrame(
        [(d, s, f, 100.0, 1, False) for s, f in SERIES for d in dates],
        columns=[DATE, STORE, FAMILY, TARGET, PROMO, IS_CLOSED],
    )
    frame[FAMILY] = pd.Categorical(frame[FAMILY], categories=["BEVERAGES"])
    with HistoryStore.from_frame(
        frame[list(CANONICAL_COLUMNS)], n_days=N_DAYS, db_path=tmp_path / "h.sqlite"
    ) as opened:
        opened.closures = CHRISTMAS  # a bundle whose history closed every 25 December
        yield opened


def rows(day: pd.Timestamp, sales: list[float], **columns: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(day, s, f, v, 1) for (s, f), v in zip(SERIES, sales, strict=True)],
        columns=[DATE, STORE, FAMILY, TARGET, PROMO],
    )
    for name, value in columns.items():
        frame[name] = value
    return frame


def obs(db: Path, day: str) -> list[float]:
    with sqlite3.connect(db) as conn:
        query = "SELECT sales FROM obs WHERE date = ? ORDER BY series_idx"
        return [float(v) for (v,) in conn.execute(query, (day,))]


def test_p33_a_correction_replaces_the_stored_value_and_is_audited(
    store: HistoryStore, tmp_path: Path
) -> None:
    day = END - pd.Timedelta(days=2)
    with pytest.raises(ConflictError, match='"correction": true'):
        store.append_actuals(rows(day, [100.0, 120.0]))  # without the flag: a conflict
    fix = rows(day, [100.0, 120.0], **{CORRECTION: True, REQUEST_ID: "req-7"})
    result = store.append_actuals(fix)
    assert (result.n_new, result.n_corrected, result.n_duplicate) == (0, 1, 1)
    assert store.to_frame().query(f"{DATE} == @day")[TARGET].tolist() == [100.0, 120.0]
    assert obs(tmp_path / "h.sqlite", "2016-12-22") == [100.0, 120.0]
    audit = store.corrections()
    assert audit.drop(columns="corrected_at").to_dict("records") == [
        {
            "date": "2016-12-22",
            "store_nbr": 2,
            "family": "BEVERAGES",
            "old_sales": 100.0,
            "new_sales": 120.0,
            "old_onpromotion": 1,
            "new_onpromotion": 1,
            "request_id": "req-7",
        }
    ]
    # the corrected value is the record now: resending it is a duplicate, the old one conflicts
    assert store.append_actuals(rows(day, [100.0, 120.0])).n_duplicate == 2
    with pytest.raises(ConflictError):
        store.append_actuals(rows(day, [100.0, 100.0]))
    with HistoryStore.open(tmp_path / "h.sqlite") as reopened:  # committed, with its audit row
        assert reopened.to_frame().query(f"{DATE} == @day")[TARGET].tolist() == [100.0, 120.0]
        assert len(reopened.corrections()) == 1


def test_p33_a_pending_day_is_corrected_too(store: HistoryStore, tmp_path: Path) -> None:
    later = END + pd.Timedelta(days=2)  # 26 December: pending until the 25th is filled
    store.append_actuals(rows(later, [5.0, 6.0]).iloc[:1])
    result = store.append_actuals(rows(later, [7.0, 6.0], **{CORRECTION: True}))
    assert (result.n_new, result.n_corrected) == (1, 1)
    assert store.history_end == later  # the 25th filled closed, the 26th complete
    assert store.to_frame().query(f"{DATE} == @later")[TARGET].tolist() == [7.0, 6.0]
    assert obs(tmp_path / "h.sqlite", "2016-12-26") == [7.0, 6.0]
    assert store.corrections()["request_id"].tolist() == [None]


def test_p33_a_correction_the_store_cannot_apply_is_refused(store: HistoryStore) -> None:
    store.append_actuals(rows(END + pd.Timedelta(days=2), [5.0, 6.0]))  # fills 25 December
    before = store.snapshot()
    too_old = rows(END - pd.Timedelta(days=30), [1.0, 1.0], **{CORRECTION: True})
    closed = rows(pd.Timestamp("2016-12-25"), [3.0, 4.0], **{CORRECTION: True})
    with pytest.raises(RefusedRowsError) as refused:
        store.append_actuals(pd.concat([too_old, closed], ignore_index=True))
    found = [(p.position, p.field, p.type) for p in refused.value.problems]
    assert found == [
        (0, "date", "correction_outside_window"),
        (1, "date", "correction_outside_window"),
        (2, "date", "correction_of_closed_day"),
        (3, "date", "correction_of_closed_day"),
    ]
    assert store.snapshot() is before
    assert store.corrections().empty


def test_p33_a_corrected_value_must_be_plausible_too(store: HistoryStore) -> None:
    day = END - pd.Timedelta(days=1)
    with pytest.raises(RefusedRowsError, match="implausible"):
        store.append_actuals(rows(day, [100.0, 5000.0], **{CORRECTION: True}))
    confirmed = rows(day, [100.0, 5000.0], **{CORRECTION: True, CONFIRM_SPIKE: True})
    assert store.append_actuals(confirmed).n_corrected == 1
    assert store.snapshot().levels.tolist() == [100.0, 5000.0]  # the bound follows the record


def test_p33_both_stores_apply_and_audit_the_same_correction(
    store: HistoryStore, tmp_path: Path
) -> None:
    """The prediction log gets the rows the history store accepted, flags included."""
    log = PredictionLogDB(tmp_path / "log.sqlite")
    day = END - pd.Timedelta(days=3)
    original = store.to_frame().query(f"{DATE} == @day")[[DATE, STORE, FAMILY, TARGET, PROMO]]
    assert log.ingest_actuals(original).inserted == 2
    fix = rows(day, [80.0, 100.0], **{CORRECTION: True, REQUEST_ID: "req-9"})
    assert store.append_actuals(fix).n_corrected == 1
    result = log.ingest_actuals(fix)
    assert (result.corrected, result.unchanged, result.conflicts) == (1, 1, 0)
    joined = log.corrections()
    assert joined[
        ["date", "store_nbr", "old_sales", "new_sales", "request_id"]
    ].values.tolist() == [["2016-12-21", 1, 100.0, 80.0, "req-9"]]
    with sqlite3.connect(log.db_path) as conn:
        logged = conn.execute("SELECT sales FROM actuals ORDER BY store_nbr").fetchall()
    history = store.to_frame().query(f"{DATE} == @day")[TARGET].tolist()
    assert [v for (v,) in logged] == history == [80.0, 100.0]
    again = log.ingest_actuals(fix)  # a resend changes nothing and audits nothing
    assert (again.corrected, again.unchanged) == (0, 2)
    assert len(log.corrections()) == 1
