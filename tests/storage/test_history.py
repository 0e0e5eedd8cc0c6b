"""HistoryStore: server-side sales history, persisted in SQLite, appended without retraining."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retail_forecast.closed_days import YearlyClosures
from retail_forecast.errors import (
    ConflictError,
    DataValidationError,
    ForecastError,
    UnknownSeriesError,
)
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, PROMO, STORE, TARGET
from retail_forecast.storage import CONFIRM_SPIKE, HistoryStore, RefusedRowsError

FAMILIES = ["AUTOMOTIVE", "BEVERAGES", "PRODUCE"]  # PRODUCE: a category without rows here
KEPT_FAMILIES = FAMILIES[:2]
STORES = [1, 2, 10]
N_SERIES = len(STORES) * len(KEPT_FAMILIES)


def _value(store: int, family: str, day: pd.Timestamp) -> float:
    """Sales that encode their own key, so a misplaced value is visible."""
    return store * 1000.0 + FAMILIES.index(family) * 100.0 + day.dayofyear + 0.25


def _rows(days: pd.DatetimeIndex, series: list[tuple[int, str]] | None = None) -> pd.DataFrame:
    keys = series or [(s, f) for s in STORES for f in KEPT_FAMILIES]
    records = [
        {
            DATE: day,
            STORE: store,
            FAMILY: family,
            TARGET: _value(store, family, day),
            PROMO: (store + day.day) % 3,
        }
        for day in days
        for store, family in keys
    ]
    return pd.DataFrame.from_records(records)


def make_sales(start: str, end: str) -> pd.DataFrame:
    """A complete canonical panel (3 stores x 2 families)."""
    frame = _rows(pd.date_range(start, end, freq="D"))
    frame["is_closed"] = False
    frame[FAMILY] = pd.Categorical(frame[FAMILY], categories=FAMILIES)
    frame = frame.sort_values([STORE, FAMILY, DATE], ignore_index=True)
    return frame[list(CANONICAL_COLUMNS)]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite"


@pytest.fixture
def store(db_path: Path) -> Any:
    with HistoryStore.from_frame(
        make_sales("2017-07-01", "2017-08-15"), n_days=14, db_path=db_path
    ) as s:
        yield s


def _day(text: str) -> pd.DatetimeIndex:
    return pd.date_range(text, periods=1)


def test_from_frame_keeps_the_last_n_days_as_a_canonical_frame(store: HistoryStore) -> None:
    expected = make_sales("2017-08-02", "2017-08-15")
    pd.testing.assert_frame_equal(store.to_frame(), expected)
    assert store.history_end == pd.Timestamp("2017-08-15")
    assert store.series == [(s, f) for s in STORES for f in KEPT_FAMILIES]
    snap = store.snapshot()
    assert snap.sales.shape == (N_SERIES, 14)
    assert not snap.sales.flags.writeable


def test_database_uses_wal_mode(store: HistoryStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_from_frame_rejects_a_panel_with_gaps(db_path: Path) -> None:
    sales = make_sales("2017-08-01", "2017-08-15")
    sales = sales[sales[DATE] != pd.Timestamp("2017-08-10")]
    with pytest.raises(DataValidationError, match="gaps"):
        HistoryStore.from_frame(sales, n_days=30, db_path=db_path)
    assert not db_path.exists()


def test_append_moves_history_end_and_slides_the_window(store: HistoryStore) -> None:
    result = store.append_actuals(_rows(pd.date_range("2017-08-16", "2017-08-17")))
    assert (result.n_new, result.n_duplicate) == (2 * N_SERIES, 0)
    assert result.history_end_before == pd.Timestamp("2017-08-15")
    assert result.history_end == store.history_end == pd.Timestamp("2017-08-17")
    expected = make_sales("2017-08-04", "2017-08-17")
    pd.testing.assert_frame_equal(store.to_frame(), expected)


def test_append_then_restart_keeps_the_data(store: HistoryStore, db_path: Path) -> None:
    store.append_actuals(_rows(_day("2017-08-16")))
    store.append_actuals(_rows(_day("2017-08-17"), [(1, "AUTOMOTIVE")]))  # partial day
    before = store.to_frame()
    store.close()
    with HistoryStore.open(db_path) as reopened:
        pd.testing.assert_frame_equal(reopened.to_frame(), before)
        assert reopened.history_end == pd.Timestamp("2017-08-16")
        assert reopened.snapshot().pending_dates == (pd.Timestamp("2017-08-17"),)
        rest = [(s, f) for s in STORES for f in KEPT_FAMILIES if (s, f) != (1, "AUTOMOTIVE")]
        result = reopened.append_actuals(_rows(_day("2017-08-17"), rest))
        assert result.history_end == pd.Timestamp("2017-08-17")
        pd.testing.assert_frame_equal(reopened.to_frame(), make_sales("2017-08-04", "2017-08-17"))


def test_reappending_identical_rows_is_a_noop(store: HistoryStore, db_path: Path) -> None:
    rows = _rows(pd.date_range("2017-08-14", "2017-08-16"))  # two known days, one new
    first = store.append_actuals(rows)
    assert (first.n_new, first.n_duplicate) == (N_SERIES, 2 * N_SERIES)
    frame = store.to_frame()
    again = store.append_actuals(pd.concat([rows, rows]).sample(frac=1, random_state=0))
    assert (again.n_new, again.n_duplicate) == (0, 3 * N_SERIES)
    pd.testing.assert_frame_equal(store.to_frame(), frame)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM obs").fetchone()[0] == 14 * N_SERIES


def test_conflicting_value_raises_and_nothing_is_applied(store: HistoryStore) -> None:
    new_day = _rows(_day("2017-08-16"))
    changed = _rows(_day("2017-08-15"), [(2, "BEVERAGES")])
    changed[TARGET] += 1.0
    snap = store.snapshot()
    with pytest.raises(ConflictError, match=r"2017-08-15 store_nbr=2 family='BEVERAGES'"):
        store.append_actuals(pd.concat([new_day, changed]))
    assert store.snapshot() is snap
    assert store.history_end == pd.Timestamp("2017-08-15")
    assert store.snapshot().pending_dates == ()


def test_conflict_with_a_pending_row_is_detected(store: HistoryStore, db_path: Path) -> None:
    store.append_actuals(_rows(_day("2017-08-16"), [(10, "AUTOMOTIVE")]))
    changed = _rows(_day("2017-08-16"), [(10, "AUTOMOTIVE")])
    changed[PROMO] += 5
    with pytest.raises(ConflictError, match="onpromotion"):
        store.append_actuals(pd.concat([_rows(_day("2017-08-16"), [(1, "BEVERAGES")]), changed]))
    store.close()
    with HistoryStore.open(db_path) as reopened:  # the valid row of the failed call is not stored
        assert reopened.snapshot().pending[np.datetime64("2017-08-16")].mask.sum() == 1


def test_partial_day_stays_pending(store: HistoryStore) -> None:
    half = [(s, f) for s in STORES for f in KEPT_FAMILIES][: N_SERIES // 2]
    result = store.append_actuals(_rows(pd.date_range("2017-08-16", "2017-08-17"), half))
    assert result.history_end == pd.Timestamp("2017-08-15")
    assert result.pending_dates == (pd.Timestamp("2017-08-16"), pd.Timestamp("2017-08-17"))
    assert store.to_frame()[DATE].max() == pd.Timestamp("2017-08-15")
    rest = [key for key in store.series if key not in half]
    done = store.append_actuals(_rows(_day("2017-08-16"), rest))
    assert done.history_end == pd.Timestamp("2017-08-16")
    assert done.pending_dates == (pd.Timestamp("2017-08-17"),)


@pytest.mark.parametrize(
    "days",
    [
        ["2017-08-17"],  # skips 08-16
        ["2017-08-16", "2017-08-18"],  # a hole inside the call
    ],
)
def test_gap_after_history_end_is_rejected(store: HistoryStore, days: list[str]) -> None:
    snap = store.snapshot()
    with pytest.raises(DataValidationError, match="without gaps"):
        store.append_actuals(_rows(pd.DatetimeIndex(days)))
    assert store.snapshot() is snap


def test_a_yearly_closure_is_filled_as_closed_when_a_later_day_arrives(db_path: Path) -> None:
    with HistoryStore.from_frame(
        make_sales("2016-12-01", "2016-12-24"), n_days=7, db_path=db_path
    ) as store:
        store.closures = YearlyClosures(((12, 25),))  # as the bundle's loader sets it
        store.append_actuals(_rows(_day("2016-12-25"), [(1, "AUTOMOTIVE")]))  # one store opened
        assert store.history_end == pd.Timestamp("2016-12-24")  # 25 Dec alone stays pending
        result = store.append_actuals(_rows(_day("2016-12-26")))
        assert result.history_end == pd.Timestamp("2016-12-26")
        assert result.n_closed_filled == N_SERIES - 1
        frame = store.to_frame()
    xmas = frame[frame[DATE] == pd.Timestamp("2016-12-25")].set_index([STORE, FAMILY])
    assert not xmas.loc[(1, "AUTOMOTIVE"), "is_closed"]
    assert xmas.loc[(1, "AUTOMOTIVE"), TARGET] == _value(
        1, "AUTOMOTIVE", pd.Timestamp("2016-12-25")
    )
    others = xmas.drop(index=(1, "AUTOMOTIVE"))
    assert others["is_closed"].all()
    assert (others[TARGET] == 0).all()
    assert (others[PROMO] == 0).all()
    with HistoryStore.open(db_path) as reopened:
        pd.testing.assert_frame_equal(reopened.to_frame(), frame)


def test_without_yearly_closures_a_skipped_day_is_a_gap(db_path: Path) -> None:
    with HistoryStore.from_frame(
        make_sales("2016-12-01", "2016-12-24"), n_days=7, db_path=db_path
    ) as store:
        with pytest.raises(DataValidationError, match=r"\['2016-12-25'\] have none"):
            store.append_actuals(_rows(_day("2016-12-26")))
        assert store.history_end == pd.Timestamp("2016-12-24")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (TARGET, -1.0),
        (TARGET, float("nan")),
        (TARGET, float("inf")),
        (PROMO, 1.5),
        (PROMO, -1),
        (DATE, "2017-08-16 12:00"),
        (DATE, "not a date"),
        (STORE, 1.5),
    ],
)
def test_invalid_values_are_rejected(store: HistoryStore, column: str, value: object) -> None:
    rows = _rows(_day("2017-08-16")).astype({column: object})
    rows.loc[3, column] = value
    with pytest.raises(DataValidationError, match=r"positions \[3\]"):
        store.append_actuals(rows)
    assert store.snapshot().pending_dates == ()


def test_unknown_series_and_missing_columns_are_rejected(store: HistoryStore) -> None:
    with pytest.raises(UnknownSeriesError, match="99"):
        store.append_actuals(_rows(_day("2017-08-16"), [(99, "AUTOMOTIVE")]))
    with pytest.raises(DataValidationError, match="missing columns"):
        store.append_actuals(_rows(_day("2017-08-16")).drop(columns=[PROMO]))


def test_same_key_twice_with_different_values_in_one_call_is_rejected(
    store: HistoryStore,
) -> None:
    rows = _rows(_day("2017-08-16"))
    twin = rows.iloc[[2]].copy()
    twin[TARGET] += 3.0
    with pytest.raises(DataValidationError, match="different values in the same request"):
        store.append_actuals(pd.concat([rows, twin]))
    assert store.snapshot().pending_dates == ()


def test_rows_older_than_the_window_are_skipped(store: HistoryStore) -> None:
    result = store.append_actuals(_rows(_day("2017-07-01")))
    assert (result.n_too_old, result.n_new, result.n_duplicate) == (N_SERIES, 0, 0)


def test_failed_commit_changes_neither_memory_nor_disk(
    store: HistoryStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store._conn

    class FullDisk:
        @property
        def in_transaction(self) -> bool:
            return real.in_transaction

        def execute(self, sql: str, *args: Any) -> Any:
            return real.execute(sql, *args)

        def executemany(self, sql: str, rows: Any) -> Any:
            real.executemany(sql, rows)  # the rows reach the database, then the commit fails
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "_conn", FullDisk())
    snap = store.snapshot()
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        store.append_actuals(_rows(_day("2017-08-16")))
    assert store.snapshot() is snap
    monkeypatch.setattr(store, "_conn", real)
    store.close()
    with HistoryStore.open(db_path) as reopened:
        assert reopened.history_end == pd.Timestamp("2017-08-15")
        assert reopened.snapshot().pending_dates == ()


def test_readers_always_see_a_consistent_snapshot(store: HistoryStore) -> None:
    first = store.snapshot()
    first_values = first.sales.copy()
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            snap = store.snapshot()
            end = pd.Timestamp(snap.dates[-1])
            expected = [_value(s, f, end) for s, f in snap.series]
            if snap.history_end != end or snap.sales.shape != (N_SERIES, 14):
                errors.append(f"shape/end mismatch at {end}")
            if not np.array_equal(snap.sales[:, -1], expected):
                errors.append(f"values of {end} do not match their date")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        half = store.series[: N_SERIES // 2]
        rest = store.series[N_SERIES // 2 :]
        for day in pd.date_range("2017-08-16", periods=30):
            store.append_actuals(_rows(pd.DatetimeIndex([day]), half))
            store.append_actuals(_rows(pd.DatetimeIndex([day]), rest))
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
    assert store.history_end == pd.Timestamp("2017-09-14")
    np.testing.assert_array_equal(first.sales, first_values)  # old snapshots never change
    assert first.history_end == pd.Timestamp("2017-08-15")


def test_open_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(ForecastError, match="does not exist"):
        HistoryStore.open(tmp_path / "nope.sqlite")


def _real_tail(favorita_dir: Path) -> pd.DataFrame:
    parts = [
        pd.read_parquet(favorita_dir / "train_parts" / f"df_train_part_{i}.parquet")
        for i in range(27, 31)
    ]
    train = pd.concat(parts, ignore_index=True)
    train[DATE] = pd.to_datetime(train[DATE])
    counts = train.groupby(DATE).size()
    train = train[train[DATE].isin(counts[counts == 1782].index)]  # the first day is partial
    families = sorted(train[FAMILY].unique())
    train[FAMILY] = pd.Categorical(train[FAMILY], categories=families)
    train["is_closed"] = False
    train = train.sort_values([STORE, FAMILY, DATE], ignore_index=True)
    return train[list(CANONICAL_COLUMNS)]


@pytest.mark.data
def test_real_tail_appended_day_by_day_equals_the_real_window(
    favorita_dir: Path, tmp_path: Path
) -> None:
    real = _real_tail(favorita_dir)
    end = real[DATE].max()
    cut = end - pd.Timedelta(days=30)
    db = tmp_path / "history.sqlite"
    with HistoryStore.from_frame(real[real[DATE] <= cut], n_days=90, db_path=db) as store:
        assert len(store.series) == 1782
        refused = 0
        for day in pd.date_range(cut + pd.Timedelta(days=1), end):
            actuals = real[real[DATE] == day].drop(columns="is_closed")
            actuals[FAMILY] = actuals[FAMILY].astype(str)
            try:
                store.append_actuals(actuals)
            except RefusedRowsError as exc:  # a real spike (promise 32): confirmed, then stored
                positions = [p.position for p in exc.problems]
                refused += len(positions)
                actuals[CONFIRM_SPIKE] = np.isin(np.arange(len(actuals)), positions)
                store.append_actuals(actuals)
            assert store.history_end == day
        assert refused <= 5, refused  # 3 of the 53,460 real actuals (school-season spikes)
    expected = real[real[DATE] > end - pd.Timedelta(days=90)].reset_index(drop=True)
    with HistoryStore.open(db) as reopened:
        assert reopened.history_end == pd.Timestamp("2017-08-15")
        pd.testing.assert_frame_equal(reopened.to_frame(), expected)


def test_two_stores_on_one_file_see_each_others_appends(store: HistoryStore, db_path: Path) -> None:
    """Two server workers open the same file: each forecasts from the other's appends."""
    with HistoryStore.open(db_path) as other:
        before = other.snapshot()
        store.append_actuals(_rows(_day("2017-08-16")))
        # the other worker's next append is checked against the first one's rows
        changed = _rows(_day("2017-08-16"), [(2, "BEVERAGES")])
        changed[TARGET] += 1.0
        with pytest.raises(ConflictError, match="store_nbr=2 family='BEVERAGES'"):
            other.append_actuals(changed)
        assert other.history_end == pd.Timestamp("2017-08-16")
        pd.testing.assert_frame_equal(other.to_frame(), store.to_frame())
        assert other.snapshot() is other.snapshot()  # no reload without a new commit
        assert other.snapshot() is not before
        result = other.append_actuals(_rows(pd.date_range("2017-08-16", "2017-08-17")))
        assert (result.n_new, result.n_duplicate) == (N_SERIES, N_SERIES)
        assert store.history_end == pd.Timestamp("2017-08-17")
        pd.testing.assert_frame_equal(store.to_frame(), make_sales("2017-08-04", "2017-08-17"))


def test_concurrent_appends_from_two_stores_lose_nothing(
    store: HistoryStore, db_path: Path
) -> None:
    half = [(s, f) for s in STORES for f in KEPT_FAMILIES]
    days = pd.date_range("2017-08-16", "2017-08-25")
    with HistoryStore.open(db_path) as other:

        def append(target: HistoryStore, part: list[tuple[int, str]]) -> None:
            for day in days:
                target.append_actuals(_rows(pd.DatetimeIndex([day]), part))

        threads = [
            threading.Thread(target=append, args=(store, half[: N_SERIES // 2])),
            threading.Thread(target=append, args=(other, half[N_SERIES // 2 :])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        expected = make_sales("2017-08-12", "2017-08-25")
        pd.testing.assert_frame_equal(store.to_frame(), expected)
        pd.testing.assert_frame_equal(other.to_frame(), expected)
