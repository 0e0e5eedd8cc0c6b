"""HistoryStore: the last N days of sales per series, in memory and persisted to SQLite.

Rules:

- ``history_end`` is the last date for which every series has an actual. Rows for later dates
  are kept *pending* (in memory and in SQLite) until their date is complete; then the window
  moves forward and keeps the last ``n_days`` complete dates.
- Dates after ``history_end`` must be contiguous: a row dated ``d`` is accepted only if every
  date from ``history_end + 1`` to ``d`` already has rows or is in the same call; 25 December
  is the exception, it is filled as closed (sales 0, onpromotion 0, ``is_closed``) once a later
  date arrives, as the data layer does for the training history.
- Known rows follow the package's conflict policy (``retail_forecast.storage``): re-sending one
  is a no-op; a different value for a known ``(date, store_nbr, family)`` raises ConflictError
  and nothing of that call is applied. Rows older than the window cannot be checked and are
  skipped (counted in ``n_too_old``).
- Each call is one SQLite transaction (WAL mode, ``synchronous=FULL``); the in-memory snapshot
  is replaced only after the commit. Readers take :meth:`HistoryStore.snapshot`, an immutable
  view that never mixes two states; mutation is serialized by a lock.
- Several processes (server workers) may open the same file. Each append takes SQLite's write
  lock first (``BEGIN IMMEDIATE``) and reloads the window if another process committed since
  (``PRAGMA data_version``), so appends from different workers are checked against each other;
  :meth:`HistoryStore.snapshot` reloads the same way, so every worker forecasts from the
  history that the last acknowledged append left.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from retail_forecast.errors import DataValidationError, ForecastError
from retail_forecast.schema import DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET, SeriesKey
from retail_forecast.storage.history_db import (
    ObsRow,
    StoredState,
    connect,
    iso,
    read_state,
    write_actuals,
    write_initial,
)
from retail_forecast.storage.history_rows import (
    DAY,
    Batch,
    PendingDay,
    Window,
    check_contiguous,
    complete_days,
    frame_to_window,
    merge_batch,
    normalize_rows,
)

__all__ = ["AppendResult", "HistorySnapshot", "HistoryStore"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T", bound=np.generic)


@dataclasses.dataclass(frozen=True)
class HistorySnapshot:
    """A consistent read-only view: arrays ``[n_series, len(dates)]`` aligned with ``dates``."""

    series: tuple[SeriesKey, ...]
    families: tuple[str, ...]
    dates: npt.NDArray[np.datetime64]
    sales: npt.NDArray[np.float64]
    onpromotion: npt.NDArray[np.int64]
    is_closed: npt.NDArray[np.bool_]
    pending: Mapping[np.datetime64, PendingDay]
    index: Mapping[SeriesKey, int]

    @property
    def history_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.dates[-1])

    @functools.cached_property
    def date_index(self) -> pd.DatetimeIndex:
        """``dates`` as the canonical frame's DatetimeIndex (built once per snapshot)."""
        return pd.DatetimeIndex(self.dates.astype("datetime64[ns]"), name=DATE)

    @property
    def window(self) -> Window:
        return Window(
            dates=self.dates, sales=self.sales, promo=self.onpromotion, closed=self.is_closed
        )

    @property
    def pending_dates(self) -> tuple[pd.Timestamp, ...]:
        return tuple(pd.Timestamp(day) for day in sorted(self.pending))

    def to_frame(self) -> pd.DataFrame:
        """Return the complete days as a canonical sales frame (pending rows excluded)."""
        n_series, n_days = self.sales.shape
        stores = np.array([store for store, _ in self.series], dtype=np.int64)
        families = pd.Categorical(
            np.repeat([family for _, family in self.series], n_days), categories=self.families
        )
        return pd.DataFrame(
            {
                DATE: np.tile(self.dates.astype("datetime64[ns]"), n_series),
                STORE: np.repeat(stores, n_days),
                FAMILY: families,
                TARGET: self.sales.reshape(-1),
                PROMO: self.onpromotion.reshape(-1),
                IS_CLOSED: self.is_closed.reshape(-1),
            }
        )


@dataclasses.dataclass(frozen=True)
class AppendResult:
    """What one ``append_actuals`` call did."""

    n_received: int
    n_new: int
    n_duplicate: int
    n_too_old: int
    n_closed_filled: int
    history_end_before: pd.Timestamp
    history_end: pd.Timestamp
    pending_dates: tuple[pd.Timestamp, ...]


def _readonly(array: npt.NDArray[_T]) -> npt.NDArray[_T]:
    array.flags.writeable = False
    return array


