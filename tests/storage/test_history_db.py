"""The history store's SQLite under faults: a full disk, a store opened read-only, one in memory.

Real SQLite throughout: a full disk is SQLite's own SQLITE_FULL (``PRAGMA max_page_count`` on
the store's connection), a read-only store a real read-only connection or mount.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fs_faults import read_only_bind

from retail_forecast.errors import StoreFullError, StoreReadOnlyError
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, PROMO, STORE, TARGET
from retail_forecast.storage import HistoryStore
from retail_forecast.storage.history_db import connect, unwritable_cause

SERIES = [(store, family) for store in (1, 2, 3) for family in ("AUTOMOTIVE", "BEVERAGES")]
END = pd.Timestamp("2017-08-15")
READ_ONLY = "the history store cannot be written (test)"


def rows(days: pd.DatetimeIndex) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {DATE: day, STORE: s, FAMILY: f, TARGET: s * 100.0 + day.dayofyear, PROMO: s % 2}
            for day in days
            for s, f in SERIES
        ]
    )
    return frame


def sales(start: str, end: pd.Timestamp = END) -> pd.DataFrame:
    frame = rows(pd.date_range(start, end))
    frame["is_closed"] = False
    frame[FAMILY] = pd.Categorical(frame[FAMILY], categories=["AUTOMOTIVE", "BEVERAGES"])
    return frame.sort_values([STORE, FAMILY, DATE], ignore_index=True)[list(CANONICAL_COLUMNS)]


def after_end(days: int, first: int = 1) -> pd.DatetimeIndex:
    return pd.date_range(END + pd.Timedelta(days=first), periods=days)


def on_disk(db_path: Path) -> tuple[int, str]:
    """What another connection sees committed: the row count and the history end."""
    with sqlite3.connect(db_path) as conn:
        count = conn.execute("SELECT COUNT(*) FROM obs").fetchone()[0]
        end = conn.execute("SELECT value FROM meta WHERE key = 'history_end'").fetchone()[0]
    return int(count), str(end)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history" / "v1.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore.from_frame(sales("2017-07-01"), n_days=14, db_path=db_path) as opened:
        yield opened


def test_p31_a_full_disk_is_store_full_error_and_nothing_partial_is_written(
    store: HistoryStore, db_path: Path
) -> None:
    conn = store._conn  # the store's own connection: SQLite enforces the limit per connection
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # not one page more: SQLITE_FULL
    snap, before = store.snapshot(), on_disk(db_path)
    batch = rows(after_end(60))  # 360 rows: they need new pages

    with pytest.raises(StoreFullError, match="is full") as caught:
        store.append_actuals(batch)
    assert str(db_path) in str(caught.value)
    assert "nothing of this request was stored" in str(caught.value)
    cause = caught.value.__cause__
    assert isinstance(cause, sqlite3.OperationalError)
    assert cause.sqlite_errorcode == sqlite3.SQLITE_FULL
    assert store.snapshot() is snap
    assert on_disk(db_path) == before

    conn.execute("PRAGMA max_page_count = 1073741823")  # space is back: the same rows go in
    result = store.append_actuals(batch)
    assert result.n_new == len(batch)  # none of them had been kept by the failed call
    assert result.history_end == END + pd.Timedelta(days=60)


def test_p30_read_only_open_sees_unreplayed_appends_and_refuses_writes(
    store: HistoryStore, db_path: Path
) -> None:
    store.append_actuals(rows(after_end(1)))  # in the WAL: the writer is still open
    wal = db_path.with_name(f"{db_path.name}-wal")
    assert wal.stat().st_size > 0
    with HistoryStore.open(db_path, read_only=READ_ONLY) as reader:
        assert reader.read_only == READ_ONLY
        assert reader.history_end == END + pd.Timedelta(days=1)
        pd.testing.assert_frame_equal(reader.to_frame(), store.to_frame())
        main, log = digest(db_path), digest(wal)
        with pytest.raises(StoreReadOnlyError, match="cannot be written") as caught:
            reader.append_actuals(rows(after_end(1, first=2)))
        assert str(db_path) in str(caught.value)
        assert "restart" in str(caught.value)
        assert (digest(db_path), digest(wal)) == (main, log)
        store.append_actuals(rows(after_end(1, first=2)))  # the writer's commits reach it
        assert reader.history_end == END + pd.Timedelta(days=2)


def test_p30_in_memory_store_serves_the_frame_like_the_file_and_refuses_writes(
    store: HistoryStore, tmp_path: Path
) -> None:
    source = tmp_path / "not-a-dir" / "v1.sqlite"
    memory = HistoryStore.in_memory(
        sales("2017-07-01"), n_days=14, source=str(source), read_only=READ_ONLY
    )
    with memory:
        pd.testing.assert_frame_equal(memory.to_frame(), store.to_frame())
        assert memory.n_days == store.n_days
        with pytest.raises(StoreReadOnlyError, match=str(source)):
            memory.append_actuals(rows(after_end(1)))
        assert memory.history_end == END
    assert not source.parent.exists()  # nothing on disk


def test_p30_a_query_only_write_is_store_read_only_error(store: HistoryStore) -> None:
    """A store that turns unwritable after the start (remount) refuses with the same class."""
    store._conn.execute("PRAGMA query_only = ON")  # SQLite answers SQLITE_READONLY from now on
    snap = store.snapshot()
    with pytest.raises(StoreReadOnlyError, match="cannot be written") as caught:
        store.append_actuals(rows(after_end(1)))
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert store.snapshot() is snap


def test_p30_unwritable_cause_names_real_errors_and_only_those(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(NotADirectoryError) as under_a_file:
        (regular / "history").mkdir(parents=True, exist_ok=True)
    with pytest.raises(FileExistsError) as a_file:
        regular.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA query_only = ON")
    with pytest.raises(sqlite3.OperationalError) as readonly:
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError) as no_table:
        conn.execute("SELECT * FROM missing")
    assert unwritable_cause(under_a_file.value) == "a component of the path is not a directory"
    assert unwritable_cause(a_file.value) == "a component of the path is a file"
    assert unwritable_cause(readonly.value) == "the database is read-only"
    assert unwritable_cause(no_table.value) is None  # not ours to explain: it keeps its class
    assert unwritable_cause(ValueError("x")) is None


def test_p30_a_store_on_a_read_only_mount_opens_read_only_and_refuses_writing(
    store: HistoryStore, db_path: Path
) -> None:
    """A cleanly closed store: no -shm can be made there, so it is read as immutable."""
    store.append_actuals(rows(after_end(1)))
    store.close()
    assert not db_path.with_name(f"{db_path.name}-wal").exists()
    with read_only_bind(db_path.parent):
        with pytest.raises(sqlite3.OperationalError) as writing:
            connect(db_path).close()
        assert unwritable_cause(writing.value) is not None
        with HistoryStore.open(db_path, read_only=READ_ONLY) as reader:
            assert reader.history_end == END + pd.Timedelta(days=1)
            with pytest.raises(StoreReadOnlyError):
                reader.append_actuals(rows(after_end(1, first=2)))


def test_p30_a_store_whose_wal_cannot_be_read_is_refused_not_served_stale(
    store: HistoryStore, db_path: Path, tmp_path: Path
) -> None:
    """Committed rows only in the WAL and no -shm possible: immutable would miss them."""
    store.append_actuals(rows(after_end(1)))  # committed, in the WAL only
    copy = tmp_path / "copy"
    copy.mkdir()
    for suffix in ("", "-wal"):  # the files a crashed writer leaves, without its -shm
        name = f"{db_path.name}{suffix}"
        (copy / name).write_bytes((db_path.parent / name).read_bytes())
    with read_only_bind(copy), pytest.raises(sqlite3.OperationalError):
        HistoryStore.open(copy / db_path.name, read_only=READ_ONLY)