class HistoryStore:
    """Sales history for server-side lags; build with :meth:`from_frame` or :meth:`open`."""

    def __init__(
        self, conn: sqlite3.Connection, snapshot: HistorySnapshot, n_days: int, *, source: str
    ) -> None:
        self._conn = conn
        self._snapshot = snapshot
        self.n_days = n_days
        self._source = source
        self._lock = threading.Lock()
        self._data_version = _data_version(conn)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_frame(cls, sales: pd.DataFrame, *, n_days: int, db_path: Path) -> Self:
        """Keep the last ``n_days`` of a canonical frame; (re)creates ``db_path`` atomically.

        An existing database at ``db_path`` is replaced, so appended actuals in it are lost:
        at service start, :meth:`open` an existing store instead.
        """
        if n_days < 1:
            raise DataValidationError(f"n_days must be >= 1, got {n_days}")
        series, families, window = frame_to_window(sales, n_days=n_days)
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = db_path.with_name(f".{db_path.name}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            state = StoredState(series, families, window, pending={}, n_days=n_days)
            write_initial(conn, state)
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):  # a stale WAL must never meet the new file
            db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        tmp.replace(db_path)
        logger.info(
            "history store created db=%s series=%d days=%d end=%s",
            db_path,
            len(series),
            len(window.dates),
            iso(window.dates[-1]),
        )
        return cls.open(db_path)

    @classmethod
    def open(cls, db_path: Path) -> Self:
        """Load a store written by :meth:`from_frame` (with every appended actual)."""
        db_path = Path(db_path)
        if not db_path.is_file():
            raise ForecastError(f"history store {db_path} does not exist")
        conn = connect(db_path)
        try:
            state = read_state(conn, source=str(db_path))
        except BaseException:
            conn.close()
            raise
        return cls(conn, _snapshot_of(state), state.n_days, source=str(db_path))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self) -> HistorySnapshot:
        """Return the current state (reloaded if another process appended since); immutable."""
        with self._lock:
            self._refresh()
            return self._snapshot

    def _refresh(self) -> None:
        """Reload the window when another connection committed (caller holds the lock)."""
        version = _data_version(self._conn)
        if version != self._data_version:
            self._snapshot = _snapshot_of(read_state(self._conn, source=self._source))
            self._data_version = version
            logger.info("history store reloaded end=%s", self._snapshot.history_end.date())

    @property
    def history_end(self) -> pd.Timestamp:
        return self.snapshot().history_end

    @property
    def series(self) -> list[SeriesKey]:
        return list(self.snapshot().series)

    def to_frame(self) -> pd.DataFrame:
        return self.snapshot().to_frame()

    # -- appending ---------------------------------------------------------------------------

    def append_actuals(self, rows: pd.DataFrame) -> AppendResult:
        """Record observed sales (date, store_nbr, family, sales, onpromotion); see module doc.

        Raises DataValidationError (bad values, a gap after the history end), UnknownSeriesError
        (a series this store does not keep) or ConflictError; in each case nothing is applied.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # the write lock, across processes
            try:
                self._refresh()
                before = self._snapshot
                batch = normalize_rows(rows, before.index)
                merge = merge_batch(
                    window=before.window, pending=before.pending, series=before.series, batch=batch
                )
                check_contiguous(before.dates[-1], merge.pending)
                completed, filled = complete_days(
                    before.dates[-1], merge.pending, len(before.series)
                )
                after = _advance(before, merge.pending, completed, n_days=self.n_days)
                self._write(batch, merge.new_mask, filled, after)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._snapshot = after
        result = AppendResult(
            n_received=len(rows),
            n_new=int(merge.new_mask.sum()),
            n_duplicate=merge.n_duplicate,
            n_too_old=merge.n_too_old,
            n_closed_filled=sum(len(idx) for _, idx in filled),
            history_end_before=before.history_end,
            history_end=after.history_end,
            pending_dates=after.pending_dates,
        )
        logger.info(
            "actuals appended new=%d duplicate=%d too_old=%d end=%s pending=%d",
            result.n_new,
            result.n_duplicate,
            result.n_too_old,
            result.history_end.date(),
            len(result.pending_dates),
        )
        return result

    def _write(
        self,
        batch: Batch,
        new_mask: npt.NDArray[np.bool_],
        filled: list[tuple[np.datetime64, npt.NDArray[np.int64]]],
        after: HistorySnapshot,
    ) -> None:
        new_rows: list[ObsRow] = [
            (iso(d), int(i), float(s), int(p), 0)
            for d, i, s, p in zip(
                batch.dates[new_mask],
                batch.idx[new_mask],
                batch.sales[new_mask],
                batch.promo[new_mask],
                strict=True,
            )
        ]
        new_rows += [(iso(day), int(i), 0.0, 0, 1) for day, idx in filled for i in idx]
        if new_rows:
            write_actuals(
                self._conn,
                new_rows,
                window_start=iso(after.dates[0]),
                history_end=iso(after.dates[-1]),
            )


def _advance(
    before: HistorySnapshot,
    pending: dict[np.datetime64, PendingDay],
    completed: list[PendingDay],
    *,
    n_days: int,
) -> HistorySnapshot:
    """Move the completed days from ``pending`` into the window of a new snapshot."""
    new_end = before.dates[-1] + DAY * len(completed)
    remaining = {day: p for day, p in pending.items() if day > new_end}
    if not completed:
        return dataclasses.replace(before, pending=remaining)
    block = len(completed)

    def extend(old: npt.NDArray[_T], new: list[npt.NDArray[_T]]) -> npt.NDArray[_T]:
        return _readonly(np.concatenate([old, np.stack(new, axis=1)], axis=1)[:, -n_days:].copy())

    new_dates = before.dates[-1] + DAY * np.arange(1, block + 1)
    return dataclasses.replace(
        before,
        dates=_readonly(np.concatenate([before.dates, new_dates])[-n_days:].copy()),
        sales=extend(before.sales, [p.sales for p in completed]),
        onpromotion=extend(before.onpromotion, [p.promo for p in completed]),
        is_closed=extend(before.is_closed, [p.closed for p in completed]),
        pending=remaining,
    )


def _data_version(conn: sqlite3.Connection) -> int:
    """SQLite's counter of commits made by *other* connections to this database file."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _snapshot_of(state: StoredState) -> HistorySnapshot:
    window = state.window
    return HistorySnapshot(
        series=state.series,
        families=state.families,
        dates=_readonly(window.dates),
        sales=_readonly(window.sales),
        onpromotion=_readonly(window.promo),
        is_closed=_readonly(window.closed),
        pending=state.pending,
        index={key: i for i, key in enumerate(state.series)},
    )
